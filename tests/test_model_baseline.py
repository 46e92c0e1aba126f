"""The bias-only Baseline: exact block steps, the joint optimum, planted biases, rank 0."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from factorise.data import Ratings
from factorise.models import load_model
from factorise.models.baseline import Baseline, bias_step


def random_ratings(seed: int, n_users: int = 7, n_items: int = 6, density: float = 0.6) -> Ratings:
    """Small random ratings in which every user and every item has at least one rating."""
    rng = np.random.default_rng(seed)
    observed = rng.random((n_users, n_items)) < density
    observed[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    observed[rng.integers(0, n_users, n_items), np.arange(n_items)] = True
    u, i = np.nonzero(observed)
    values = rng.integers(1, 6, size=u.shape[0])
    return Ratings.from_raw(u + 100, i + 500, values)


def objective(r: Ratings, mu: float, bu: np.ndarray, bi: np.ndarray, lam_u: float, lam_i: float) -> float:
    e = r.values.astype(np.float64) - mu - bu[r.users] - bi[r.items]
    return float(e @ e + lam_u * bu @ bu + lam_i * bi @ bi)


def joint_optimum(r: Ratings, lam_u: float, lam_i: float) -> tuple[np.ndarray, np.ndarray]:
    """Minimiser of the regularised squared error over all biases, by the normal equations."""
    nu, ni = r.n_users, r.n_items
    X = np.zeros((len(r), nu + ni))
    X[np.arange(len(r)), r.users] = 1.0
    X[np.arange(len(r)), nu + r.items] = 1.0
    y = r.values.astype(np.float64) - np.mean(r.values, dtype=np.float64)
    penalty = np.diag(np.r_[np.full(nu, lam_u), np.full(ni, lam_i)])
    b = np.linalg.solve(X.T @ X + penalty, X.T @ y)
    return b[:nu], b[nu:]


@pytest.mark.parametrize("seed", range(10))
def test_one_step_is_the_closed_form_of_each_block(seed: int) -> None:
    r = random_ratings(seed)
    lam_u, lam_i = 1.5, 4.0
    model = Baseline(n_epochs=1, user_regularization=lam_u, item_regularization=lam_i).fit(r)
    mu = float(np.mean(r.values, dtype=np.float64))
    # item step from b_u = 0, written out per item
    bi = np.zeros(r.n_items)
    for i in range(r.n_items):
        rated = r.items == i
        bi[i] = np.sum(r.values[rated] - mu) / (lam_i + rated.sum())
    bu = np.zeros(r.n_users)
    for u in range(r.n_users):
        rated = r.users == u
        bu[u] = np.sum(r.values[rated] - mu - bi[r.items[rated]]) / (lam_u + rated.sum())
    np.testing.assert_allclose(model.item_bias_, bi, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.user_bias_, bu, rtol=1e-5, atol=1e-6)
    assert model.global_mean_ == pytest.approx(mu)


@pytest.mark.parametrize("seed", range(10))
def test_item_step_is_exact_for_fixed_user_biases(seed: int) -> None:
    r = random_ratings(seed)
    rng = np.random.default_rng(seed)
    mu, lam = float(np.mean(r.values)), float(rng.uniform(0, 5))
    bu = rng.normal(size=r.n_users)
    bi = bias_step(r.users, r.items, r.values, mu, bu, r.n_items, lam)
    # the gradient of the objective in every b_i vanishes ...
    residual = r.values - mu - bu[r.users] - bi[r.items]
    gradient = -2 * np.bincount(r.items, weights=residual, minlength=r.n_items) + 2 * lam * bi
    np.testing.assert_allclose(gradient, 0.0, atol=1e-9)
    # ... and moving any one of them raises it
    base = objective(r, mu, bu, bi, 0.0, lam)
    for i in range(r.n_items):
        for delta in (-1e-3, 1e-3):
            moved = bi.copy()
            moved[i] += delta
            assert objective(r, mu, bu, moved, 0.0, lam) > base


@pytest.mark.parametrize("seed", range(6))
def test_converges_to_the_joint_optimum_monotonically(seed: int) -> None:
    r = random_ratings(seed, n_users=8, n_items=7)
    lam_u, lam_i = 2.0, 3.0
    model = Baseline(n_epochs=300, user_regularization=lam_u, item_regularization=lam_i).fit(r)
    bu, bi = joint_optimum(r, lam_u, lam_i)
    np.testing.assert_allclose(model.user_bias_, bu, atol=2e-5)
    np.testing.assert_allclose(model.item_bias_, bi, atol=2e-5)
    objectives = [h["objective"] for h in model.history_]
    # every half-step is an exact block minimisation: the objective never rises
    assert all(b <= a * (1 + 1e-6) for a, b in zip(objectives, objectives[1:]))
    best = objective(r, model.global_mean_, bu, bi, lam_u, lam_i) / len(r)
    assert objectives[-1] == pytest.approx(best, rel=1e-5)


def test_regularization_applies_to_both_unless_overridden() -> None:
    r = random_ratings(3)
    shared = Baseline(n_epochs=200, regularization=2.5).fit(r)
    split = Baseline(n_epochs=200, regularization=9.0, user_regularization=2.5, item_regularization=2.5)
    split.fit(r)
    np.testing.assert_allclose(shared.user_bias_, split.user_bias_, atol=1e-6)
    np.testing.assert_allclose(shared.item_bias_, split.item_bias_, atol=1e-6)
    bu, bi = joint_optimum(r, 2.5, 2.5)
    np.testing.assert_allclose(shared.item_bias_, bi, atol=2e-5)


def planted(seed: int, n_users: int = 80, n_items: int = 60, density: float = 0.5, noise: float = 0.1):
    """Ratings = 3 + b_u + b_i + N(0, noise^2) on a random half of the cells."""
    rng = np.random.default_rng(seed)
    bu = rng.normal(scale=0.6, size=n_users)
    bi = rng.normal(scale=0.8, size=n_items)
    observed = rng.random((n_users, n_items)) < density
    u, i = np.nonzero(observed)
    mean = 3.0 + bu[u] + bi[i]
    values = mean + rng.normal(scale=noise, size=u.shape[0])
    return Ratings.from_raw(u, i, values), mean


def test_recovers_planted_biases() -> None:
    noise = 0.1
    ratings, mean = planted(0, noise=noise)
    rng = np.random.default_rng(1)
    is_test = rng.random(len(ratings)) < 0.2
    train, test = ratings.subset(~is_test), ratings.subset(is_test)
    model = Baseline(n_epochs=200, regularization=0.1).fit(train)
    # train RMSE is about the noise (slightly below: the biases absorb a little of it)
    assert 0.8 * noise < model.history_[-1]["train_rmse"] < 1.1 * noise
    # held-out predictions match the planted means to well within the noise:
    # each bias is estimated from ~20-30 ratings, error ~ noise / sqrt(20)
    predicted = model.predict(test.raw_users, test.raw_items)
    err_mean = np.sqrt(np.mean((predicted - mean[is_test]) ** 2))
    assert err_mean < 0.5 * noise
    test_rmse = np.sqrt(np.mean((predicted - test.values) ** 2))
    assert test_rmse < 1.2 * noise
    # the global mean alone is far worse: the biases carry spread ~ sqrt(0.6^2 + 0.8^2) = 1
    mean_only = np.sqrt(np.mean((model.global_mean_ - test.values) ** 2))
    assert mean_only > 5 * test_rmse


def test_rank_zero_predict_recommend_save_load(tmp_path: Path) -> None:
    ratings, _ = planted(2, n_users=20, n_items=15)
    model = Baseline(n_epochs=30).fit(ratings)
    assert model.user_factors_.shape == (ratings.n_users, 0)
    assert model.item_factors_.shape == (ratings.n_items, 0)
    users = ratings.raw_users[:50]
    items = ratings.raw_items[:50]
    u = model.user_ids_.index(users)
    i = model.item_ids_.index(items)
    expected = np.clip(model.global_mean_ + model.user_bias_[u] + model.item_bias_[i], *model.rating_range_)
    np.testing.assert_allclose(model.predict(users, items), expected, rtol=1e-6)
    # recommend ranks the unrated items by item bias alone
    user = ratings.raw_users[0]
    rated = set(ratings.raw_items[ratings.raw_users == user].tolist())
    unrated = [j for j in model.item_ids_.ids.tolist() if j not in rated]
    by_bias = sorted(unrated, key=lambda j: -model.item_bias_[model.item_ids_.index([j])[0]])
    rec = model.recommend(user, n=5)
    assert rec.items.tolist() == by_bias[:5]
    path = tmp_path / "baseline.npz"
    model.save(path)
    loaded = load_model(path)
    assert isinstance(loaded, Baseline) and loaded.get_params() == model.get_params()
    assert loaded.user_factors_.shape == (ratings.n_users, 0)
    np.testing.assert_array_equal(loaded.predict(users, items), model.predict(users, items))
    assert loaded.recommend(user, n=5).items.tolist() == rec.items.tolist()


def test_unknown_ids_fall_back_to_known_biases() -> None:
    r = random_ratings(4)
    model = Baseline(n_epochs=10).fit(r)
    item = r.raw_items[0]
    bi = model.item_bias_[model.item_ids_.index([item])[0]]
    assert model.predict([-1], [item])[0] == pytest.approx(np.clip(model.global_mean_ + bi, 1, 5))
    assert model.predict([-1], [-1])[0] == pytest.approx(model.global_mean_)


def test_zero_epochs_are_refused_before_any_work() -> None:
    """One rule for every model: at least one step (a fit of none has no history)."""
    model = Baseline(n_epochs=0)
    with pytest.raises(ValueError, match=r"`n_epochs` must be an integer >= 1; got 0"):
        model.validate_params()
    with pytest.raises(ValueError, match=r"`n_epochs` must be an integer >= 1; got 0"):
        model.fit(random_ratings(5))
    assert not hasattr(model, "user_bias_")


def test_deterministic_whatever_the_seed() -> None:
    r = random_ratings(6)
    a = Baseline(n_epochs=5, random_state=0).fit(r)
    b = Baseline(n_epochs=5, random_state=123).fit(r)
    np.testing.assert_array_equal(a.user_bias_, b.user_bias_)
    np.testing.assert_array_equal(a.item_bias_, b.item_bias_)


def test_validation_history_and_early_stopping() -> None:
    ratings, _ = planted(7, n_users=30, n_items=20)
    rng = np.random.default_rng(0)
    is_valid = rng.random(len(ratings)) < 0.2
    model = Baseline(n_epochs=50, patience=0, regularization=1.0).fit(
        ratings.subset(~is_valid), validation=ratings.subset(is_valid)
    )
    valid = [h["valid_rmse"] for h in model.history_]
    assert all(math.isfinite(v) for v in valid)
    assert model.n_epochs_ <= 50
    if model.n_epochs_ < 50:  # stopped: the last step did not improve on the one before
        assert valid[-1] >= valid[-2] - 1e-7


def test_params_clone_repr() -> None:
    model = Baseline(n_epochs=7, regularization=2.0, item_regularization=3.0, patience=2, random_state=1)
    params = model.get_params()
    assert params == {
        "n_epochs": 7,
        "regularization": 2.0,
        "user_regularization": None,
        "item_regularization": 3.0,
        "patience": 2,
        "random_state": 1,
    }
    clone = model.clone()
    assert clone is not model and clone.get_params() == params
    assert "item_regularization=3.0" in repr(model)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"regularization": -1.0}, ValueError, r"`regularization` must be a finite real number >= 0; got -1"),
        ({"regularization": math.nan}, ValueError, r"`regularization` must be .*; got nan"),
        ({"regularization": "big"}, TypeError, r"`regularization` .*'big'"),
        ({"user_regularization": -2}, ValueError, r"`user_regularization` .*; got -2"),
        ({"item_regularization": math.inf}, ValueError, r"`item_regularization` .*; got inf"),
        ({"n_epochs": -1}, ValueError, r"`n_epochs` must be an integer >= 1; got -1"),
        ({"n_epochs": 2.5}, TypeError, r"`n_epochs` must be an integer"),
        ({"patience": -1}, ValueError, r"`patience` must be an integer >= 0; got -1"),
    ],
)
def test_bad_params(kwargs: dict, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        Baseline(**kwargs).fit(random_ratings(0))
