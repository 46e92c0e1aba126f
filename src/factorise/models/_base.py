"""The interface every rating model shares: fit, predict, recommend, save, load.

A rating model predicts ``mu + b_u + b_i + p_u . q_i`` (global mean, user and
item biases, user and item factors), clipped to the rating range seen in
training. Unknown users or items fall back to the global mean plus the biases
that are known: an unknown user gets ``mu + b_i``, an unknown item
``mu + b_u``, both unknown ``mu``.

A subclass supplies four hooks -- :meth:`_validate_params` (data-free checks
of its own parameters), :meth:`_check_params` (checks against the data),
:meth:`_initialize` and :meth:`_step` -- and the base class runs the loop:
per-step history (train RMSE -- over a fixed random sample of 1,000,000
ratings when there are more -- and validation RMSE when a validation set is
given), early stopping on validation with the best state restored, a
callback, divergence checks. Fitted state is plain arrays, so other engines
(GPU, Spark) can produce the same models.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from factorise import __version__
from factorise._pages import empty_streamed
from factorise._threads import check_n_threads, parallel_section
from factorise._validation import (
    check_non_negative_int,
    check_positive_int,
    check_random_state,
    data_scale_problem,
)
from factorise.data import IdMap, Ratings
from factorise.data._estimate import held_ratings_memory
from factorise.exceptions import DivergenceError
from factorise.io import atomic_write
from factorise.models._file import FORMAT_NAME, FORMAT_VERSION, load_model
from factorise.kernels import grouping
from factorise.kernels import ratings as rk

__all__ = ["RatingModel", "TrainData", "Recommendations", "load_model", "FORMAT_VERSION"]

logger = logging.getLogger(__name__)


#: Above this many training ratings, ``history_``'s train RMSE is that of a fixed random sample
#: of this many (see :func:`_train_probe`).
TRAIN_RMSE_SAMPLE = 1_000_000

#: Bytes of the fixed train-RMSE sample (int32 user, int32 item, float32 value, int64 position).
_PROBE_BYTES = 20 * TRAIN_RMSE_SAMPLE

#: Factor applied to each model's own fit memory (:meth:`RatingModel._fit_memory`) in
#: :meth:`RatingModel.estimate_fit_memory`: the margin over what ``benchmarks/memory.py`` measured.
FIT_MEMORY_MARGIN = 1.1

#: Ratings from which the per-step RMSE is summed on the model's threads.
_PARALLEL_RMSE_MIN = 200_000

#: Model classes by name, filled by :meth:`RatingModel.__init_subclass__`.
_REGISTRY: dict[str, type[RatingModel]] = {}

EpochCallback = Callable[[int, dict[str, float]], Any]


class Recommendations(NamedTuple):
    """Top items for one user, best first.

    The items are ranked by ``ranking_scores``, the model's unclipped score
    ``mu + b_u + b_i + p_u . q_i``; ``scores`` are the same predictions
    clipped to the training rating range, as :meth:`RatingModel.predict`
    returns them. Where many items score above the top of the scale their
    ``scores`` tie at the maximum while ``ranking_scores`` still order them.

    Attributes
    ----------
    items : numpy.ndarray
        Raw item ids, best first.
    scores : numpy.ndarray of float64
        Predicted ratings, clipped to the training range (what ``predict``
        gives for these pairs).
    ranking_scores : numpy.ndarray of float64
        The unclipped scores the items are ranked by (descending).
    """

    items: np.ndarray
    scores: np.ndarray
    ranking_scores: np.ndarray


@dataclass
class TrainData:
    """Training ratings as the kernels see them (indices, float32 values).

    Attributes
    ----------
    users, items : numpy.ndarray of int32
    values : numpy.ndarray of float32
    n_users, n_items : int
    global_mean : float
    """

    users: np.ndarray
    items: np.ndarray
    values: np.ndarray
    n_users: int
    n_items: int
    global_mean: float
    _by_user: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    _by_item: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    #: The :class:`Ratings` whose arrays hold these ratings (the caller's, and its compacted form):
    #: a model that reorders the ratings in place (``BiasedMF(block_copy="in-place")``) reorders
    #: all of their arrays alike, so that each stays the same ratings.
    holders: tuple[Ratings, ...] = ()

    def by_user(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSR view ``(indptr, items, values)``: user ``u``'s ratings at ``indptr[u]:indptr[u+1]``."""
        if self._by_user is None:
            self._by_user = _group(self.users, self.items, self.values, self.n_users)
        return self._by_user

    def by_item(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """CSC view ``(indptr, users, values)``: item ``i``'s ratings at ``indptr[i]:indptr[i+1]``."""
        if self._by_item is None:
            self._by_item = _group(self.items, self.users, self.values, self.n_items)
        return self._by_item


def _indptr(keys: np.ndarray, n: int) -> np.ndarray:
    indptr = np.empty(n + 1, dtype=np.int64)
    grouping.group_counts(keys, n, indptr)
    return indptr


def _grouped(keys: np.ndarray, others: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    out = empty_streamed(others.shape[0], others.dtype)  # written once, on small pages (factorise._pages)
    grouping.group_fill(keys, others, indptr, out, np.empty(indptr.shape[0] - 1, dtype=np.int64))
    return out


#: Ratings from which the rated-items lists are grouped on the model's threads.
_PARALLEL_GROUP_MIN = 1 << 20


def _rated_lists(users: np.ndarray, items: np.ndarray, n_users: int, n_threads: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, items grouped by user)``, the rated-items lists of ``recommend``, on ``n_threads`` threads.

    The stable counting sort of :func:`_grouped`, in chunks (one a thread) when
    the ratings are many and the per-chunk counts (8 bytes a user a chunk) are
    small beside them; its output is the same either way (a stable sort's is
    unique), so the model does not depend on the thread count.
    """
    n = users.shape[0]
    if n_threads <= 1 or n < _PARALLEL_GROUP_MIN or n_threads * n_users > n:
        indptr = _indptr(users, n_users)
        return indptr, _grouped(users, items, indptr)
    indptr = np.empty(n_users + 1, dtype=np.int64)
    out = empty_streamed(n, items.dtype)
    with parallel_section(n_threads):
        starts = grouping.group_chunk_starts(users, n_users, n_threads, indptr)
        grouping.group_fill_chunked(users, items, starts, out)
    return indptr, out


def _group(keys: np.ndarray, others: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, ...]:
    """CSR-style grouping by a stable counting sort, into int32/float32 arrays (no int64 order)."""
    indptr = _indptr(keys, n)
    return indptr, _grouped(keys, others, indptr), _grouped(keys, values, indptr)


def probe_positions(n: int, rng: np.random.Generator) -> np.ndarray:
    """The sorted positions of :func:`_train_probe`'s sample of ``n > TRAIN_RMSE_SAMPLE`` ratings (one draw)."""
    size = TRAIN_RMSE_SAMPLE
    pick = ((np.arange(size, dtype=np.float64) + rng.random(size)) * (n / size)).astype(np.int64)
    np.minimum(pick, n - 1, out=pick)  # (the product can round up to n for the last stretch)
    return pick


def _train_probe(data: TrainData, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ratings the per-step train RMSE is computed on: all, or a fixed sample of large data.

    Past :data:`TRAIN_RMSE_SAMPLE` ratings, a sample of that many, drawn once
    per fit, stands in for the training set: its RMSE is within about
    ``1 / sqrt(2 * TRAIN_RMSE_SAMPLE)`` (0.07%) of the exact figure, at a
    fraction of the cost of a pass over 100 million ratings every step.

    The sample is stratified: the ratings are cut into ``S`` equal stretches
    and one position is drawn uniformly in each, ``floor((j + U_j) * n / S)``
    for ``U_j`` uniform on [0, 1). Every rating is then drawn ``S / n`` times
    on average, so the mean squared error of the sample estimates the
    training set's without bias, with no more variance than independent
    draws (less where neighbouring ratings are alike, as in files sorted by
    user), and the positions come out in increasing order without a sort.
    """
    n = data.values.shape[0]
    if n <= TRAIN_RMSE_SAMPLE:
        return data.users, data.items, data.values
    size = TRAIN_RMSE_SAMPLE
    pick = probe_positions(n, rng)
    sample = tuple(empty_streamed(size, a.dtype) for a in (data.users, data.items, data.values))
    for source, target in zip((data.users, data.items, data.values), sample, strict=True):
        np.take(source, pick, out=target)
    return sample  # type: ignore[return-value]


def as_training_ratings(data: Any, name: str = "ratings") -> Ratings:
    """Accept a :class:`Ratings` or anything :func:`factorise.data.as_ratings` reads."""
    if isinstance(data, Ratings):
        return data
    from factorise.data import as_ratings  # the readers; imported late to keep layers apart

    return as_ratings(data)


class RatingModel:
    """Base class of the rating models (see the module docstring).

    Subclasses list their constructor parameters in ``_param_names`` and
    implement ``_validate_params``, ``_check_params``, ``_initialize`` and
    ``_step``.
    """

    _param_names: ClassVar[tuple[str, ...]] = ()
    #: Name of the parameter giving the number of steps (epochs or iterations).
    _steps_param: ClassVar[str] = "n_epochs"

    # fitted state (set by fit or load)
    global_mean_: float
    user_bias_: np.ndarray
    item_bias_: np.ndarray
    user_factors_: np.ndarray
    item_factors_: np.ndarray
    user_ids_: IdMap
    item_ids_: IdMap
    rating_range_: tuple[float, float]
    history_: list[dict[str, float]]
    n_epochs_: int
    _rated_indptr: np.ndarray
    _rated_items: np.ndarray

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.__name__] = cls

    # ----------------------------------------------------------------- params
    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, by name."""
        return {name: getattr(self, name) for name in self._param_names}

    def set_params(self, **params: Any) -> RatingModel:
        """Set constructor parameters; return ``self``."""
        for name, value in params.items():
            if name not in self._param_names:
                raise ValueError(
                    f"unknown parameter {name!r} for {type(self).__name__}; "
                    f"expected one of {list(self._param_names)}"
                )
            setattr(self, name, value)
        return self

    def clone(self) -> RatingModel:
        """A new, unfitted model with the same parameters."""
        return type(self)(**self.get_params())

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def validate_params(self) -> RatingModel:
        """Check every constructor parameter without looking at any data; return ``self``.

        Checks the type and range of each parameter and raises with a message
        that names the parameter, the rule and the value, e.g. "`rank` must be
        an integer >= 1; got 'abc' of type str". :meth:`fit` calls it first;
        callers that build a model from user input (the command line) call it
        before reading any data. The number of epochs or iterations must be
        at least 1 (a fit of none would have no history). Checks that need
        the data (``rank <= min(n_users, n_items)``) are made by :meth:`fit`.

        Returns
        -------
        self

        Raises
        ------
        TypeError
            A parameter of the wrong type.
        ValueError
            A parameter out of range.
        """
        self._check_common_params(warn=True)
        self._validate_params()
        return self

    def _check_common_params(self, *, warn: bool) -> None:
        """The parameters several models share: rank, steps, patience, seed, threads."""
        names = self._param_names
        if "rank" in names:
            check_positive_int(self.rank, "rank")  # type: ignore[attr-defined]
        check_positive_int(getattr(self, self._steps_param), self._steps_param)
        if "patience" in names and self.patience is not None:  # type: ignore[attr-defined]
            check_non_negative_int(self.patience, "patience")  # type: ignore[attr-defined]
        if "random_state" in names:
            state = self.random_state  # type: ignore[attr-defined]
            if not isinstance(state, np.random.Generator):  # a Generator is used as given: no draw
                check_random_state(state)
        if "n_threads" in names:  # warn=False for a loaded model: another machine's count is no news
            self._threads = check_n_threads(self.n_threads, warn=warn)  # type: ignore[attr-defined]

    # ------------------------------------------------------------- subclasses
    def _validate_params(self) -> None:
        """Check the model's own parameters without data (raise on error); none beyond the shared ones here."""

    def _check_params(self, data: TrainData) -> None:
        """Validate the constructor parameters against the data (raise on error)."""

    def _divergence_advice(self) -> str:
        """What to change when the fit diverges on data of ordinary scale (override)."""
        return "try a larger regularization"

    def _factor_columns(self) -> int:
        """Columns of the fitted factor matrices (the rank; a model that keeps more overrides it)."""
        return int(self.rank) if "rank" in self._param_names else 0  # type: ignore[attr-defined]

    def _compute_dtype(self) -> np.dtype:
        """The dtype the fitted factors are held in (its range bounds the data's scale)."""
        return np.dtype(np.float32)

    def _divergence(self, data: TrainData, step: int, what: str) -> DivergenceError:
        """The error for a fit that went non-finite at ``step``: the data's scale, or the advice."""
        values = data.values
        largest = float(np.max(np.abs(values))) if values.shape[0] else 0.0
        scale = data_scale_problem(largest, self._compute_dtype(), values.shape[0], name="ratings")
        name = type(self).__name__
        if scale is not None:
            return DivergenceError(f"{name} diverged at step {step}: {what}; {scale}")
        return DivergenceError(f"{name} diverged at step {step}: {what}; {self._divergence_advice()}")

    # ----------------------------------------------------------------- memory
    def estimate_fit_memory(self, n_ratings: int, n_users: int, n_items: int) -> int:
        """An upper bound on the peak resident set of a process that holds these ratings and fits this model.

        The whole process is counted: the runtime (interpreter, NumPy,
        numba, pyarrow), the ratings held after reading
        (:func:`factorise.data._estimate.held_ratings_memory`), and the fit's
        own arrays for the current parameters (rank, dtype, patience, ...),
        the latter with a margin of :data:`FIT_MEMORY_MARGIN`. A validation
        set is not included. ``benchmarks/memory.py`` measures the peak of
        ``factorise fit`` beside this estimate for every model on three sizes
        (the rule: the estimate is at least the measured peak).

        Parameters
        ----------
        n_ratings : int
            Training ratings.
        n_users, n_items : int
            Distinct users and items among them.

        Returns
        -------
        int
            Bytes.

        Raises
        ------
        TypeError, ValueError
            Invalid parameters (as :meth:`validate_params`) or counts.
        """
        self._check_common_params(warn=False)  # validate_params has warned already, if at all
        self._validate_params()
        held = held_ratings_memory(n_ratings, n_users, n_items)
        n, m, i = int(n_ratings), int(n_users), int(n_items)
        own = self._fit_memory(n, m, i)
        probe = _PROBE_BYTES if n > TRAIN_RMSE_SAMPLE else 0
        rated = 4 * n + 8 * (m + 1)  # the rated items kept for recommend
        return held + int(FIT_MEMORY_MARGIN * (own + probe + rated))

    def _fit_memory(self, n_ratings: int, n_users: int, n_items: int) -> int:
        """Peak bytes of the fit's own arrays and temporaries, beyond the held ratings (override)."""
        raise NotImplementedError

    def _factors_finite(self) -> bool:
        return bool(
            np.isfinite(self.user_bias_).all()
            and np.isfinite(self.item_bias_).all()
            and np.isfinite(self.user_factors_).all()
            and np.isfinite(self.item_factors_).all()
        )

    def _initialize(self, data: TrainData, rng: np.random.Generator) -> None:
        """Set the initial ``user_bias_``, ``item_bias_``, ``user_factors_``, ``item_factors_``."""
        raise NotImplementedError

    def _step(self, data: TrainData, step: int, rng: np.random.Generator) -> bool:
        """Run one epoch or iteration; return True when converged (stop early)."""
        raise NotImplementedError

    def _extra_history(self) -> dict[str, float]:
        """Model-specific figures to record beside the RMSEs (override)."""
        return {}

    def _finish(self) -> None:
        """Release fit-time scratch after the last step (override)."""

    # -------------------------------------------------------------------- fit
    def fit(
        self,
        ratings: Any,
        *,
        validation: Any = None,
        callback: EpochCallback | None = None,
    ) -> RatingModel:
        """Fit the model to ratings.

        Parameters
        ----------
        ratings : Ratings, path, pandas.DataFrame, scipy.sparse matrix or ndarray
            Training ratings (anything :func:`factorise.data.as_ratings` reads).
        validation : same types as ``ratings``, optional
            Held-out ratings: their RMSE is recorded in ``history_`` each step,
            and training stops early when it has not improved for ``patience``
            steps (the best state is restored).
        callback : callable, optional
            ``callback(step, record)`` after every step, with ``record`` the
            new entry of ``history_``.

        Returns
        -------
        self

        Raises
        ------
        TypeError, ValueError
            Invalid parameters (:meth:`validate_params`) or data.
        factorise.DivergenceError
            If the biases or factors become NaN or infinite; the message says
            whether the data's scale (too large for the dtype's arithmetic)
            or the model's settings are the cause. No NaN factors are kept.
        """
        self.validate_params()
        given = as_training_ratings(ratings)
        train = given.compact()
        data = TrainData(
            users=np.ascontiguousarray(train.users, dtype=np.int32),
            items=np.ascontiguousarray(train.items, dtype=np.int32),
            values=np.ascontiguousarray(train.values, dtype=np.float32),
            n_users=train.n_users,
            n_items=train.n_items,
            global_mean=float(np.mean(train.values, dtype=np.float64)),
            holders=(given,) if train is given else (given, train),
        )
        self._check_params(data)
        n_steps = int(getattr(self, self._steps_param))
        patience = getattr(self, "patience", None)
        rng = check_random_state(getattr(self, "random_state", None))

        self.user_ids_, self.item_ids_ = train.user_ids, train.item_ids
        self.global_mean_ = data.global_mean
        self.rating_range_ = train.rating_range
        valid = None
        if validation is not None:
            v = as_training_ratings(validation, "validation")
            valid = (
                self.user_ids_.index(v.raw_users),
                self.item_ids_.index(v.raw_items),
                np.ascontiguousarray(v.values, dtype=np.float32),
            )
        try:
            self._run(data, rng, n_steps, patience, valid, callback)
        except Exception:  # a diverged or failed fit leaves no NaN or half-fitted factors behind
            self._drop_factors()
            raise
        self.n_epochs_ = len(self.history_)
        if data._by_user is not None:
            self._rated_indptr, self._rated_items = data._by_user[0], data._by_user[1]
        else:  # only the items are needed, not the values
            self._rated_indptr, self._rated_items = _rated_lists(
                data.users, data.items, data.n_users, int(getattr(self, "_threads", 1))
            )
        return self

    def _run(
        self,
        data: TrainData,
        rng: np.random.Generator,
        n_steps: int,
        patience: int | None,
        valid: tuple[np.ndarray, np.ndarray, np.ndarray] | None,
        callback: EpochCallback | None,
    ) -> None:
        """The fit's loop: initialise, step, record, stop early; raise DivergenceError on NaN/inf."""
        self._early_probe: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._initialize(data, rng)
        # a model that reorders the ratings draws the sample in _initialize, before it does, at the
        # same point of the random stream as here: the same sample either way
        train_probe = self._early_probe if self._early_probe is not None else _train_probe(data, rng)
        self._early_probe = None
        self.history_ = []
        best_rmse, best_state, since_best = math.inf, None, 0
        for step in range(1, n_steps + 1):
            converged = self._step(data, step, rng)
            record: dict[str, float] = {"epoch": step}
            record["train_rmse"] = self._rmse(*train_probe)
            if not math.isfinite(record["train_rmse"]):
                raise self._divergence(data, step, "the biases or factors became NaN or infinite")
            if valid is not None:
                record["valid_rmse"] = self._rmse(*valid)
            record.update(self._extra_history())
            self.history_.append(record)
            logger.debug("%s %s", type(self).__name__, record)
            if callback is not None:
                callback(step, record)
            if valid is not None and patience is not None:
                if record["valid_rmse"] < best_rmse - 1e-7:
                    best_rmse, best_state, since_best = record["valid_rmse"], self._state(), 0
                else:
                    since_best += 1
                    if since_best > patience:
                        logger.info("early stop at step %d; best validation RMSE %.5f", step, best_rmse)
                        self._restore(best_state)  # type: ignore[arg-type]
                        break
            if converged:
                break
        self._finish()
        if not self._factors_finite():  # clipped predictions can hide an infinite bias from the RMSE
            raise self._divergence(data, len(self.history_), "the biases or factors became NaN or infinite")

    def _drop_factors(self) -> None:
        """Forget a diverged fit's arrays, so that no NaN factors are left to use."""
        self._finish()
        for name in ("user_bias_", "item_bias_", "user_factors_", "item_factors_"):
            self.__dict__.pop(name, None)

    def _state(self) -> tuple[np.ndarray, ...]:
        return tuple(
            a.copy() for a in (self.user_bias_, self.item_bias_, self.user_factors_, self.item_factors_)
        )

    def _restore(self, state: tuple[np.ndarray, ...]) -> None:
        self.user_bias_, self.item_bias_, self.user_factors_, self.item_factors_ = state

    def _rmse(self, users: np.ndarray, items: np.ndarray, values: np.ndarray) -> float:
        if values.shape[0] == 0:
            return math.nan
        low, high = self.rating_range_
        args = (
            users,
            items,
            values,
            self.global_mean_,
            self.user_bias_,
            self.item_bias_,
            self.user_factors_,
            self.item_factors_,
            low,
            high,
        )
        threads = getattr(self, "_threads", 1)
        if threads > 1 and values.shape[0] >= _PARALLEL_RMSE_MIN:
            with parallel_section(threads):
                sse = rk.sum_squared_error_parallel(*args)
        else:
            sse = rk.sum_squared_error(*args)
        return math.sqrt(sse / values.shape[0])

    # ---------------------------------------------------------------- predict
    def _check_fitted(self) -> None:
        if not hasattr(self, "user_factors_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet: call fit() or load() first")

    def predict(self, users: Any, items: Any) -> np.ndarray:
        """Predicted ratings for pairs of raw ids.

        Parameters
        ----------
        users, items : array_like
            Raw user and item ids, one pair per position.

        Returns
        -------
        numpy.ndarray of float64
            Predictions clipped to the training rating range; unknown users or
            items fall back to the global mean plus the known biases.
        """
        self._check_fitted()
        u = np.atleast_1d(self.user_ids_.index(users))
        i = np.atleast_1d(self.item_ids_.index(items))
        if u.shape != i.shape:
            raise ValueError(f"`users` and `items` must have one length; got {u.shape[0]} and {i.shape[0]}")
        return self._predict_indices(u, i)

    def _predict_indices(self, u: np.ndarray, i: np.ndarray) -> np.ndarray:
        out = np.empty(u.shape[0], dtype=np.float64)
        rk.predict_pairs(
            u, i, self.global_mean_, self.user_bias_, self.item_bias_, self.user_factors_, self.item_factors_, out
        )
        return np.clip(out, *self.rating_range_)

    def predict_ratings(self, ratings: Any) -> np.ndarray:
        """Predictions for every (user, item) pair of ``ratings``, in order."""
        r = as_training_ratings(ratings)
        return self.predict(r.raw_users, r.raw_items)

    def recommend(self, user: Any, n: int = 10, *, exclude_rated: bool = True) -> Recommendations:
        """The ``n`` items with the highest predicted rating for ``user``.

        Parameters
        ----------
        user : int or str
            Raw user id. An unknown user gets the items with the highest
            ``mu + b_i`` (no personalisation).
        n : int, default 10
            Number of items.
        exclude_rated : bool, default True
            Leave out items the user rated in training.

        Returns
        -------
        Recommendations
            ``(items, scores, ranking_scores)``, best first: ``scores`` are
            the clipped predicted ratings, ``ranking_scores`` the unclipped
            scores the items are ranked by; fewer than ``n`` items if the
            catalogue runs out.
        """
        self._check_fitted()
        n = check_non_negative_int(n, "n")
        u = int(self.user_ids_.index([user])[0])
        scores = self.global_mean_ + self.item_bias_.astype(np.float64)
        if u >= 0:
            scores = scores + self.user_bias_[u] + self.item_factors_ @ self.user_factors_[u].astype(np.float64)
            if exclude_rated:
                rated = self._rated_items[self._rated_indptr[u] : self._rated_indptr[u + 1]]
                scores[rated] = -np.inf
        else:
            logger.info("user %r unknown: recommending by item bias", user)
        n = min(n, int(np.isfinite(scores).sum()))
        # a stable sort: ties go to the smaller raw item id, so results are reproducible
        top = np.argsort(-scores, kind="stable")[:n]
        ranking = scores[top]
        return Recommendations(self.item_ids_.raw(top), np.clip(ranking, *self.rating_range_), ranking)

    def rated_items(self, user: Any) -> np.ndarray:
        """Raw ids of the items ``user`` rated in training (empty for an unknown user)."""
        self._check_fitted()
        u = int(self.user_ids_.index([user])[0])
        if u < 0:
            return self.item_ids_.ids[:0]
        return self.item_ids_.raw(np.sort(self._rated_items[self._rated_indptr[u] : self._rated_indptr[u + 1]]))

    # ------------------------------------------------------------ persistence
    def save(self, path: str | Path) -> None:
        """Save the fitted model to ``path`` (``.npz`` with JSON metadata; no pickle).

        The file is written to a temporary name and renamed, so a failure never
        leaves a partial file.
        """
        self._check_fitted()
        metadata = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "model": type(self).__name__,
            "params": _jsonable(self.get_params()),
            "global_mean": self.global_mean_,
            "rating_range": list(self.rating_range_),
            "history": self.history_,
            "n_epochs": self.n_epochs_,
            "factorise_version": __version__,
        }
        arrays = {
            "metadata": np.frombuffer(json.dumps(metadata).encode("utf-8"), dtype=np.uint8),
            "user_ids": self.user_ids_.ids,
            "item_ids": self.item_ids_.ids,
            "user_bias": self.user_bias_,
            "item_bias": self.item_bias_,
            "user_factors": self.user_factors_,
            "item_factors": self.item_factors_,
            "rated_indptr": self._rated_indptr,
            "rated_items": self._rated_items,
        }
        with atomic_write(path, "wb") as handle:
            np.savez(handle, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> RatingModel:
        """Load a model saved by :meth:`save` (see :func:`load_model`)."""
        model = load_model(path)
        if cls is not RatingModel and not isinstance(model, cls):
            raise ValueError(f"{path}: holds a {type(model).__name__}, not a {cls.__name__}")
        return model


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in params.items():
        if isinstance(value, np.random.Generator):
            value = None  # a generator cannot be saved; the fit is done
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out
