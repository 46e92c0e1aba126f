"""LibMF's own ``mf_train`` at full speed, driven by ``benchmarks/libmf_driver.cpp``.

The ``libmf`` Python binding (the ``bench`` extra) is LibMF compiled by
setuptools with ``-std=c++11`` and nothing else: without LibMF's SSE code
(``-DUSESSE``), without OpenMP (``-DUSEOMP -fopenmp``) and without
``-march=native``. LibMF's own Makefile builds it with :data:`MAKEFILE_FLAGS`.
To time that build, :func:`build_libmf_driver` compiles our driver
(``libmf_driver.cpp``: it loads int32/int32/float32 arrays, calls
``mf_train`` with ``mf_get_default_param()``'s lambdas and eta, times that
call alone and scores ``mf_predict`` on held-out ratings) in one of two ways:

* ``"makefile"``: with LibMF's ``mf.cpp`` and ``mf.h`` from the source
  distribution of the binding on PyPI (``pip download --no-deps --no-binary
  :all: libmf==0.9.2``, fetched once into :data:`DEFAULT_CACHE` and reused),
  both files compiled with :data:`MAKEFILE_FLAGS`. This is the build the
  benchmark reports.
* ``"binding"``: linked against the binding's installed shared library (it
  exports ``mf_train``, ``mf_predict`` and the rest with C linkage) and its
  installed ``mf.h``. No download; the same LibMF code the Python binding
  runs, so as slow. The tests use it.

:func:`write_ratings` writes a :class:`competitors.Fold` in the driver's
layout and :func:`run_driver` runs the driver once (a fresh process per fit)
and parses its line of output.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "BUILDS",
    "DEFAULT_CACHE",
    "DRIVER_SOURCE",
    "LIBMF_VERSION",
    "MAKEFILE_FLAGS",
    "DriverRun",
    "LibMFSourceUnavailable",
    "binding_library",
    "build_libmf_driver",
    "driver_command",
    "fetch_libmf_source",
    "gxx_version",
    "run_driver",
    "write_ratings",
]

#: The binding's version, whose source distribution holds LibMF's mf.cpp and mf.h.
LIBMF_VERSION = "0.9.2"

#: The driver's source, beside this file.
DRIVER_SOURCE = Path(__file__).resolve().parent / "libmf_driver.cpp"

#: Where the source distribution is unpacked (``src_cpp/mf.cpp``, ``src_cpp/mf.h``) and kept.
DEFAULT_CACHE = Path.home() / ".cache" / "factorise" / f"libmf-{LIBMF_VERSION}"

#: LibMF's Makefile: ``CXXFLAGS = -O3 -pthread -std=c++0x -march=native``, plus ``-fopenmp`` and
#: ``DFLAG = -DUSESSE -DUSEOMP``.
MAKEFILE_FLAGS: tuple[str, ...] = ("-O3", "-pthread", "-std=c++0x", "-march=native", "-fopenmp", "-DUSESSE", "-DUSEOMP")

#: Build -> the row label that says what it is.
BUILDS: dict[str, str] = {
    "makefile": "LibMF mf_train, its Makefile build (SSE, OpenMP, -march=native)",
    "binding": "LibMF mf_train, linked to the Python binding's library (no SIMD, no OpenMP)",
}

#: The two files of LibMF inside the source distribution.
_SOURCES = ("src_cpp/mf.cpp", "src_cpp/mf.h")


class LibMFSourceUnavailable(RuntimeError):
    """LibMF's source could not be fetched (no network to PyPI, no pip); the message says how to provide it."""


def gxx_version() -> str | None:
    """First line of ``g++ --version``, or ``None`` without g++."""
    gxx = shutil.which("g++")
    if gxx is None:
        return None
    out = subprocess.run([gxx, "--version"], capture_output=True, text=True, check=False).stdout
    return out.splitlines()[0] if out else gxx


def fetch_libmf_source(cache: Path = DEFAULT_CACHE) -> Path:
    """The folder holding LibMF's ``mf.cpp`` and ``mf.h``, downloading the source distribution once.

    Parameters
    ----------
    cache : pathlib.Path
        Reused when ``cache/src_cpp`` already holds both files; otherwise
        ``pip download`` puts ``libmf-0.9.2.tar.gz`` there (or it is already
        there) and the two files are unpacked from it.

    Returns
    -------
    pathlib.Path
        ``cache/src_cpp``.

    Raises
    ------
    LibMFSourceUnavailable
        If pip fails (no network) or the archive lacks the files.
    """
    cache = Path(cache)
    target = cache / "src_cpp"
    if all((cache / name).is_file() for name in _SOURCES):
        return target
    archive = cache / f"libmf-{LIBMF_VERSION}.tar.gz"
    how = (
        f"download it elsewhere with `pip download --no-deps --no-binary :all: libmf=={LIBMF_VERSION}` and put "
        f"{archive.name} (or its src_cpp/mf.cpp and src_cpp/mf.h) in {cache}"
    )
    if not archive.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   f"libmf=={LIBMF_VERSION}", "-d", str(cache)]  # fmt: skip
        try:
            result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise LibMFSourceUnavailable(f"`{' '.join(command)}` did not run ({exc}); {how}") from None
        if result.returncode != 0 or not archive.is_file():
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise LibMFSourceUnavailable(
                f"`{' '.join(command)}` failed with status {result.returncode} ({tail[0]}); {how}"
            )
    prefix = f"libmf-{LIBMF_VERSION}/"
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for name in _SOURCES:
                member = tar.getmember(prefix + name)
                source = tar.extractfile(member)
                if source is None:
                    raise KeyError(name)
                (cache / name).parent.mkdir(parents=True, exist_ok=True)
                (cache / name).write_bytes(source.read())
    except (tarfile.TarError, KeyError, OSError) as exc:
        raise LibMFSourceUnavailable(f"{archive}: cannot unpack {', '.join(_SOURCES)} ({exc}); {how}") from None
    return target


def binding_library() -> tuple[Path, Path]:
    """The binding's shared library and the folder of its installed ``mf.h``.

    Raises
    ------
    FileNotFoundError
        If the ``libmf`` binding is not installed, or lacks either file.
    """
    try:
        files = importlib.metadata.files("libmf") or []
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError("the libmf binding is not installed (pip install -e '.[bench]')") from None
    library = next((f for f in files if f.name.startswith("libmf") and f.name.endswith(".so")), None)
    header = next((f for f in files if f.name == "mf.h"), None)
    if library is None or header is None:
        raise FileNotFoundError("the installed libmf binding has no shared library or no mf.h among its files")
    return Path(str(library.locate())).resolve(), Path(str(header.locate())).resolve().parent


def driver_command(build: str, output: Path, *, source: Path | None = None) -> list[str]:
    """The ``g++`` command that builds the driver into ``output``.

    Parameters
    ----------
    build : {"makefile", "binding"}
        See the module docstring.
    output : pathlib.Path
        The executable.
    source : pathlib.Path, optional
        For ``"makefile"``: the folder of ``mf.cpp`` and ``mf.h`` (default:
        :func:`fetch_libmf_source`).
    """
    gxx = shutil.which("g++") or "g++"
    if build == "makefile":
        folder = fetch_libmf_source() if source is None else Path(source)
        return [gxx, *MAKEFILE_FLAGS, f"-I{folder}", str(DRIVER_SOURCE), str(folder / "mf.cpp"), "-o", str(output)]
    if build == "binding":
        library, include = binding_library()
        return [gxx, "-O2", "-std=c++11", f"-I{include}", str(DRIVER_SOURCE), str(library),
                f"-Wl,-rpath,{library.parent}", "-o", str(output)]  # fmt: skip
    raise ValueError(f"`build` must be one of {', '.join(BUILDS)}; got {build!r}")


def build_libmf_driver(directory: Path, build: str = "makefile", *, source: Path | None = None) -> Path:
    """Compile the driver into ``directory`` (see :func:`driver_command`); return the executable.

    Raises
    ------
    FileNotFoundError
        If g++ is not on the ``PATH`` (or, for ``"binding"``, the binding is not installed).
    LibMFSourceUnavailable
        For ``"makefile"``, if LibMF's source cannot be fetched.
    RuntimeError
        If g++ fails (its error output is in the message).
    """
    if shutil.which("g++") is None:
        raise FileNotFoundError("g++ is not on the PATH: LibMF's driver cannot be built (install g++)")
    output = Path(directory) / f"libmf_driver_{build}"
    command = driver_command(build, output, source=source)
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed with status {result.returncode}:\n{result.stderr}")
    return output


def _index_of(sorted_ids: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """Position of each raw id in ``sorted_ids``; -1 where it is absent."""
    if sorted_ids.shape[0] == 0:
        return np.full(raw.shape, -1, dtype=np.int64)
    pos = np.searchsorted(sorted_ids, raw)
    clipped = np.minimum(pos, len(sorted_ids) - 1)
    return np.where(sorted_ids[clipped] == raw, clipped, -1)


def write_ratings(directory: Path, fold: Any) -> Path:
    """Write a fold's ratings as the driver reads them; return ``directory``.

    Raw ids are mapped to 0-based indices of the ids seen in training (as the
    binding's job does); a test pair with an unknown user or item gets index
    -1, for which LibMF predicts the training mean.

    Parameters
    ----------
    directory : pathlib.Path
        Created if needed; gets ``{train,test}_{users,items}.i32`` and ``{train,test}_ratings.f32``.
    fold : competitors.Fold
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    user_ids, train_users = np.unique(fold.train_users, return_inverse=True)
    item_ids, train_items = np.unique(fold.train_items, return_inverse=True)
    if max(len(user_ids), len(item_ids)) >= 2**31:
        raise ValueError("LibMF indexes rows and columns with int32: at most 2**31 - 1 users and items")
    arrays = {
        "train_users.i32": (train_users.reshape(-1), "<i4"),
        "train_items.i32": (train_items.reshape(-1), "<i4"),
        "train_ratings.f32": (fold.train_ratings, "<f4"),
        "test_users.i32": (_index_of(user_ids, fold.test_users), "<i4"),
        "test_items.i32": (_index_of(item_ids, fold.test_items), "<i4"),
        "test_ratings.f32": (fold.test_ratings, "<f4"),
    }
    for name, (values, dtype) in arrays.items():
        np.ascontiguousarray(values, dtype=dtype).tofile(directory / name)
    return directory


@dataclass(frozen=True)
class DriverRun:
    """One run of the driver (its line of output).

    Attributes
    ----------
    seconds : float
        Wall clock of ``mf_train`` alone.
    rmse : float
        Held-out RMSE of ``mf_predict``, clipped to the training ratings' range.
    rmse_unclipped : float
    peak_rss_bytes : int
        The driver process's VmHWM at the end of ``mf_train`` (reset just before it).
    fit_increase_bytes : int or None
        That minus the RSS just before ``mf_train``; ``None`` where the peak could not be reset.
    params : dict
        ``k``, ``nr_iters``, ``nr_threads``, ``nr_bins``, ``eta`` and the lambdas it ran with.
    """

    seconds: float
    rmse: float
    rmse_unclipped: float
    peak_rss_bytes: int
    fit_increase_bytes: int | None
    params: dict[str, Any]


def run_driver(
    binary: Path, data: Path, threads: int, *, k: int = 32, iters: int = 10, timeout: float | None = None
) -> DriverRun:
    """Run the driver once on ``data`` (see :func:`write_ratings`) and parse its output.

    Raises
    ------
    RuntimeError
        If it exits with an error (its message is included) or prints no result.
    """
    command = [str(binary), str(data), str(threads), str(k), str(iters)]
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=timeout)
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"{' '.join(command)} exited with status {result.returncode}: {result.stderr.strip()}")
    out = json.loads(lines[-1])
    since_fit = out["peak_rss_since"] == "fit" and out["rss_before_fit_bytes"] >= 0
    return DriverRun(
        seconds=float(out["seconds"]),
        rmse=float("nan") if out["rmse"] is None else float(out["rmse"]),
        rmse_unclipped=float("nan") if out["rmse_unclipped"] is None else float(out["rmse_unclipped"]),
        peak_rss_bytes=int(out["peak_rss_bytes"]),
        fit_increase_bytes=max(0, int(out["peak_rss_bytes"]) - int(out["rss_before_fit_bytes"])) if since_fit else None,
        params={key: out[key] for key in ("k", "nr_iters", "nr_threads", "nr_bins", "eta", "lambda_p1", "lambda_q1",
                                          "lambda_p2", "lambda_q2")},  # fmt: skip
    )
