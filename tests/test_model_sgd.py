"""BiasedMF: the SGD kernel against its reference, planted low-rank data, the fit loop's contracts."""

from __future__ import annotations

import doctest
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA_DIR, IN_CI

from factorise.data import Ratings
from factorise.exceptions import DivergenceError
from factorise.kernels import sgd_ratings, sgd_ratings_reference
from factorise.models import TrainData, load_model
from factorise.models import sgd as sgd_module
from factorise.models.sgd import BiasedMF

# ------------------------------------------------------------------ helpers


def planted(
    seed: int, n_users: int = 300, n_items: int = 200, rank: int = 3, density: float = 0.3, noise: float = 0.3
) -> tuple[Ratings, Ratings, float]:
    """Known biases + rank-``rank`` factors + Gaussian noise on a random mask; 80/20 split."""
    rng = np.random.default_rng(seed)
    P = rng.normal(0.0, rank**-0.25, (n_users, rank))
    Q = rng.normal(0.0, rank**-0.25, (n_items, rank))
    bu, bi = rng.normal(0.0, 0.3, n_users), rng.normal(0.0, 0.3, n_items)
    users, items = np.nonzero(rng.random((n_users, n_items)) < density)
    values = 3.0 + bu[users] + bi[items] + np.einsum("ij,ij->i", P[users], Q[items])
    values += rng.normal(0.0, noise, values.shape[0])
    test = rng.random(values.shape[0]) < 0.2
    train = Ratings.from_raw(users[~test], items[~test], values[~test])
    held = Ratings.from_raw(users[test], items[test], values[test])
    return train, held, noise


def small_ratings(seed: int = 0, n_users: int = 30, n_items: int = 20, density: float = 0.5) -> Ratings:
    """Random 1..5 ratings in which every user and item has at least one rating."""
    rng = np.random.default_rng(seed)
    observed = rng.random((n_users, n_items)) < density
    observed[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    observed[rng.integers(0, n_users, n_items), np.arange(n_items)] = True
    u, i = np.nonzero(observed)
    return Ratings.from_raw(u + 1, i + 101, rng.integers(1, 6, size=u.shape[0]))


def rmse(model: BiasedMF, ratings: Ratings) -> float:
    return float(np.sqrt(np.mean((model.predict_ratings(ratings) - ratings.values) ** 2)))


# ------------------------------------------------------------------- kernel


def test_kernel_one_rating_by_hand() -> None:
    """One rating, k = 1, exactly representable numbers: the update is simultaneous."""
    f = np.float32
    P, Q = np.array([[0.5]], f), np.array([[2.0]], f)
    bu, bi = np.zeros(1, f), np.zeros(1, f)
    users, items, values = np.zeros(1, np.int32), np.zeros(1, np.int32), np.array([5.0], f)
    sse = sgd_ratings.sgd_ratings_epoch(
        users, items, values, np.zeros(1, np.int64), f(3.0), bu, bi, P, Q, f(0.5), f(0.5), f(0.25), f(0.0)
    )
    # pred = 3 + 0.5 * 2 = 4, e = 1
    assert sse == 1.0
    assert bu[0] == 0.25 and bi[0] == 0.25  # lr_bias * e
    assert P[0, 0] == 0.5 + 0.5 * (1 * 2.0 - 0.5 * 0.5)  # 1.375
    assert Q[0, 0] == 2.0 + 0.5 * (1 * 0.5 - 0.5 * 2.0)  # 1.75: uses the old P


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(30))
def test_kernel_matches_reference(dtype: type, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_users, n_items = (int(x) for x in rng.integers(1, 9, size=2))
    k = int(rng.integers(1, 6))
    n = int(rng.integers(1, 40))
    users = rng.integers(0, n_users, n).astype(np.int32)
    items = rng.integers(0, n_items, n).astype(np.int32)
    values = rng.uniform(1, 5, n).astype(dtype)
    # an order may repeat or skip ratings: the kernel visits exactly what it is given
    order = rng.integers(0, n, int(rng.integers(1, 2 * n + 1)))
    bu, bi = rng.normal(0, 0.1, n_users).astype(dtype), rng.normal(0, 0.1, n_items).astype(dtype)
    P, Q = rng.normal(0, 0.3, (n_users, k)).astype(dtype), rng.normal(0, 0.3, (n_items, k)).astype(dtype)
    mu, lr, reg, lr_bias, reg_bias = (dtype(x) for x in (values.mean(), 0.05, 0.1, 0.03, 0.02))
    fast = [a.copy() for a in (bu, bi, P, Q)]
    slow = [a.copy() for a in (bu, bi, P, Q)]
    tol = 2e-5 if dtype == np.float32 else 1e-12
    for _ in range(3):
        sse_fast = sgd_ratings.sgd_ratings_epoch(users, items, values, order, mu, *fast, lr, reg, lr_bias, reg_bias)
        sse_slow = sgd_ratings_reference.sgd_ratings_epoch(
            users, items, values, order, mu, *slow, lr, reg, lr_bias, reg_bias
        )
        np.testing.assert_allclose(sse_fast, sse_slow, rtol=10 * tol)
    for a, b in zip(fast, slow):
        assert a.dtype == dtype
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_kernel_visits_only_the_given_order() -> None:
    """Ratings left out of ``order`` have no influence (they may even be NaN)."""
    f = np.float32
    users = np.array([0, 1, 0], np.int32)
    items = np.array([0, 0, 1], np.int32)
    values = np.array([4.0, np.nan, 2.0], f)
    P, Q = np.full((2, 2), 0.1, f), np.full((2, 2), 0.2, f)
    bu, bi = np.zeros(2, f), np.zeros(2, f)
    sse = sgd_ratings.sgd_ratings_epoch(
        users, items, values, np.array([2, 0]), f(3.0), bu, bi, P, Q, f(0.1), f(0.1), f(0.1), f(0.1)
    )
    assert math.isfinite(sse)
    assert np.isfinite(P).all() and np.isfinite(Q).all()
    assert bu[1] == 0 and (P[1] == f(0.1)).all()  # user 1 only has the skipped rating


# ---------------------------------------------------------------- quality


@pytest.mark.parametrize("seed", [0, 1])
def test_planted_low_rank_reaches_the_noise_floor(seed: int) -> None:
    train, held, noise = planted(seed)
    model = BiasedMF(rank=3, n_epochs=100, learning_rate_decay=0.97, regularization=0.02, random_state=seed).fit(train)
    error = rmse(model, held)
    # held-out error cannot beat the noise much, and a good fit is close to it
    assert 0.9 * noise < error < 1.15 * noise, error


def test_defaults_beat_the_biases_on_planted_data() -> None:
    """The factors explain what the biases cannot: the defaults beat a rank-0 fit by far."""
    train, held, noise = planted(3, rank=2, noise=0.5)
    model = BiasedMF(random_state=0).fit(train)
    biases_only = (
        held.values
        - model.global_mean_
        - model.user_bias_[model.user_ids_.index(held.raw_users)]
        - model.item_bias_[model.item_ids_.index(held.raw_items)]
    )
    assert rmse(model, held) < 1.3 * noise
    assert rmse(model, held) < 0.75 * float(np.sqrt(np.mean(biases_only**2)))


def test_scaling_the_ratings_scales_the_predictions() -> None:
    """SGD runs on standardised ratings: ratings * c (+ shift) give predictions * c (+ shift)."""
    train, held, _ = planted(4, n_users=80, n_items=60, density=0.4)
    base = BiasedMF(rank=8, n_epochs=10, random_state=0).fit(train)
    scaled = Ratings.from_raw(train.raw_users, train.raw_items, train.values.astype(np.float64) * 4 - 7)
    model = BiasedMF(rank=8, n_epochs=10, random_state=0).fit(scaled)
    expected = base.predict(held.raw_users, held.raw_items) * 4 - 7
    np.testing.assert_allclose(model.predict(held.raw_users, held.raw_items), expected, rtol=0, atol=2e-3)


# ---------------------------------------------------------- fit contracts


def test_same_seed_same_factors_and_another_seed_differs() -> None:
    train = small_ratings(1)
    a = BiasedMF(rank=4, n_epochs=5, random_state=7).fit(train)
    b = BiasedMF(rank=4, n_epochs=5, random_state=7).fit(train)
    c = BiasedMF(rank=4, n_epochs=5, random_state=8).fit(train)
    for name in ("user_bias_", "item_bias_", "user_factors_", "item_factors_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert getattr(a, name).dtype == np.float32
    assert not np.array_equal(a.user_factors_, c.user_factors_)
    assert a.history_ == b.history_


def test_history_and_schedule() -> None:
    train, held, _ = planted(5, n_users=200, n_items=150)  # the default rank needs >= 128 of each
    model = BiasedMF(n_epochs=12, random_state=0).fit(train, validation=held)
    assert model.n_epochs_ == 12 and len(model.history_) == 12
    assert [h["epoch"] for h in model.history_] == list(range(1, 13))
    for t, h in enumerate(model.history_, start=1):
        assert set(h) == {"epoch", "train_rmse", "valid_rmse", "sgd_rmse", "learning_rate"}
        assert h["learning_rate"] == pytest.approx(0.075 * 0.88 ** (t - 1), rel=1e-12)
    train_rmse = np.array([h["train_rmse"] for h in model.history_])
    assert train_rmse[-1] < 0.8 * train_rmse[0]
    assert (np.diff(train_rmse) < 0.01 * train_rmse[:-1]).all()  # monotone up to SGD noise
    # the recorded figure is the RMSE of the final model
    assert train_rmse[-1] == pytest.approx(rmse(model, train), rel=1e-5)


def test_model_forwards_every_parameter_to_the_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each epoch: a fresh permutation, the decayed rates, the standardised scale; no copies."""
    calls: list[tuple] = []
    real = sgd_module.sgd_ratings_epoch

    def spy(users, items, values, order, mu, bu, bi, P, Q, lr, reg, lr_bias, reg_bias):  # type: ignore[no-untyped-def]
        calls.append((users, items, values, order.copy(), mu, lr, reg, lr_bias, reg_bias))
        return real(users, items, values, order, mu, bu, bi, P, Q, lr, reg, lr_bias, reg_bias)

    monkeypatch.setattr(sgd_module, "sgd_ratings_epoch", spy)
    train = small_ratings(2)
    params = {
        "rank": 3,
        "n_epochs": 4,
        "learning_rate": 0.02,
        "regularization": 0.3,
        "bias_learning_rate": 0.01,
        "bias_regularization": 0.2,
        "learning_rate_decay": 0.5,
        "init_std": 0.05,
    }
    model = BiasedMF(random_state=0, **params).fit(train)
    assert model.get_params() == {
        **params, "patience": None, "random_state": 0, "n_threads": None, "n_blocks": None, "block_copy": True,
        "dtype": "float32", "device": None,
    }
    sigma = float(np.std(train.values.astype(np.float64)))
    assert len(calls) == 4
    for t, (users, items, values, order, mu, lr, reg, lr_bias, reg_bias) in enumerate(calls, start=1):
        assert all(a.dtype == np.float32 for a in (values, mu, lr, reg, lr_bias, reg_bias))
        assert values is calls[0][2] and users is calls[0][0] and items is calls[0][1]
        assert sorted(order) == list(range(len(train)))
        assert float(mu) == pytest.approx(float(np.mean(train.values)), rel=1e-6)
        decay = 0.5 ** (t - 1)
        assert float(lr) == pytest.approx(0.02 * decay / sigma, rel=1e-6)
        assert float(reg) == pytest.approx(0.3 * sigma, rel=1e-6)
        assert float(lr_bias) == pytest.approx(0.01 * decay, rel=1e-6)
        assert float(reg_bias) == pytest.approx(0.2, rel=1e-6)
    assert not np.array_equal(calls[0][3], calls[1][3])  # a fresh order every epoch


def test_initial_factors_have_the_requested_spread() -> None:
    train = small_ratings(3, n_users=400, n_items=300, density=0.05)
    model = BiasedMF(rank=16, init_std=0.2).validate_params()
    data = TrainData(
        users=train.users.astype(np.int32),
        items=train.items.astype(np.int32),
        values=train.values.astype(np.float32),
        n_users=train.n_users,
        n_items=train.n_items,
        global_mean=float(np.mean(train.values, dtype=np.float64)),
    )
    model._initialize(data, np.random.default_rng(0))  # the state before the first epoch
    sigma = float(np.std(train.values.astype(np.float64)))
    assert (model.user_bias_ == 0).all() and (model.item_bias_ == 0).all()
    for factors in (model.user_factors_, model.item_factors_):
        assert abs(float(np.std(factors)) / (0.2 * math.sqrt(sigma)) - 1) < 0.05
        assert abs(float(np.mean(factors))) < 0.02


def test_early_stopping_restores_the_best_epoch() -> None:
    # no regularisation and a constant rate on little data: validation error turns up
    train, held, _ = planted(6, n_users=60, n_items=50, rank=2, density=0.3, noise=0.8)
    model = BiasedMF(
        rank=20,
        n_epochs=200,
        learning_rate=0.05,
        learning_rate_decay=1.0,
        regularization=0.0,
        init_std=0.1,
        patience=3,
        random_state=0,
    ).fit(train, validation=held)
    valid = [h["valid_rmse"] for h in model.history_]
    best = int(np.argmin(valid))
    assert model.n_epochs_ < 200, "never stopped"
    assert len(valid) == best + 1 + 4  # patience 3: stopped at the 4th epoch without improvement
    assert min(valid[best + 1 :]) >= valid[best] - 1e-7
    # the model in hand is the best epoch's, not the last one's
    assert rmse(model, held) == pytest.approx(valid[best], rel=1e-5)
    assert rmse(model, held) < valid[-1] - 1e-4


def test_validation_without_patience_only_records() -> None:
    train, held, _ = planted(7, n_users=60, n_items=50)
    model = BiasedMF(rank=8, n_epochs=8, random_state=0).fit(train, validation=held)
    assert model.n_epochs_ == 8
    assert rmse(model, held) == pytest.approx(model.history_[-1]["valid_rmse"], rel=1e-5)


# ------------------------------------------------------------ prediction


def test_unknown_users_and_items_fall_back_to_biases() -> None:
    train = small_ratings(4)
    model = BiasedMF(rank=3, n_epochs=5, random_state=0).fit(train)
    mu = model.global_mean_
    user, item = train.raw_users[0], train.raw_items[0]
    u = int(model.user_ids_.index([user])[0])
    i = int(model.item_ids_.index([item])[0])
    low, high = model.rating_range_
    got = model.predict([user, -5, user, -5], [item, item, -9, -9])
    full = mu + model.user_bias_[u] + model.item_bias_[i] + float(model.user_factors_[u] @ model.item_factors_[i])
    expected = [full, mu + model.item_bias_[i], mu + model.user_bias_[u], mu]
    np.testing.assert_allclose(got, np.clip(expected, low, high), rtol=1e-6)


def test_predictions_are_clipped_to_the_training_range() -> None:
    rng = np.random.default_rng(0)
    u, i = np.nonzero(rng.random((40, 30)) < 0.6)
    # users 0..9 rate everything 5, the others 1..5: raw predictions overshoot 5
    values = np.where(u < 10, 5, rng.integers(1, 6, u.shape[0]))
    train = Ratings.from_raw(u, i, values)
    model = BiasedMF(rank=5, n_epochs=30, learning_rate_decay=1.0, regularization=0.0, random_state=0).fit(train)
    uu, ii = np.meshgrid(np.arange(40), np.arange(30), indexing="ij")
    raw = (
        model.global_mean_
        + model.user_bias_[uu.ravel()]
        + model.item_bias_[ii.ravel()]
        + np.einsum("ij,ij->i", model.user_factors_[uu.ravel()], model.item_factors_[ii.ravel()])
    )
    assert raw.max() > 5.0  # the clipping has something to do
    got = model.predict(uu.ravel(), ii.ravel())
    assert got.min() >= 1.0 and got.max() <= 5.0
    np.testing.assert_allclose(got, np.clip(raw, 1.0, 5.0), rtol=1e-6)


def test_save_load_round_trip(tmp_path: Path) -> None:
    train, held, _ = planted(8, n_users=50, n_items=40)
    model = BiasedMF(rank=4, n_epochs=6, random_state=0).fit(train, validation=held)
    path = tmp_path / "model.npz"
    model.save(path)
    loaded = load_model(path)
    assert isinstance(loaded, BiasedMF)
    assert loaded.get_params() == model.get_params()
    assert loaded.history_ == model.history_ and loaded.n_epochs_ == model.n_epochs_
    users = np.r_[held.raw_users, -1]
    items = np.r_[held.raw_items, 10_000]
    np.testing.assert_array_equal(loaded.predict(users, items), model.predict(users, items))
    assert BiasedMF.load(path).recommend(train.raw_users[0], 5) is not None


def test_recommend_excludes_rated_items() -> None:
    train = small_ratings(5, density=0.4)
    model = BiasedMF(rank=4, n_epochs=10, random_state=0).fit(train)
    user = train.raw_users[0]
    rated = set(train.raw_items[train.raw_users == user].tolist())
    rec = model.recommend(user, n=100)
    assert set(rec.items.tolist()).isdisjoint(rated)
    assert len(rec.items) == model.item_ids_.ids.shape[0] - len(rated)  # the rest of the catalogue
    assert (np.diff(rec.scores) <= 0).all()
    np.testing.assert_allclose(rec.scores, model.predict(np.full(len(rec.items), user), rec.items), rtol=1e-6)
    everything = model.recommend(user, n=100, exclude_rated=False)
    assert set(everything.items.tolist()) >= rated


# ---------------------------------------------------------------- errors


BAD_PARAMS = [
    ("rank", 0, ValueError),
    ("rank", 2.5, TypeError),
    ("rank", True, TypeError),
    ("rank", None, TypeError),
    ("n_epochs", -1, ValueError),
    ("n_epochs", 1.5, TypeError),
    ("learning_rate", 0.0, ValueError),
    ("learning_rate", -0.1, ValueError),
    ("learning_rate", math.nan, ValueError),
    ("learning_rate", math.inf, ValueError),
    ("learning_rate", "0.1", TypeError),
    ("regularization", -0.01, ValueError),
    ("regularization", math.nan, ValueError),
    ("regularization", None, TypeError),
    ("bias_learning_rate", 0.0, ValueError),
    ("bias_learning_rate", math.inf, ValueError),
    ("bias_regularization", -1.0, ValueError),
    ("bias_regularization", math.inf, ValueError),
    ("learning_rate_decay", 0.0, ValueError),
    ("learning_rate_decay", 1.5, ValueError),
    ("learning_rate_decay", math.nan, ValueError),
    ("init_std", 0.0, ValueError),
    ("init_std", -1.0, ValueError),
    ("init_std", math.nan, ValueError),
    ("patience", -1, ValueError),
    ("patience", 2.0, TypeError),
    ("random_state", -1, ValueError),
    ("random_state", "seed", TypeError),
]


@pytest.mark.parametrize(("name", "value", "error"), BAD_PARAMS)
def test_bad_parameters_give_clear_errors(name: str, value: object, error: type) -> None:
    train = small_ratings(6)
    with pytest.raises(error, match=f"`{name}` must") as info:
        BiasedMF(**{"rank": 4, name: value}).fit(train)
    assert repr(value) in str(info.value) or str(value) in str(info.value)


def test_rank_larger_than_the_data_allows() -> None:
    train = Ratings.from_raw([1, 2, 3, 3], [10, 20, 10, 20], [1, 2, 3, 4])  # 3 users, 2 items
    with pytest.raises(ValueError, match=r"rank larger than the data allows.*3 users, 2 items"):
        BiasedMF(rank=3).fit(train)
    BiasedMF(rank=2, n_epochs=1).fit(train)  # the largest allowed rank fits


def test_constructor_only_stores() -> None:
    model = BiasedMF(rank=-5, learning_rate="x")  # validated at fit, not here
    assert model.rank == -5 and model.learning_rate == "x"
    assert not hasattr(model, "user_factors_")
    with pytest.raises(RuntimeError, match="not fitted"):
        model.predict([1], [1])
    with pytest.raises(TypeError):
        BiasedMF(3)  # type: ignore[misc]  # keyword-only


@pytest.mark.parametrize("params", [{"learning_rate": 1e4}, {"bias_learning_rate": 1e4}])
def test_divergence_raises(params: dict) -> None:
    train, _, _ = planted(9, n_users=50, n_items=40)
    model = BiasedMF(rank=8, n_epochs=20, random_state=0, **params)
    with pytest.raises(DivergenceError, match="learning_rate"):
        model.fit(train)


def test_a_non_finite_value_anywhere_stops_the_fit() -> None:
    """Clipped predictions can hide an infinite bias from the RMSE; the epoch itself checks."""
    train = small_ratings(7)
    model = BiasedMF(rank=3, n_epochs=1, random_state=0).fit(train)
    data = TrainData(
        users=train.users.astype(np.int32),
        items=train.items.astype(np.int32),
        values=train.values.astype(np.float32),
        n_users=train.n_users,
        n_items=train.n_items,
        global_mean=model.global_mean_,
    )
    model._initialize(data, np.random.default_rng(0))  # the fit's scratch, released after fit
    user = int(train.users[0])
    model.user_bias_[user] = np.inf
    with pytest.raises(DivergenceError, match="NaN or infinite"):
        model._step(data, 1, np.random.default_rng(0))


def test_constant_ratings_do_not_divide_by_zero() -> None:
    train = Ratings.from_raw([1, 1, 2, 3], [1, 2, 2, 3], [4, 4, 4, 4])
    model = BiasedMF(rank=2, n_epochs=5, random_state=0).fit(train)
    np.testing.assert_allclose(model.predict([1, 9], [3, 9]), [4.0, 4.0])


def test_docstring_examples() -> None:
    failures, tried = doctest.testmod(sgd_module, raise_on_error=False)
    assert tried > 0 and failures == 0


# ---------------------------------------------------------------- MovieLens


def test_movielens_u1_defaults_beat_the_published_svd() -> None:
    folder = DATA_DIR / "ml-100k"
    if not (folder / "u1.base").is_file():
        message = f"MovieLens 100K not found at {folder}"
        if IN_CI:
            pytest.fail(f"{message}; CI must provide ../shared/data")
        pytest.skip(message)
    train_rows = np.loadtxt(folder / "u1.base", dtype=np.int64, usecols=(0, 1, 2))
    test_rows = np.loadtxt(folder / "u1.test", dtype=np.int64, usecols=(0, 1, 2))
    model = BiasedMF(random_state=0).fit(Ratings.from_raw(train_rows[:, 0], train_rows[:, 1], train_rows[:, 2]))
    pred = model.predict(test_rows[:, 0], test_rows[:, 1])
    error = float(np.sqrt(np.mean((pred - test_rows[:, 2]) ** 2)))
    # Surprise's SVD with its defaults scores about 0.94 on these splits; the biases alone about 0.95
    assert error < 0.93, error


@pytest.mark.filterwarnings("ignore::factorise.exceptions.ThreadsWarning")  # more threads than cores, on purpose
def test_block_parallel_fit_is_deterministic_and_thread_independent() -> None:
    """Past the size threshold the fit runs block-parallel: same seed -> same model, any thread count."""
    rng = np.random.default_rng(3)
    n = 140_000  # over 2000 * 8**2 ratings: the block engine
    users = rng.integers(0, 3000, n)
    items = rng.integers(0, 800, n)
    values = np.clip(3 + rng.normal(0, 1, n), 1, 5)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate pairs
        ratings = Ratings.from_raw(users, items, values)
    fits = [
        BiasedMF(rank=8, n_epochs=2, random_state=5, n_threads=t).fit(ratings) for t in (1, 2, 1)
    ]
    for other in fits[1:]:
        for name in ("user_bias_", "item_bias_", "user_factors_", "item_factors_"):
            np.testing.assert_array_equal(getattr(fits[0], name), getattr(other, name))
    serial_like = BiasedMF(rank=8, n_epochs=2, random_state=5, n_blocks=1, n_threads=1).fit(ratings)
    assert not np.array_equal(serial_like.user_factors_, fits[0].user_factors_)  # another schedule
    assert fits[0].history_[-1]["train_rmse"] < fits[0].history_[0]["train_rmse"] + 1e-6
    with pytest.raises(ValueError, match=r"more threads than blocks"):
        BiasedMF(rank=8, n_threads=4, n_blocks=2).fit(ratings)


def test_float64_on_request() -> None:
    train = small_ratings(4)
    model = BiasedMF(rank=3, n_epochs=3, random_state=0, dtype="float64").fit(train)
    assert model.user_factors_.dtype == np.float64 and model.item_bias_.dtype == np.float64
    single = BiasedMF(rank=3, n_epochs=3, random_state=0).fit(train)
    np.testing.assert_allclose(model.user_factors_, single.user_factors_, rtol=1e-3, atol=1e-4)
    with pytest.raises(ValueError, match=r"`dtype` must be 'float32' or 'float64'; got 'float16'"):
        BiasedMF(rank=3, dtype="float16").fit(train)


def test_kernel_matches_reference_across_gather_chunks() -> None:
    """More ratings than one gather buffer holds (and a ragged last chunk): same as the reference."""
    from factorise.kernels import sgd_ratings, sgd_ratings_reference

    rng = np.random.default_rng(11)
    n = 2 * sgd_ratings.GATHER + 37
    users = rng.integers(0, 40, n).astype(np.int32)
    items = rng.integers(0, 30, n).astype(np.int32)
    values = rng.uniform(1, 5, n).astype(np.float32)
    order = rng.permutation(n).astype(np.int32)
    f = np.float32
    state = [np.zeros(40, f), np.zeros(30, f), rng.normal(0, 0.1, (40, 4)).astype(f), rng.normal(0, 0.1, (30, 4)).astype(f)]
    ref = [a.copy() for a in state]
    sse = sgd_ratings.sgd_ratings_epoch(users, items, values, order, f(3), *state, f(0.01), f(0.05), f(0.01), f(0.01))
    sse_ref = sgd_ratings_reference.sgd_ratings_epoch(
        users, items, values, order, f(3), *ref, f(0.01), f(0.05), f(0.01), f(0.01)
    )
    assert sse == pytest.approx(sse_ref, rel=1e-4)
    for a, b in zip(state, ref):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_train_rmse_sample_draws_every_rating_equally_often_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stratified sample: one position in each of S equal stretches, so each rating S / n times on average."""
    from factorise.models import _base as base

    n, size, draws = 10, 4, 20_000
    monkeypatch.setattr(base, "TRAIN_RMSE_SAMPLE", size)
    positions = np.arange(n, dtype=np.int32)
    data = TrainData(positions, positions, positions.astype(np.float32), n, n, 0.0)
    rng = np.random.default_rng(0)
    counts = np.zeros(n)
    for _ in range(draws):
        users, items, values = base._train_probe(data, rng)
        assert users.shape == (size,) and np.all(np.diff(users) >= 0) and np.array_equal(users, items)
        assert users.min() >= 0 and users.max() < n
        counts += np.bincount(users, minlength=n)
    expected = draws * size / n  # 8000 a position; a binomial spread of at most sqrt(8000) ~ 90
    np.testing.assert_allclose(counts, expected, atol=5 * np.sqrt(expected))


def test_train_rmse_of_large_data_comes_from_a_fixed_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    import factorise.models._base as base

    train, _, _ = planted(9, n_users=200, n_items=150)
    exact = BiasedMF(rank=4, n_epochs=3, random_state=0).fit(train)
    monkeypatch.setattr(base, "TRAIN_RMSE_SAMPLE", len(train) // 4)
    sampled = BiasedMF(rank=4, n_epochs=3, random_state=0).fit(train)
    final = rmse(sampled, train)
    # the sample's RMSE estimates the whole set's (a quarter of the ratings: a few percent at most)
    assert sampled.history_[-1]["train_rmse"] == pytest.approx(final, rel=0.05)
    assert sampled.history_[-1]["train_rmse"] != pytest.approx(final, rel=1e-9)  # it is a sample
    assert exact.history_[-1]["train_rmse"] == pytest.approx(rmse(exact, train), rel=1e-5)


def test_block_copy_false_fits_the_same_model_bit_for_bit() -> None:
    """The lean layout (positions into the ratings, no copy) visits the same ratings in the same order."""
    from factorise.data import Ratings

    rng = np.random.default_rng(4)
    n = 140_000  # above the block sweep's threshold at 8 blocks
    cells = rng.choice(2000 * 700, n, replace=False)  # distinct (user, item) pairs
    ratings = Ratings.from_raw(cells // 700, cells % 700, rng.uniform(1, 5, n))
    fits = [
        BiasedMF(rank=4, n_epochs=2, random_state=3, n_threads=1, block_copy=c).fit(ratings) for c in (True, False)
    ]
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_array_equal(getattr(fits[0], name), getattr(fits[1], name))


def _distinct_ratings(seed: int, n: int, n_users: int = 2000, n_items: int = 700, stamps: bool = True) -> Ratings:
    rng = np.random.default_rng(seed)
    cells = rng.choice(n_users * n_items, n, replace=False)  # distinct (user, item) pairs
    times = rng.integers(0, 2**40, n) if stamps else None
    return Ratings.from_raw(cells // n_items + 10, cells % n_items, rng.uniform(1, 5, n), times)


def _as_set(ratings: Ratings) -> set[tuple]:
    stamps = ratings.timestamps.tolist() if ratings.timestamps is not None else [None] * len(ratings)
    return set(zip(ratings.raw_users.tolist(), ratings.raw_items.tolist(), ratings.values.tolist(), stamps, strict=True))


def _same_fit(a: BiasedMF, b: BiasedMF) -> None:
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.history_ == b.history_
    for u in range(0, len(a.user_ids_), 97):  # the same rated items, in whatever order
        rated = [set(m._rated_items[m._rated_indptr[u] : m._rated_indptr[u + 1]].tolist()) for m in (a, b)]
        assert rated[0] == rated[1]


@pytest.mark.parametrize("sample", [False, True])  # the training RMSE on all ratings, or on a fixed sample
def test_block_copy_in_place_reorders_the_ratings_and_fits_the_same_model(
    sample: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from factorise.models import _base

    if sample:
        monkeypatch.setattr(_base, "TRAIN_RMSE_SAMPLE", 50_000)
    ratings = _distinct_ratings(4, 140_000)
    before = _as_set(ratings)
    users = ratings.users
    copied = BiasedMF(rank=4, n_epochs=2, random_state=3, n_threads=2, block_copy=True).fit(ratings)
    assert _as_set(ratings) == before and np.array_equal(ratings.users, users)  # the copy leaves them alone
    original = ratings.users.copy()
    in_place = BiasedMF(rank=4, n_epochs=2, random_state=3, n_threads=2, block_copy="in-place").fit(ratings)
    _same_fit(copied, in_place)
    assert ratings.users is users  # the same arrays, reordered: still the same ratings, timestamps paired
    assert not np.array_equal(ratings.users, original)
    assert _as_set(ratings) == before
    assert ratings.deduplicated() is ratings


def test_block_copy_in_place_keeps_compacted_and_original_ratings_consistent() -> None:
    """Ids with no rating make the fit compact the ratings: the original's arrays are reordered alike."""
    full = _distinct_ratings(5, 150_000)
    keep = full.raw_users != full.raw_users[0]  # a user of the id map with no rating left
    ratings = full.subset(keep)
    assert ratings.compact() is not ratings
    before = _as_set(ratings)
    copied = BiasedMF(rank=4, n_epochs=2, random_state=1, n_threads=1).fit(ratings)
    in_place = BiasedMF(rank=4, n_epochs=2, random_state=1, n_threads=1, block_copy="in-place").fit(ratings)
    _same_fit(copied, in_place)
    assert _as_set(ratings) == before


@pytest.mark.parametrize("case", ["read-only", "float64", "shared"])
def test_block_copy_in_place_copies_where_it_cannot_reorder(case: str, caplog: pytest.LogCaptureFixture) -> None:
    ratings = _distinct_ratings(6, 140_000, stamps=False)
    dtype = "float64" if case == "float64" else "float32"
    if case == "read-only":
        ratings.items.setflags(write=False)
    if case == "shared":  # timestamps over the users' memory: reordering one would scramble the other
        buffer = np.zeros(2 * len(ratings), np.int32)
        buffer[: len(ratings)] = ratings.users
        stamps = buffer.view(np.int64)
        ratings = Ratings(buffer[: len(ratings)], ratings.items, ratings.values, ratings.user_ids, ratings.item_ids,
                          stamps)  # fmt: skip
    snapshot = [a.copy() for a in (ratings.users, ratings.items, ratings.values)]
    copied = BiasedMF(rank=4, n_epochs=1, random_state=2, n_threads=1, dtype=dtype).fit(ratings)
    with caplog.at_level("INFO", logger="factorise.models.sgd"):
        in_place = BiasedMF(rank=4, n_epochs=1, random_state=2, n_threads=1, dtype=dtype, block_copy="in-place")
        in_place.fit(ratings)
    assert "cannot reorder these ratings" in caplog.text and "copying them instead" in caplog.text
    _same_fit(copied, in_place)
    for a, b in zip((ratings.users, ratings.items, ratings.values), snapshot, strict=True):
        np.testing.assert_array_equal(a, b)  # left as they were


def test_block_copy_in_place_gives_the_same_model_on_one_and_two_threads() -> None:
    from factorise._threads import available_threads

    if available_threads() < 2:
        pytest.skip("numba can run only one thread here (NUMBA_NUM_THREADS)")
    fits = []
    for threads in (1, 2):
        ratings = _distinct_ratings(7, 140_000)  # a fresh copy each time: the fit reorders it
        fits.append(BiasedMF(rank=4, n_epochs=2, random_state=5, n_threads=threads, block_copy="in-place").fit(ratings))
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):  # (the RMSE sums may differ in order)
        np.testing.assert_array_equal(getattr(fits[0], name), getattr(fits[1], name), err_msg=name)
