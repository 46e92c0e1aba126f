"""Speed and scale on one machine: the SGD kernel against C, BiasedMF against LibMF at 10M ratings, 100M ratings.

Run from the repository root (``pip install -e '.[bench]'`` brings LibMF's
binding; the kernel comparison needs gcc, LibMF's own build g++)::

    .venv/bin/python benchmarks/scale.py                  # kernel vs C, then 10M ratings
    .venv/bin/python benchmarks/scale.py --only kernel    # one part: kernel, 10m or netflix
    .venv/bin/python benchmarks/scale.py --netflix        # also the 100M-rating (Netflix-shaped) run
    .venv/bin/python benchmarks/scale.py --quick          # tiny sizes (the smoke test)
    .venv/bin/python benchmarks/scale.py --quick --libmf-build binding   # the same without downloading

Every table is printed in markdown under the command that produced it.
Absolute numbers depend on the machine; the ratios measured side by side in
one run are what to compare.

**1. Kernel vs C** (``--only kernel``; see ``benchmarks/kernel_vs_c.py``).
The compiled serial kernel :func:`factorise.kernels.sgd_ratings.sgd_ratings_epoch`
and ``benchmarks/sgd_loop.c`` (the same update as a plain C loop, built here by
gcc with ``-O3 -march=native``, once as is and once with the reassociation the
kernel is allowed) sweep the same planted ratings (4M; 100,000 users x 10,000
items) in the same random order from the same start,
at ranks 10 and 32, float32, one thread. Reported: updates (ratings visited)
per second, the kernel's time over each C build's (target: within 1.25x of the
faster C build) and agreement after one sweep (max |difference| of biases and
factors relative to the largest factor). A disagreement makes the script fail.

All data come from :func:`factorise.datasets.synthetic.synthetic_ratings`
(planted rank 10, Gaussian noise of standard deviation 0.5, seed 0, the
library's defaults otherwise: mean 3.5, user and item biases, Netflix-like
power-law popularity); its noise floor (the planted matrix's own held-out
RMSE) is printed beside the models'.

**2. 10M ratings** (``--only 10m``). 100,000 users x 10,000 items, 10% held
out at random (9M train, 1M held out), rank 32, 10 epochs, at 1 and 2
threads (``--threads``), three methods:

* ``BiasedMF(rank=32, n_epochs=10, n_threads=n)``, other settings default;
* LibMF's own ``mf_train`` as LibMF's Makefile builds it (``g++ -O3 -pthread
  -std=c++0x -march=native -fopenmp -DUSESSE -DUSEOMP``), called by our
  driver ``benchmarks/libmf_driver.cpp`` with ``k=32, nr_iters=10,
  nr_threads=n`` and ``mf_get_default_param()``'s lambdas and eta (L2 0.1,
  eta 0.1). The script builds it itself (``benchmarks/libmf_native.py``):
  LibMF's ``mf.cpp`` and ``mf.h`` come from the binding's source distribution
  on PyPI, downloaded once into ``~/.cache/factorise/libmf-0.9.2``
  (``--libmf-cache``) and reused. ``--libmf-build binding`` links the driver
  against the installed binding's library instead (no download; no SIMD, no
  OpenMP: the tests use it), and the row's label says so;
* LibMF's Python binding (``libmf`` 0.9.2, compiled by setuptools without
  LibMF's SIMD code and without OpenMP), with the settings mapped from
  BiasedMF's as below;
* ``BiasedMF(..., block_copy=False)``: the same model without the copy of
  the ratings in block order (the lean layout, for data whose copy would not
  fit in memory);
* ``BiasedMF(..., block_copy="in-place")``: the same model again, the job's
  own ratings reordered into block order instead of copied, which is what
  ``factorise fit`` does with the ratings it reads;
* ``ALS(rank=32, n_epochs=3, patience=None, n_threads=n)``, for its time per
  iteration beside the SGD epochs (no target; its accuracy after 3
  iterations with settings tuned on MovieLens is not the point).

The methods alternate, round after round (``--rounds``, default 3): in each
round, for each thread count, BiasedMF, then ``mf_train``, then the binding,
each fit in a fresh process (Python ones: see ``benchmarks/competitors.py``,
one untimed warm-up fit, then the timed fit; the driver times ``mf_train``
alone with ``steady_clock``). The table gives per method and thread count the
median fit seconds (and the range), its ratio to ``mf_train``'s median on as
many threads, the median held-out RMSE, ratings x epochs per second and the
largest peak RSS (``VmHWM`` reset just before the fit; the driver's process
holds no interpreter, so its peak is mostly data). Then the ratio
factorise / ``mf_train`` at each thread count, and the physical-limit line:
what one core allows for one update at rank 32 in float32 (the larger of the
FP-unit, load and store cycles counted for the dot product and the two row
updates, or the measured bandwidth for the rows in a random order; see
``benchmarks/core_limit.py``), and the fraction of it the 1-thread fits
reach. If ``BiasedMF`` has no ``n_threads`` yet, the table says the parallel
engine is unavailable and shows factorise's serial fit only.

How the settings map (for the binding's row). Both libraries run SGD in units of the ratings'
standard deviation ``sigma``. BiasedMF's ``learning_rate`` and
``regularization`` are in those units (in rating units its step is
``learning_rate / sigma`` and its penalty ``regularization * sigma`` per
visit, the same ``reg * |p_u|^2`` per-visit penalty LibMF uses); LibMF divides
the ratings by ``sigma`` and its ``lambda_p2``/``lambda_q2`` by ``sigma``, so
its lambdas are in rating units. So LibMF gets ``eta = learning_rate``,
``lambda_p2 = lambda_q2 = regularization * sigma`` (``sigma`` of the training
ratings), no L1 penalty. The step sizes still differ in kind: BiasedMF decays
its rate geometrically per epoch (``learning_rate_decay``) and fits biases;
LibMF scales ``eta`` per row and column by AdaGrad and has no biases (with
rank 32 its factors can absorb the planted mean and biases, which add at most
3 to the planted rank 10, but it has to learn them through the factors).

**3. 100M ratings** (``--netflix``; not run by default or in the tests).
480,189 users x 17,770 items, 100,480,507 planted ratings (the Netflix
prize's shape), ``BiasedMF`` for 2 epochs in this process: seconds per epoch
and peak RSS. It needs several GB of memory (about 1.2 GB for the ratings
alone); check ``free -g`` first.

Exit status: 0 on success; 1 if the kernel and C disagree, a method fails,
or gcc is missing for the kernel part; 2 on bad arguments. A method that
cannot run here (LibMF not installed, its source not downloadable, no g++)
is a row saying so and does not change the status.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import inspect
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

# beside this file (the benchmarks folder is not a package)
from competitors import (
    Fold,
    LibMFJob,
    MethodSpec,
    is_installed,
    run_isolated,
)
from core_limit import CoreLimit, core_limit
from kernel_vs_c import (
    AGREEMENT_TOLERANCE,
    C_VARIANTS,
    KernelResult,
    compare_kernels,
    compile_c_loop,
    gcc_version,
    kernel_problem,
    load_c_loop,
)
from libmf_native import (
    BUILDS,
    DEFAULT_CACHE,
    LibMFSourceUnavailable,
    build_libmf_driver,
    fetch_libmf_source,
    gxx_version,
    run_driver,
    write_ratings,
)

#: The numba kernel's time may be at most this many times the faster C build's.
KERNEL_TARGET_RATIO = 1.25

SEED = 0


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one run (full or ``--quick``)."""

    kernel_users: int
    kernel_items: int
    kernel_ratings: int
    kernel_ranks: tuple[int, ...]
    kernel_repeats: int
    users: int
    items: int
    ratings: int
    epochs: int
    netflix_users: int
    netflix_items: int
    netflix_ratings: int
    netflix_epochs: int
    rounds: int


FULL = Sizes(
    kernel_users=100_000,
    kernel_items=10_000,
    kernel_ratings=4_000_000,
    kernel_ranks=(10, 32),
    kernel_repeats=3,
    users=100_000,
    items=10_000,
    ratings=10_000_000,
    epochs=10,
    netflix_users=480_189,
    netflix_items=17_770,
    netflix_ratings=100_480_507,
    netflix_epochs=2,
    rounds=3,
)

QUICK = Sizes(
    kernel_users=4_000,
    kernel_items=1_000,
    kernel_ratings=200_000,
    kernel_ranks=(10, 32),
    kernel_repeats=2,
    users=3_000,
    items=800,
    ratings=120_000,
    epochs=5,
    netflix_users=20_000,
    netflix_items=2_000,
    netflix_ratings=1_000_000,
    netflix_epochs=3,
    rounds=3,
)

#: Planted data: rank of the true matrix, noise standard deviation, held-out fraction.
PLANTED_RANK = 10
NOISE = 0.5
TEST_FRACTION = 0.1
MODEL_RANK = 32


# --------------------------------------------------------------------------- data
def planted(n_users: int, n_items: int, n_ratings: int, *, test_fraction: float = 0.0) -> Any:
    """Planted ratings from :func:`factorise.datasets.synthetic.synthetic_ratings` (its defaults otherwise).

    Rank :data:`PLANTED_RANK`, Gaussian noise of standard deviation
    :data:`NOISE`, seed :data:`SEED`; the library's Netflix-like popularity,
    mean 3.5 and user and item biases.
    """
    from factorise.datasets.synthetic import synthetic_ratings

    return synthetic_ratings(
        n_users, n_items, n_ratings, PLANTED_RANK, NOISE, random_state=SEED, test_fraction=test_fraction
    )


def as_fold(data: Any) -> Fold:
    """The training and held-out ratings of a ``SyntheticRatings`` as a :class:`Fold` (raw ids = indices)."""
    train, test = data.train, data.test
    return Fold(
        "planted",
        np.asarray(train.raw_users),
        np.asarray(train.raw_items),
        np.asarray(train.values, dtype=np.float64),
        np.asarray(test.raw_users),
        np.asarray(test.raw_items),
        np.asarray(test.values, dtype=np.float64),
    )


# ----------------------------------------------------------------------- helpers
def _gib(n_bytes: int | None) -> str:
    return "n/a" if n_bytes is None else f"{n_bytes / 2**30:.2f} GiB"


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _status_bytes(key: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes; ``None`` off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); whether it could be."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def _has_n_threads() -> bool:
    from factorise.models.sgd import BiasedMF

    return "n_threads" in inspect.signature(BiasedMF).parameters


def _print_header(command: str) -> None:
    print(f"Command: `{command}`")
    print()
    print(
        f"Machine: {_cpu_name()}, {os.cpu_count()} logical CPUs; Python {platform.python_version()}, "
        f"numpy {np.__version__}, numba {_version('numba')}, factorise {_version('factorise')}, "
        f"libmf {_version('libmf')}, gcc: {gcc_version() or 'not found'}, g++: {gxx_version() or 'not found'}"
    )
    print()


# ----------------------------------------------------------------- part 1: kernel
def run_kernel_part(sizes: Sizes, command: str) -> bool:
    """Print the kernel-vs-C table; return whether every agreement check passed."""
    print(f"## 1. Compiled SGD kernel vs a plain C loop (`{command}`)")
    print()
    if gcc_version() is None:
        print("gcc not found: the C loop cannot be built (install gcc). Kernel comparison not run.")
        print()
        return False
    data = planted(sizes.kernel_users, sizes.kernel_items, sizes.kernel_ratings)
    users, items, values = data.train.users, data.train.items, data.train.values
    n_users, n_items = data.train.n_users, data.train.n_items
    del data
    results: list[KernelResult] = []
    with tempfile.TemporaryDirectory(prefix="factorise-sgd-loop-") as tmp:
        loops = {
            label: load_c_loop(compile_c_loop(Path(tmp), flags, name=f"sgd_loop_{n}"))
            for n, (label, flags) in enumerate(C_VARIANTS.items())
        }
        for rank in sizes.kernel_ranks:
            problem = kernel_problem(users, items, values, n_users, n_items, rank)
            results.append(compare_kernels(problem, loops, repeats=sizes.kernel_repeats))
    labels = list(C_VARIANTS)
    print(
        f"{sizes.kernel_ratings:,} planted ratings, {sizes.kernel_users:,} users x {sizes.kernel_items:,} items "
        f"(`synthetic_ratings`, planted rank {PLANTED_RANK}), one sweep in a random order from the same start, "
        f"float32, one thread; best of {sizes.kernel_repeats} timed sweeps. Rates and initial factors as "
        "BiasedMF's first epoch."
    )
    print()
    head = ["rank", "numba kernel (updates/s)"]
    head += [f"{label} (updates/s)" for label in labels]
    head += [f"numba time / {label}" for label in labels]
    head += [f"agreement vs {label}" for label in labels]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in results:
        cells = [str(r.rank), f"{r.updates_per_second('numba') / 1e6:.1f}M"]
        cells += [f"{r.updates_per_second(label) / 1e6:.1f}M" for label in labels]
        cells += [f"{r.best('numba') / r.best(label):.2f}x" for label in labels]
        cells += [f"{r.relative_diff(label):.1e}" for label in labels]
        print("| " + " | ".join(cells) + " |")
    print()
    ok = all(r.agrees for r in results)
    worst = max(r.best("numba") / min(r.best(label) for label in labels) for r in results)
    print(
        "Agreement: max |difference| of biases and factors after one sweep, relative to the largest factor "
        f"(tolerance {AGREEMENT_TOLERANCE:g}; sums of squared errors within 1e-4 relative)."
    )
    print(f"agreement check: {'passed' if ok else 'FAILED (the C loop and the kernel differ: see sgd_loop.c)'}")
    verdict = "met" if worst <= KERNEL_TARGET_RATIO else "not met"
    print(
        f"kernel speed target (numba time <= {KERNEL_TARGET_RATIO}x the faster C build's, every rank): "
        f"{verdict} (worst {worst:.2f}x)"
    )
    print()
    at_model_rank = [r for r in results if r.rank == MODEL_RANK]
    if at_model_rank:
        r = at_model_rank[0]
        limit = core_limit(MODEL_RANK, n_users, n_items)
        names = {"numba": "numba kernel", **{label: label for label in labels}}
        print(physical_limit_line(limit, [(names[name], r.updates_per_second(name)) for name in names]))
        print()
    sys.stdout.flush()
    return ok


# ------------------------------------------------------------------ part 2: 10M
class BiasedMFJob:
    """``factorise.models.BiasedMF(**params)`` on one fold (building the ``Ratings`` is not timed)."""

    def __init__(self, fold: Fold, params: dict[str, Any]) -> None:
        from factorise.data import Ratings
        from factorise.models.sgd import BiasedMF

        self.fold = fold
        self.ratings = Ratings.from_raw(fold.train_users, fold.train_items, fold.train_ratings)
        self.model = BiasedMF(**params)

    def fit(self) -> None:
        """``model.fit(ratings)``."""
        self.model.fit(self.ratings)

    def predict(self) -> np.ndarray:
        """``model.predict`` on the test pairs (clipped to the training range by the model)."""
        return np.asarray(self.model.predict(self.fold.test_users, self.fold.test_items), dtype=np.float64)


def biasedmf_job(fold: Fold, params: dict[str, Any]) -> BiasedMFJob:
    """BiasedMF with ``params`` on ``fold``."""
    return BiasedMFJob(fold, params)


class ALSJob(BiasedMFJob):
    """``factorise.models.ALS(**params)`` on one fold (building the ``Ratings`` is not timed)."""

    def __init__(self, fold: Fold, params: dict[str, Any]) -> None:
        from factorise.data import Ratings
        from factorise.models.als import ALS

        self.fold = fold
        self.ratings = Ratings.from_raw(fold.train_users, fold.train_items, fold.train_ratings)
        self.model = ALS(**params)


def als_job(fold: Fold, params: dict[str, Any]) -> ALSJob:
    """ALS with ``params`` on ``fold``."""
    return ALSJob(fold, params)


ALS_ITERATIONS = 3
"""ALS iterations in the 10M part: enough for a time per iteration (ALS has no speed target)."""


def libmf_job(fold: Fold, params: dict[str, Any]) -> LibMFJob:
    """LibMF with ``params`` on ``fold`` (``benchmarks/competitors.py``)."""
    return LibMFJob(fold, params)


def libmf_params(fold: Fold, biasedmf_params: dict[str, Any], rank: int, epochs: int, threads: int) -> dict[str, Any]:
    """LibMF settings matching BiasedMF's (see the module docstring for the mapping)."""
    sigma = float(np.std(fold.train_ratings))
    reg = float(biasedmf_params["regularization"]) * sigma
    return {
        "fun": 0,  # P_L2_MFR: squared loss
        "k": rank,
        "nr_threads": threads,
        "nr_bins": max(26, 2 * threads + 1),
        "nr_iters": epochs,
        "lambda_p1": 0.0,
        "lambda_q1": 0.0,
        "lambda_p2": reg,
        "lambda_q2": reg,
        "eta": float(biasedmf_params["learning_rate"]),
        "do_nmf": False,
        "quiet": True,
        "copy_data": True,
    }


@dataclass(frozen=True)
class Sample:
    """One timed fit of one method, in its own process."""

    seconds: float
    rmse: float
    peak_rss_bytes: int | None
    fit_increase_bytes: int | None


class RowUnavailable(RuntimeError):
    """The method cannot run on this machine (a library, a compiler or LibMF's source is missing)."""


class RowTimedOut(RuntimeError):
    """The fit's process ran past ``--row-timeout`` and was killed."""


@dataclass
class Row:
    """One row of the 10M table: a method at a thread count, measured once per round.

    ``measure()`` runs one fit in a fresh process and returns its
    :class:`Sample`; ``error`` is set (and the row not measured again) when it
    raises, starting with ``"unavailable"`` for :class:`RowUnavailable`. A fit
    killed by ``--row-timeout`` (:class:`RowTimedOut`) is run once more before
    it counts as a failure; ``retries`` says how often that happened.
    """

    label: str
    threads: int
    settings: str
    measure: Callable[[], Sample]
    is_factorise: bool = False
    is_in_place: bool = False
    is_native: bool = False
    iterations: int | None = None
    samples: list[Sample] = field(default_factory=list)
    error: str | None = None
    retries: int = 0

    def run_once(self) -> None:
        """Measure one more fit, unless an earlier one failed (a time-out is retried once)."""
        if self.error is not None:
            return
        try:
            try:
                self.samples.append(self.measure())
            except RowTimedOut:
                self.retries += 1
                self.samples.append(self.measure())
        except RowUnavailable as exc:
            self.error = f"unavailable: {exc}"
        except Exception as exc:  # noqa: BLE001  (a method's failure is a row of the table, not a crash)
            self.error = f"failed: {type(exc).__name__}: {exc}"

    def median(self, name: str) -> float:
        """Median of a :class:`Sample` field over the rounds (NaN without samples)."""
        values = [getattr(sample, name) for sample in self.samples]
        return statistics.median(values) if values else math.nan

    def peak(self, name: str) -> int | None:
        """Largest value of a byte-count field over the rounds (``None`` if any is unknown)."""
        values = [getattr(sample, name) for sample in self.samples]
        return None if not values or None in values else max(values)


def _isolated(spec: MethodSpec, fold: Fold, timeout: float | None = None) -> Callable[[], Sample]:
    """``measure()`` for a Python method: :func:`competitors.run_isolated` on ``fold``, scored on its test pairs."""

    def measure() -> Sample:
        run = run_isolated(spec, [fold], timeout=timeout)
        if run.error is not None:
            if run.error.startswith("unavailable: "):
                raise RowUnavailable(run.error.removeprefix("unavailable: "))
            if run.error.startswith("timed out"):
                raise RowTimedOut(run.error)
            raise RuntimeError(run.error.removeprefix("failed: "))
        rmse = float(np.sqrt(np.mean((run.predictions[0] - fold.test_ratings) ** 2)))
        return Sample(run.fit_seconds[0], rmse, run.peak_rss_bytes, run.fit_increase_bytes)

    return measure


def _native(
    binary: Path | None, problem: str, data: Path, threads: int, epochs: int, timeout: float | None = None
) -> Callable[[], Sample]:
    """``measure()`` for LibMF's ``mf_train`` through the driver; ``problem`` says why there is no ``binary``."""

    def measure() -> Sample:
        if binary is None:
            raise RowUnavailable(problem)
        try:
            run = run_driver(binary, data, threads, k=MODEL_RANK, iters=epochs, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            raise RowTimedOut(f"timed out after {timeout:g} s (the driver was killed)") from exc
        return Sample(run.seconds, run.rmse, run.peak_rss_bytes, run.fit_increase_bytes)

    return measure


def _build_driver(directory: Path, build: str, cache: Path) -> tuple[Path | None, str]:
    """Build LibMF's driver: ``(executable, "")``, or ``(None, why)`` where it cannot be built here.

    A missing g++, binding or source distribution makes the row unavailable;
    a compiler error is raised (a failure of the benchmark).
    """
    try:
        source = fetch_libmf_source(cache) if build == "makefile" else None
        return build_libmf_driver(directory, build, source=source), ""
    except (FileNotFoundError, LibMFSourceUnavailable) as exc:
        return None, str(exc)


def _fraction(rate: float, bound: float) -> str:
    return "n/a" if not (math.isfinite(rate) and math.isfinite(bound)) else f"{100 * rate / bound:.0f}%"


def physical_limit_line(limit: CoreLimit, reached: Sequence[tuple[str, float]]) -> str:
    """The physical-limit sentence: the bounds and the fraction each measured rate (one thread) reaches."""
    parts = [
        f"{label} {rate / 1e6:.1f}M updates/s = {_fraction(rate, limit.limit)} of it "
        f"({_fraction(rate, limit.compute_bound)} of the compute bound)"
        for label, rate in reached
    ]
    return (
        f"Physical limit of one core for one update at rank {limit.rank}, float32: {limit.describe()}. "
        f"Reached on 1 thread: {'; '.join(parts) if parts else 'nothing measured'}."
    )


def run_10m_part(
    sizes: Sizes,
    command: str,
    threads: int,
    *,
    build: str,
    cache: Path,
    rounds: int,
    row_timeout: float | None = None,
) -> bool:
    """Print the BiasedMF-vs-LibMF table; return whether every method that could run here ran."""
    from factorise.models.sgd import BiasedMF

    print(f"## 2. {sizes.ratings:,} ratings: BiasedMF vs LibMF (`{command}`)")
    print()
    start = time.perf_counter()
    data = planted(sizes.users, sizes.items, sizes.ratings, test_fraction=TEST_FRACTION)
    made = time.perf_counter() - start
    fold, floor = as_fold(data), data.test_truth_rmse
    n_users, n_items = data.train.n_users, data.train.n_items
    del data
    n_train = fold.train_ratings.shape[0]
    sigma = float(np.std(fold.train_ratings))
    defaults = BiasedMF().get_params()
    base = {"rank": MODEL_RANK, "n_epochs": sizes.epochs, "random_state": SEED}
    parallel = _has_n_threads()
    counts = sorted({threads, 1})
    native_label = BUILDS[build]
    with tempfile.TemporaryDirectory(prefix="factorise-libmf-") as tmp:
        binary, problem = _build_driver(Path(tmp), build, cache)
        ratings_dir = write_ratings(Path(tmp) / "ratings", fold)
        rows: list[Row] = []
        for n in counts:
            if parallel or n == 1:
                params = {**base, "n_threads": n} if parallel else base
                spec = MethodSpec(
                    "factorise BiasedMF", biasedmf_job, params,
                    f"`BiasedMF(rank={MODEL_RANK}, n_epochs={sizes.epochs}"
                    + (f", n_threads={n})`" if parallel else ")`: the serial kernel") + ", other settings default",
                )  # fmt: skip
                rows.append(Row(spec.label, n, spec.settings, _isolated(spec, fold, row_timeout), is_factorise=True))
                lean = MethodSpec(
                    "factorise BiasedMF, block_copy=False", biasedmf_job, {**params, "block_copy": False},
                    f"`BiasedMF(rank={MODEL_RANK}, n_epochs={sizes.epochs}, n_threads={n}, block_copy=False)`: the "
                    "lean layout (4 bytes a rating, no copy of the ratings), the same model bit for bit",
                )  # fmt: skip
                if parallel:
                    rows.append(Row(lean.label, n, lean.settings, _isolated(lean, fold, row_timeout)))
                    in_place = MethodSpec(
                        "factorise BiasedMF, block_copy='in-place' (what factorise fit does)", biasedmf_job,
                        {**params, "block_copy": "in-place"},
                        f"`BiasedMF(rank={MODEL_RANK}, n_epochs={sizes.epochs}, n_threads={n}, block_copy='in-place')`: "
                        "the job's own ratings reordered into block order instead of copied, as the command line "
                        "does with the ratings it reads; the same model bit for bit",
                    )  # fmt: skip
                    rows.append(
                        Row(in_place.label, n, in_place.settings, _isolated(in_place, fold, row_timeout),
                            is_in_place=True)
                    )  # fmt: skip
            rows.append(
                Row(
                    native_label, n,
                    f"our driver `benchmarks/libmf_driver.cpp`: `mf_get_default_param()` (lambda_p2=lambda_q2=0.1, "
                    f"no L1, eta=0.1, nr_bins=26), k={MODEL_RANK}, nr_iters={sizes.epochs}, nr_threads={n}",
                    _native(binary, problem, ratings_dir, n, sizes.epochs, row_timeout), is_native=True,
                )
            )  # fmt: skip
            lib = libmf_params(fold, defaults, MODEL_RANK, sizes.epochs, n)
            spec = MethodSpec(
                "LibMF Python binding (no SIMD, no OpenMP)", libmf_job, lib,
                f"`libmf.mf.MF`: k={MODEL_RANK}, nr_iters={sizes.epochs}, nr_threads={n}, eta={lib['eta']:g}, "
                f"lambda_p2=lambda_q2={lib['lambda_p2']:.4g}, no L1, nr_bins={lib['nr_bins']} (mapped from BiasedMF's)",
                "libmf", "pip install -e '.[bench]', or pip install libmf",
            )  # fmt: skip
            rows.append(Row(spec.label, n, spec.settings, _isolated(spec, fold, row_timeout)))
            if parallel:
                als_iters = min(ALS_ITERATIONS, sizes.epochs)
                als = {"rank": MODEL_RANK, "n_epochs": als_iters, "patience": None, "random_state": SEED, "n_threads": n}
                spec = MethodSpec(
                    "factorise ALS", als_job, als,
                    f"`ALS(rank={MODEL_RANK}, n_epochs={als_iters}, patience=None, n_threads={n})`, other settings "
                    "default (its time per iteration is the point; it is not tuned for this data)",
                )  # fmt: skip
                rows.append(
                    Row(spec.label, n, spec.settings, _isolated(spec, fold, row_timeout), iterations=als_iters)
                )
        for _ in range(rounds):
            for row in rows:
                row.run_once()
                sys.stdout.flush()
    # the physical limit is measured after the fits, so that its bandwidth loop does not disturb them
    limit = core_limit(MODEL_RANK, n_users, n_items)

    print(
        f"Data: `synthetic_ratings({sizes.users}, {sizes.items}, {sizes.ratings}, rank={PLANTED_RANK}, "
        f"noise={NOISE}, test_fraction={TEST_FRACTION}, random_state={SEED})` (made in {made:.1f} s; the library's "
        f"defaults otherwise: mean 3.5, user and item biases, Netflix-like popularity): {n_train:,} training "
        f"ratings, {fold.test_ratings.shape[0]:,} held out at random. Training ratings' sd sigma = {sigma:.4f}. "
        f"The planted matrix itself scores RMSE {floor:.4f} on the held-out ratings (the noise floor). "
        f"Rank {MODEL_RANK}, {sizes.epochs} epochs; {rounds} rounds, the methods alternating within each."
    )
    if not parallel:
        print()
        print(
            "Parallel engine unavailable: this BiasedMF has no `n_threads` parameter yet, so factorise ran its "
            f"serial kernel only (1 thread); LibMF ran with {' and '.join(map(str, counts))} thread(s)."
        )
    print()
    native_seconds = {row.threads: row.median("seconds") for row in rows if row.is_native and row.samples}
    print(
        f"| method | threads | fit seconds, median of {rounds} (range) | time / mf_train's, same threads "
        "| held-out RMSE | ratings x epochs / s | peak RSS | fit increase |"
    )
    print("|---|---|---|---|---|---|---|---|")
    ok = True
    for row in rows:
        if row.error is not None:
            print(f"| {row.label} | {row.threads} | {row.error} | | | | | |")
            ok = ok and row.error.startswith("unavailable")
            continue
        seconds = row.median("seconds")
        times = [sample.seconds for sample in row.samples]
        ratio = f"{seconds / native_seconds[row.threads]:.2f}x" if row.threads in native_seconds else "n/a"
        if row.iterations is not None:
            ratio = f"n/a ({row.iterations} iterations)"
        passes = sizes.epochs if row.iterations is None else row.iterations
        print(
            f"| {row.label} | {row.threads} | {seconds:.2f} ({min(times):.2f}-{max(times):.2f}) | {ratio} | "
            f"{row.median('rmse'):.4f} | {n_train * passes / seconds / 1e6:.1f}M | "
            f"{_gib(row.peak('peak_rss_bytes'))} | {_gib(row.peak('fit_increase_bytes'))} |"
        )
    print()
    ours = {row.threads: row for row in rows if row.is_factorise and row.samples}
    natives = {row.threads: row for row in rows if row.is_native and row.samples}
    shared = [n for n in counts if n in ours and n in natives]
    if shared:
        ratios = {n: ours[n].median("seconds") / natives[n].median("seconds") for n in shared}
        faster = all(r <= 0.8 for r in ratios.values())
        no_worse = all(ours[n].median("rmse") <= natives[n].median("rmse") for n in shared)
        slower = [str(n) for n in shared if ratios[n] > 1]
        verdict = (
            f"factorise is slower than mf_train at {' and '.join(slower)} thread(s)"
            if slower
            else "factorise is not slower than mf_train at any thread count"
        )
        print(
            f"factorise BiasedMF.fit / {native_label}, median fit seconds: "
            + ", ".join(f"{n} thread{'s' if n > 1 else ''} {ratios[n]:.2f}x" for n in shared)
            + f"; {verdict}."
            + (
                " Issue 8's target 1 (<= 0.8x at every thread count, held-out RMSE no worse than mf_train's): "
                f"{'met' if faster and no_worse else 'not met'}."
                if sizes is FULL and build == "makefile"
                else ""
            )
        )
        in_place = {row.threads: row for row in rows if row.is_in_place and row.samples}
        both = [n for n in shared if n in in_place]
        if both:
            print(
                f"\nfactorise BiasedMF.fit with block_copy='in-place' (the command line's) / {native_label}: "
                + ", ".join(
                    f"{n} thread{'s' if n > 1 else ''} {in_place[n].median('seconds') / natives[n].median('seconds'):.2f}x"
                    for n in both
                )
                + "."
            )
        print()
    per_pass = [
        f"{row.label} {row.median('seconds') / (row.iterations or sizes.epochs):.3f} s on {row.threads}"
        for row in rows
        if row.samples
    ]
    if any(row.iterations is not None and row.samples for row in rows):
        print(
            "Time per epoch (SGD) or iteration (ALS), median fit seconds over epochs or iterations, set-up "
            "included: " + "; ".join(per_pass) + "."
        )
        print()
    reached = [
        (row.label, n_train * sizes.epochs / row.median("seconds"))
        for row in rows
        if row.threads == 1 and row.samples and (row.is_factorise or row.is_native)
    ]
    print(physical_limit_line(limit, reached))
    print()
    print("Settings:")
    for row in rows:
        print(f"- {row.label}, {row.threads} thread{'s' if row.threads > 1 else ''}: {row.settings}")
    print(
        f"- BiasedMF defaults used: learning_rate={defaults['learning_rate']}, "
        f"regularization={defaults['regularization']} (units of sigma), "
        f"learning_rate_decay={defaults['learning_rate_decay']}, bias_learning_rate={defaults['bias_learning_rate']}; "
        f"the binding gets eta = learning_rate and lambda = regularization * sigma (its lambdas are in rating "
        f"units); mf_train gets LibMF's own defaults."
    )
    print(
        "- Fit seconds: each fit in its own process. Python rows: one timed fit after an untimed warm-up on up to "
        "300,000 of the ratings (every kernel loaded); BiasedMF's fit includes its per-epoch training RMSE, the "
        "binding's its copy of the data. mf_train: the call alone (steady_clock in the driver; it includes LibMF's "
        "copy of the data, copy_data=true, as the binding's does). Held-out RMSE: predictions clipped to the "
        "training ratings' range for every row. Peak RSS: the process's VmHWM at the end of the fit (reset just "
        "before it), the largest over the rounds; the driver holds no interpreter or imports (the Python rows "
        "start at about 0.15 GiB). Fit increase: that minus the RSS before the fit."
    )
    retried = [f"{row.label} on {row.threads} ({row.retries}x)" for row in rows if row.retries]
    if retried:
        print(
            f"- Killed after --row-timeout ({row_timeout:g} s) and run once more: {'; '.join(retried)}. A fit that "
            "takes many times its usual seconds is a hang of that process, not a measurement."
        )
    print()
    sys.stdout.flush()
    return ok


# -------------------------------------------------------------- part 3: netflix
def run_netflix_part(sizes: Sizes, command: str, threads: int) -> bool:
    """Train BiasedMF on Netflix-shaped planted ratings in this process; print seconds per epoch and peak RSS."""
    from factorise.models.sgd import BiasedMF

    print(f"## 3. {sizes.netflix_ratings:,} ratings, {sizes.netflix_users:,} x {sizes.netflix_items:,} (`{command}`)")
    print()
    start = time.perf_counter()
    ratings = planted(sizes.netflix_users, sizes.netflix_items, sizes.netflix_ratings).train
    made = time.perf_counter() - start
    generation_peak = _status_bytes("VmHWM")
    parallel = _has_n_threads()
    params: dict[str, Any] = {"rank": MODEL_RANK, "n_epochs": sizes.netflix_epochs, "random_state": SEED}
    if parallel:
        params["n_threads"] = threads
    # warm-up: load the compiled kernels
    small = ratings.subset(np.arange(0, len(ratings), max(1, len(ratings) // 300_000)))
    BiasedMF(**{**params, "n_epochs": 1}).fit(small)
    del small

    stamps: list[float] = []
    rmse: list[float] = []

    def callback(step: int, record: dict[str, float]) -> None:
        stamps.append(time.perf_counter())
        rmse.append(record["train_rmse"])

    can_reset = _reset_peak_rss()
    before = _status_bytes("VmRSS")
    start = time.perf_counter()
    BiasedMF(**params).fit(ratings, callback=callback)
    total = time.perf_counter() - start
    peak = _status_bytes("VmHWM") if can_reset else None
    epochs = np.diff([start, *stamps])
    steady = statistics.median(epochs[1:]) if len(epochs) > 1 else math.nan
    setting = f"n_threads={threads}" if parallel else "serial kernel (no n_threads parameter yet)"
    print(
        f"Data: `synthetic_ratings({sizes.netflix_users}, {sizes.netflix_items}, {sizes.netflix_ratings}, "
        f"rank={PLANTED_RANK}, noise={NOISE}, random_state={SEED})`, all for training, made in {made:.0f} s "
        f"(process peak RSS while making them: {_gib(generation_peak)}). "
        f"Model: `BiasedMF(rank={MODEL_RANK}, n_epochs={sizes.netflix_epochs})`, {setting}."
    )
    print()
    print(
        "| ratings | fit seconds | first epoch (incl. setup) | seconds per later epoch | ratings / s (later epochs) "
        "| train RMSE per epoch | RSS before fit | peak RSS during fit |"
    )
    print("|---|---|---|---|---|---|---|---|")
    rate = f"{sizes.netflix_ratings / steady / 1e6:.1f}M" if math.isfinite(steady) else "n/a"
    print(
        f"| {sizes.netflix_ratings:,} | {total:.1f} | {epochs[0]:.1f} | {steady:.1f} | {rate} | "
        f"{', '.join(f'{x:.4f}' for x in rmse)} | {_gib(before)} | {_gib(peak)} |"
    )
    print()
    print("An epoch's seconds include its training-RMSE pass and the shuffle of the visiting order.")
    print()
    sys.stdout.flush()
    return True


# -------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="scale.py", description="Speed and scale on one machine (see the module docstring)."
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--only", choices=("kernel", "10m", "netflix"), help="run one part only")
    parser.add_argument("--netflix", action="store_true", help="also run the 100M-rating part (several GB)")
    parser.add_argument("--threads", type=int, default=2, help="threads for BiasedMF and LibMF (default 2)")
    parser.add_argument(
        "--libmf-build",
        choices=tuple(BUILDS),
        default="makefile",
        help="LibMF's mf_train for the driver: 'makefile' (its source from PyPI, LibMF's Makefile flags; the "
        "default) or 'binding' (the installed binding's library: no download, no SIMD, no OpenMP)",
    )
    parser.add_argument(
        "--libmf-cache",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"where LibMF's source distribution is downloaded once and reused (default {DEFAULT_CACHE})",
    )
    parser.add_argument("--rounds", type=int, help="rounds of the 10M part (default 3)")
    parser.add_argument(
        "--row-timeout",
        type=float,
        metavar="SECONDS",
        help="kill a 10M-part fit's process after this long and run it once more (default: no limit)",
    )
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be >= 1; got {args.threads}")
    if args.rounds is not None and args.rounds < 1:
        parser.error(f"--rounds must be >= 1; got {args.rounds}")
    if args.row_timeout is not None and not (math.isfinite(args.row_timeout) and args.row_timeout > 0):
        parser.error(f"--row-timeout must be a number of seconds > 0; got {args.row_timeout:g}")
    sizes = QUICK if args.quick else FULL
    parts = [args.only] if args.only else ["kernel", "10m", *(["netflix"] if args.netflix else [])]
    command = shlex.join(["python", "benchmarks/scale.py", *argv])
    _print_header(command)
    if not is_installed("libmf") and "10m" in parts:
        print("LibMF is not installed (pip install -e '.[bench]'): its row is reported as not run.")
        print()
    ok = True
    if "kernel" in parts:
        ok = run_kernel_part(sizes, command) and ok
    if "10m" in parts:
        rounds = sizes.rounds if args.rounds is None else args.rounds
        ok = run_10m_part(
            sizes, command, args.threads, build=args.libmf_build, cache=args.libmf_cache, rounds=rounds,
            row_timeout=args.row_timeout,
        ) and ok
    if "netflix" in parts:
        ok = run_netflix_part(sizes, command, args.threads) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
