"""BayesianMF: the Gibbs kernels against their slow references, the sampler against known truths, the contract."""

from __future__ import annotations

import math

import numpy as np
import pytest

from factorise import BayesianMF, load_model
from factorise.data import Ratings
from factorise.kernels import bayes as kernel
from factorise.kernels import bayes_reference as reference


def _csr(rng: np.random.Generator, n_rows: int, n_other: int, density: float) -> tuple[np.ndarray, ...]:
    mask = rng.random((n_rows, n_other)) < density
    mask[2] = False  # a row without ratings: drawn from the prior
    rows, others = np.nonzero(mask)
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    return indptr, others.astype(np.int32), rng.uniform(1, 5, rows.shape[0]).astype(np.float32)


def _prior(rng: np.random.Generator, d: int) -> tuple[np.ndarray, np.ndarray]:
    A = rng.normal(size=(d, d))
    return rng.normal(size=d), A @ A.T + d * np.eye(d)


NONE = np.empty(0)


@pytest.mark.parametrize(("shifted", "weighted", "density"), [(False, False, 0.2), (True, False, 0.2),
                                                              (False, True, 0.2), (True, True, 0.9)])  # fmt: skip
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_half_step_kernel_matches_its_reference(seed: int, shifted: bool, weighted: bool, density: float) -> None:
    """Also with per-row prior shifts, per-rating noise weights, and rows longer than the kernel's tile."""
    rng = np.random.default_rng(seed)
    n_other = 50 if density < 0.5 else 400  # 0.9 * 400: rows of about 360 ratings, three tiles of 128
    indptr, others, values = _csr(rng, 30, n_other, density)
    k = 4
    F, fb = rng.normal(size=(n_other, k)), rng.normal(size=n_other)
    mean, precision = _prior(rng, k + 1)
    shift = rng.normal(size=(30, k + 1)) if shifted else np.empty((0, k + 1))
    row_w, other_w = (rng.gamma(2.0, 0.5, 30), rng.gamma(2.0, 0.5, n_other)) if weighted else (NONE, NONE)
    eps = rng.standard_normal((30, k + 1))
    outs = []
    for module in (kernel, reference):
        P, b, failed = np.zeros((30, k)), np.zeros(30), np.zeros(30, dtype=bool)
        bounds = np.array([0, 7, 7, 19, 30])  # uneven chunks, one empty
        module.gibbs_half_step(indptr, others, values, 3.1, F, fb, 1.7, row_w, other_w, mean, precision, shift, eps,
                               P, b, failed, bounds)  # fmt: skip
        outs.append((P, b, failed))
    if shifted or weighted:  # the shift moves the prior mean (the row without ratings above all), the weights the rest
        P0, b0 = np.zeros((30, k)), np.zeros(30)
        kernel.gibbs_half_step(indptr, others, values, 3.1, F, fb, 1.7, NONE, NONE, mean, precision,
                               np.empty((0, k + 1)), eps, P0, b0, np.zeros(30, dtype=bool), bounds)  # fmt: skip
        assert not np.allclose(P0[2 if shifted else 0], outs[0][0][2 if shifted else 0])
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-10, atol=1e-12)
    assert not outs[0][2].any()


def test_the_draws_follow_the_gaussian_conditional() -> None:
    """Many draws of one row: their mean and covariance are the conditional's (the reference's formula)."""
    rng = np.random.default_rng(3)
    k, n = 2, 12
    others = rng.integers(0, 20, n).astype(np.int32)
    values = rng.uniform(1, 5, n).astype(np.float32)
    F, fb = rng.normal(size=(20, k)), rng.normal(size=20)
    mean0, precision0 = _prior(rng, k + 1)
    draws = 20000
    indptr = np.arange(draws + 1, dtype=np.int64) * n  # the same row, many times
    eps = rng.standard_normal((draws, k + 1))
    P, b, failed = np.zeros((draws, k)), np.zeros(draws), np.zeros(draws, dtype=bool)
    kernel.gibbs_half_step(indptr, np.tile(others, draws), np.tile(values, draws), 3.0, F, fb, 2.0, NONE, NONE, mean0,
                           precision0, np.empty((0, k + 1)), eps, P, b, failed, np.array([0, draws // 2, draws]))  # fmt: skip
    mean, precision = reference.conditional(others, values, 3.0, F, fb, 2.0, mean0, precision0)
    x = np.column_stack([b, P])
    cov = np.linalg.inv(precision)
    np.testing.assert_allclose(x.mean(axis=0), mean, atol=4 * np.sqrt(np.diag(cov) / draws).max())
    np.testing.assert_allclose(np.cov(x.T), cov, rtol=0.05, atol=0.05 * np.abs(cov).max())


def _implicit_problem(seed: int, n_rows: int = 30, n_implicit: int = 20, k: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    indptr, members, _ = _csr(rng, n_implicit, n_rows, 0.3)  # implicit row 2 belongs to no sum
    counts = np.bincount(members, minlength=n_rows)
    mean, precision = _prior(rng, k + 1)
    y_mean, y_precision = _prior(rng, k + 1)
    return {
        "indptr": indptr, "members": members, "weight": 1 / np.sqrt(np.maximum(counts, 1)),
        "factors": rng.normal(size=(n_rows, k)), "bias": rng.normal(size=n_rows), "mean": mean,
        "precision": precision, "implicit_mean": y_mean, "implicit_precision": y_precision,
        "eps": rng.standard_normal((n_implicit, k + 1)), "implicit": rng.normal(size=(n_implicit, k + 1)),
    }  # fmt: skip


def _shift_of(problem: dict[str, np.ndarray]) -> np.ndarray:
    """``w_u * sum of y_j`` over the implicit rows whose members hold u, from scratch."""
    shift = np.zeros((problem["factors"].shape[0], problem["implicit"].shape[1]))
    indptr, members = problem["indptr"], problem["members"]
    for j in range(indptr.shape[0] - 1):
        for u in members[indptr[j] : indptr[j + 1]]:
            shift[u] += problem["weight"][u] * problem["implicit"][j]
    return shift


@pytest.mark.parametrize("seed", [0, 1])
def test_the_implicit_kernel_matches_its_reference_and_keeps_the_sums(seed: int) -> None:
    outs = []
    for module in (kernel, reference):
        problem = _implicit_problem(seed)
        shift = _shift_of(problem)
        assert module.implicit_step(**problem, shift=shift)
        outs.append((problem["implicit"], shift, _shift_of(problem)))
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(outs[0][1], outs[0][2], rtol=1e-10, atol=1e-12)  # the sums kept up to date
    np.testing.assert_allclose(outs[1][1], outs[1][2], rtol=1e-10, atol=1e-12)
    fresh = _implicit_problem(seed)
    assert not np.allclose(outs[0][0], fresh["implicit"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_implicit_transform_inverts_every_conditional_precision(seed: int) -> None:
    """(Lambda_y + s Lambda)^-1 = G^T diag(1 / (1 + s D)) G for any s >= 0, and the kernel's G is the reference's."""
    rng = np.random.default_rng(seed)
    d = 6
    _, precision = _prior(rng, d)
    _, y_precision = _prior(rng, d)
    G, D = np.empty((d, d)), np.empty(d)
    assert kernel.implicit_transform(precision, y_precision, G, D)
    G_ref, D_ref = reference.implicit_transform(precision, y_precision)
    np.testing.assert_allclose(G, G_ref, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(D, D_ref, rtol=1e-9, atol=1e-11)
    assert (D > 0).all()
    for s in (0.0, 0.3, 7.0, 250.0):
        np.testing.assert_allclose(G.T @ np.diag(1 / (1 + s * D)) @ G, np.linalg.inv(y_precision + s * precision),
                                   rtol=1e-8, atol=1e-12)  # fmt: skip
    not_pd = y_precision.copy()
    not_pd[0, 0] = -1.0
    assert not kernel.implicit_transform(precision, not_pd, G, D)


def test_the_implicit_draws_follow_the_regression_posterior() -> None:
    """One implicit row, drawn many times: the posterior of y in x_u ~ N(m + w_u y, Lambda^-1), computed densely."""
    rng = np.random.default_rng(5)
    k, n_rows, draws = 2, 6, 20000
    d = k + 1
    weight = rng.uniform(0.2, 1.0, n_rows)
    factors, bias = rng.normal(size=(n_rows, k)), rng.normal(size=n_rows)
    mean, precision = _prior(rng, d)
    y_mean, y_precision = _prior(rng, d)
    samples = np.empty((draws, d))
    indptr = np.array([0, n_rows], dtype=np.int64)
    members = np.arange(n_rows, dtype=np.int32)
    for start in range(0, draws, 1000):  # 1000 draws at a time: one implicit row each, from a zero start
        eps = rng.standard_normal((1000, d))
        for t in range(1000):
            implicit, shift = np.zeros((1, d)), np.zeros((n_rows, d))
            assert kernel.implicit_step(indptr, members, weight, factors, bias, mean, precision, y_mean, y_precision,
                                        eps[t : t + 1], implicit, shift)  # fmt: skip
            samples[start + t] = implicit[0]
            np.testing.assert_allclose(shift, np.outer(weight, implicit[0]))
    X = np.column_stack([bias, factors])
    post_precision = y_precision + (weight @ weight) * precision
    post_mean = np.linalg.solve(post_precision, y_precision @ y_mean + precision @ ((X - mean).T @ weight))
    cov = np.linalg.inv(post_precision)
    np.testing.assert_allclose(samples.mean(axis=0), post_mean, atol=4 * np.sqrt(np.diag(cov) / draws).max())
    np.testing.assert_allclose(np.cov(samples.T), cov, rtol=0.05, atol=0.05 * np.abs(cov).max())


@pytest.mark.parametrize("weighted", [False, True])
def test_the_row_squared_errors_kernel_matches_its_reference(weighted: bool) -> None:
    rng = np.random.default_rng(6)
    indptr, others, values = _csr(rng, 30, 50, 0.3)
    args = (indptr, others, values, 3.0, rng.normal(size=(30, 3)), rng.normal(size=30), rng.normal(size=(50, 3)),
            rng.normal(size=50), rng.gamma(2.0, 0.5, 50) if weighted else NONE)  # fmt: skip
    outs = [np.full(30, np.nan), np.full(30, np.nan)]
    kernel.row_squared_errors(*args, outs[0])
    reference.row_squared_errors(*args, outs[1])
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-12)
    assert outs[0][2] == 0.0  # the row without ratings


def test_the_squared_error_kernel_matches_its_reference() -> None:
    rng = np.random.default_rng(4)
    users, items = rng.integers(0, 30, 1000).astype(np.int32), rng.integers(0, 40, 1000).astype(np.int32)
    values = rng.uniform(1, 5, 1000).astype(np.float32)
    args = (users, items, values, 3.0, rng.normal(size=30), rng.normal(size=40), rng.normal(size=(30, 3)),
            rng.normal(size=(40, 3)), 64)  # fmt: skip
    assert kernel.squared_error(*args) == pytest.approx(reference.squared_error(*args), rel=1e-12)


def planted(seed: int, m: int, n: int, k: int, noise: float, density: float) -> tuple[Ratings, Ratings, np.ndarray]:
    """Ratings = 3 + b_u + b_i + p.q + N(0, noise^2); 80/20 split; also the noiseless test values."""
    rng = np.random.default_rng(seed)
    P, Q = rng.normal(0, 0.6, (m, k)), rng.normal(0, 0.6, (n, k))
    bu, bi = rng.normal(0, 0.3, m), rng.normal(0, 0.3, n)
    mask = rng.random((m, n)) < density
    u, i = np.nonzero(mask)
    truth = 3 + bu[u] + bi[i] + np.sum(P[u] * Q[i], axis=1)
    r = truth + rng.normal(0, noise, u.shape[0])
    test = rng.random(u.shape[0]) < 0.2
    train_r = Ratings.from_raw(u[~test], i[~test], r[~test])
    test_r = Ratings.from_raw(u[test], i[test], r[test])
    return train_r, test_r, truth[test]


@pytest.fixture(scope="module")
def fitted() -> tuple[BayesianMF, Ratings, np.ndarray]:
    train, test, truth = planted(0, 200, 150, 3, 0.5, 0.6)
    model = BayesianMF(rank=3, n_samples=120, burn_in=20, random_state=0, n_threads=1).fit(train, validation=test)
    return model, test, truth


def test_the_posterior_recovers_the_noise_and_approaches_the_floor(fitted: tuple) -> None:  # type: ignore[type-arg]
    model, test, truth = fitted
    assert model.noise_std_ == pytest.approx(0.5, rel=0.05)  # the planted noise
    rmse = float(np.sqrt(np.mean((model.predict(test.raw_users, test.raw_items) - test.values) ** 2)))
    # near the floor, the noise itself: with about 72 ratings a user and 96 an item for 4 unknowns each, the
    # estimation error adds about 0.25 * (4/72 + 4/96) to the squared error, so the RMSE is about 0.524
    assert rmse < 0.5 * 1.08, rmse
    assert model.history_[-1]["valid_rmse"] == pytest.approx(rmse, rel=1e-5)  # the history's running average
    assert all("noise_precision" in h for h in model.history_)


def test_the_posterior_spread_covers_the_truth_at_about_the_nominal_rate(fitted: tuple) -> None:  # type: ignore[type-arg]
    model, test, truth = fitted
    mean, std = model.predict(test.raw_users, test.raw_items, return_std=True)
    assert (std > 0).all()
    inside = np.abs(mean - truth) <= 1.96 * std
    assert 0.88 <= inside.mean() <= 0.99, inside.mean()  # nominal 95%


def test_the_averaged_factors_give_the_mean_of_the_samples_predictions(fitted: tuple) -> None:  # type: ignore[type-arg]
    """The concatenated blocks: predict equals the mean of each kept sample's prediction (recomputed from the blocks)."""
    model, test, _ = fitted
    u = model.user_ids_.index(test.raw_users[:50])
    i = model.item_ids_.index(test.raw_items[:50])
    k, S = model.rank, model.user_factors_.shape[1] // (model.rank + 2)
    assert S == 100
    blocks = (model.user_factors_[u].reshape(50, S, k + 2) * model.item_factors_[i].reshape(50, S, k + 2)).sum(2) * S
    per_sample = model.global_mean_ + model.user_bias_[u, None] + model.item_bias_[i, None] + blocks
    np.testing.assert_allclose(model.predict(test.raw_users[:50], test.raw_items[:50]),
                               np.clip(per_sample.mean(axis=1), *model.rating_range_), rtol=1e-5)  # fmt: skip


def test_same_seed_same_samples_for_one_and_two_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from factorise.models import bayes as bayes_module

    monkeypatch.setattr(bayes_module, "PARALLEL_MIN_RATINGS", 0)  # two threads really run on these small data
    train, _, _ = planted(1, 120, 90, 2, 0.5, 0.3)
    a = BayesianMF(rank=2, n_samples=6, burn_in=2, random_state=7, n_threads=1).fit(train)
    b = BayesianMF(rank=2, n_samples=6, burn_in=2, random_state=7, n_threads=2).fit(train)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_bias_, b.item_bias_)
    assert [h["noise_precision"] for h in a.history_] == [h["noise_precision"] for h in b.history_]


def test_save_and_load_round_trip(fitted: tuple, tmp_path) -> None:  # type: ignore[no-untyped-def, type-arg]
    model, test, _ = fitted
    path = tmp_path / "bayes.npz"
    model.save(path)
    loaded = load_model(path)
    assert isinstance(loaded, BayesianMF) and loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.predict(test.raw_users, test.raw_items), model.predict(test.raw_users, test.raw_items))
    np.testing.assert_array_equal(loaded.predict(test.raw_users, test.raw_items, return_std=True)[1],
                                  model.predict(test.raw_users, test.raw_items, return_std=True)[1])  # fmt: skip
    assert loaded.recommend(test.raw_users[0], 5).items.tolist() == model.recommend(test.raw_users[0], 5).items.tolist()


def test_cold_start_pairs_fall_back_to_the_biases(fitted: tuple) -> None:  # type: ignore[type-arg]
    model, test, _ = fitted
    mean, std = model.predict([10**6], [test.raw_items[0]], return_std=True)
    i = model.item_ids_.index([test.raw_items[0]])[0]
    assert mean[0] == pytest.approx(np.clip(model.global_mean_ + model.item_bias_[i], *model.rating_range_))
    assert std[0] == 0.0


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ({"rank": 0}, ValueError, r"`rank` must be an integer >= 1; got 0"),
        ({"n_samples": 0}, ValueError, r"`n_samples` must be an integer >= 1; got 0"),
        ({"burn_in": 400}, ValueError, r"`burn_in` must be less than `n_samples` \(400\).*got 400"),
        ({"burn_in": -1}, ValueError, r"`burn_in` must be an integer >= 0; got -1"),
        ({"burn_in": 1.5}, TypeError, r"`burn_in`"),
        ({"prior_strength": 0.0}, ValueError, r"`prior_strength` must be"),
        ({"noise_shape": -1.0}, ValueError, r"`noise_shape` must be"),
        ({"noise_rate": float("nan")}, ValueError, r"`noise_rate` must be"),
        ({"init_std": 0}, ValueError, r"`init_std` must be"),
        ({"implicit": None}, ValueError, r"`implicit` must be True or False; got None"),
        ({"noise": "student"}, ValueError, r"`noise` must be one of 'user-item', 'shared'; got 'student'"),
        ({"n_threads": 0}, ValueError, r"`n_threads`"),
    ],
)
def test_bad_parameters_are_named(params: dict, error: type, match: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(error, match=match):
        BayesianMF(**params).validate_params()


def planted_implicit(seed: int, m: int = 400, n: int = 150, k: int = 3) -> tuple[Ratings, Ratings, np.ndarray]:
    """Data of the implicit model itself: each user's factors are ``sum of y_j / sqrt(|N(u)|)`` over the items
    ``N(u)`` the user rated in training (plus a little of the user's own), items' factors plain.

    Half the users rate 3-8 items in training, half 40; every user has 4 held-out ratings. Returns the training
    and held-out ratings and the noiseless held-out values.
    """
    rng = np.random.default_rng(seed)
    Y, Q = rng.normal(0, 1.0, (n, k)), rng.normal(0, 0.6, (n, k))
    users, items, held = [], [], []
    P = np.empty((m, k))
    for u in range(m):
        count = int(rng.integers(3, 9)) if u % 2 else 40
        rated = rng.choice(n, count + 4, replace=False)
        P[u] = Y[rated[:count]].sum(axis=0) / np.sqrt(count) + rng.normal(0, 0.1, k)
        users += [u] * (count + 4)
        items += list(rated)
        held += [False] * count + [True] * 4
    u, i, test = np.array(users), np.array(items), np.array(held)
    truth = 3 + np.sum(P[u] * Q[i], axis=1)
    r = truth + rng.normal(0, 0.5, u.shape[0])
    return Ratings.from_raw(u[~test], i[~test], r[~test]), Ratings.from_raw(u[test], i[test], r[test]), truth[test]


@pytest.mark.parametrize("seed", [0, 1])
def test_implicit_learns_what_the_rated_sets_say(seed: int) -> None:
    """On data of the implicit model, its predictions are much nearer the truth than the plain model's: users
    with a handful of ratings get their factors from the items they rated."""
    train, test, truth = planted_implicit(seed)
    errors = {}
    for implicit in (False, True):
        model = BayesianMF(rank=3, n_samples=100, burn_in=20, implicit=implicit, random_state=0, n_threads=1)
        model.fit(train)
        errors[implicit] = float(np.sqrt(np.mean((model.predict(test.raw_users, test.raw_items) - truth) ** 2)))
    assert errors[True] < 0.8 * errors[False], errors


def test_implicit_sets_come_from_the_training_ratings_only() -> None:
    """Validation ratings (here: the held-out ones) inform nothing: the fit with them is the fit without."""
    train, test, _ = planted_implicit(3, m=60, n=60)
    alone = BayesianMF(rank=2, n_samples=15, burn_in=3, implicit=True, random_state=1, n_threads=1).fit(train)
    watched = BayesianMF(rank=2, n_samples=15, burn_in=3, implicit=True, random_state=1, n_threads=1)
    watched.fit(train, validation=test)
    np.testing.assert_array_equal(alone.user_factors_, watched.user_factors_)
    np.testing.assert_array_equal(alone.item_factors_, watched.item_factors_)
    assert not math.isnan(watched.history_[-1]["valid_rmse"])
    plain = BayesianMF(rank=2, n_samples=15, burn_in=3, random_state=1, n_threads=1).fit(train)
    assert not np.allclose(plain.user_factors_, alone.user_factors_)  # the implicit sums do change the draws


def test_implicit_same_seed_same_samples_for_one_and_two_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from factorise.models import bayes as bayes_module

    monkeypatch.setattr(bayes_module, "PARALLEL_MIN_RATINGS", 0)
    train, _, _ = planted(1, 120, 90, 2, 0.5, 0.3)
    a = BayesianMF(rank=2, n_samples=6, burn_in=2, implicit=True, random_state=7, n_threads=1).fit(train)
    b = BayesianMF(rank=2, n_samples=6, burn_in=2, implicit=True, random_state=7, n_threads=2).fit(train)
    np.testing.assert_array_equal(a.user_factors_, b.user_factors_)
    np.testing.assert_array_equal(a.item_factors_, b.item_factors_)


def test_implicit_model_saves_and_loads(tmp_path) -> None:  # type: ignore[no-untyped-def]
    train, test, _ = planted_implicit(4, m=60, n=60)
    model = BayesianMF(rank=2, n_samples=10, burn_in=2, implicit=True, random_state=0, n_threads=1).fit(train)
    model.save(tmp_path / "implicit.npz")
    loaded = load_model(tmp_path / "implicit.npz")
    assert loaded.get_params()["implicit"] is True
    np.testing.assert_array_equal(loaded.predict(test.raw_users, test.raw_items), model.predict(test.raw_users, test.raw_items))


def test_user_item_noise_weighs_erratic_users_less() -> None:
    """Planted data where a third of the users rate with noise 1.5 and the rest 0.3: the user-item noise model
    predicts the quiet users' held-out ratings nearer the truth than one shared precision does, and its noise
    level is the ratings' average noise variance."""
    rng = np.random.default_rng(8)
    m, n, k = 300, 200, 3
    P, Q = rng.normal(0, 0.6, (m, k)), rng.normal(0, 0.6, (n, k))
    sigma = np.where(np.arange(m) % 3 == 0, 1.5, 0.3)
    u, i = np.nonzero(rng.random((m, n)) < 0.15)
    truth = 3 + np.sum(P[u] * Q[i], axis=1)
    r = truth + rng.normal(size=u.shape[0]) * sigma[u]
    test = rng.random(u.shape[0]) < 0.2
    train = Ratings.from_raw(u[~test], i[~test], r[~test])
    quiet = test & (sigma[u] < 1)
    errors, levels = {}, {}
    for noise in ("shared", "user-item"):
        model = BayesianMF(rank=3, n_samples=80, burn_in=20, noise=noise, random_state=0, n_threads=1).fit(train)
        errors[noise] = float(np.sqrt(np.mean((model.predict(u[quiet], i[quiet]) - truth[quiet]) ** 2)))
        levels[noise] = model.noise_std_
    assert errors["user-item"] < 0.85 * errors["shared"], errors
    planted_level = float(np.sqrt(np.mean(sigma[u[~test]] ** 2)))
    assert levels["user-item"] == pytest.approx(planted_level, rel=0.1), (levels, planted_level)


def test_rank_larger_than_the_data_is_refused() -> None:
    train, _, _ = planted(2, 20, 6, 2, 0.5, 0.5)
    with pytest.raises(ValueError, match=r"`rank` must be an integer with 1 <= rank <= min\(m, n\) = 6"):
        BayesianMF(rank=7, n_samples=3, burn_in=1).fit(train)


def test_a_corrupt_file_with_the_wrong_width_is_refused(fitted: tuple, tmp_path) -> None:  # type: ignore[no-untyped-def, type-arg]
    model, _, _ = fitted
    model.save(tmp_path / "ok.npz")
    with np.load(tmp_path / "ok.npz") as f:
        arrays = dict(f)
    arrays["user_factors"] = arrays["user_factors"][:, :-5]
    arrays["item_factors"] = arrays["item_factors"][:, :-5]
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(ValueError, match=r"the factors have 495 columns but the model's parameters give 500"):
        load_model(tmp_path / "bad.npz")
    assert math.isfinite(model.noise_std_)


def test_the_wishart_draws_have_the_wishart_moments() -> None:
    """Bartlett's construction: the mean is df * scale, and each entry's variance df * (s_ij^2 + s_ii s_jj)."""
    from factorise.models.bayes import _wishart

    rng = np.random.default_rng(5)
    A = rng.normal(size=(3, 3))
    scale = A @ A.T / 3 + np.eye(3) * 0.5
    draws = np.array([_wishart(7.0, scale, rng) for _ in range(20000)])
    np.testing.assert_allclose(draws.mean(axis=0), 7.0 * scale, rtol=0.03, atol=0.03)
    variance = 7.0 * (scale**2 + np.outer(np.diag(scale), np.diag(scale)))
    np.testing.assert_allclose(draws.var(axis=0), variance, rtol=0.08)
