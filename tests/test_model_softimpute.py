"""SoftImpute: the residual kernel, the exact SVD truths on fully observed matrices, and the model's contract."""

from __future__ import annotations

import math
import tracemalloc

import numpy as np
import pytest
from conftest import DATA_DIR, IN_CI

from factorise.data import Ratings
from factorise.kernels import softimpute as si_kernel
from factorise.kernels import softimpute_reference
from factorise.models._base import load_model
from factorise.models.baseline import Baseline
from factorise.models.softimpute import SoftImpute, fit_biases


# --------------------------------------------------------------------- helpers
def _full(X: np.ndarray) -> Ratings:
    u, i = np.nonzero(np.ones(X.shape, dtype=bool))
    return Ratings.from_raw(u, i, X[u, i])


def _centred(model: SoftImpute, X: np.ndarray) -> np.ndarray:
    bu = model.user_bias_.astype(np.float64)
    bi = model.item_bias_.astype(np.float64)
    return X - model.global_mean_ - bu[:, None] - bi[None, :]


def _Z(model: SoftImpute) -> np.ndarray:
    return model.user_factors_.astype(np.float64) @ model.item_factors_.astype(np.float64).T


def _planted(rng: np.random.Generator, m: int, n: int, k: int, sigma: float, density: float) -> tuple[Ratings, Ratings]:
    """Ratings = 3 + b_u + b_i + p_u.q_i + N(0, sigma^2) on a random mask, split 80/20."""
    P = rng.normal(size=(m, k))
    Q = rng.normal(size=(n, k))
    bu = rng.normal(scale=0.5, size=m)
    bi = rng.normal(scale=0.5, size=n)
    u, i = np.nonzero(rng.random((m, n)) < density)
    values = 3.0 + bu[u] + bi[i] + np.einsum("ij,ij->i", P[u], Q[i]) + rng.normal(scale=sigma, size=u.shape[0])
    test = rng.random(u.shape[0]) < 0.2
    test &= np.isin(u, u[~test]) & np.isin(i, i[~test])
    return Ratings.from_raw(u[~test], i[~test], values[~test]), Ratings.from_raw(u[test], i[test], values[test])


def _rmse(model: SoftImpute, ratings: Ratings) -> float:
    return float(np.sqrt(np.mean((model.predict_ratings(ratings) - ratings.values) ** 2)))


# ---------------------------------------------------------------------- kernel
@pytest.mark.parametrize("seed", range(30))
def test_residual_kernel_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m, n = (int(x) for x in rng.integers(1, 10, size=2))
    r = int(rng.integers(0, 5))
    rows, cols = np.nonzero(rng.random((m, n)) < rng.uniform(0.1, 1.0))
    values = rng.normal(size=rows.shape[0])
    A, B = rng.normal(size=(m, r)), rng.normal(size=(n, r))
    fast, slow = np.empty(rows.shape[0]), np.empty(rows.shape[0])
    total_fast = si_kernel.observed_residuals(rows.astype(np.int32), cols.astype(np.int32), values, A, B, fast)
    total_slow = softimpute_reference.observed_residuals(rows, cols, values, A, B, slow)
    np.testing.assert_allclose(fast, slow, rtol=1e-12, atol=1e-12)
    assert math.isclose(total_fast, total_slow, rel_tol=1e-12, abs_tol=1e-12)


def test_fit_biases_is_the_exact_ridge_solution() -> None:
    rng = np.random.default_rng(1)
    m, n = 15, 12
    u, i = np.nonzero(rng.random((m, n)) < 0.4)
    r = rng.uniform(1, 5, size=u.shape[0])
    mu, lam = float(r.mean()), 2.5
    bu, bi, _ = fit_biases(u, i, r, m, n, mu, lam)
    design = np.zeros((u.shape[0], m + n))
    design[np.arange(u.shape[0]), u] = 1.0
    design[np.arange(u.shape[0]), m + i] = 1.0
    exact = np.linalg.solve(design.T @ design + lam * np.eye(m + n), design.T @ (r - mu))
    np.testing.assert_allclose(np.r_[bu, bi], exact, atol=1e-8)


# ------------------------------------------------------ truths on full matrices
def test_unshrunk_fit_of_a_full_matrix_is_the_truncated_svd() -> None:
    """lambda = 0, every cell seen: Z is the best rank-k approximation (Eckart-Young)."""
    rng = np.random.default_rng(2)
    X = 3 + rng.normal(size=(20, 15))
    k = 3
    model = SoftImpute(rank=k, shrinkage=0.0, max_iter=3000, tol=1e-10, bias_regularization=1.0, random_state=0)
    model.fit(_full(X))
    assert model.n_epochs_ < 3000  # converged
    Xc = _centred(model, X)
    U, s, Vt = np.linalg.svd(Xc)
    best = (U[:, :k] * s[:k]) @ Vt[:k]
    np.testing.assert_allclose(_Z(model), best, atol=1e-5)
    np.testing.assert_allclose(model.singular_values_, s[:k], rtol=1e-6)
    residual = np.sum((Xc - _Z(model)) ** 2)
    assert math.isclose(residual, np.sum(s[k:] ** 2), rel_tol=1e-5)  # the Eckart-Young optimum
    # and the biases are the ridge solution given Z (the other half of the fixed point)
    u, i = np.nonzero(np.ones(X.shape, dtype=bool))
    target = (X - _Z(model))[u, i]
    bu, bi, _ = fit_biases(u, i, target, 20, 15, model.global_mean_, 1.0)
    np.testing.assert_allclose(model.user_bias_, bu, atol=1e-5)
    np.testing.assert_allclose(model.item_bias_, bi, atol=1e-5)


@pytest.mark.parametrize("shrinkage", [0.1, 0.3])
def test_shrinkage_lowers_singular_values_by_exactly_lambda(shrinkage: float) -> None:
    rng = np.random.default_rng(3)
    X = 3 + rng.normal(size=(18, 14))
    k = 4
    model = SoftImpute(rank=k, shrinkage=shrinkage, max_iter=3000, tol=1e-10, bias_regularization=0.0, random_state=1)
    model.fit(_full(X))
    lam = model.shrinkage_value_
    assert lam > 0
    U, s, Vt = np.linalg.svd(_centred(model, X))
    kept = np.maximum(s[:k] - lam, 0.0)
    np.testing.assert_allclose(model.singular_values_, kept, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(_Z(model), (U[:, :k] * kept) @ Vt[:k], atol=1e-5)
    assert model.history_[-1]["rank"] == int(np.count_nonzero(kept))


def test_lambda_max_is_the_top_singular_value_of_the_centred_data() -> None:
    rng = np.random.default_rng(4)
    X = rng.uniform(1, 5, size=(12, 10))
    model = SoftImpute(rank=2, shrinkage=0.5, max_iter=1, bias_regularization=3.0, random_state=0).fit(_full(X))
    u, i = np.nonzero(np.ones(X.shape, dtype=bool))
    bu, bi, _ = fit_biases(u, i, X[u, i], 12, 10, model.global_mean_, 3.0)
    top = np.linalg.norm(X - model.global_mean_ - bu[:, None] - bi[None, :], 2)
    assert math.isclose(model.shrinkage_value_, 0.5 * top, rel_tol=1e-4)


# ----------------------------------------------------------------------- model
def test_recovers_planted_low_rank_ratings() -> None:
    sigma = 0.1
    train, held = _planted(np.random.default_rng(11), 300, 200, 3, sigma, 0.3)
    model = SoftImpute(rank=3, shrinkage=0.01, max_iter=200, tol=1e-4, bias_regularization=1.0, random_state=0)
    model.fit(train)
    assert 0.9 * sigma < _rmse(model, held) < 1.2 * sigma
    assert model.history_[-1]["rank"] == 3


def test_nothing_dense_is_formed() -> None:
    """20,000 x 20,000 with 50,000 ratings: a dense float64 copy would take 3.2 GB."""
    rng = np.random.default_rng(6)
    n_ratings = 50_000
    u = rng.integers(0, 20_000, size=n_ratings)
    i = rng.integers(0, 20_000, size=n_ratings)
    u[:20_000] = np.arange(20_000)  # every user and item occurs
    i[:20_000] = rng.permutation(20_000)
    _, first = np.unique(u * 20_000 + i, return_index=True)  # each pair once
    u, i = u[first], i[first]
    n_ratings = u.shape[0]
    train = Ratings.from_raw(u, i, rng.integers(1, 6, size=n_ratings).astype(np.float32))
    assert train.n_users == 20_000 and train.n_items == 20_000
    tracemalloc.start()
    try:
        model = SoftImpute(rank=5, shrinkage=0.2, max_iter=3, random_state=0).fit(train)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert model.user_factors_.shape == (20_000, 5) and len(model.history_) == 3


def test_history_and_convergence() -> None:
    train, _ = _planted(np.random.default_rng(7), 60, 40, 2, 0.3, 0.5)
    model = SoftImpute(rank=4, shrinkage=0.2, max_iter=500, tol=1e-3, random_state=0).fit(train)
    assert model.n_epochs_ < 500
    changes = [h["rel_change"] for h in model.history_]
    assert changes[0] == 1.0 and changes[-1] < 1e-3 and all(c >= 1e-3 for c in changes[:-1])
    assert all(0 <= h["rank"] <= 4 for h in model.history_)
    assert model.user_factors_.dtype == np.float32 and model.item_bias_.dtype == np.float32
    assert np.all(np.diff(model.singular_values_) <= 0)


def test_same_seed_same_result() -> None:
    train, _ = _planted(np.random.default_rng(8), 50, 40, 2, 0.3, 0.5)
    a = SoftImpute(rank=3, max_iter=5, random_state=4).fit(train)
    b = SoftImpute(rank=3, max_iter=5, random_state=4).fit(train)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)
    np.testing.assert_array_equal(a.user_bias_, b.user_bias_)


def test_early_stopping_restores_the_best_iteration() -> None:
    """Pure noise, no shrinkage: validation RMSE rises once Z fits the noise."""
    rng = np.random.default_rng(9)
    u, i = np.nonzero(rng.random((60, 50)) < 0.4)
    values = rng.normal(3, 1, size=u.shape[0])
    valid = rng.random(u.shape[0]) < 0.2
    valid &= np.isin(u, u[~valid]) & np.isin(i, i[~valid])
    train = Ratings.from_raw(u[~valid], i[~valid], values[~valid])
    held = Ratings.from_raw(u[valid], i[valid], values[valid])
    model = SoftImpute(rank=20, shrinkage=0.0, max_iter=100, tol=0.0, patience=2, random_state=0)
    model.fit(train, validation=held)
    curve = [h["valid_rmse"] for h in model.history_]
    assert model.n_epochs_ < 100
    assert math.isclose(_rmse(model, held), min(curve), rel_tol=1e-6)
    assert min(curve) < curve[-1]


def test_save_load_round_trip(tmp_path) -> None:  # type: ignore[no-untyped-def]
    train, held = _planted(np.random.default_rng(10), 40, 30, 2, 0.2, 0.5)
    model = SoftImpute(rank=3, shrinkage=0.1, max_iter=10, random_state=1).fit(train)
    path = tmp_path / "softimpute.npz"
    model.save(path)
    loaded = load_model(path)
    assert isinstance(loaded, SoftImpute) and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict_ratings(held), model.predict_ratings(held))
    assert loaded.history_ == model.history_


def test_params_are_stored_and_cloned() -> None:
    params = {
        "rank": 7,
        "shrinkage": 0.3,
        "max_iter": 12,
        "tol": 1e-3,
        "bias_regularization": 2.0,
        "patience": None,
        "random_state": 3,
    }
    model = SoftImpute(**params)
    assert model.get_params() == params and model.clone().get_params() == params
    assert SoftImpute._steps_param == "max_iter"
    with pytest.raises(TypeError):
        SoftImpute(7)  # type: ignore[misc]  # keyword-only


@pytest.mark.parametrize(
    ("params", "error", "words"),
    [
        ({"rank": 6}, ValueError, "rank"),  # min(n_users, n_items) = 5
        ({"rank": 0}, ValueError, "rank"),
        ({"rank": "3"}, TypeError, "rank"),
        ({"shrinkage": 1.0}, ValueError, "shrinkage"),
        ({"shrinkage": -0.1}, ValueError, "shrinkage"),
        ({"shrinkage": None}, TypeError, "shrinkage"),
        ({"tol": -1e-3}, ValueError, "tol"),
        ({"tol": float("inf")}, ValueError, "tol"),
        ({"bias_regularization": -1}, ValueError, "bias_regularization"),
        ({"max_iter": -1}, ValueError, "max_iter"),
        ({"max_iter": 2.0}, TypeError, "max_iter"),
        ({"patience": 1.5}, TypeError, "patience"),
    ],
)
def test_bad_parameters_are_named(params: dict, error: type, words: str) -> None:
    rng = np.random.default_rng(0)
    u, i = np.nonzero(np.ones((6, 5)))
    train = Ratings.from_raw(u, i, rng.uniform(1, 5, size=u.shape[0]))
    with pytest.raises(error, match=words):
        SoftImpute(**{"rank": 2, **params}).fit(train)


def test_movielens_beats_the_bias_baseline() -> None:
    """On MovieLens 100K u1, default SoftImpute beats the ridge bias model by a clear margin."""
    path = DATA_DIR / "ml-100k"
    if not (path / "u1.base").is_file():
        if IN_CI:
            pytest.fail(f"MovieLens 100K is missing at {path}; CI must provide it")
        pytest.skip(f"MovieLens 100K not found at {path}")
    base = np.loadtxt(path / "u1.base", dtype=np.int64)
    test = np.loadtxt(path / "u1.test", dtype=np.int64)
    train = Ratings.from_raw(base[:, 0], base[:, 1], base[:, 2])
    held = Ratings.from_raw(test[:, 0], test[:, 1], test[:, 2])
    model = SoftImpute(random_state=0).fit(train)
    # biases only (Z = 0): the same ridge objective as SoftImpute's biases (lambda_b = 3), converged
    baseline = Baseline(regularization=3.0, n_epochs=200).fit(train)
    assert _rmse(model, held) < _rmse(baseline, held) - 0.015
