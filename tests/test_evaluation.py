"""factorise.evaluation: errors, splits, ranking metrics against a slow reference, cross-validation."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from factorise.data import Ratings
from factorise.evaluation import (
    CVResult,
    KFold,
    PredefinedFolds,
    cross_validate,
    mae,
    movielens_folds,
    ndcg_at_k,
    precision_at_k,
    ranking_metrics,
    ranking_metrics_at,
    recall_at_k,
    rmse,
    train_test_split,
)
from factorise.models import RatingModel
from factorise.models._base import TrainData
from factorise.models.baseline import Baseline

from conftest import DATA_DIR, IN_CI

# ----------------------------------------------------------------- helpers


class FixedModel(RatingModel):
    """A test-only model whose fitted arrays are set by hand after a one-step fit that changes nothing."""

    _param_names: ClassVar[tuple[str, ...]] = ("n_epochs",)

    def __init__(self, *, n_epochs: int = 1) -> None:
        self.n_epochs = n_epochs

    def _check_params(self, data: TrainData) -> None:
        pass

    def _initialize(self, data: TrainData, rng: np.random.Generator) -> None:
        self.user_bias_ = np.zeros(data.n_users)
        self.item_bias_ = np.zeros(data.n_items)
        self.user_factors_ = np.zeros((data.n_users, 0))
        self.item_factors_ = np.zeros((data.n_items, 0))

    def _step(self, data: TrainData, step: int, rng: np.random.Generator) -> bool:
        return True


def fixed_model(
    train: Ratings,
    *,
    mu: float = 0.0,
    user_bias: dict[Any, float] | None = None,
    item_bias: dict[Any, float] | None = None,
    user_factors: np.ndarray | None = None,
    item_factors: np.ndarray | None = None,
) -> FixedModel:
    """A model knowing ``train`` (ids, rated items) with the given parameters, no clipping."""
    model = FixedModel().fit(train)
    model.global_mean_ = mu
    model.rating_range_ = (-1e9, 1e9)
    if user_bias is not None:
        model.user_bias_ = np.array([user_bias.get(u, 0.0) for u in model.user_ids_.ids.tolist()])
    if item_bias is not None:
        model.item_bias_ = np.array([item_bias.get(i, 0.0) for i in model.item_ids_.ids.tolist()])
    if user_factors is not None:
        model.user_factors_, model.item_factors_ = user_factors, item_factors
    return model


def reference_score(model: RatingModel, user: Any, item: Any) -> float:
    """``mu + b_u + b_i + p_u . q_i`` for raw ids, term by term, unknown ids contributing nothing."""
    u = int(model.user_ids_.index([user])[0])
    i = int(model.item_ids_.index([item])[0])
    s = model.global_mean_
    if u >= 0:
        s += float(model.user_bias_[u])
    if i >= 0:
        s += float(model.item_bias_[i])
    if u >= 0 and i >= 0:
        s += sum(float(a) * float(b) for a, b in zip(model.user_factors_[u], model.item_factors_[i]))
    return s


def reference_ranking(
    model: RatingModel, train: Ratings, test: Ratings, k: int, threshold: float, candidates: str
) -> tuple[float, float, float, int]:
    """Precision, recall, NDCG at k and the user count, one user at a time, in plain Python."""
    rated: dict[Any, set] = {}
    for user, item in zip(train.raw_users.tolist(), train.raw_items.tolist()):
        rated.setdefault(user, set()).add(item)
    test_items: dict[Any, list] = {}
    relevant: dict[Any, set] = {}
    for user, item, value in zip(test.raw_users.tolist(), test.raw_items.tolist(), test.values.tolist()):
        test_items.setdefault(user, []).append(item)
        if value >= threshold:
            relevant.setdefault(user, set()).add(item)
    catalogue = sorted(set(train.raw_items.tolist()))
    precisions, recalls, ndcgs = [], [], []
    for user in sorted(relevant):
        rel = relevant[user]
        if candidates == "unrated":
            cands = [i for i in catalogue if i not in rated.get(user, set())]
        else:
            cands = test_items[user]
        ranked = sorted(cands, key=lambda i: (-reference_score(model, user, i), i))
        top = ranked[:k]
        hits = [i in rel for i in top]
        precisions.append(sum(hits) / len(top) if top else 0.0)
        recalls.append(sum(hits) / len(rel))
        dcg = sum(1 / math.log2(p + 2) for p, hit in enumerate(hits) if hit)
        idcg = sum(1 / math.log2(p + 2) for p in range(min(k, len(rel))))
        ndcgs.append(dcg / idcg)
    return float(np.mean(precisions)), float(np.mean(recalls)), float(np.mean(ndcgs)), len(relevant)


def random_problem(seed: int) -> tuple[Ratings, Ratings, RatingModel]:
    """Random ratings split at random, and a random rank-2 model fitted to know the train part."""
    rng = np.random.default_rng(seed)
    n_users, n_items = int(rng.integers(2, 9)), int(rng.integers(2, 14))
    observed = rng.random((n_users, n_items)) < rng.uniform(0.3, 0.9)
    observed[0, 0] = observed[-1, -1] = True
    u, i = np.nonzero(observed)
    values = rng.integers(1, 6, size=u.shape[0])
    ratings = Ratings.from_raw(u * 7 + 3, i * 11 + 5, values)
    is_test = rng.random(len(ratings)) < 0.4
    is_test[0], is_test[-1] = False, True
    train, test = ratings.subset(~is_test), ratings.subset(is_test)
    model = FixedModel().fit(train)
    nu, ni = len(model.user_ids_), len(model.item_ids_)
    model.global_mean_ = float(rng.normal())
    model.user_bias_ = rng.normal(size=nu).astype(np.float32)
    model.item_bias_ = rng.normal(size=ni).astype(np.float32)
    model.user_factors_ = rng.normal(size=(nu, 2)).astype(np.float32)
    model.item_factors_ = rng.normal(size=(ni, 2)).astype(np.float32)
    return train, test, model


def planted_bias(seed: int, n_users: int = 60, n_items: int = 40, density: float = 0.5) -> Ratings:
    """3.5 + b_u + b_i + N(0, 0.1^2) on a random part of the cells (ratings roughly 1..6)."""
    rng = np.random.default_rng(seed)
    bu = rng.normal(scale=0.5, size=n_users)
    bi = rng.normal(scale=0.8, size=n_items)
    u, i = np.nonzero(rng.random((n_users, n_items)) < density)
    values = 3.5 + bu[u] + bi[i] + rng.normal(scale=0.1, size=u.shape[0])
    return Ratings.from_raw(u, i, values)


def keys(r: Ratings) -> list[tuple]:
    return list(zip(r.raw_users.tolist(), r.raw_items.tolist()))


# ------------------------------------------------------------------ errors


def test_docstring_examples() -> None:
    import doctest

    import factorise.evaluation._metrics

    failures, tried = doctest.testmod(factorise.evaluation._metrics, raise_on_error=False)
    assert tried > 0 and failures == 0


def test_rmse_mae_by_hand() -> None:
    assert rmse([1, 2, 3], [1, 2, 5]) == pytest.approx(math.sqrt(4 / 3))
    assert mae([1, 2, 3], [1, 2, 5]) == pytest.approx(2 / 3)
    assert rmse([3.0], [3.0]) == 0.0
    r = Ratings.from_raw([1, 2], [1, 1], [4, 2])
    assert mae(r, [5, 2]) == pytest.approx(0.5)
    assert rmse(np.float32([1, 2]), np.float64([2, 4])) == pytest.approx(math.sqrt(2.5))


@pytest.mark.parametrize(
    ("y_true", "y_pred", "error", "pattern"),
    [
        ([1, 2], [1], ValueError, r"one length; got 2 and 1"),
        ([], [], ValueError, r"must not be empty"),
        ([1, np.nan], [1, 2], ValueError, r"`y_true` must be finite; got nan at position 1"),
        ([1, 2], [1, np.inf], ValueError, r"`y_pred` must be finite; got inf at position 1"),
        ([[1, 2]], [[1, 2]], ValueError, r"`y_true` must be 1-D"),
        (["a"], [1], TypeError, r"`y_true` must hold real numbers"),
    ],
)
def test_error_metrics_validate(y_true: Any, y_pred: Any, error: type, pattern: str) -> None:
    for metric in (rmse, mae):
        with pytest.raises(error, match=pattern):
            metric(y_true, y_pred)


# ------------------------------------------------------------------ splits


def grid_ratings(n_users: int = 30, n_items: int = 20, seed: int = 0) -> Ratings:
    rng = np.random.default_rng(seed)
    u, i = np.nonzero(rng.random((n_users, n_items)) < 0.4)
    return Ratings.from_raw(u, i, rng.integers(1, 6, size=u.shape[0]))


@pytest.mark.parametrize(("test_size", "expected"), [(0.2, None), (0.25, None), (17, 17)])
def test_train_test_split_random(test_size: float, expected: int | None) -> None:
    r = grid_ratings()
    train, test = train_test_split(r, test_size, random_state=0)
    n_test = expected if expected is not None else math.floor(test_size * len(r) + 0.5)
    assert len(test) == n_test and len(train) == len(r) - n_test
    assert train.user_ids is r.user_ids and test.item_ids is r.item_ids
    position = {key: p for p, key in enumerate(keys(r))}
    assert set(keys(train)).isdisjoint(keys(test))
    assert set(keys(train)) | set(keys(test)) == set(position)
    for part in (train, test):  # the input's order is kept
        p = [position[key] for key in keys(part)]
        assert p == sorted(p)
        values = dict(zip(keys(r), r.values.tolist()))
        assert part.values.tolist() == [values[key] for key in keys(part)]
    again = train_test_split(r, test_size, random_state=0)[1]
    assert keys(again) == keys(test)
    assert keys(train_test_split(r, test_size, random_state=1)[1]) != keys(test)


@pytest.mark.parametrize("test_size", [0.2, 0.5, 0.34, 1, 3])
def test_train_test_split_by_user(test_size: float) -> None:
    r = grid_ratings(seed=2)
    # user 999 has one rating, and must stay in training
    lonely = Ratings.from_raw(np.r_[r.raw_users, 999], np.r_[r.raw_items, 0], np.r_[r.values, 4])
    train, test = train_test_split(lonely, test_size, by_user=True, random_state=3)
    assert set(keys(train)).isdisjoint(keys(test))
    assert len(train) + len(test) == len(lonely)
    for user in np.unique(lonely.raw_users):
        n = int(np.sum(lonely.raw_users == user))
        n_test = int(np.sum(test.raw_users == user))
        if isinstance(test_size, float):
            wanted = math.floor(test_size * n + 0.5)
        else:
            wanted = test_size
        assert n_test == min(wanted, n - 1)
        assert np.sum(train.raw_users == user) >= 1
    assert 999 not in test.raw_users.tolist()


def test_leave_one_out() -> None:
    r = grid_ratings(seed=4)
    train, test = train_test_split(r, 1, by_user=True, random_state=0)
    counts = np.bincount(test.users, minlength=r.n_users)
    assert set(counts[np.bincount(r.users, minlength=r.n_users) >= 2].tolist()) == {1}


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"test_size": 0.0}, ValueError, r"`test_size` must be a fraction .*; got 0.0"),
        ({"test_size": 1.0}, ValueError, r"got 1.0"),
        ({"test_size": -3}, ValueError, r"got -3"),
        ({"test_size": "half"}, TypeError, r"`test_size` .*'half'"),
        ({"test_size": True}, TypeError, r"`test_size`"),
        ({"test_size": 0.01}, ValueError, r"test_size=0.01 of 10 ratings gives 0 test ratings"),
        ({"test_size": 10}, ValueError, r"gives 10 test ratings"),
        ({"test_size": 0.1, "by_user": True}, ValueError, r"puts no rating in the test part"),
        ({"by_user": "yes"}, TypeError, r"`by_user` must be True or False"),
    ],
)
def test_train_test_split_validates(kwargs: dict, error: type, pattern: str) -> None:
    r = Ratings.from_raw(np.arange(10) % 5, np.arange(10), np.ones(10))
    with pytest.raises(error, match=pattern):
        train_test_split(r, **kwargs)


@pytest.mark.parametrize("n_splits", [2, 3, 5, 7])
@pytest.mark.parametrize("shuffle", [True, False])
def test_kfold_tests_every_rating_once(n_splits: int, shuffle: bool) -> None:
    r = grid_ratings(seed=5)
    folds = list(KFold(n_splits, shuffle=shuffle, random_state=0).split(r))
    assert len(folds) == n_splits == KFold(n_splits).get_n_splits()
    tested: list[tuple] = []
    sizes = []
    for train, test in folds:
        assert set(keys(train)).isdisjoint(keys(test))
        assert len(train) + len(test) == len(r)
        assert train.user_ids is r.user_ids
        tested += keys(test)
        sizes.append(len(test))
    assert sorted(tested) == sorted(keys(r))
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    if not shuffle:  # consecutive blocks in the input's order
        assert tested == keys(r)


def test_kfold_seeds() -> None:
    r = grid_ratings(seed=6)
    first = [keys(test) for _, test in KFold(4, random_state=1).split(r)]
    assert first == [keys(test) for _, test in KFold(4, random_state=1).split(r)]
    assert first != [keys(test) for _, test in KFold(4, random_state=2).split(r)]
    splitter = KFold(4, random_state=np.random.default_rng(0))  # a generator advances
    assert [keys(t) for _, t in splitter.split(r)] != [keys(t) for _, t in splitter.split(r)]


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"n_splits": 1}, ValueError, r"`n_splits` must be an integer >= 2; got 1"),
        ({"n_splits": 2.0}, TypeError, r"`n_splits` must be an integer >= 2; got 2.0"),
        ({"n_splits": 11}, ValueError, r"at most the number of ratings \(10\); got 11"),
        ({"shuffle": 1}, TypeError, r"`shuffle` must be True or False"),
    ],
)
def test_kfold_validates(kwargs: dict, error: type, pattern: str) -> None:
    r = Ratings.from_raw(np.arange(10), np.arange(10), np.ones(10))
    with pytest.raises(error, match=pattern):
        list(KFold(**kwargs).split(r))


def test_predefined_folds() -> None:
    r = grid_ratings()
    pairs = list(KFold(3, random_state=0).split(r))
    folds = PredefinedFolds(pairs)
    assert len(folds) == 3 and list(folds) == pairs and folds[1] is pairs[1]
    with pytest.raises(ValueError, match="at least one"):
        PredefinedFolds([])
    with pytest.raises(TypeError, match=r"fold 1 is tuple of length 3"):
        PredefinedFolds([pairs[0], (r, r, r)])
    with pytest.raises(TypeError, match=r"fold 0 is list"):
        PredefinedFolds([[r, r]])


def test_movielens_folds_from_files(tmp_path: Path) -> None:
    r = grid_ratings(seed=7)
    lines = [
        f"{u + 1}\t{i + 1}\t{int(v)}\t{881250949 + t}\n"
        for t, (u, i, v) in enumerate(zip(r.users, r.items, r.values))
    ]
    order = np.random.default_rng(0).permutation(len(lines))
    chunks = np.array_split(order, 5)
    for f in range(5):
        test = set(chunks[f].tolist())
        (tmp_path / f"u{f + 1}.test").write_text("".join(lines[j] for j in sorted(test)))
        base = "".join(lines[j] for j in range(len(lines)) if j not in test)
        (tmp_path / f"u{f + 1}.base").write_text(base)
    folds = movielens_folds(tmp_path)
    assert len(folds) == 5
    tested = []
    for train, test in folds:
        assert train.user_ids is test.user_ids and train.item_ids is test.item_ids
        assert len(train) + len(test) == len(r)
        assert set(keys(train)).isdisjoint(keys(test))
        tested += keys(test)
    assert sorted(tested) == sorted((int(u) + 1, int(i) + 1) for u, i in zip(r.users, r.items))
    (tmp_path / "u3.test").unlink()
    with pytest.raises(FileNotFoundError, match=r"u3\.test: no such file"):
        movielens_folds(tmp_path)


# ----------------------------------------------------------------- ranking


def tiny_case() -> tuple[Ratings, Ratings, RatingModel]:
    """One user; items a..e; scores by item bias e > b > d > c > a; a rated in training."""
    train = Ratings.from_raw(["u", "v", "v", "v", "v", "v"], list("aabcde"), [3, 1, 1, 1, 1, 1])
    test = Ratings.from_raw(["u", "u", "u"], ["b", "c", "d"], [5, 2, 4])
    model = fixed_model(train, item_bias={"a": 9.0, "b": 3.0, "c": 1.0, "d": 2.0, "e": 4.0})
    return train, test, model


def test_tiny_case_unrated_by_hand() -> None:
    train, test, model = tiny_case()
    # candidates b, c, d, e ranked e, b, d, c; relevant (>= 4): b, d
    m = ranking_metrics(model, test, k=2)
    assert (m.n_users, m.k) == (1, 2)
    assert m.precision == pytest.approx(1 / 2)
    assert m.recall == pytest.approx(1 / 2)
    assert m.ndcg == pytest.approx((1 / math.log2(3)) / (1 + 1 / math.log2(3)))
    m3 = ranking_metrics(model, test, k=3)
    assert m3.precision == pytest.approx(2 / 3) and m3.recall == 1.0
    assert m3.ndcg == pytest.approx((1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    # k beyond the 4 candidates: the list has 4 items
    m9 = ranking_metrics(model, test, k=9)
    assert m9.precision == pytest.approx(2 / 4) and m9.recall == 1.0
    assert precision_at_k(model, test, 2) == m.precision
    assert recall_at_k(model, test, 2) == m.recall
    assert ndcg_at_k(model, test, 2) == m.ndcg
    assert reference_ranking(model, train, test, 2, 4.0, "unrated") == pytest.approx(
        (m.precision, m.recall, m.ndcg, 1)
    )


def test_tiny_case_test_candidates_by_hand() -> None:
    _, test, model = tiny_case()
    # candidates b, c, d ranked b, d, c: the relevant b, d fill the top 2
    m = ranking_metrics(model, test, k=2, candidates="test")
    assert (m.precision, m.recall, m.ndcg) == (1.0, 1.0, pytest.approx(1.0))
    m1 = ranking_metrics(model, test, k=1, candidates="test")
    assert (m1.precision, m1.recall, m1.ndcg) == (1.0, 0.5, pytest.approx(1.0))
    m3 = ranking_metrics(model, test, k=3, candidates="test")
    assert (m3.precision, m3.recall) == (pytest.approx(2 / 3), 1.0)
    # threshold 5: only b is relevant, and it comes first
    m5 = ranking_metrics(model, test, k=3, threshold=5, candidates="test")
    assert (m5.precision, m5.recall, m5.ndcg) == (pytest.approx(1 / 3), 1.0, pytest.approx(1.0))


def test_perfect_and_worst_rankings() -> None:
    # users 0-2 each rate items 0-5 in test, with ratings a permutation of 5 4 3 2 1 1;
    # user 3 has rated every item in training, so the model knows them all
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.permutation([5, 4, 3, 2, 1, 1]) for _ in range(3)])
    test = Ratings.from_raw(np.repeat(np.arange(3), 6), np.tile(np.arange(6), 3), values)
    train = Ratings.from_raw([0, 1, 2, *[3] * 6], [6, 6, 6, *range(6)], [3] * 9)
    scores = np.zeros((4, 7))
    scores[test.users, test.items] = values
    ideal = 1 + 1 / math.log2(3)  # two relevant items (>= 4) per user
    for sign in (1.0, -1.0):
        # P = +-S, Q = I: score(u, i) = +-S[u, i]
        model = with_identity_items(fixed_model(train), sign * scores)
        for k in (1, 2, 3, 4, 6):
            m = ranking_metrics(model, test, k=k, candidates="test")
            assert m.n_users == 3
            if sign > 0:  # the two relevant items come first
                assert m.precision == pytest.approx(min(2, k) / k)
                assert m.recall == pytest.approx(min(2, k) / 2)
                assert m.ndcg == pytest.approx(1.0)
            elif k <= 4:  # the relevant items are the last two of six
                assert (m.precision, m.recall, m.ndcg) == (0.0, 0.0, 0.0)
            else:
                assert (m.precision, m.recall) == (pytest.approx(2 / 6), 1.0)
                assert m.ndcg == pytest.approx((1 / math.log2(6) + 1 / math.log2(7)) / ideal)


def with_identity_items(model: RatingModel, scores: np.ndarray) -> RatingModel:
    model.user_factors_ = scores
    model.item_factors_ = np.eye(scores.shape[1])
    return model


@pytest.mark.parametrize("seed", range(40))
@pytest.mark.parametrize("candidates", ["unrated", "test"])
def test_ranking_matches_reference(seed: int, candidates: str) -> None:
    train, test, model = random_problem(seed)
    threshold = float(np.random.default_rng(seed).choice(test.values))  # someone has a relevant item
    got = ranking_metrics_at(model, test, [1, 3, 5, 20], threshold=threshold, candidates=candidates)
    for k, m in got.items():
        expected = reference_ranking(model, train, test, k, threshold, candidates)
        assert (m.precision, m.recall, m.ndcg, m.n_users) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(15))
@pytest.mark.parametrize("candidates", ["unrated", "test"])
def test_ties_go_to_the_smaller_raw_id(seed: int, candidates: str) -> None:
    # integer scores in {0, 1, 2}: many ties, at the k-th place too
    train, test, model = random_problem(100 + seed)
    rng = np.random.default_rng(seed)
    model.global_mean_ = 0.0
    model.user_bias_ = np.zeros(len(model.user_ids_))
    model.item_bias_ = rng.integers(0, 3, size=len(model.item_ids_)).astype(np.float64)
    model.user_factors_ = np.zeros((len(model.user_ids_), 0))
    model.item_factors_ = np.zeros((len(model.item_ids_), 0))
    threshold = float(np.median(test.values))
    for k in (1, 2, 4):
        m = ranking_metrics(model, test, k=k, threshold=threshold, candidates=candidates)
        expected = reference_ranking(model, train, test, k, threshold, candidates)
        assert (m.precision, m.recall, m.ndcg, m.n_users) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(10))
def test_reference_unrated_lists_are_what_recommend_returns(seed: int) -> None:
    # the reference's candidate protocol is the library's recommend()
    train, _, model = random_problem(seed)
    for user in np.unique(train.raw_users).tolist():
        rated = set(train.raw_items[train.raw_users == user].tolist())
        cands = [i for i in sorted(set(train.raw_items.tolist())) if i not in rated]
        ranked = sorted(cands, key=lambda i: (-reference_score(model, user, i), i))
        assert model.recommend(user, n=4).items.tolist() == ranked[:4]


def test_unknown_users_items_and_exhausted_catalogue() -> None:
    # user "x" rated the whole catalogue (a, b); its relevant test item "c" is unknown to the model
    train = Ratings.from_raw(["x", "x", "y"], ["a", "b", "a"], [3, 3, 3])
    test = Ratings.from_raw(["x", "y", "z", "z"], ["c", "b", "a", "c"], [5, 5, 4, 1])
    model = fixed_model(train, mu=1.0, user_bias={"y": 2.0}, item_bias={"a": 1.0, "b": 0.5})
    m = ranking_metrics(model, test, k=1)
    # x: no candidate -> 0, 0, 0; y: candidates {b} -> hit; z (unknown user): a (1+1) > b -> hit
    assert m.n_users == 3
    assert (m.precision, m.recall, m.ndcg) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    assert reference_ranking(model, train, test, 1, 4.0, "unrated") == pytest.approx(tuple(m[:4]))
    # test protocol: z ranks a (mu + b_a = 2) above the unknown c (mu = 1)
    t = ranking_metrics(model, test, k=1, candidates="test")
    assert (t.precision, t.recall, t.ndcg) == pytest.approx((1.0, 1.0, 1.0))
    assert reference_ranking(model, train, test, 1, 4.0, "test") == pytest.approx(tuple(t[:4]))


def test_ranking_validates() -> None:
    train, test, model = tiny_case()
    with pytest.raises(ValueError, match=r"no test rating is >= `threshold` = 6 .*range from 2 to 5"):
        ranking_metrics(model, test, threshold=6)
    with pytest.raises(ValueError, match=r"`k` must be an integer >= 1; got 0"):
        ranking_metrics(model, test, k=0)
    with pytest.raises(TypeError, match=r"`k` must be an integer >= 1; got 2.5"):
        ranking_metrics(model, test, k=2.5)
    with pytest.raises(ValueError, match=r"`threshold` must be a finite .*; got nan"):
        ranking_metrics(model, test, threshold=math.nan)
    with pytest.raises(ValueError, match=r"`candidates` must be one of \['unrated', 'test'\]; got 'all'"):
        ranking_metrics(model, test, candidates="all")
    with pytest.raises(RuntimeError, match="not fitted"):
        ranking_metrics(Baseline(), test)
    with pytest.raises(TypeError, match=r"`model` must be a fitted factorise RatingModel; got str"):
        ranking_metrics("model", test)
    with pytest.raises(ValueError, match=r"`test` must hold at least one rating"):
        ranking_metrics(model, test.subset(np.zeros(0, dtype=np.int64)))
    with pytest.raises(ValueError, match=r"`ks` must hold at least one"):
        ranking_metrics_at(model, test, [])


def test_batches_agree_with_one_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    import factorise.evaluation._ranking as ranking

    train, test, model = random_problem(3)
    whole = ranking_metrics_at(model, test, [1, 4], threshold=2)
    monkeypatch.setattr(ranking, "_BATCH_CELLS", 1)  # one user per batch
    assert ranking_metrics_at(model, test, [1, 4], threshold=2) == whole


# -------------------------------------------------------- cross-validation


def test_cross_validate_replays_kfold_by_hand() -> None:
    data = planted_bias(0)
    model = Baseline(n_epochs=15, regularization=1.0)
    seen: list[tuple[int, dict]] = []
    result = cross_validate(model, data, cv=3, random_state=0, callback=lambda f, row: seen.append((f, row)))
    assert isinstance(result, CVResult) and result.n_folds == 3
    assert [f for f, _ in seen] == [1, 2, 3] and [row for _, row in seen] == list(result.folds)
    assert not hasattr(model, "user_bias_")  # the given model is cloned, never fitted
    by_hand = list(KFold(3, shuffle=True, random_state=0).split(data))
    for row, (train, test) in zip(result.folds, by_hand):
        fitted = Baseline(n_epochs=15, regularization=1.0).fit(train)
        predictions = fitted.predict_ratings(test)
        assert row["rmse"] == rmse(test.values, predictions)
        assert row["mae"] == mae(test.values, predictions)
        ranked = ranking_metrics(fitted, test, 10)
        assert (row["precision@10"], row["recall@10"], row["ndcg@10"]) == (
            ranked.precision,
            ranked.recall,
            ranked.ndcg,
        )
        assert (row["n_train"], row["n_test"], row["n_epochs"]) == (len(train), len(test), 15)
        assert row["n_ranked_users"] == ranked.n_users
        assert row["fit_time"] >= 0 and row["eval_time"] >= 0
    assert sum(row["n_test"] for row in result.folds) == len(data)
    for name in result.metrics:
        assert result.mean[name] == pytest.approx(np.mean([row[name] for row in result.folds]))
        assert result.std[name] == pytest.approx(np.std([row[name] for row in result.folds]))
    as_json = json.loads(json.dumps(result.to_dict()))
    assert as_json["params"] == model.get_params() and as_json["n_folds"] == 3
    assert as_json["folds"][0]["rmse"] == result.folds[0]["rmse"]
    assert "mean" in str(result) and "ndcg@10" in str(result)


class _MeanOnly(Baseline):
    """Predicts the global mean for everything: its one step leaves the biases at zero."""

    def _step(self, data: Any, step: int, rng: np.random.Generator) -> bool:
        return True


def test_baseline_beats_the_global_mean_on_planted_biases() -> None:
    data = planted_bias(1)
    metrics = ("rmse", "ndcg@5")
    kw = {"cv": KFold(4, random_state=0), "metrics": metrics, "threshold": 4.0}
    baseline = cross_validate(Baseline(n_epochs=30, regularization=1.0), data, **kw)
    mean_only = cross_validate(_MeanOnly(n_epochs=1), data, **kw)  # predicts mu for everything
    # noise is 0.1 and the biases spread ~0.94: the gap is large
    assert baseline.mean["rmse"] < 0.15 < 0.8 < mean_only.mean["rmse"]
    # all items tie under the global mean; the bias model ranks the liked ones first
    assert baseline.mean["ndcg@5"] > mean_only.mean["ndcg@5"]


def test_cross_validate_with_given_pairs_and_options() -> None:
    data = planted_bias(2, n_users=20, n_items=15)
    pairs = list(KFold(2, random_state=1).split(data))
    model = Baseline(n_epochs=5)
    options: dict[str, Any] = {"metrics": ["recall@3", "precision@1"], "candidates": "test"}
    from_list = cross_validate(model, cv=pairs, **options)
    from_folds = cross_validate(model, cv=PredefinedFolds(pairs), **options)
    for row, (train, test) in zip(from_list.folds, pairs):
        fitted = Baseline(n_epochs=5).fit(train)
        assert row["recall@3"] == recall_at_k(fitted, test, 3, candidates="test")
        assert row["precision@1"] == precision_at_k(fitted, test, 1, candidates="test")
        assert "rmse" not in row
    assert from_list.metrics == ("recall@3", "precision@1") and from_list.candidates == "test"
    for a, b in zip(from_list.folds, from_folds.folds):
        assert a["recall@3"] == b["recall@3"] and a["precision@1"] == b["precision@1"]


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"metrics": ("rmse", "auc")}, ValueError, r"`metrics` must be .*; got 'auc'"),
        ({"metrics": ("ndcg@0",)}, ValueError, r"got 'ndcg@0'"),
        ({"metrics": "rmse"}, TypeError, r"`metrics` must be a sequence"),
        ({"metrics": ()}, ValueError, r"empty"),
        ({"metrics": ("rmse", "rmse")}, ValueError, r"must not repeat"),
        ({"cv": 1}, ValueError, r"`n_splits` must be an integer >= 2; got 1"),
        ({"cv": "five"}, TypeError, r"`cv` must be a number of folds"),
        ({"cv": KFold(2), "random_state": 0}, ValueError, r"`random_state` is only used when `cv` is"),
        ({"threshold": math.inf}, ValueError, r"`threshold`"),
        ({"candidates": "every"}, ValueError, r"`candidates`"),
        ({"callback": 3}, TypeError, r"`callback` must be callable"),
    ],
)
def test_cross_validate_validates(kwargs: dict, error: type, pattern: str) -> None:
    data = planted_bias(3, n_users=10, n_items=8)
    with pytest.raises(error, match=pattern):
        cross_validate(Baseline(n_epochs=1), data, **kwargs)


def test_cross_validate_data_and_cv_must_agree() -> None:
    data = planted_bias(4, n_users=10, n_items=8)
    pairs = list(KFold(2, random_state=0).split(data))
    with pytest.raises(ValueError, match=r"`data` must be None when `cv` supplies"):
        cross_validate(Baseline(), data, cv=pairs)
    with pytest.raises(ValueError, match=r"`data` must be given"):
        cross_validate(Baseline(), cv=3)
    with pytest.raises(TypeError, match=r"fold 2 is"):
        cross_validate(Baseline(), cv=[pairs[0], (data,)])
    with pytest.raises(TypeError, match=r"`model` must be a factorise RatingModel"):
        cross_validate(object(), data)
    low = Ratings.from_raw(data.raw_users, data.raw_items, np.clip(data.values, None, 3.0))
    with pytest.raises(ValueError, match=r"fold 1: no test rating is >= `threshold` = 4"):
        cross_validate(Baseline(n_epochs=1), low, cv=2, random_state=0)


# ---------------------------------------------------------- MovieLens 100K


def test_movielens_100k_folds_baseline() -> None:
    directory = DATA_DIR / "ml-100k"
    if not (directory / "u1.base").is_file():
        if IN_CI:
            pytest.fail(f"{directory} is missing; CI must provide MovieLens 100K")
        pytest.skip(f"MovieLens 100K not found in {directory}")
    folds = movielens_folds(directory)
    tested = np.concatenate([test.raw_users.astype(np.int64) * 10_000 + test.raw_items for _, test in folds])
    assert tested.shape[0] == 100_000 and np.unique(tested).shape[0] == 100_000
    result = cross_validate(Baseline(), cv=folds, metrics=("rmse", "precision@10"))
    for row, (train, test) in zip(result.folds, folds):
        assert (row["n_train"], row["n_test"]) == (80_000, 20_000)
        # beats predicting the training mean for everyone
        assert row["rmse"] < rmse(test.values, np.full(len(test), np.mean(train.values)))
        # and beats a random full-catalogue ranking, whose expected precision for a
        # user is (relevant test items among the candidates) / (number of candidates)
        n_items = np.unique(train.items).shape[0]
        expected_random = []
        for user in np.unique(test.users[test.values >= 4]):
            n_rated = np.sum(train.users == user)
            mask = (test.users == user) & (test.values >= 4) & np.isin(test.items, train.items)
            expected_random.append(mask.sum() / (n_items - n_rated))
        assert row["precision@10"] > 2 * np.mean(expected_random)


def test_monitor_test_only_watches() -> None:
    """Recording the test RMSE per epoch changes no result, and the curve ends at the reported RMSE."""
    r = planted_bias(seed=3)
    plain = cross_validate(Baseline(n_epochs=8, patience=2), r, cv=3, random_state=0, metrics=("rmse",))
    seen: list[tuple[int, int]] = []
    watched = cross_validate(
        Baseline(n_epochs=8, patience=2),
        r,
        cv=3,
        random_state=0,
        metrics=("rmse",),
        monitor_test=True,
        fit_callback=lambda fold, step, record: seen.append((fold, step)),
    )
    assert [row["rmse"] for row in watched.folds] == [row["rmse"] for row in plain.folds]
    assert len(watched.histories) == 3
    for row, history in zip(watched.folds, watched.histories):
        assert len(history) == 8  # no early stopping on the test part
        assert history[-1]["valid_rmse"] == pytest.approx(row["rmse"], rel=1e-9)
    assert seen == [(f, s) for f in (1, 2, 3) for s in range(1, 9)]
    assert all("valid_rmse" not in h for hist in plain.histories for h in hist)
