"""The MovieLens benchmark (benchmarks/movielens.py) and its competitor jobs (benchmarks/competitors.py).

The benchmark runs here on a small synthetic data directory in the MovieLens
layout, so these tests need no real data. Surprise and LibMF are optional
(the ``bench`` extra): without them the benchmark reports them as not run
and the tests that need them skip, except in CI, where they must be
installed.
"""

from __future__ import annotations

import importlib.util
import math
import subprocess
import sys
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
def competitors() -> ModuleType:
    return _load("competitors")


@pytest.fixture(scope="module")
def movielens() -> ModuleType:
    return _load_movielens()


def planted_ratings(seed: int = 0, n_users: int = 150, n_items: int = 140, per_user: int = 25) -> np.ndarray:
    """(user, item, rating) rows: mean + biases + rank-2 interaction + noise, rounded to 1..5.

    Raw ids start at 1, as in MovieLens. 150 users and 140 items leave room
    for factorise's default rank (128).
    """
    rng = np.random.default_rng(seed)
    user_bias = rng.normal(0, 0.4, n_users)
    item_bias = rng.normal(0, 0.4, n_items)
    p = rng.normal(0, 0.6, (n_users, 2))
    q = rng.normal(0, 0.6, (n_items, 2))
    rows = []
    for u in range(n_users):
        for i in rng.choice(n_items, per_user, replace=False):
            value = 3.6 + user_bias[u] + item_bias[i] + p[u] @ q[i] + rng.normal(0, 0.3)
            rows.append((u + 1, i + 1, min(5, max(1, round(value)))))
    return np.array(rows, dtype=np.int64)


def write_movielens_dir(directory: Path, seed: int = 0) -> np.ndarray:
    """u1.base / u1.test (80/20 at random) in MovieLens 100K's tab-separated layout; returns the test rows."""
    rows = planted_ratings(seed)
    rng = np.random.default_rng(seed + 1)
    test = rng.random(rows.shape[0]) < 0.2
    directory.mkdir(parents=True, exist_ok=True)
    for name, part in (("u1.base", rows[~test]), ("u1.test", rows[test])):
        with open(directory / name, "w") as handle:
            handle.writelines(f"{u}\t{i}\t{r}\t{880000000 + t}\n" for t, (u, i, r) in enumerate(part))
    return rows[test]


def movielens_default_class() -> str:
    """The class name of the benchmark's "factorise default" row."""
    return _load_movielens().FACTORISE_DEFAULT_MODEL[0]


def _load_movielens() -> ModuleType:
    _load("competitors")
    return _load("movielens")


def synthetic_fold(competitors: ModuleType, seed: int = 0) -> object:
    rows = planted_ratings(seed)
    test = np.random.default_rng(seed + 1).random(rows.shape[0]) < 0.2
    train, held = rows[~test], rows[test]
    return competitors.Fold(
        "synthetic",
        train[:, 0],
        train[:, 1],
        train[:, 2].astype(np.float64),
        held[:, 0],
        held[:, 1],
        held[:, 2].astype(np.float64),
    )


def rmse(predictions: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((predictions - truth) ** 2)))


def table_rows(stdout: str) -> dict[str, list[str]]:
    rows = {}
    for line in stdout.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 7 and cells[0] != "method":
            rows[cells[0]] = cells[1:]
    return rows


# ------------------------------------------------------------------- end to end
@pytest.mark.slow
def test_quick_run_prints_the_table_and_rewrites_the_readme(tmp_path: Path, competitors: ModuleType) -> None:
    data = tmp_path / "ml"
    write_movielens_dir(data)
    readme = tmp_path / "README.md"
    before, after = "# Title\n\nIntro.\n\n", "\n\n## Later section\n\nKept.\n"
    readme.write_text(f"{before}<!-- movielens-benchmark:start -->\nold table\n<!-- movielens-benchmark:end -->{after}")
    command = [sys.executable, str(BENCHMARKS / "movielens.py"), "--quick", "--data", str(data)]
    command += ["--readme", str(readme), "--libmf-build", "binding"]  # the driver without downloading LibMF
    command += ["--method-timeout", "150"]  # a method takes seconds here; a hung one is retried once
    if IN_CI:
        command.append("--require-competitors")
    result = subprocess.run(command, check=False, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout + result.stderr

    assert "| method | RMSE | MAE |" in result.stdout
    rows = table_rows(result.stdout)
    binding = competitors.LIBMF_BINDING_LABEL
    native = "LibMF mf_train, linked to the Python binding's library (no SIMD, no OpenMP)"
    expected = {"Surprise SVD": "surprise", binding: "libmf", native: "libmf"}
    for label, module in expected.items():
        assert label in rows, result.stdout
        installed = competitors.is_installed(module)
        if IN_CI:
            assert installed, f"{module} must be installed in CI ({BENCH_INSTALL})"
        assert (rows[label][0] != "–") == installed, (label, rows[label])
    default = [label for label in rows if label.startswith("factorise default")]
    assert len(default) == 1
    import factorise.models

    default_class = movielens_default_class()
    if IN_CI or hasattr(factorise.models, default_class):
        assert rows[default[0]][0] != "–", f"factorise's default model {default_class} did not run:\n{result.stdout}"
    for label, cells in rows.items():
        if cells[0] == "–":
            assert f"- {label}: not run (unavailable" in result.stdout
            continue
        error, absolute = float(cells[0]), float(cells[1])
        assert 0 < error < 4  # ratings 1..5
        assert absolute <= error + 1e-4  # mean |e| <= sqrt(mean e^2), printed to 4 decimals
        assert float(cells[2]) >= 0
        each = [float(value) for value in cells[5].split(" / ")]
        assert len(each) == 1 and abs(np.mean(each) - error) < 1e-4, cells  # --quick: u1 only
    if rows[native][0] != "–":
        assert rows[native][3] == "1.00"  # mf_train's time (the driver's own measurement) is the reference
        assert "| fit time / mf_train |" in result.stdout
        # the same LibMF code and settings through the driver and through the binding: near-equal accuracy
        assert abs(float(rows[native][0]) - float(rows[binding][0])) < 0.02, (rows[native], rows[binding])

    text = readme.read_text()
    assert text.startswith(before) and text.endswith(after)
    assert "old table" not in text
    between = text.split("<!-- movielens-benchmark:start -->")[1].split("<!-- movielens-benchmark:end -->")[0]
    assert "| method | RMSE | MAE |" in between
    assert not list(tmp_path.glob(".README.md.*"))  # no temporary file left behind


def test_a_readme_without_markers_is_an_error_and_left_alone(tmp_path: Path) -> None:
    data = tmp_path / "ml"
    write_movielens_dir(data)
    readme = tmp_path / "README.md"
    readme.write_text("# no markers here\n")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "movielens.py"), "--quick", "--data", str(data), "--readme", str(readme)],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "movielens-benchmark:start" in result.stderr and str(readme) in result.stderr
    assert readme.read_text() == "# no markers here\n"
    assert "| method |" not in result.stdout  # nothing was run


def test_a_missing_data_directory_is_named(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "movielens.py"), "--quick", "--data", str(tmp_path / "absent")],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert str(tmp_path / "absent" / "u1.base") in result.stderr


# ------------------------------------------------------------------------ units
def test_replace_between_markers(movielens: ModuleType) -> None:
    start, end = movielens.README_START, movielens.README_END
    text = f"a\n{start}\nold\n{end}\nb\n"
    assert movielens.replace_between_markers(text, "new\n") == f"a\n{start}\nnew\n{end}\nb\n"
    for bad in ("no markers", f"{end}\n{start}", f"{start}{start}{end}", f"{start} only"):
        with pytest.raises(ValueError, match="movielens-benchmark"):
            movielens.replace_between_markers(bad, "new")


def test_fold_metrics_are_exact(movielens: ModuleType, competitors: ModuleType) -> None:
    fold = competitors.Fold(
        "f", np.array([1]), np.array([1]), np.array([3.0]), np.array([1, 1]), np.array([1, 2]), np.array([1.0, 5.0])
    )
    run = competitors.MethodRun("m", predictions=[np.array([2.0, 2.0])], fit_seconds=[0.1])
    got_rmse, got_mae = movielens.fold_metrics(run, [fold])
    assert got_rmse == pytest.approx(math.sqrt((1 + 9) / 2))
    assert got_mae == pytest.approx((1 + 3) / 2)


class _AllocatingJob:
    """Allocates and touches ``n_bytes`` during fit and keeps them (a known peak)."""

    def __init__(self, n_bytes: int) -> None:
        self.n_bytes = n_bytes

    def fit(self) -> None:
        self.block = np.ones(self.n_bytes // 8)

    def predict(self) -> np.ndarray:
        return np.zeros(3)


def test_measure_sees_memory_allocated_during_the_fit(competitors: ModuleType) -> None:
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("the RSS high-water mark can be reset only on Linux")
    n_bytes = 64 * 2**20
    result = competitors.measure(_AllocatingJob(n_bytes))
    if result.fit_increase_bytes is None:
        pytest.skip("/proc/self/clear_refs is not writable here")
    assert result.fit_increase_bytes >= 0.95 * n_bytes
    assert result.peak_rss_bytes >= result.fit_increase_bytes
    assert result.fit_seconds >= 0
    np.testing.assert_array_equal(result.predictions, np.zeros(3))


def test_svd_tuning_never_reads_test_ratings(competitors: ModuleType) -> None:
    require_module("surprise", BENCH_INSTALL)
    fold = synthetic_fold(competitors)
    blind = competitors.Fold(
        fold.name, fold.train_users, fold.train_items, fold.train_ratings,
        fold.test_users, fold.test_items, np.full_like(fold.test_ratings, np.nan),
    )  # fmt: skip
    grid = {"n_factors": [2], "n_epochs": [5, 10], "lr_all": [0.01], "reg_all": [0.1]}
    best, scores = competitors.select_svd_params(fold, grid)
    best_blind, scores_blind = competitors.select_svd_params(blind, grid)
    assert best == best_blind and scores == scores_blind
    assert [s for _, s in scores] == sorted(s for _, s in scores)
    assert all(math.isfinite(s) for _, s in scores)


def _mean_predictor_rmse(fold: object) -> float:
    return rmse(np.full_like(fold.test_ratings, fold.train_ratings.mean()), fold.test_ratings)


def test_libmf_predictions_follow_the_planted_ratings(competitors: ModuleType) -> None:
    """A C-ordered prediction array (the binding's trap) gives much worse than the mean; this must not."""
    require_module("libmf", BENCH_INSTALL)
    fold = synthetic_fold(competitors)
    job = competitors.libmf_job(fold, competitors.LIBMF_PARAMS)
    job.fit()
    predictions = job.predict()
    assert predictions.shape == fold.test_ratings.shape
    assert predictions.min() >= 1 and predictions.max() <= 5
    assert rmse(predictions, fold.test_ratings) < 0.8 * _mean_predictor_rmse(fold)


def test_libmf_predicts_the_training_mean_for_unknown_ids(competitors: ModuleType) -> None:
    require_module("libmf", BENCH_INSTALL)
    fold = synthetic_fold(competitors)
    unknown = competitors.Fold(
        fold.name, fold.train_users, fold.train_items, fold.train_ratings,
        np.array([10_000, fold.train_users[0]]), np.array([fold.train_items[0], 10_000]), np.array([3.0, 3.0]),
    )  # fmt: skip
    job = competitors.libmf_job(unknown, competitors.LIBMF_PARAMS)
    job.fit()
    np.testing.assert_allclose(job.predict(), fold.train_ratings.mean(), rtol=1e-6)


def test_surprise_svd_predictions_follow_the_planted_ratings(competitors: ModuleType) -> None:
    require_module("surprise", BENCH_INSTALL)
    fold = synthetic_fold(competitors)
    job = competitors.surprise_svd_job(fold, {"random_state": 0})
    job.fit()
    predictions = job.predict()
    assert predictions.shape == fold.test_ratings.shape
    assert predictions.min() >= 1 and predictions.max() <= 5
    assert rmse(predictions, fold.test_ratings) < 0.9 * _mean_predictor_rmse(fold)


def test_stated_surprise_defaults_are_the_installed_ones(competitors: ModuleType) -> None:
    """The table states Surprise's defaults; they must be what SVD() and SVDpp() really use."""
    surprise = require_module("surprise", BENCH_INSTALL)
    cases = (
        (surprise.SVD(), competitors.SURPRISE_SVD_DEFAULTS),
        (surprise.SVDpp(), competitors.SURPRISE_SVDPP_DEFAULTS),
    )
    for algo, stated in cases:
        assert algo.n_factors == stated["n_factors"]
        assert algo.n_epochs == stated["n_epochs"]
        assert algo.lr_bu == algo.lr_pu == algo.lr_qi == stated["lr_all"]
        assert algo.reg_bu == algo.reg_pu == algo.reg_qi == stated["reg_all"]


def test_every_libmf_option_is_set_explicitly(competitors: ModuleType) -> None:
    """No LibMF setting is left to the binding's defaults (which differ from the LibMF tool's)."""
    require_module("libmf", BENCH_INSTALL)
    mf = competitors._import_libmf()
    assert set(competitors.LIBMF_PARAMS) == {option[0] for option in mf.get_default_options()}
    assert competitors.LIBMF_PARAMS["lambda_p1"] == competitors.LIBMF_PARAMS["lambda_q1"] == 0
    assert competitors.LIBMF_PARAMS["lambda_p2"] == competitors.LIBMF_PARAMS["lambda_q2"] == 0.1


# ----------------------------------------------------------- the child process
class _StuckJob:
    """A job whose fit sleeps (``params["sleep"]`` seconds) or kills its own process (``params["die"]``)."""

    def __init__(self, fold: object, params: dict[str, float]) -> None:
        self.fold, self.params = fold, params

    def fit(self) -> None:
        import os
        import time

        if self.params.get("die"):
            os._exit(3)
        time.sleep(self.params.get("sleep", 0.0))

    def predict(self) -> np.ndarray:
        return np.zeros(self.fold.test_ratings.shape[0])  # type: ignore[attr-defined]


def stuck_job(fold: object, params: dict[str, float]) -> _StuckJob:
    return _StuckJob(fold, params)


def _tiny_fold(competitors: ModuleType) -> object:
    ids = np.arange(6)
    return competitors.Fold("t", ids, ids, np.ones(6), ids[:2], ids[:2], np.ones(2))


def test_a_child_past_its_timeout_is_killed_and_reported(competitors: ModuleType) -> None:
    import time

    spec = competitors.MethodSpec("stuck", stuck_job, {"sleep": 60.0}, "sleeps")
    start = time.perf_counter()
    run = competitors.run_isolated(spec, [_tiny_fold(competitors)], warmup=False, timeout=5)
    assert time.perf_counter() - start < 40  # killed, not waited for
    assert run.error is not None and run.error.startswith("timed out after 5 s"), run.error


def test_a_child_that_dies_is_reported(competitors: ModuleType) -> None:
    spec = competitors.MethodSpec("dies", stuck_job, {"die": 1.0}, "exits")
    run = competitors.run_isolated(spec, [_tiny_fold(competitors)], warmup=False, timeout=60)
    assert run.error == "failed: the child process died"


def test_a_child_within_its_timeout_is_measured(competitors: ModuleType) -> None:
    spec = competitors.MethodSpec("quick", stuck_job, {"sleep": 0.0}, "returns")
    run = competitors.run_isolated(spec, [_tiny_fold(competitors)], warmup=False, timeout=60)
    assert run.error is None and len(run.fit_seconds) == 1 and run.predictions[0].shape == (2,)


def test_method_timeout_must_be_positive() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "movielens.py"), "--method-timeout", "0"],
        check=False, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "--method-timeout" in result.stderr and "'0'" in result.stderr


def test_myfm_implicit_rows_hold_the_users_training_items(competitors: ModuleType) -> None:
    """The implicit design: each row's third group is its user's training items at 1/sqrt(count), whatever the
    row (training or test); a test user unknown to training gets none."""
    fold = competitors.Fold(
        "t", np.array([5, 5, 5, 9]), np.array([1, 2, 3, 2]), np.array([4.0, 3.0, 5.0, 1.0]),
        np.array([5, 9, 77]), np.array([4, 1, 2]), np.array([3.0, 3.0, 3.0]),
    )  # fmt: skip
    plain = competitors.MyFMJob(fold, competitors.MYFM_PARAMS)
    job = competitors.MyFMJob(fold, competitors.MYFM_IMPLICIT_PARAMS)
    assert plain.X.shape == (4, 2 + 3) and job.X.shape == (4, 2 + 3 + 3)
    np.testing.assert_array_equal(job.X[:, :5].toarray(), plain.X.toarray())
    implicit = job.X[:, 5:].toarray()
    np.testing.assert_allclose(implicit[:3], np.full((3, 3), 1 / np.sqrt(3)))  # user 5 rated items 1, 2 and 3
    np.testing.assert_allclose(implicit[3], [0, 1, 0])  # user 9 rated item 2
    test = job.X_test[:, 5:].toarray()
    np.testing.assert_allclose(test[0], np.full(3, 1 / np.sqrt(3)))  # item 4 is not in training; the user is
    np.testing.assert_allclose(test[1], [0, 1, 0])
    np.testing.assert_array_equal(test[2], 0)
    np.testing.assert_array_equal(job.X_test[2, :5].toarray(), [[0, 0, 0, 1, 0]])  # the unknown user: its item only
