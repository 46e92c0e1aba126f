"""ALS: the half-step kernel against its reference and the normal equations, and the model's contract."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import DATA_DIR, IN_CI

from factorise.data import Ratings
from factorise.kernels import als as als_kernel
from factorise.kernels import als_reference
from factorise.models._base import load_model
from factorise.models.als import ALS, balanced_bounds


# --------------------------------------------------------------------- helpers
def _csr(rng: np.random.Generator, n_rows: int, n_other: int, density: float) -> tuple[np.ndarray, ...]:
    """A random CSR pattern (rows may be empty) with float32 ratings."""
    mask = rng.random((n_rows, n_other)) < density
    rows, others = np.nonzero(mask)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    values = rng.uniform(1, 5, size=rows.shape[0]).astype(np.float32)
    return indptr, others.astype(np.int32), values


def _run(module, indptr, others, values, F, fb, lam, lam_b, alpha, n_chunks=1, mu=3.0):  # type: ignore[no-untyped-def]
    n_rows, k = indptr.shape[0] - 1, F.shape[1]
    P = np.full((n_rows, k), 7.0, dtype=np.float32)
    b = np.full(n_rows, 7.0, dtype=np.float32)
    loss = np.empty(n_rows)
    bounds = balanced_bounds(indptr, k, n_chunks)
    total = module.als_half_step(indptr, others, values, mu, F, fb, P, b, lam, lam_b, alpha, bounds, loss)
    return P, b, loss, total


def _planted(rng: np.random.Generator, m: int, n: int, k: int, sigma: float, density: float) -> tuple[Ratings, Ratings]:
    """Ratings = 3 + b_u + b_i + p_u.q_i + N(0, sigma^2) on a random mask, split 80/20."""
    P = rng.normal(size=(m, k))
    Q = rng.normal(size=(n, k))
    bu = rng.normal(scale=0.5, size=m)
    bi = rng.normal(scale=0.5, size=n)
    mask = rng.random((m, n)) < density
    u, i = np.nonzero(mask)
    values = 3.0 + bu[u] + bi[i] + np.einsum("ij,ij->i", P[u], Q[i]) + rng.normal(scale=sigma, size=u.shape[0])
    test = rng.random(u.shape[0]) < 0.2
    # every test user and item must also occur in training
    test &= np.isin(u, u[~test]) & np.isin(i, i[~test])
    train = Ratings.from_raw(u[~test], i[~test], values[~test])
    held = Ratings.from_raw(u[test], i[test], values[test])
    return train, held


def _rmse(model: ALS, ratings: Ratings) -> float:
    return float(np.sqrt(np.mean((model.predict_ratings(ratings) - ratings.values) ** 2)))


# ---------------------------------------------------------------------- kernel
@pytest.mark.parametrize("seed", range(40))
def test_half_step_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_rows, n_other = (int(x) for x in rng.integers(1, 12, size=2))
    k = int(rng.integers(1, 7))
    indptr, others, values = _csr(rng, n_rows, n_other, rng.uniform(0.1, 0.9))
    F = rng.normal(size=(n_other, k))
    fb = rng.normal(size=n_other)
    lam, lam_b = rng.uniform(0.01, 2.0), rng.uniform(0.01, 2.0)
    alpha = float(rng.choice([0.0, 0.5, 1.0]))
    fast = _run(als_kernel, indptr, others, values, F, fb, lam, lam_b, alpha, n_chunks=int(rng.integers(1, 5)))
    slow = _run(als_reference, indptr, others, values, F, fb, lam, lam_b, alpha)
    np.testing.assert_allclose(fast[0], slow[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast[1], slow[1], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast[2], slow[2], rtol=1e-8, atol=1e-9)
    assert math.isclose(fast[3], slow[3], rel_tol=1e-8, abs_tol=1e-9)
    empty = np.diff(indptr) == 0
    assert np.all(fast[0][empty] == 0) and np.all(fast[1][empty] == 0) and np.all(fast[2][empty] == 0)


def test_half_step_with_rows_longer_than_a_block() -> None:
    """Rows with more ratings than the kernel gathers at once (_BLOCK) still match the reference."""
    rng = np.random.default_rng(77)
    n_other = 3 * als_kernel._BLOCK + 17
    indptr, others, values = _csr(rng, 3, n_other, 0.9)
    assert np.diff(indptr).max() > 2 * als_kernel._BLOCK
    F = rng.normal(size=(n_other, 5))
    fb = rng.normal(size=n_other)
    fast = _run(als_kernel, indptr, others, values, F, fb, 0.5, 0.1, 0.5, n_chunks=2)
    slow = _run(als_reference, indptr, others, values, F, fb, 0.5, 0.1, 0.5)
    np.testing.assert_allclose(fast[0], slow[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fast[2], slow[2], rtol=1e-8)


@pytest.mark.parametrize("seed", range(10))
def test_half_step_solves_the_normal_equations(seed: int) -> None:
    """The gradient of each row's ridge objective vanishes at the kernel's solution."""
    rng = np.random.default_rng(100 + seed)
    n_rows, n_other, k = 8, 30, 4
    indptr, others, values = _csr(rng, n_rows, n_other, 0.5)
    F = rng.normal(size=(n_other, k))
    fb = rng.normal(size=n_other)
    mu, lam, lam_b, alpha = 3.0, 0.3, 0.1, 0.5
    P, b, loss, _ = _run(als_kernel, indptr, others, values, F, fb, lam, lam_b, alpha, n_chunks=3, mu=mu)
    for r in range(n_rows):
        j = others[indptr[r] : indptr[r + 1]]
        y = values[indptr[r] : indptr[r + 1]].astype(np.float64) - mu - fb[j]
        n = j.shape[0]
        w = np.r_[P[r], b[r]].astype(np.float64)
        X = np.hstack([F[j], np.ones((n, 1))])
        D = n**alpha * np.r_[np.full(k, lam), lam_b]
        residual = y - X @ w
        gradient = -2 * X.T @ residual + 2 * D * w
        scale = 2 * np.abs(X.T @ y).max() + 1.0
        assert np.abs(gradient).max() < 1e-5 * scale  # float32 storage of w limits this
        assert math.isclose(loss[r], residual @ residual + D @ w**2, rel_tol=1e-5)


def test_half_step_equals_exact_least_squares() -> None:
    """A tiny well-determined ridge problem, solved independently by lstsq on the stacked system."""
    rng = np.random.default_rng(7)
    k, n = 2, 6
    F = rng.normal(size=(n, k))
    fb = rng.normal(size=n)
    indptr = np.array([0, n], dtype=np.int64)
    others = np.arange(n, dtype=np.int32)
    values = rng.uniform(1, 5, size=n).astype(np.float32)
    mu, lam, lam_b = 3.0, 0.2, 0.05
    P, b, _, _ = _run(als_kernel, indptr, others, values, F, fb, lam, lam_b, 1.0, mu=mu)
    X = np.hstack([F, np.ones((n, 1))])
    y = values.astype(np.float64) - mu - fb
    stacked = np.vstack([X, np.diag(np.sqrt(n * np.r_[np.full(k, lam), lam_b]))])
    target = np.r_[y, np.zeros(k + 1)]
    w, *_ = np.linalg.lstsq(stacked, target, rcond=None)
    np.testing.assert_allclose(np.r_[P[0], b[0]], w, rtol=1e-5, atol=1e-6)


def test_singular_system_is_flagged() -> None:
    """Unregularised, a row with fewer ratings than unknowns has no unique solution."""
    indptr = np.array([0, 2, 6], dtype=np.int64)
    others = np.array([0, 1, 0, 1, 2, 3], dtype=np.int32)
    values = np.ones(6, dtype=np.float32)
    F = np.random.default_rng(0).normal(size=(4, 3))
    _P, _b, loss, total = _run(als_kernel, indptr, others, values, F, np.zeros(4), 0.0, 0.0, 1.0)
    assert np.isnan(loss[0]) and np.isfinite(loss[1]) and np.isnan(total)


def test_balanced_bounds_cover_all_rows() -> None:
    indptr = np.r_[0, np.cumsum(np.random.default_rng(3).integers(0, 50, size=97))].astype(np.int64)
    for chunks in (1, 2, 3, 8, 200):
        bounds = balanced_bounds(indptr, 5, chunks)
        assert bounds[0] == 0 and bounds[-1] == 97 and bounds.shape == (chunks + 1,)
        assert np.all(np.diff(bounds) >= 0)


# ----------------------------------------------------------------------- model
def test_recovers_planted_low_rank_ratings() -> None:
    sigma = 0.1
    train, held = _planted(np.random.default_rng(11), 300, 200, 3, sigma, 0.3)
    model = ALS(rank=3, n_epochs=20, regularization=0.01, bias_regularization=0.001, random_state=0, n_threads=1)
    model.fit(train)
    held_rmse = _rmse(model, held)
    assert 0.9 * sigma < held_rmse < 1.15 * sigma
    assert _rmse(model, train) < sigma  # fits below the noise on the data it saw


def test_exact_fit_of_a_fully_observed_low_rank_matrix() -> None:
    """Noise-free rank-2 + biases, all cells seen, tiny penalty: ALS reaches the exact fit."""
    rng = np.random.default_rng(5)
    m, n, k = 12, 9, 2
    Z = (
        3
        + rng.normal(size=(m, 1)) * 0.3
        + rng.normal(size=(1, n)) * 0.3
        + rng.normal(size=(m, k)) @ rng.normal(size=(k, n)) * 0.5
    )
    u, i = np.nonzero(np.ones((m, n)))
    model = ALS(rank=k, n_epochs=300, regularization=1e-9, bias_regularization=1e-9, random_state=1, n_threads=1)
    model.fit(Ratings.from_raw(u, i, Z[u, i]))
    assert model.history_[-1]["train_rmse"] < 1e-3


def test_objective_never_increases() -> None:
    train, _ = _planted(np.random.default_rng(2), 80, 60, 4, 0.5, 0.3)
    model = ALS(rank=6, n_epochs=15, regularization=0.05, random_state=3, n_threads=2).fit(train)
    objective = np.array([h["objective"] for h in model.history_])
    assert np.all(np.diff(objective) <= 1e-6 * objective[:-1])


@pytest.mark.filterwarnings("ignore::factorise.exceptions.ThreadsWarning")  # 3 threads on 2 cores, on purpose
def test_same_seed_same_result_and_independent_of_threads() -> None:
    train, _ = _planted(np.random.default_rng(4), 120, 90, 3, 0.3, 0.3)
    fits = [ALS(rank=5, n_epochs=4, random_state=9, n_threads=threads).fit(train) for threads in (1, 2, 2, 3)]
    for other in fits[1:]:
        np.testing.assert_array_equal(fits[0].user_factors_, other.user_factors_)
        np.testing.assert_array_equal(fits[0].item_factors_, other.item_factors_)
        np.testing.assert_array_equal(fits[0].user_bias_, other.user_bias_)
        np.testing.assert_array_equal(fits[0].item_bias_, other.item_bias_)
    different = ALS(rank=5, n_epochs=4, random_state=10, n_threads=1).fit(train)
    assert not np.array_equal(fits[0].item_factors_, different.item_factors_)


def test_fitted_state_types() -> None:
    train, _ = _planted(np.random.default_rng(6), 40, 30, 2, 0.3, 0.5)
    model = ALS(rank=3, n_epochs=2, random_state=0).fit(train)
    assert model.user_factors_.dtype == np.float32 and model.user_factors_.shape == (40, 3)
    assert model.item_factors_.dtype == np.float32 and model.item_factors_.shape == (30, 3)
    assert model.user_bias_.dtype == np.float32 and model.item_bias_.dtype == np.float32
    assert [h["epoch"] for h in model.history_] == [1, 2] and model.n_epochs_ == 2


def test_early_stopping_restores_the_best_epoch() -> None:
    """Pure noise and almost no penalty: validation RMSE rises once the factors fit the noise."""
    rng = np.random.default_rng(8)
    m, n = 60, 50
    u, i = np.nonzero(rng.random((m, n)) < 0.4)
    values = rng.normal(3, 1, size=u.shape[0])
    valid = rng.random(u.shape[0]) < 0.2
    valid &= np.isin(u, u[~valid]) & np.isin(i, i[~valid])
    train = Ratings.from_raw(u[~valid], i[~valid], values[~valid])
    held = Ratings.from_raw(u[valid], i[valid], values[valid])
    model = ALS(rank=8, n_epochs=40, regularization=1e-4, bias_regularization=1e-4, patience=1, random_state=0)
    model.fit(train, validation=held)
    curve = [h["valid_rmse"] for h in model.history_]
    assert model.n_epochs_ < 40
    assert math.isclose(_rmse(model, held), min(curve), rel_tol=1e-6)
    assert min(curve) < curve[-1]
    # patience=None: runs every epoch
    full = ALS(rank=8, n_epochs=5, regularization=1e-4, patience=None, random_state=0).fit(train, validation=held)
    assert full.n_epochs_ == 5


def test_save_load_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    train, held = _planted(np.random.default_rng(12), 50, 40, 2, 0.2, 0.5)
    model = ALS(rank=3, n_epochs=3, regularization=0.07, regularization_exponent=1.0, random_state=1, n_threads=1)
    model.fit(train)
    path = tmp_path / "als.npz"
    model.save(path)
    loaded = load_model(path)
    assert isinstance(loaded, ALS) and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict_ratings(held), model.predict_ratings(held))
    assert loaded.history_ == model.history_
    assert ALS.load(path).get_params()["regularization_exponent"] == 1.0


def test_params_are_stored_and_cloned() -> None:
    params = {
        "rank": 7,
        "n_epochs": 3,
        "regularization": 0.2,
        "bias_regularization": 0.3,
        "regularization_exponent": 0.25,
        "init_std": 0.05,
        "patience": None,
        "random_state": 4,
        "n_threads": 2,
        "device": "torch-cpu",
    }
    model = ALS(**params)
    assert model.get_params() == params
    assert model.clone().get_params() == params
    with pytest.raises(TypeError):
        ALS(7)  # type: ignore[misc]  # keyword-only


@pytest.mark.parametrize(
    ("params", "error", "words"),
    [
        ({"rank": 6}, ValueError, "rank"),  # min(n_users, n_items) = 5
        ({"rank": 0}, ValueError, "rank"),
        ({"rank": 2.5}, TypeError, "rank"),
        ({"regularization": -0.1}, ValueError, "regularization"),
        ({"regularization": float("nan")}, ValueError, "regularization"),
        ({"bias_regularization": "x"}, TypeError, "bias_regularization"),
        ({"regularization_exponent": -1}, ValueError, "regularization_exponent"),
        ({"init_std": 0}, ValueError, "init_std"),
        ({"n_threads": 0}, ValueError, "n_threads"),
        ({"n_threads": 1.5}, TypeError, "n_threads"),
        ({"n_threads": True}, TypeError, "n_threads"),
        ({"n_epochs": -1}, ValueError, "n_epochs"),
        ({"patience": -2}, ValueError, "patience"),
        ({"random_state": "seed"}, TypeError, "random_state"),
    ],
)
def test_bad_parameters_are_named(params: dict, error: type, words: str) -> None:
    rng = np.random.default_rng(0)
    u, i = np.nonzero(np.ones((6, 5)))
    train = Ratings.from_raw(u, i, rng.uniform(1, 5, size=u.shape[0]))
    with pytest.raises(error, match=words):
        ALS(**{"rank": 2, **params}).fit(train)


def test_unregularised_underdetermined_problem_is_explained() -> None:
    u = np.array([0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    i = np.array([0, 1, 0, 1, 2, 3, 0, 1, 2, 3])
    train = Ratings.from_raw(u, i, np.arange(10.0))
    with pytest.raises(ValueError, match="singular.*regularization"):
        ALS(rank=3, regularization=0, bias_regularization=0, random_state=0).fit(train)


def test_movielens_beats_the_bias_baseline() -> None:
    """On MovieLens 100K u1, the default ALS beats the best bias-only model by a clear margin."""
    path = DATA_DIR / "ml-100k"
    if not (path / "u1.base").is_file():
        if IN_CI:
            pytest.fail(f"MovieLens 100K is missing at {path}; CI must provide it")
        pytest.skip(f"MovieLens 100K not found at {path}")
    base = np.loadtxt(path / "u1.base", dtype=np.int64)
    test = np.loadtxt(path / "u1.test", dtype=np.int64)
    train = Ratings.from_raw(base[:, 0], base[:, 1], base[:, 2])
    held = Ratings.from_raw(test[:, 0], test[:, 1], test[:, 2])
    model = ALS(random_state=0).fit(train)
    baseline = ALS(rank=1, n_epochs=10, regularization=1e6, bias_regularization=0.05, random_state=0).fit(train)
    assert np.abs(baseline.user_factors_).max() < 1e-3  # the penalty switched the factors off
    assert _rmse(model, held) < _rmse(baseline, held) - 0.015
