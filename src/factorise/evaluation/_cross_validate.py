"""Cross-validation of a rating model: fit on each training part, score on its test part."""

from __future__ import annotations

import functools

import logging
import math
import numbers
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from factorise.data import Ratings
from factorise.evaluation._metrics import mae, rmse
from factorise.evaluation._ranking import (
    _check_candidates,
    _check_threshold,
    ranking_metrics_at,
)
from factorise.evaluation._split import KFold, as_ratings

__all__ = ["cross_validate", "CVResult", "DEFAULT_METRICS"]

logger = logging.getLogger(__name__)

#: Metrics :func:`cross_validate` reports unless told otherwise.
DEFAULT_METRICS: tuple[str, ...] = ("rmse", "mae", "precision@10", "recall@10", "ndcg@10")
_ERROR_METRICS = {"rmse": rmse, "mae": mae}
_RANKING = re.compile(r"(precision|recall|ndcg)@([0-9]+)")

FoldCallback = Callable[[int, dict[str, Any]], Any]


def _parse_metrics(metrics: object) -> tuple[tuple[str, ...], list[int]]:
    """Validated metric names and the list lengths the ranking ones need."""
    rule = (
        "`metrics` must be a sequence of names among 'rmse', 'mae', 'precision@K', "
        "'recall@K', 'ndcg@K' (K an integer >= 1)"
    )
    if isinstance(metrics, str) or not isinstance(metrics, Iterable):
        raise TypeError(f"{rule}; got {metrics!r}")
    names = tuple(metrics)
    if not names:
        raise ValueError(f"{rule}; got an empty sequence")
    ks: list[int] = []
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"{rule}; got {name!r} of type {type(name).__name__}")
        if name in _ERROR_METRICS:
            continue
        match = _RANKING.fullmatch(name)
        if match is None or int(match.group(2)) < 1:
            raise ValueError(f"{rule}; got {name!r}")
        ks.append(int(match.group(2)))
    if len(set(names)) != len(names):
        raise ValueError(f"`metrics` must not repeat a name; got {list(names)}")
    return names, sorted(set(ks))


def _jsonable(value: Any) -> Any:
    if isinstance(value, np.random.Generator):
        return repr(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class CVResult:
    """Per-fold and mean results of :func:`cross_validate`.

    Attributes
    ----------
    model : str
        The model's class name.
    params : dict
        Its constructor parameters.
    metrics : tuple of str
        The metric names, in the order asked for.
    folds : tuple of dict
        One row per fold: ``fold`` (1-based), ``n_train``, ``n_test``,
        ``fit_time`` and ``eval_time`` (seconds, wall clock), ``n_epochs``
        (steps the fit ran), each metric, and ``n_ranked_users`` (users with a
        relevant test item) when a ranking metric is asked for.
    threshold : float
        Relevance threshold of the ranking metrics.
    candidates : str
        Candidate protocol of the ranking metrics (``"unrated"`` or ``"test"``).
    histories : tuple of list of dict
        Each fold's fitted ``history_`` (with ``valid_rmse`` the test RMSE when
        ``monitor_test`` was set).
    """

    model: str
    params: dict[str, Any]
    metrics: tuple[str, ...]
    folds: tuple[dict[str, Any], ...]
    threshold: float
    candidates: str
    histories: tuple[list[dict[str, float]], ...] = ()

    @property
    def n_folds(self) -> int:
        """Number of folds."""
        return len(self.folds)

    def _summary_columns(self) -> tuple[str, ...]:
        return (*self.metrics, "fit_time", "eval_time")

    @property
    def mean(self) -> dict[str, float]:
        """Mean over the folds of every metric, ``fit_time`` and ``eval_time``."""
        return {c: float(np.mean([row[c] for row in self.folds])) for c in self._summary_columns()}

    @property
    def std(self) -> dict[str, float]:
        """Standard deviation over the folds (population, ``ddof=0``) of the same columns."""
        return {c: float(np.std([row[c] for row in self.folds])) for c in self._summary_columns()}

    def to_dict(self) -> dict[str, Any]:
        """Everything as plain JSON-serialisable types (``json.dumps`` takes it)."""
        return _jsonable(
            {
                "model": self.model,
                "params": self.params,
                "metrics": list(self.metrics),
                "threshold": self.threshold,
                "candidates": self.candidates,
                "n_folds": self.n_folds,
                "folds": [dict(row) for row in self.folds],
                "mean": self.mean,
                "std": self.std,
            }
        )

    def __str__(self) -> str:
        columns = self._summary_columns()
        header = ["fold", *columns]
        lines = [header]
        for row in self.folds:
            lines.append([str(row["fold"]), *(f"{row[c]:.4f}" for c in columns)])
        mean, std = self.mean, self.std
        lines.append(["mean", *(f"{mean[c]:.4f}" for c in columns)])
        lines.append(["std", *(f"{std[c]:.4f}" for c in columns)])
        widths = [max(len(line[j]) for line in lines) for j in range(len(header))]
        text = [f"{self.model} ({self.n_folds} folds)"]
        text += ["  ".join(cell.rjust(w) for cell, w in zip(line, widths)) for line in lines]
        return "\n".join(text)


def _resolve_folds(data: Any, cv: Any, random_state: Any) -> list[tuple[Ratings, Ratings]]:
    if isinstance(cv, numbers.Integral) and not isinstance(cv, (bool, np.bool_)):
        if data is None:
            raise ValueError("`data` must be given when `cv` is a number of folds; got None")
        return list(KFold(int(cv), shuffle=True, random_state=random_state).split(as_ratings(data, "data")))
    if random_state is not None:
        raise ValueError(
            "`random_state` is only used when `cv` is a number of folds; "
            f"set the seed on the splitter instead (cv={cv!r}, random_state={random_state!r})"
        )
    if callable(getattr(cv, "split", None)) and not isinstance(cv, (str, bytes)):
        if data is None:
            raise ValueError(f"`data` must be given for cv={cv!r} to split; got None")
        return list(cv.split(as_ratings(data, "data")))
    if isinstance(cv, Iterable) and not isinstance(cv, (str, bytes, Ratings)):
        if data is not None:
            raise ValueError(
                "`data` must be None when `cv` supplies its own (train, test) pairs; "
                f"got data={data!r}"
            )
        folds = list(cv)
        for f, pair in enumerate(folds, start=1):
            if not (
                isinstance(pair, tuple)
                and len(pair) == 2
                and all(isinstance(part, Ratings) for part in pair)
            ):
                raise TypeError(f"`cv` must yield (train, test) pairs of Ratings; fold {f} is {pair!r}")
        if not folds:
            raise ValueError("`cv` must yield at least one (train, test) pair; got none")
        return folds
    raise TypeError(
        "`cv` must be a number of folds (int >= 2), a splitter with .split(data) (KFold) or an "
        f"iterable of (train, test) pairs (PredefinedFolds); got {cv!r} of type {type(cv).__name__}"
    )


def cross_validate(
    model: Any,
    data: Any = None,
    *,
    cv: Any = 5,
    metrics: Sequence[str] = DEFAULT_METRICS,
    threshold: float = 4.0,
    candidates: str = "unrated",
    random_state: Any = None,
    callback: FoldCallback | None = None,
    monitor_test: bool = False,
    fit_callback: Callable[[int, int, dict[str, float]], Any] | None = None,
) -> CVResult:
    """Cross-validate a rating model: clone, fit on each training part, score its test part.

    Parameters
    ----------
    model : RatingModel
        The model to evaluate; it is cloned (:meth:`~RatingModel.clone`) for
        every fold and is itself left untouched. Its own ``random_state``
        seeds every clone alike.
    data : Ratings, optional
        The ratings to split when ``cv`` is a number of folds or a splitter;
        must be ``None`` when ``cv`` gives the pairs.
    cv : int, KFold or iterable of (Ratings, Ratings), default 5
        An integer: that many shuffled folds (``KFold(cv, shuffle=True,
        random_state=random_state)``). An object with ``split(data)``: its
        pairs. An iterable of ``(train, test)`` pairs (such as
        :class:`PredefinedFolds` or :func:`movielens_folds`): those, as given.
    metrics : sequence of str, default ("rmse", "mae", "precision@10", "recall@10", "ndcg@10")
        ``"rmse"`` and ``"mae"`` of the (clipped) predictions of the test
        ratings; ``"precision@K"``, ``"recall@K"``, ``"ndcg@K"`` for any
        ``K >= 1`` (see :func:`ranking_metrics`; one ranking pass serves
        them all).
    threshold : float, default 4.0
        Relevance threshold of the ranking metrics.
    candidates : {"unrated", "test"}, default "unrated"
        Candidate protocol of the ranking metrics (see :func:`ranking_metrics`).
    random_state : None, int or numpy.random.Generator
        Seed of the fold assignment when ``cv`` is an integer (an error
        otherwise: seed the splitter instead).
    callback : callable, optional
        ``callback(fold, row)`` after every fold, with ``fold`` 1-based and
        ``row`` that fold's results (see :class:`CVResult`).
    monitor_test : bool, default False
        Record each fold's test RMSE after every epoch in its history (for
        learning curves). It only watches: early stopping is switched off for
        the monitored fit (``patience=None``), so the test part never steers
        training.
    fit_callback : callable, optional
        ``fit_callback(fold, step, record)`` after every step of every fit.

    Returns
    -------
    CVResult

    Raises
    ------
    TypeError, ValueError
        Bad arguments; an empty train or test part; a fold whose test part has
        no rating ``>= threshold`` when a ranking metric is asked for (the
        message names the fold).

    Examples
    --------
    >>> from factorise.evaluation import cross_validate
    >>> from factorise.models.baseline import Baseline
    >>> result = cross_validate(Baseline(), ratings, cv=5, random_state=0)  # doctest: +SKIP
    >>> result.mean["rmse"]  # doctest: +SKIP
    """
    from factorise.models import RatingModel  # evaluation sits above the models

    if not isinstance(model, RatingModel):
        raise TypeError(f"`model` must be a factorise RatingModel; got {type(model).__name__}")
    names, ks = _parse_metrics(metrics)
    threshold = _check_threshold(threshold)
    candidates = _check_candidates(candidates)
    if callback is not None and not callable(callback):
        raise TypeError(f"`callback` must be callable or None; got {callback!r}")
    folds = _resolve_folds(data, cv, random_state)

    rows: list[dict[str, Any]] = []
    histories: list[list[dict[str, float]]] = []
    for f, (train, test) in enumerate(folds, start=1):
        if len(train) == 0 or len(test) == 0:
            raise ValueError(
                f"fold {f}: train and test must not be empty; got {len(train)} and {len(test)} ratings"
            )
        fitted = model.clone()
        watch = None
        if monitor_test:
            watch = test
            if "patience" in fitted.get_params():
                fitted.set_params(patience=None)
        step_callback = None
        if fit_callback is not None:
            step_callback = functools.partial(fit_callback, f)
        start = time.perf_counter()
        fitted.fit(train, validation=watch, callback=step_callback)
        fit_time = time.perf_counter() - start
        start = time.perf_counter()
        row: dict[str, Any] = {"fold": f, "n_train": len(train), "n_test": len(test)}
        scores: dict[str, float] = {}
        if any(name in _ERROR_METRICS for name in names):
            predictions = fitted.predict_ratings(test)
            for name in names:
                if name in _ERROR_METRICS:
                    scores[name] = _ERROR_METRICS[name](test.values, predictions)
        ranked = {}
        if ks:
            try:
                ranked = ranking_metrics_at(fitted, test, ks, threshold=threshold, candidates=candidates)
            except ValueError as exc:
                raise ValueError(f"fold {f}: {exc}") from None
            for name in names:
                if name not in _ERROR_METRICS:
                    kind, k = name.split("@")
                    scores[name] = float(getattr(ranked[int(k)], kind))
        eval_time = time.perf_counter() - start
        row.update(fit_time=fit_time, eval_time=eval_time, n_epochs=int(fitted.n_epochs_))
        row.update((name, scores[name]) for name in names)
        if ks:
            row["n_ranked_users"] = ranked[ks[0]].n_users
        for name in names:
            if not math.isfinite(row[name]):  # pragma: no cover - guarded by the metrics
                raise ValueError(f"fold {f}: {name} is {row[name]}")
        logger.info(
            "fold %d/%d: fit %.2fs, %s",
            f,
            len(folds),
            fit_time,
            ", ".join(f"{name}={row[name]:.4f}" for name in names),
        )
        rows.append(row)
        histories.append(list(fitted.history_))
        if callback is not None:
            callback(f, dict(row))
    return CVResult(
        model=type(model).__name__,
        params=dict(model.get_params()),
        metrics=names,
        folds=tuple(rows),
        threshold=threshold,
        candidates=candidates,
        histories=tuple(histories),
    )
