r"""Biased matrix factorisation of explicit ratings by alternating least squares.

The model predicts ``mu + b_u + b_i + p_u . q_i`` with ``mu`` the global mean
of the training ratings, fixed. ALS minimises

.. math::

    \sum_{(u,i)} (r_{ui} - \mu - b_u - b_i - p_u^T q_i)^2
    + \sum_u n_u^\alpha (\lambda \|p_u\|^2 + \lambda_b b_u^2)
    + \sum_i n_i^\alpha (\lambda \|q_i\|^2 + \lambda_b b_i^2)

where ``n`` is a user's or item's number of training ratings and
``alpha = regularization_exponent``. ``alpha = 1`` is the weighted-lambda
regularisation of Zhou et al. (2008, "Large-scale parallel collaborative
filtering for the Netflix Prize"); ``alpha = 0`` is plain ridge regression.
The default, ``alpha = 0.5``, sits between them: on validation splits of
MovieLens 100K training data it beat both ends at their best ``lambda``
(``benchmarks/tune_als_softimpute.py``). One epoch is a user
half-step -- items fixed, each user's ``[p_u, b_u]`` solved exactly as a
ridge regression on ``[q_i, 1]`` against ``r_ui - mu - b_i`` -- then the
symmetric item half-step. Each half-step is the exact minimiser over its
block, so the objective never increases; it is recorded as ``objective``
(divided by the number of ratings) in ``history_``.

The half-steps run in parallel over rows (:func:`factorise.kernels.als.als_half_step`);
rows are independent, so results do not depend on ``n_threads``.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import numpy as np

from factorise._threads import parallel_section
from factorise._torch import check_device, check_device_memory, torch_device
from factorise._validation import check_non_negative_float, check_positive_float, check_rank
from factorise.kernels.als import als_half_step
from factorise.models._base import RatingModel, TrainData

__all__ = ["ALS"]

logger = logging.getLogger(__name__)


def balanced_bounds(indptr: np.ndarray, rank: int, n_chunks: int) -> np.ndarray:
    """Split rows into ``n_chunks`` contiguous chunks of about equal ALS work.

    A row with ``n`` ratings costs about ``n (k+1)^2 / 2`` to build its system
    and ``(k+1)^3 / 6`` to factorise it.

    Parameters
    ----------
    indptr : numpy.ndarray
        CSR row pointer, length ``n_rows + 1``.
    rank : int
        ``k``.
    n_chunks : int
        Number of chunks (at least 1).

    Returns
    -------
    numpy.ndarray of int64
        ``n_chunks + 1`` non-decreasing row indices from 0 to ``n_rows``.
    """
    d = rank + 1.0
    counts = np.diff(indptr).astype(np.float64)
    cost = counts * d * d / 2.0 + d**3 / 6.0 + 1.0
    cumulative = np.concatenate([[0.0], np.cumsum(cost)])
    targets = cumulative[-1] * np.arange(n_chunks + 1) / n_chunks
    bounds = np.searchsorted(cumulative, targets, side="left").astype(np.int64)
    bounds[0], bounds[-1] = 0, indptr.shape[0] - 1
    return np.maximum.accumulate(bounds)


class ALS(RatingModel):
    """Biased matrix factorisation by alternating least squares (explicit ratings).

    Parameters
    ----------
    rank : int, default 50
        Number of latent factors ``k``; at most ``min(n_users, n_items)``.
    n_epochs : int, default 6
        Number of epochs (>= 1); one epoch is a user half-step then an item
        half-step.
    regularization : float, default 1.2
        ``lambda``, the penalty on the factors (>= 0), multiplied for each
        row by its rating count to the power ``regularization_exponent``.
    bias_regularization : float, default 0.5
        ``lambda_b``, the penalty on the biases (>= 0), scaled the same way.
    regularization_exponent : float, default 0.5
        ``alpha`` (>= 0): each row's penalties are multiplied by its rating
        count to this power; 1 is weighted-lambda (Zhou et al. 2008), 0 plain
        ridge.
    init_std : float, default 0.1
        Standard deviation of the normal initial item factors (> 0). User
        factors and all biases start at zero (the first half-step solves the
        users from the items).
    patience : int or None, default 3
        With a validation set: stop when its RMSE has not improved for this
        many epochs, restoring the best state. ``None`` never stops early.
    random_state : None, int or numpy.random.Generator
        Seed of the initial factors (SPEC 7).
    n_threads : int or None, default None
        Threads for the half-steps; ``None`` uses all cores (numba's
        ``NUMBA_NUM_THREADS``, which also caps larger values); at most
        :data:`factorise._threads.MAX_N_THREADS`, with a
        :class:`~factorise.exceptions.ThreadsWarning` past the cores this
        process may use. Results do not depend on it.
    device : {None, "cpu", "torch-cpu", "cuda", "cuda:N"}, default None
        Where the half-steps run: None or "cpu" the numba kernels on the
        CPU; otherwise the torch engine (:mod:`factorise.torch_engine.als`),
        which solves every row's system in batched calls, in float64 as the
        numba kernel does: the same factors to rounding. The fitted model
        is the same kind of object either way (NumPy factors), and saves,
        loads and predicts the same.

    Raises
    ------
    TypeError, ValueError
        From :meth:`validate_params` (called by :meth:`fit`) for a bad
        parameter; from :meth:`fit` for a singular least-squares system.
    factorise.DivergenceError
        From :meth:`fit` when the factors overflow: the message says whether
        the ratings are too large for float32 factors (rescale them) or
        ``regularization`` should be raised.

    Attributes
    ----------
    user_factors_, item_factors_ : numpy.ndarray of float32
    user_bias_, item_bias_ : numpy.ndarray of float32
    global_mean_ : float
    history_ : list of dict
        Per epoch: ``train_rmse``, ``valid_rmse`` (with validation),
        ``objective`` (the regularised loss above divided by the number of
        training ratings; never increases).

    Notes
    -----
    The defaults were chosen on validation splits of MovieLens 100K training
    data (``benchmarks/tune_als_softimpute.py``): with ``alpha = 0.5`` and
    ``lambda = 1.2`` the validation RMSE bottoms out after 5-6 epochs at rank
    50 and stays within about 0.001 of that up to epoch 20; ranks 10-32 converge
    more slowly to a slightly higher RMSE, rank 100 to the same one at four
    times the cost.
    """

    _param_names: ClassVar[tuple[str, ...]] = (
        "rank",
        "n_epochs",
        "regularization",
        "bias_regularization",
        "regularization_exponent",
        "init_std",
        "patience",
        "random_state",
        "n_threads",
        "device",
    )

    def __init__(
        self,
        *,
        rank: int = 50,
        n_epochs: int = 6,
        regularization: float = 1.2,
        bias_regularization: float = 0.5,
        regularization_exponent: float = 0.5,
        init_std: float = 0.1,
        patience: int | None = 3,
        random_state: Any = None,
        n_threads: int | None = None,
        device: str | None = None,
    ) -> None:
        self.rank = rank
        self.n_epochs = n_epochs
        self.regularization = regularization
        self.bias_regularization = bias_regularization
        self.regularization_exponent = regularization_exponent
        self.init_std = init_std
        self.patience = patience
        self.random_state = random_state
        self.n_threads = n_threads
        self.device = device

    # ------------------------------------------------------------------ hooks
    def _validate_params(self) -> None:
        self._device = check_device(self.device)
        self._lambda = check_non_negative_float(self.regularization, "regularization")
        self._lambda_b = check_non_negative_float(self.bias_regularization, "bias_regularization")
        self._alpha = check_non_negative_float(self.regularization_exponent, "regularization_exponent")
        self._init_std = check_positive_float(self.init_std, "init_std")

    def _check_params(self, data: TrainData) -> None:
        self._rank = check_rank(self.rank, (data.n_users, data.n_items))
        self._solver = None
        if self._device is not None:  # the torch engine: the device is there and the fit fits its memory
            from factorise.torch_engine.als import TorchALS, device_bytes

            device = torch_device(self._device)
            need = device_bytes(data.values.shape[0], data.n_users, data.n_items, self._rank)
            check_device_memory(device, need, f"ALS(rank={self._rank}) on {data.values.shape[0]:,} ratings")
            self._solver = TorchALS(device)

    def _fit_memory(self, n_ratings: int, n_users: int, n_items: int) -> int:
        # per rating: the CSR and CSC copies (int32 index, float32 value each) and their grouping
        # scratch; per row and factor: the float32 factors, the fixed side's float64 copy, the
        # best epoch's copy (patience) and the per-thread solver scratch
        per_row = int(self.rank) * 16 + 96
        per_thread = 8 * (int(self.rank) + 2) ** 2 * 4
        return 32 * n_ratings + per_row * (n_users + n_items) + per_thread * self._threads

    def _divergence_advice(self) -> str:
        return f"try a larger `regularization` (now {self._lambda:g})"

    def _initialize(self, data: TrainData, rng: np.random.Generator) -> None:
        k = self._rank
        self.item_factors_ = (rng.standard_normal((data.n_items, k)) * self._init_std).astype(np.float32)
        self.user_factors_ = np.zeros((data.n_users, k), dtype=np.float32)
        self.user_bias_ = np.zeros(data.n_users, dtype=np.float32)
        self.item_bias_ = np.zeros(data.n_items, dtype=np.float32)
        self._objective = float("nan")
        chunks = self._threads
        self._user_bounds = balanced_bounds(data.by_user()[0], k, chunks)
        self._item_bounds = balanced_bounds(data.by_item()[0], k, chunks)

    def _step(self, data: TrainData, step: int, rng: np.random.Generator) -> bool:
        self._half_step(data, users=True, step=step)
        self._objective = self._half_step(data, users=False, step=step) / data.values.shape[0]
        return False

    def _extra_history(self) -> dict[str, float]:
        return {"objective": self._objective}

    def _finish(self) -> None:
        self._solver = None  # the torch engine's device arrays
    # -------------------------------------------------------------- internals
    def _half_step(self, data: TrainData, *, users: bool, step: int) -> float:
        """Solve one side; return the full objective (not divided by the count)."""
        if users:
            indptr, others, values = data.by_user()
            fixed_f, fixed_b = self.item_factors_, self.item_bias_
            out_f, out_b = self.user_factors_, self.user_bias_
            bounds, side = self._user_bounds, "user"
        else:
            indptr, others, values = data.by_item()
            fixed_f, fixed_b = self.user_factors_, self.user_bias_
            out_f, out_b = self.item_factors_, self.item_bias_
            bounds, side = self._item_bounds, "item"
        row_loss = np.empty(indptr.shape[0] - 1, dtype=np.float64)
        solve = als_half_step if self._solver is None else self._solver.half_step
        with parallel_section(self._threads):
            total = solve(
                indptr,
                others,
                values,
                data.global_mean,
                np.ascontiguousarray(fixed_f, dtype=np.float64),
                np.ascontiguousarray(fixed_b, dtype=np.float64),
                out_f,
                out_b,
                self._lambda,
                self._lambda_b,
                self._alpha,
                bounds,
                row_loss,
            )
        failed = np.flatnonzero(np.isnan(row_loss))
        if failed.size:
            row = int(failed[0])
            count = int(indptr[row + 1] - indptr[row])
            raw = (self.user_ids_ if users else self.item_ids_).raw([row])[0].item()
            raise ValueError(
                f"ALS epoch {step}: the least-squares system of {side} {raw!r} ({count} rating(s), "
                f"{self._rank + 1} unknowns) is singular; use `regularization` > 0 and "
                f"`bias_regularization` > 0 (got {self._lambda} and {self._lambda_b})"
            )
        if not (np.isfinite(out_f).all() and np.isfinite(out_b).all()):
            raise self._divergence(data, step, f"the {side} factors overflowed")
        # add the penalty of the fixed side to get the whole objective
        counts = np.diff(data.by_item()[0] if users else data.by_user()[0]).astype(np.float64)
        scale = counts**self._alpha
        fixed_f64 = fixed_f.astype(np.float64)
        penalty = np.sum(
            scale
            * (
                self._lambda * np.einsum("ij,ij->i", fixed_f64, fixed_f64)
                + self._lambda_b * fixed_b.astype(np.float64) ** 2
            )
        )
        return float(total + penalty)
