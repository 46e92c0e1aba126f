"""LibMF's own mf_train driver (benchmarks/libmf_driver.cpp, benchmarks/libmf_native.py) and the physical limit.

The driver is built here against the shared library of the ``libmf`` binding
that the ``bench`` extra installs (``build="binding"``: no download). The
benchmark's own build, LibMF's source from PyPI compiled with LibMF's
Makefile flags, needs the network, so only its command and its cache are
tested. Without g++ or the binding these tests skip, except in CI
(``CI=true``), where they fail. No timing is asserted.
"""

from __future__ import annotations

import importlib.util
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from conftest import IN_CI, load_benchmark, require_module

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
BENCH_INSTALL = "pip install -e '.[bench]'"


def _load(name: str) -> ModuleType:
    return load_benchmark(name)


@pytest.fixture(scope="module")
def native() -> ModuleType:
    return _load("libmf_native")


@pytest.fixture(scope="module")
def core_limit() -> ModuleType:
    return _load("core_limit")


@pytest.fixture(scope="module")
def driver(native: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The driver linked against the binding's library, built once for the module."""
    if native.gxx_version() is None:
        message = "g++ is not on the PATH: benchmarks/libmf_driver.cpp cannot be built"
        if IN_CI:
            pytest.fail(f"{message}; CI must have g++")
        pytest.skip(message)
    require_module("libmf", BENCH_INSTALL)
    return native.build_libmf_driver(tmp_path_factory.mktemp("libmf_driver"), "binding")


def _planted_fold(seed: int = 0) -> tuple[object, float]:
    """Rank-3 ratings (no offset: LibMF has no biases) plus noise 0.5; 10% held out. ``(fold, noise floor)``."""
    competitors = _load("competitors")
    rng = np.random.default_rng(seed)
    n_users, n_items, n, noise = 1000, 500, 200_000, 0.5
    P, Q = rng.normal(size=(n_users, 3)), rng.normal(size=(n_items, 3))
    users, items = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    truth = (P[users] * Q[items]).sum(axis=1)
    values = truth + rng.normal(0.0, noise, n)
    cut = int(0.9 * n)
    fold = competitors.Fold(
        "planted", users[:cut], items[:cut], values[:cut], users[cut:], items[cut:], values[cut:]
    )
    floor = float(np.sqrt(np.mean((values[cut:] - truth[cut:]) ** 2)))
    return fold, floor


@pytest.mark.parametrize("threads", [1, 2])
def test_driver_learns_planted_ratings(native: ModuleType, driver: Path, tmp_path: Path, threads: int) -> None:
    """mf_train through the driver scores near the noise floor on held-out planted ratings."""
    fold, floor = _planted_fold()
    data = native.write_ratings(tmp_path / "ratings", fold)
    run = native.run_driver(driver, data, threads, k=16, iters=20)
    # no predictor beats the planted noise (up to sampling: 20,000 held-out ratings); LibMF's default
    # L2 penalty of 0.1 keeps it a few per cent above it
    assert 0.97 * floor < run.rmse < 1.15 * floor, (run.rmse, floor)
    assert run.rmse <= run.rmse_unclipped + 1e-9
    assert run.seconds > 0
    assert run.peak_rss_bytes > 0
    assert run.fit_increase_bytes is None or run.fit_increase_bytes >= 0
    assert run.params["k"] == 16 and run.params["nr_iters"] == 20 and run.params["nr_threads"] == threads
    # LibMF's own defaults (mf_get_default_param), not the binding's
    assert run.params["lambda_p2"] == pytest.approx(0.1) and run.params["lambda_q2"] == pytest.approx(0.1)
    assert run.params["lambda_p1"] == 0 and run.params["lambda_q1"] == 0
    assert run.params["eta"] == pytest.approx(0.1) and run.params["nr_bins"] == 26


def test_driver_defaults_to_rank_32_and_10_iterations(native: ModuleType, driver: Path, tmp_path: Path) -> None:
    fold, _ = _planted_fold(1)
    data = native.write_ratings(tmp_path / "ratings", fold)
    out = subprocess.run([str(driver), str(data), "1"], capture_output=True, text=True, check=True).stdout
    line = json.loads(out.strip().splitlines()[-1])
    assert (line["k"], line["nr_iters"], line["nr_threads"]) == (32, 10, 1)
    assert line["train_ratings"] == 180_000 and line["test_ratings"] == 20_000


def test_unknown_test_ids_get_the_training_mean(native: ModuleType, driver: Path, tmp_path: Path) -> None:
    """A held-out pair whose user or item has no training rating is predicted as the training mean."""
    competitors = _load("competitors")
    rng = np.random.default_rng(2)
    users, items = rng.integers(0, 50, 3000), rng.integers(0, 40, 3000)
    values = rng.uniform(1, 5, 3000)
    mean = float(np.mean(values.astype(np.float32)))
    # user 999 and item 777 are not in training; the true ratings are the mean + 0.5
    fold = competitors.Fold(
        "unknown", users, items, values, np.array([999, 3]), np.array([5, 777]), np.full(2, mean + 0.5)
    )
    run = native.run_driver(driver, native.write_ratings(tmp_path / "r", fold), 1, k=4, iters=3)
    assert run.rmse == pytest.approx(0.5, abs=1e-3)


def test_driver_rejects_bad_input(driver: Path, tmp_path: Path) -> None:
    usage = subprocess.run([str(driver)], capture_output=True, text=True, check=False)
    assert usage.returncode == 2 and "usage:" in usage.stderr
    threads = subprocess.run([str(driver), str(tmp_path), "0"], capture_output=True, text=True, check=False)
    assert threads.returncode == 2 and "NR_THREADS must be a positive integer; got '0'" in threads.stderr
    missing = subprocess.run([str(driver), str(tmp_path), "1"], capture_output=True, text=True, check=False)
    assert missing.returncode == 1 and "train_users.i32: cannot open" in missing.stderr
    for part in ("train", "test"):
        np.zeros(3, "<i4").tofile(tmp_path / f"{part}_users.i32")
        np.zeros(3, "<i4").tofile(tmp_path / f"{part}_items.i32")
        np.ones(3, "<f4").tofile(tmp_path / f"{part}_ratings.f32")
    np.zeros(2, "<i4").tofile(tmp_path / "train_items.i32")
    short = subprocess.run([str(driver), str(tmp_path), "1"], capture_output=True, text=True, check=False)
    assert short.returncode == 1 and "the train arrays differ in length (3 users, 2 items, 3 ratings)" in short.stderr
    np.zeros(3, "<i4").tofile(tmp_path / "train_items.i32")
    np.array([0, -1, 0], "<i4").tofile(tmp_path / "train_users.i32")
    negative = subprocess.run([str(driver), str(tmp_path), "1"], capture_output=True, text=True, check=False)
    assert negative.returncode == 1 and "training rating 1 has a negative id" in negative.stderr


def test_run_driver_reports_the_drivers_error(native: ModuleType, driver: Path, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="cannot open"):
        native.run_driver(driver, tmp_path / "nothing", 1)


# ------------------------------------------------------------- the Makefile build
def test_makefile_build_uses_libmf_makefile_flags(native: ModuleType, tmp_path: Path) -> None:
    command = native.driver_command("makefile", tmp_path / "exe", source=tmp_path)
    flags = [arg for arg in command if arg.startswith("-") and not arg.startswith(("-I", "-o"))]
    assert flags == ["-O3", "-pthread", "-std=c++0x", "-march=native", "-fopenmp", "-DUSESSE", "-DUSEOMP"]
    assert str(tmp_path / "mf.cpp") in command and str(native.DRIVER_SOURCE) in command
    assert f"-I{tmp_path}" in command
    with pytest.raises(ValueError, match="`build` must be one of makefile, binding; got 'fast'"):
        native.driver_command("fast", tmp_path / "exe")


def _no_pip(*args: object, **kwargs: object) -> None:
    raise AssertionError(f"pip must not run when the cache holds the source: {args}")


def test_source_in_the_cache_is_reused(native: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "src_cpp").mkdir()
    (tmp_path / "src_cpp" / "mf.cpp").write_text("// cached\n")
    (tmp_path / "src_cpp" / "mf.h").write_text("// cached\n")
    monkeypatch.setattr(native.subprocess, "run", _no_pip)
    assert native.fetch_libmf_source(tmp_path) == tmp_path / "src_cpp"


def test_a_downloaded_archive_is_unpacked(native: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / f"libmf-{native.LIBMF_VERSION}.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in (("src_cpp/mf.cpp", b"// mf.cpp\n"), ("src_cpp/mf.h", b"// mf.h\n"), ("setup.py", b"")):
            info = tarfile.TarInfo(f"libmf-{native.LIBMF_VERSION}/{name}")
            info.size = len(text)
            tar.addfile(info, io.BytesIO(text))
    monkeypatch.setattr(native.subprocess, "run", _no_pip)
    folder = native.fetch_libmf_source(tmp_path)
    assert (folder / "mf.cpp").read_text() == "// mf.cpp\n" and (folder / "mf.h").read_text() == "// mf.h\n"
    assert not (tmp_path / "setup.py").exists()


def test_a_failed_download_says_how_to_provide_the_source(
    native: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def pip_fails(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        assert command[1:4] == ["-m", "pip", "download"] and "--no-binary" in command and "libmf==0.9.2" in command
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found for libmf==0.9.2")

    monkeypatch.setattr(native.subprocess, "run", pip_fails)
    with pytest.raises(native.LibMFSourceUnavailable, match="No matching distribution.*put libmf-0.9.2.tar.gz"):
        native.fetch_libmf_source(tmp_path / "cache")


# ---------------------------------------------------------------- physical limit
def test_update_counts_at_rank_32(core_limit: ModuleType) -> None:
    """AVX-512: 2 vectors per row; 2 dot FMAs + 8 for the horizontal sum + 8 for the row updates."""
    assert core_limit.update_counts(32, 16) == (4, 18, 4)
    assert core_limit.update_counts(32, 8) == (8, 4 + 6 + 16, 8)
    assert core_limit.update_counts(10, 16) == (2, 1 + 8 + 4, 2)
    assert core_limit.vector_lanes({"avx512f", "avx2"}) == ("AVX-512", 16)
    assert core_limit.vector_lanes({"avx2"}) == ("AVX2", 8)
    assert core_limit.vector_lanes(set()) == ("SSE", 4)
    with pytest.raises(ValueError, match="`rank` and `lanes` must be >= 1; got 0 and 16"):
        core_limit.update_counts(0, 16)


def test_core_limit_picks_the_binding_bound(core_limit: ModuleType) -> None:
    def limit(clock: float | None, bandwidth: float) -> object:
        return core_limit.CoreLimit(32, "AVX-512", 16, 4, 18, 4, clock, 1 << 20, bandwidth)

    fast_memory = limit(2.6e9, 1e12)
    assert fast_memory.cycles == 9
    assert fast_memory.compute_bound == pytest.approx(2.6e9 / 9)
    assert fast_memory.bytes_per_update == 524
    assert fast_memory.binding == "compute" and fast_memory.limit == fast_memory.compute_bound
    slow_memory = limit(2.6e9, 10e9)
    assert slow_memory.binding == "memory" and slow_memory.limit == pytest.approx(10e9 / 524)
    no_clock = limit(None, 10e9)
    assert no_clock.binding == "memory" and "no clock" in no_clock.describe()
    assert "9 cycles per update at 2.60 GHz" in fast_memory.describe()


def test_core_limit_measures_this_machine(core_limit: ModuleType) -> None:
    measured = core_limit.core_limit(32, 1000, 100)
    assert measured.factor_bytes == 1100 * 32 * 4
    assert measured.bandwidth > 0 and measured.limit > 0
