"""The scale benchmark (benchmarks/scale.py) and its C reference loop (benchmarks/kernel_vs_c.py).

The C loop is compiled with gcc. Without gcc these tests skip, except in CI
(``CI=true``), where they fail: CI machines have gcc.
"""

from __future__ import annotations

import importlib.util
import math
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from conftest import IN_CI, load_benchmark

from factorise.kernels import sgd_ratings_reference

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _require_gcc() -> None:
    if shutil.which("gcc") is None:
        message = "gcc is not on the PATH: the C reference loop of benchmarks/sgd_loop.c cannot be built"
        if IN_CI:
            pytest.fail(f"{message}; CI must have gcc")
        pytest.skip(message)


def _load(name: str) -> ModuleType:
    return load_benchmark(name)


@pytest.fixture(scope="module")
def kernel_vs_c() -> ModuleType:
    return _load("kernel_vs_c")


@pytest.fixture(scope="module")
def c_loops(kernel_vs_c: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Callable[..., float]]:
    """Both builds of the C loop, compiled once for the module."""
    _require_gcc()
    directory = tmp_path_factory.mktemp("sgd_loop")
    return {
        label: kernel_vs_c.load_c_loop(kernel_vs_c.compile_c_loop(directory, flags, name=f"loop{n}"))
        for n, (label, flags) in enumerate(kernel_vs_c.C_VARIANTS.items())
    }


def _random_problem(kernel_vs_c: ModuleType, seed: int, rank: int) -> object:
    """A small problem: few users and items, so the sweep revisits them often."""
    rng = np.random.default_rng(seed)
    n_users, n_items, n = int(rng.integers(2, 30)), int(rng.integers(2, 30)), int(rng.integers(1, 400))
    users = rng.integers(0, n_users, n)
    items = rng.integers(0, n_items, n)
    values = rng.normal(3.0, 1.2, n)
    return kernel_vs_c.kernel_problem(users, items, values, n_users, n_items, rank, random_state=seed)


@pytest.mark.parametrize("seed", range(12))
def test_c_loop_follows_the_documented_update(
    kernel_vs_c: ModuleType, c_loops: dict[str, Callable[..., float]], seed: int
) -> None:
    """Each C build matches the slow, obvious reference of the kernel on small random problems."""
    rank = [1, 3, 10, 32][seed % 4]
    problem = _random_problem(kernel_vs_c, seed, rank)
    _, sse_ref, reference = problem.run(sgd_ratings_reference.sgd_ratings_epoch)
    for label, loop in c_loops.items():
        _, sse, model = problem.run(loop)
        assert sse == pytest.approx(sse_ref, rel=1e-4), label
        for got, want in zip(model, reference):
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6, err_msg=label)


def test_c_loop_rejects_wrong_arrays(kernel_vs_c: ModuleType, c_loops: dict[str, Callable[..., float]]) -> None:
    problem = _random_problem(kernel_vs_c, 0, 4)
    loop = next(iter(c_loops.values()))
    bu, bi, P, Q = problem.fresh_model()
    with pytest.raises(TypeError, match="`P` must be a C-contiguous float32 array; got float64"):
        loop(problem.users, problem.items, problem.values, problem.order, problem.mu, bu, bi,
             P.astype(np.float64), Q, *problem.rates)  # fmt: skip
    with pytest.raises(TypeError, match="`order` must be a C-contiguous int64 array"):
        loop(problem.users, problem.items, problem.values, problem.order[::-1], problem.mu, bu, bi,
             P, Q, *problem.rates)  # fmt: skip


def test_agreement_check_sees_a_different_update(
    kernel_vs_c: ModuleType, c_loops: dict[str, Callable[..., float]]
) -> None:
    """The same loop agrees with the kernel; one whose learning rate is 2% off does not."""
    rng = np.random.default_rng(1)
    n_users, n_items, n = 300, 100, 20_000
    users, items = rng.integers(0, n_users, n), rng.integers(0, n_items, n)
    values = rng.normal(3.5, 1.0, n)
    problem = kernel_vs_c.kernel_problem(users, items, values, n_users, n_items, 8)
    loop = c_loops["C -O3"]

    def lr_off(*args: object) -> float:
        args = list(args)
        args[9] = np.float32(args[9] * 1.02)  # lr
        return loop(*args)

    def bias_lr_off(*args: object) -> float:
        args = list(args)
        args[11] = np.float32(args[11] * 1.02)  # lr_bias
        return loop(*args)

    same = kernel_vs_c.compare_kernels(problem, {"C": loop}, repeats=1)
    assert same.agrees
    assert same.relative_diff("C") < kernel_vs_c.AGREEMENT_TOLERANCE
    for changed in (lr_off, bias_lr_off):
        result = kernel_vs_c.compare_kernels(problem, {"changed": changed}, repeats=1)
        assert not result.agrees, changed.__name__


@pytest.mark.slow
def test_scale_benchmark_quick_runs() -> None:
    """``scale.py --quick`` exits 0, the kernel and C agree, and the models learn the planted ratings.

    LibMF's ``mf_train`` runs through the driver linked to the binding's
    library (``--libmf-build binding``): the default build downloads LibMF's
    source, and tests do not touch the network.
    """
    _require_gcc()
    if shutil.which("g++") is None:
        if IN_CI:
            pytest.fail("g++ is not on the PATH; CI must have g++")
        pytest.skip("g++ is not on the PATH: benchmarks/libmf_driver.cpp cannot be built")
    # one round, and a fit's process killed and run again past 300 s (a quick fit takes a few seconds): the
    # smoke test checks that every row runs and learns, not the medians
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "scale.py"), "--quick", "--libmf-build", "binding", "--rounds", "1",
         "--row-timeout", "300"],  # fmt: skip
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "agreement check: passed" in out
    kernel_rows = [line for line in out.splitlines() if re.match(r"\| (10|32) \|", line)]
    assert len(kernel_rows) == 2, out
    floor = float(re.search(r"scores RMSE ([0-9]+\.[0-9]+) on the held-out ratings", out).group(1))
    sigma = float(re.search(r"sigma = ([0-9]+\.[0-9]+)", out).group(1))
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| factorise BiasedMF |")]
    native = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| LibMF mf_train, linked")]
    binding = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| LibMF Python binding")]
    # method, threads, seconds (range), ratio, RMSE, rate, peak RSS, fit increase; 1 and 2 threads each
    assert [int(row[1]) for row in rows] == [1, 2], out
    assert len(native) == 2 and len(binding) == 2, out
    # no predictor beats the planted noise (up to sampling: 12,000 held-out ratings), and a
    # fitted model beats predicting the mean (RMSE about sigma); BiasedMF by a margin
    for row in rows:
        assert 0.95 * floor < float(row[4]) < 0.9 * sigma, row
        seconds = float(row[2].split()[0])
        assert math.isfinite(seconds) and seconds >= 0
    for row in native + binding:
        if importlib.util.find_spec("libmf") is not None:
            assert 0.95 * floor < float(row[4]) < sigma, row
        elif IN_CI:
            pytest.fail("libmf is not installed; CI must install the bench extra")
        else:
            assert "unavailable" in row[2], row
    # the lean layout: the same model, so the same held-out RMSE to the digit
    lean = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| factorise BiasedMF, block_copy=False |")]
    assert [row[4] for row in lean] == [row[4] for row in rows], out
    in_place = [line.split("|")[1:-1] for line in out.splitlines()
                if line.startswith("| factorise BiasedMF, block_copy='in-place' (what factorise fit does) |")]  # fmt: skip
    assert [row[4] for row in in_place] == [row[4] for row in rows], out
    if importlib.util.find_spec("libmf") is not None:
        assert re.search(r"factorise BiasedMF.fit with block_copy='in-place' \(the command line's\) / .*: 1 thread "
                         r"[0-9.]+x, 2 threads [0-9.]+x\.", out), out  # fmt: skip
    # ALS: a row per thread count, its time per iteration beside the SGD epochs
    als = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| factorise ALS |")]
    assert [int(row[1]) for row in als] == [1, 2], out
    for row in als:
        assert "iterations" in row[3] and 0.95 * floor < float(row[4]) < sigma, row
    per_pass = re.search(r"Time per epoch \(SGD\) or iteration \(ALS\).*", out)
    assert per_pass and re.search(r"factorise ALS [0-9.]+ s on 1; ", per_pass.group(0)), out
    # LibMF's own mf_train is the reference of the ratio column
    if importlib.util.find_spec("libmf") is not None:
        assert [row[3].strip() for row in native] == ["1.00x", "1.00x"], native
        assert "factorise BiasedMF.fit / LibMF mf_train, linked to the Python binding's library" in out
    # the physical-limit line, once beside the kernel and once beside the 10M fits
    limits = [line for line in out.splitlines() if line.startswith("Physical limit of one core")]
    assert len(limits) == 2, out
    assert all(re.search(r"the (compute|memory) bound binds: [0-9]+M updates/s", line) for line in limits)
    assert re.search(r"factorise BiasedMF [0-9.]+M updates/s = [0-9]+% of it", limits[1]), limits[1]


def test_a_row_killed_by_its_time_out_runs_once_more() -> None:
    """``--row-timeout``: a fit killed once is measured again; killed twice, the row reports the failure."""
    scale = _load("scale")
    sample = scale.Sample(1.0, 0.9, None, None)

    def flaky(failures: int) -> Callable[[], object]:
        calls = {"n": 0}

        def measure() -> object:
            calls["n"] += 1
            if calls["n"] <= failures:
                raise scale.RowTimedOut("timed out after 5 s (the child process was killed)")
            return sample

        return measure

    once = scale.Row("m", 1, "", flaky(1))
    once.run_once()
    assert once.samples == [sample] and once.retries == 1 and once.error is None
    twice = scale.Row("m", 1, "", flaky(2))
    twice.run_once()
    assert twice.samples == [] and twice.retries == 1
    assert twice.error is not None and "timed out" in twice.error


def test_scale_refuses_a_non_positive_row_timeout() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "scale.py"), "--quick", "--row-timeout", "0"],
        check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "--row-timeout must be a number of seconds > 0; got 0" in result.stderr
