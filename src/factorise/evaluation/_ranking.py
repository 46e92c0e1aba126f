"""Top-k ranking metrics: precision, recall and NDCG at k.

A rating model is judged here as a recommender: for each test user, rank the
candidate items by predicted score, take the top ``k``, and compare them with
the user's *relevant* test items, those rated ``>= threshold``.

Definitions, for one user with relevant test items ``Rel`` and top-k list
``L`` (its length ``|L| = min(k, number of candidates)``):

.. code-block:: text

    precision@k = |L & Rel| / |L|
    recall@k    = |L & Rel| / |Rel|
    DCG@k       = sum over positions p = 1..|L| of rel(L_p) / log2(p + 1)
    NDCG@k      = DCG@k / IDCG@k,   IDCG@k = sum_{p=1}^{min(k, |Rel|)} 1 / log2(p + 1)

Relevance is binary (``rel = 1`` for a relevant item, else 0), so NDCG is 1
exactly when the relevant items fill the top ``min(k, |Rel|)`` places. Each
metric is averaged over the users with at least one relevant test item
(users without one are not evaluated). Relevant test items the model cannot
rank (items absent from training under ``candidates="unrated"``) still count
in ``|Rel|`` and in the IDCG: a model is not excused for items it never saw.

Candidates
----------
``"unrated"`` (default)
    Every item the model knows (the training catalogue) that the user did not
    rate in training: full-catalogue ranking, what a deployed recommender
    faces, and what :meth:`RatingModel.recommend` returns. Unrated items that
    are not in the test set count as not relevant, so the absolute values are
    small: on MovieLens 100K's folds u1-u5 the bias-only
    :class:`~factorise.models.baseline.Baseline` gets precision@10 = 0.08,
    NDCG@10 = 0.08 (threshold 4). Compare models, not numbers across
    protocols.
``"test"``
    Only the user's own test items. This is the easier protocol many papers
    and libraries use (it never asks the model to find the needles in the
    whole catalogue, only to order a handful of items the user is known to
    have rated); its numbers are much higher (the same Baseline: precision@10
    = 0.70, NDCG@10 = 0.84) and not comparable with ``"unrated"``.

Items are ranked by the model's unclipped score ``mu + b_u + b_i + p_u . q_i``
(as :meth:`~factorise.models.RatingModel.recommend` does), so clipping to the
rating range creates no ties; exact ties go to the item with the smaller raw
id. An unknown user is ranked by ``mu + b_i`` with nothing excluded, an
unknown item (``"test"`` only) by ``mu + b_u``, as in :meth:`predict`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import numpy as np

from factorise.data import Ratings
from factorise.evaluation._split import as_ratings
from factorise.kernels import ratings as rk

__all__ = ["RankingMetrics", "ranking_metrics", "precision_at_k", "recall_at_k", "ndcg_at_k"]

Candidates = Literal["unrated", "test"]
_CANDIDATES = ("unrated", "test")
#: Score matrix cells computed at once in the "unrated" protocol (32 MiB of float64).
_BATCH_CELLS = 1 << 22


class RankingMetrics(NamedTuple):
    """Top-k metrics averaged over the users with a relevant test item.

    Attributes
    ----------
    precision, recall, ndcg : float
        Means over the evaluated users.
    n_users : int
        Users evaluated (at least one test rating ``>= threshold``).
    k : int
        List length.
    """

    precision: float
    recall: float
    ndcg: float
    n_users: int
    k: int


class _UserHits(NamedTuple):
    """Per evaluated user: relevant count, candidate count, positions of relevant hits."""

    n_relevant: np.ndarray  # (U,) int64
    n_candidates: np.ndarray  # (U,) int64
    hit_user: np.ndarray  # row in 0..U-1 of each relevant item placed in the top max(k)
    hit_position: np.ndarray  # its 0-based position


def _check_k(k: object, name: str = "k") -> int:
    rule = f"`{name}` must be an integer >= 1"
    if not isinstance(k, numbers.Integral) or isinstance(k, (bool, np.bool_)):
        raise TypeError(f"{rule}; got {k!r} of type {type(k).__name__}")
    if int(k) < 1:
        raise ValueError(f"{rule}; got {k!r}")
    return int(k)


def _check_threshold(threshold: object) -> float:
    rule = "`threshold` must be a finite real number (a rating >= threshold is relevant)"
    if not isinstance(threshold, numbers.Real) or isinstance(threshold, (bool, np.bool_)):
        raise TypeError(f"{rule}; got {threshold!r} of type {type(threshold).__name__}")
    value = float(threshold)
    if not math.isfinite(value):
        raise ValueError(f"{rule}; got {threshold!r}")
    return value


def _check_candidates(candidates: object) -> str:
    if candidates not in _CANDIDATES:
        raise ValueError(f"`candidates` must be one of {list(_CANDIDATES)}; got {candidates!r}")
    return str(candidates)


def _check_model(model: Any) -> None:
    from factorise.models import RatingModel  # evaluation sits above the models

    if not isinstance(model, RatingModel):
        raise TypeError(f"`model` must be a fitted factorise RatingModel; got {type(model).__name__}")
    model._check_fitted()


def _group_starts(rows: np.ndarray, n_rows: int) -> np.ndarray:
    """Start offset of each row in an array sorted by row."""
    starts = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=starts[1:])
    return starts


def _hits_unrated(
    model: Any, test: Ratings, eval_users: np.ndarray, rel_rows: np.ndarray, rel_items: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Full-catalogue ranking: candidates are the model's items not rated in training."""
    n_eval = eval_users.shape[0]
    model_users = model.user_ids_.index(test.user_ids.raw(eval_users))
    model_items = model.item_ids_.index(test.item_ids.raw(rel_items))
    n_items = len(model.item_ids_)
    mu = float(model.global_mean_)
    base = mu + model.item_bias_.astype(np.float64)
    user_bias = model.user_bias_.astype(np.float64)
    Qt = model.item_factors_.astype(np.float64).T
    indptr, rated = model._rated_indptr, model._rated_items
    # relevant (row, model item) pairs, sorted by row, for the per-batch relevance matrix
    known_item = model_items >= 0
    pair_rows, pair_items = rel_rows[known_item], model_items[known_item]
    pair_starts = _group_starts(pair_rows, n_eval)

    n_candidates = np.zeros(n_eval, dtype=np.int64)
    hit_user, hit_position = [], []
    batch = max(1, _BATCH_CELLS // max(n_items, 1))
    top = min(k, n_items)
    for b0 in range(0, n_eval, batch):
        b1 = min(n_eval, b0 + batch)
        users = model_users[b0:b1]
        scores = np.empty((b1 - b0, n_items), dtype=np.float64)
        scores[:] = base
        known = np.flatnonzero(users >= 0)
        if known.size:
            u = users[known]
            scores[known] += user_bias[u][:, None]
            scores[known] += model.user_factors_[u].astype(np.float64) @ Qt
            counts = indptr[u + 1] - indptr[u]
            ex_rows = np.repeat(known, counts)
            ex_cols = np.concatenate([rated[indptr[x] : indptr[x + 1]] for x in u] + [rated[:0]])
            scores[ex_rows, ex_cols] = -np.inf
        finite = np.isfinite(scores)
        n_candidates[b0:b1] = finite.sum(axis=1)
        if top == 0:
            continue
        # the top-k per row, exactly: everything >= the k-th largest score, then
        # sorted by (row, score descending, item ascending) and cut at k
        if top < n_items:
            kth = -np.partition(-scores, top - 1, axis=1)[:, top - 1]
            selected = (scores >= kth[:, None]) & finite
        else:
            selected = finite
        rows, cols = np.nonzero(selected)
        order = np.lexsort((cols, -scores[rows, cols], rows))
        rows, cols = rows[order], cols[order]
        position = np.arange(rows.shape[0]) - _group_starts(rows, b1 - b0)[rows]
        keep = position < k
        rows, cols, position = rows[keep], cols[keep], position[keep]
        relevant = np.zeros((b1 - b0, n_items), dtype=bool)
        lo, hi = pair_starts[b0], pair_starts[b1]
        relevant[pair_rows[lo:hi] - b0, pair_items[lo:hi]] = True
        is_hit = relevant[rows, cols]
        hit_user.append(rows[is_hit] + b0)
        hit_position.append(position[is_hit])
    empty = np.empty(0, dtype=np.int64)
    return (
        n_candidates,
        np.concatenate(hit_user) if hit_user else empty,
        np.concatenate(hit_position) if hit_position else empty,
    )


def _hits_test(
    model: Any, test: Ratings, row_of_user: np.ndarray, relevant: np.ndarray, n_eval: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rank only each user's test items."""
    mask = row_of_user[test.users] >= 0
    rows = row_of_user[test.users[mask]]
    items = test.items[mask]
    is_relevant = relevant[mask]
    model_users = model.user_ids_.index(test.user_ids.raw(test.users[mask]))
    model_items = model.item_ids_.index(test.item_ids.raw(items))
    scores = np.empty(rows.shape[0], dtype=np.float64)
    rk.predict_pairs(
        model_users,
        model_items,
        float(model.global_mean_),
        model.user_bias_,
        model.item_bias_,
        model.user_factors_,
        model.item_factors_,
        scores,
    )
    order = np.lexsort((items, -scores, rows))
    rows, is_relevant = rows[order], is_relevant[order]
    starts = _group_starts(rows, n_eval)
    position = np.arange(rows.shape[0]) - starts[rows]
    n_candidates = np.diff(starts)
    return n_candidates, rows[is_relevant], position[is_relevant]


def _user_hits(model: Any, test: Ratings, threshold: float, candidates: str, k: int) -> _UserHits:
    if len(test) == 0:
        raise ValueError("`test` must hold at least one rating; got none")
    relevant = test.values >= threshold
    if not relevant.any():
        low, high = test.rating_range
        raise ValueError(
            f"no test rating is >= `threshold` = {threshold:g} (test ratings range from {low:g} "
            f"to {high:g}), so no user has a relevant item and ranking metrics are undefined"
        )
    eval_users, rel_rows = np.unique(test.users[relevant], return_inverse=True)
    rel_rows = rel_rows.reshape(-1).astype(np.int64)
    n_eval = eval_users.shape[0]
    n_relevant = np.bincount(rel_rows, minlength=n_eval).astype(np.int64)
    if candidates == "unrated":
        # relevant pairs grouped by row (np.unique's inverse keeps the test order)
        order = np.argsort(rel_rows, kind="stable")
        n_cand, hit_user, hit_pos = _hits_unrated(
            model, test, eval_users, rel_rows[order], test.items[relevant][order], k
        )
    else:
        row_of_user = np.full(test.n_users, -1, dtype=np.int64)
        row_of_user[eval_users] = np.arange(n_eval)
        n_cand, hit_user, hit_pos = _hits_test(model, test, row_of_user, relevant, n_eval)
    return _UserHits(n_relevant, n_cand, hit_user, hit_pos)


def _metrics_at(hits: _UserHits, k: int) -> RankingMetrics:
    """Average precision, recall and NDCG at ``k`` from the per-user hits."""
    n_eval = hits.n_relevant.shape[0]
    in_top = hits.hit_position < k
    users, positions = hits.hit_user[in_top], hits.hit_position[in_top]
    discount = 1.0 / np.log2(np.arange(k) + 2.0)
    n_hits = np.bincount(users, minlength=n_eval)
    dcg = np.bincount(users, weights=discount[positions], minlength=n_eval)
    ideal = np.concatenate([[0.0], np.cumsum(discount)])[np.minimum(k, hits.n_relevant)]
    length = np.minimum(k, hits.n_candidates)
    precision = np.divide(n_hits, length, out=np.zeros(n_eval), where=length > 0)
    recall = n_hits / hits.n_relevant
    ndcg = dcg / ideal
    return RankingMetrics(
        precision=float(precision.mean()),
        recall=float(recall.mean()),
        ndcg=float(ndcg.mean()),
        n_users=int(n_eval),
        k=k,
    )


def ranking_metrics_at(
    model: Any,
    test: Any,
    ks: Sequence[int],
    *,
    threshold: float = 4.0,
    candidates: Candidates = "unrated",
) -> dict[int, RankingMetrics]:
    """:func:`ranking_metrics` for several list lengths, ranking once (at the largest)."""
    _check_model(model)
    test = as_ratings(test, "test")
    ks = [_check_k(k, "ks") for k in ks]
    if not ks:
        raise ValueError("`ks` must hold at least one list length; got none")
    threshold = _check_threshold(threshold)
    candidates = _check_candidates(candidates)  # type: ignore[assignment]
    hits = _user_hits(model, test, threshold, candidates, max(ks))
    return {k: _metrics_at(hits, k) for k in ks}


def ranking_metrics(
    model: Any,
    test: Any,
    k: int = 10,
    *,
    threshold: float = 4.0,
    candidates: Candidates = "unrated",
) -> RankingMetrics:
    """Precision, recall and NDCG at ``k`` in one ranking pass.

    See the module docstring (:mod:`factorise.evaluation._ranking`) for the
    exact definitions.

    Parameters
    ----------
    model : RatingModel
        A fitted model.
    test : Ratings
        Held-out ratings; a user's relevant items are those rated
        ``>= threshold``.
    k : int, default 10
        List length, ``>= 1``.
    threshold : float, default 4.0
        Relevance threshold on the test ratings (4 of 5 stars: "liked").
    candidates : {"unrated", "test"}, default "unrated"
        What is ranked for each user. ``"unrated"``: every item in the
        model's training catalogue that the user did not rate in training
        (full-catalogue ranking, the realistic protocol). ``"test"``: only
        the user's own test items (the easier protocol of many papers; much
        higher numbers, not comparable with ``"unrated"``).

    Returns
    -------
    RankingMetrics
        ``(precision, recall, ndcg, n_users, k)``, averaged over the users
        with at least one relevant test item. Binary relevance; precision
        divides by the list length ``min(k, number of candidates)``.

    Raises
    ------
    ValueError
        If no test rating reaches ``threshold`` (the metrics are undefined),
        or an argument is out of range.
    """
    return ranking_metrics_at(model, test, [_check_k(k)], threshold=threshold, candidates=candidates)[int(k)]


def precision_at_k(
    model: Any, test: Any, k: int = 10, *, threshold: float = 4.0, candidates: Candidates = "unrated"
) -> float:
    """Mean fraction of the top-``k`` list that is relevant; see :func:`ranking_metrics`.

    With ``candidates="unrated"`` the whole unrated catalogue is ranked; with
    ``"test"`` only the user's test items (the easier protocol).
    """
    return ranking_metrics(model, test, k, threshold=threshold, candidates=candidates).precision


def recall_at_k(
    model: Any, test: Any, k: int = 10, *, threshold: float = 4.0, candidates: Candidates = "unrated"
) -> float:
    """Mean fraction of the relevant test items found in the top ``k``; see :func:`ranking_metrics`.

    With ``candidates="unrated"`` the whole unrated catalogue is ranked; with
    ``"test"`` only the user's test items (the easier protocol).
    """
    return ranking_metrics(model, test, k, threshold=threshold, candidates=candidates).recall


def ndcg_at_k(
    model: Any, test: Any, k: int = 10, *, threshold: float = 4.0, candidates: Candidates = "unrated"
) -> float:
    """Mean normalised discounted cumulative gain at ``k`` (binary relevance); see :func:`ranking_metrics`.

    With ``candidates="unrated"`` the whole unrated catalogue is ranked; with
    ``"test"`` only the user's test items (the easier protocol).
    """
    return ranking_metrics(model, test, k, threshold=threshold, candidates=candidates).ndcg
