"""Biased matrix factorisation trained by stochastic gradient descent (Funk, Koren).

The model predicts ``r_ui ~ mu + b_u + b_i + p_u . q_i`` with ``mu`` the mean
training rating (fixed), ``b_u``/``b_i`` user and item biases and
``p_u``/``q_i`` rank-``k`` factors. Each epoch visits every training rating
once, in a fresh random order, and for each one updates

.. code-block:: text

    e    = r_ui - pred
    b_u += blr_t * (e - reg_bias * b_u)
    b_i += blr_t * (e - reg_bias * b_i)
    p_u += lr_t * (e * q_i - reg * p_u)      # simultaneously, with the
    q_i += lr_t * (e * p_u - reg * q_i)      # old p_u in this line

which is SGD on ``sum (r_ui - pred)^2 + reg * sum_u n_u |p_u|^2 + reg * sum_i
n_i |q_i|^2`` plus the same penalty with ``reg_bias`` on the biases, in the
standardised units described below (``n_u``, ``n_i``: rating counts; the
penalty is applied per visit, so well-rated users and items are regularized
more, which keeps large ranks safe).

**Learning-rate schedule.** ``lr_t = learning_rate * learning_rate_decay **
(t - 1)`` in epoch ``t`` (1-based): a geometric decay, so the total step
budget is bounded by ``learning_rate / (1 - learning_rate_decay)`` and extra
epochs change little once the rate has decayed. The biases follow the same
schedule from their own, smaller rate: ``blr_t = bias_learning_rate *
learning_rate_decay ** (t - 1)``. A bias is a per-user (per-item) mean, which
SGD estimates with noise proportional to the step; a small step keeps that
noise down and leaves the biases of rarely-seen users and items shrunk towards
zero.

**Rating scale.** The updates above are written for ratings in units of their
standard deviation: SGD runs as if on ``z = (r - mu) / sigma`` with ``sigma``
the standard deviation of the training ratings, and the fitted biases and
factors are scaled back (``b = sigma * b_z``, ``p = sqrt(sigma) * p_z``), so
predictions are in rating units. In rating units this is the same update
with ``lr_t / sigma`` and ``reg * sigma`` for the factors (biases unchanged)
and initial factors ``N(0, sigma * init_std^2)``. No copy of the ratings is
made. The effect: the defaults behave alike on 1-5 stars, 1-10 points or
-10..10 scores, and multiplying all ratings by a constant multiplies the
predictions by that constant.

Small initial factors (``init_std = 0.01``) with a decaying rate make SGD
learn the strongest directions first, so the fixed number of epochs acts as
part of the regularization and the number of factors matters little beyond a
few dozen: 128 factors for 16 epochs validated about 0.001 RMSE better than
64 for 20, at 1.6 times the work per fit. Other changes tried on validation
splits of training data (frequency-scaled penalties, biases started from
their exact ridge solution, a ``1/t`` schedule, other rates and penalties)
did not do better; ``benchmarks/tune_sgd.py`` reproduces the evidence.

The sweep itself is the compiled kernel
:func:`factorise.kernels.sgd_ratings.sgd_ratings_epoch`; the epoch loop,
history, early stopping, prediction and persistence come from
:class:`factorise.models.RatingModel`.
"""

from __future__ import annotations

import logging
import math
import numbers
from typing import Any, ClassVar

import numpy as np

from factorise._torch import check_device, check_device_memory, torch_device
from factorise._validation import check_non_negative_float, check_positive_float
from factorise.kernels.ratings import sum_squared_deviation
from factorise.kernels.sgd_ratings import sgd_ratings_epoch
from factorise.models._base import TRAIN_RMSE_SAMPLE, RatingModel, TrainData, _train_probe
from factorise.models._blocks import (
    BlockGrid,
    assign_blocks,
    build_grid,
    resolve_n_blocks,
    sgd_blocks_sweep,
    use_blocks,
)

__all__ = ["INIT_CHUNK_ROWS", "BiasedMF", "initial_factor_chunk", "initial_factors", "rating_scale"]

logger = logging.getLogger(__name__)


def _check_decay(value: object, name: str) -> float:
    rule = f"`{name}` must be a real number with 0 < {name} <= 1"
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{rule}; got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and 0 < value <= 1):
        raise ValueError(f"{rule}; got {value!r}")
    return value


def rating_scale(squared_deviation: float, n_ratings: int, mean: float) -> float:
    """The standard deviation SGD runs in units of: ``sqrt(squared_deviation / n)``, or 1 for constant ratings."""
    sigma = math.sqrt(float(squared_deviation) / max(1, int(n_ratings)))
    return sigma if sigma > 1e-6 * max(1.0, abs(float(mean))) else 1.0


#: Rows of each separately seeded chunk of :func:`initial_factors`.
INIT_CHUNK_ROWS = 1 << 16


def initial_factor_chunk(seed: int, chunk: int, n_rows: int, rank: int) -> np.ndarray:
    """Standard normal float32 rows ``chunk * INIT_CHUNK_ROWS`` up to ``n_rows`` (at most INIT_CHUNK_ROWS of them).

    Chunk ``c`` comes from its own generator, ``numpy.random.default_rng([seed,
    c])``, so any process can draw any chunk: the rows do not depend on who
    draws them or in which order.
    """
    start = chunk * INIT_CHUNK_ROWS
    rows = max(0, min(n_rows, start + INIT_CHUNK_ROWS) - start)
    return np.random.default_rng([seed, chunk]).standard_normal((rows, rank), dtype=np.float32)


def initial_factors(n_rows: int, rank: int, scale: Any, seed: int, dtype: Any) -> np.ndarray:
    """The initial factors of :class:`BiasedMF`: :func:`initial_factor_chunk` rows times ``scale``, in ``dtype``.

    Parameters
    ----------
    n_rows, rank : int
        Shape of the factors.
    scale : numpy floating scalar
        Standard deviation, of the factors' dtype (the product is taken in it).
    seed : int
        Seed of the chunks.
    dtype : numpy dtype
        Of the result.

    Returns
    -------
    numpy.ndarray, shape (n_rows, rank)
    """
    out = np.empty((n_rows, rank), dtype=dtype)
    for chunk in range(-(-n_rows // INIT_CHUNK_ROWS)):
        start = chunk * INIT_CHUNK_ROWS
        block = initial_factor_chunk(seed, chunk, n_rows, rank)
        out[start : start + block.shape[0]] = (block * scale).astype(dtype)
    return out


class BiasedMF(RatingModel):
    """Biased matrix factorisation (``mu + b_u + b_i + p_u . q_i``) fitted by SGD.

    Parameters
    ----------
    rank : int, default 128
        Number of latent factors ``k``; ``1 <= rank <= min(n_users, n_items)``
        (data with fewer than 128 users or items need a smaller rank).
    n_epochs : int, default 16
        Passes over the training ratings, >= 1.
    learning_rate : float, default 0.075
        Step size of the first epoch, > 0, for ratings in units of their
        standard deviation (see the module docstring).
    regularization : float, default 0.07
        L2 penalty on the factors ``p_u``, ``q_i`` (applied per visit), >= 0.
    bias_learning_rate : float, default 0.015
        Step size of the biases in the first epoch, > 0 (same decay).
    bias_regularization : float, default 0.01
        L2 penalty on the biases ``b_u``, ``b_i`` (applied per visit), >= 0.
    learning_rate_decay : float, default 0.88
        Factor applied to the learning rate after every epoch:
        ``lr_t = learning_rate * learning_rate_decay ** (t - 1)``;
        ``0 < learning_rate_decay <= 1`` (1 keeps it constant).
    init_std : float, default 0.01
        Standard deviation of the normal distribution the factors start from
        (mean 0), in standardised units (see the module docstring); the
        biases start at 0.
    patience : int or None, default None
        With a ``validation`` set given to :meth:`fit`, stop when the
        validation RMSE has not improved for ``patience`` epochs and restore
        the best epoch's model. ``None`` disables early stopping (the
        validation RMSE is still recorded in ``history_``).
    random_state : None, int or numpy.random.Generator, default None
        Seed of the initial factors and of the visiting order.
    n_threads : int or None, default None
        Threads of the block-parallel sweep (``None``: all cores; at most
        :data:`factorise._threads.MAX_N_THREADS`, with a
        :class:`~factorise.exceptions.ThreadsWarning` past the cores this
        process may use). With at
        least ``2000 * n_blocks**2`` ratings (128,000 with the default 8
        blocks) SGD runs block-parallel: users and items are dealt into an
        ``n_blocks x n_blocks`` grid and the blocks of each round, which share
        no user and no item, run at the same time (the schedule of LibMF's
        FPSGD, Chin et al. 2015). The result depends on the seed and
        ``n_blocks``, not on the thread count. Smaller data run the serial
        sweep, whose per-epoch cost a parallel one could only raise.
    n_blocks : int or None, default None
        Blocks per side of the grid; ``None`` picks ``max(8, 2 * n_threads,
        min(32, isqrt(n_ratings // 8192)), min(ceil(row_bytes / 512 KiB),
        isqrt(n_ratings // 2000)))`` with ``row_bytes`` the bytes of all
        factor rows: 8 up to about 0.5M ratings, 32 from 8.4M on, more where
        the factors are large (122 on the Netflix shape at rank 32), so that a
        block and its rows stay in cache (see
        :func:`factorise.models._blocks.resolve_n_blocks`). Must be at least
        ``n_threads``.
    block_copy : bool, default True
        Whether the block-parallel sweep reads the ratings from a copy grouped
        by block (14 bytes a rating in float32, made once per fit) or, with
        False, through a 4-byte index into the ratings themselves, with a
        cache miss on almost every rating. The model is the same bit for bit;
        on 9M ratings, rank 32, the lean fit took 1.5-1.7 times as long
        (``benchmarks/scale.py --only 10m``). False is for data whose copy would not fit
        in memory (1.4 GB for 100M ratings). ``"in-place"``: no copy either,
        but the given :class:`~factorise.data.Ratings` are themselves reordered
        into block order (users, items, values and timestamps alike, so they
        stay the same ratings, in another order) and the sweep reads them as
        fast as a copy: 2 bytes a rating stay, 6 more while they are reordered.
        The fitted model is the same bit for bit (the training-RMSE sample of
        ``history_`` too; the lists of rated items that ``recommend`` leaves
        out hold the same items in another order). For callers who do not
        need the ratings' order (``factorise fit`` does this). Where an array
        of the ratings is read-only, not contiguous or overlaps another in
        memory, or ``dtype`` is float64, the fit copies instead and logs it.
        After id compaction the caller's ratings are reordered alike. Ratings
        read from a file, a DataFrame or arrays are the fit's own, and are
        simply reordered.
    dtype : {"float32", "float64"}, default "float32"
        Precision of the biases and factors (and of the SGD arithmetic).
    device : {None, "cpu", "torch-cpu", "cuda", "cuda:N"}, default None
        Where the sweep runs: None or "cpu" the numba kernels (serial or
        block-parallel, as above); otherwise the torch engine
        (:mod:`factorise.torch_engine.sgd`), which updates waves of ratings
        that share no user and no item at once: exactly the serial sweep in
        the waves' order, from the same initial factors, but not the block
        sweep's order, so its factors differ from the CPU engine's while its
        quality is the same (the tests hold it within 1% of the CPU
        engine's held-out RMSE on planted data). ``n_blocks`` and
        ``block_copy`` do not apply to it. The fitted model is the same kind
        of object either way.

    Attributes
    ----------
    global_mean_ : float
        Mean training rating ``mu``.
    user_bias_, item_bias_ : numpy.ndarray of ``dtype``
        ``b_u`` and ``b_i``.
    user_factors_, item_factors_ : numpy.ndarray of ``dtype``, shape (n, rank)
        ``p_u`` and ``q_i``.
    history_ : list of dict
        Per epoch: ``epoch``, ``train_rmse``, ``valid_rmse`` (with a
        validation set), ``sgd_rmse`` (RMSE of the errors seen during the
        sweep, before each update) and ``learning_rate``.
    n_epochs_ : int
        Epochs run.

    Raises
    ------
    TypeError, ValueError
        From :meth:`validate_params` (called by :meth:`fit`), for a parameter
        of the wrong type or out of range.
    factorise.DivergenceError
        From :meth:`fit`, if the factors become NaN or infinite: lower the
        learning rate, or, when the message says the ratings are too large
        for ``dtype``, rescale them.

    Examples
    --------
    >>> from factorise.data import Ratings
    >>> from factorise.models.sgd import BiasedMF
    >>> ratings = Ratings.from_raw([1, 1, 2, 2, 3], [10, 20, 10, 30, 20], [5, 3, 4, 2, 1])
    >>> model = BiasedMF(rank=2, random_state=0).fit(ratings)
    >>> len(model.history_), model.user_factors_.shape
    (16, (3, 2))
    >>> prediction = model.predict([1, 3], [30, 10])   # pairs not in the training ratings
    >>> bool(((1 <= prediction) & (prediction <= 5)).all())   # clipped to the training range
    True
    >>> model.recommend(1, n=5).items                  # user 1 has rated items 10 and 20
    array([30])
    """

    _param_names: ClassVar[tuple[str, ...]] = (
        "rank",
        "n_epochs",
        "learning_rate",
        "regularization",
        "bias_learning_rate",
        "bias_regularization",
        "learning_rate_decay",
        "init_std",
        "patience",
        "random_state",
        "n_threads",
        "n_blocks",
        "block_copy",
        "dtype",
        "device",
    )

    def __init__(
        self,
        *,
        rank: int = 128,
        n_epochs: int = 16,
        learning_rate: float = 0.075,
        regularization: float = 0.07,
        bias_learning_rate: float = 0.015,
        bias_regularization: float = 0.01,
        learning_rate_decay: float = 0.88,
        init_std: float = 0.01,
        patience: int | None = None,
        random_state: Any = None,
        n_threads: int | None = None,
        n_blocks: int | None = None,
        block_copy: bool | str = True,
        dtype: str = "float32",
        device: str | None = None,
    ) -> None:
        self.rank = rank
        self.n_epochs = n_epochs
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.bias_learning_rate = bias_learning_rate
        self.bias_regularization = bias_regularization
        self.learning_rate_decay = learning_rate_decay
        self.init_std = init_std
        self.patience = patience
        self.random_state = random_state
        self.n_threads = n_threads
        self.n_blocks = n_blocks
        self.block_copy = block_copy
        self.dtype = dtype
        self.device = device

    # ------------------------------------------------------------------ hooks
    def _validate_params(self) -> None:
        check_positive_float(self.learning_rate, "learning_rate")
        check_non_negative_float(self.regularization, "regularization")
        check_positive_float(self.bias_learning_rate, "bias_learning_rate")
        check_non_negative_float(self.bias_regularization, "bias_regularization")
        _check_decay(self.learning_rate_decay, "learning_rate_decay")
        if not isinstance(self.block_copy, (bool, np.bool_)) and not (
            isinstance(self.block_copy, str) and self.block_copy == "in-place"
        ):
            raise TypeError(
                f"`block_copy` must be True, False or 'in-place'; got {self.block_copy!r} of type "
                f"{type(self.block_copy).__name__}"
            )
        check_positive_float(self.init_std, "init_std")
        if not isinstance(self.dtype, str) or self.dtype not in ("float32", "float64"):
            raise ValueError(f"`dtype` must be 'float32' or 'float64'; got {self.dtype!r}")
        self._n_blocks = resolve_n_blocks(self.n_blocks, self._threads)
        self._device = check_device(self.device)
        self._torch_device = None  # set by _check_params for a torch device

    def _check_params(self, data: TrainData) -> None:
        limit = min(data.n_users, data.n_items)
        if self.rank > limit:
            raise ValueError(
                f"`rank` must be an integer with 1 <= rank <= min(n_users, n_items) = {limit}; got "
                f"{self.rank}: rank larger than the data allows ({data.n_users} users, {data.n_items} "
                f"items); pass rank={limit} or less"
            )
        self._torch_device = None
        spec = check_device(self.device)
        if spec is not None:  # the torch engine: the device is there and the fit fits its memory
            from factorise.torch_engine.sgd import device_bytes

            self._torch_device = torch_device(spec)
            n = data.values.shape[0]
            need = device_bytes(n, data.n_users, data.n_items, int(self.rank), np.dtype(self.dtype).itemsize)
            check_device_memory(self._torch_device, need, f"BiasedMF(rank={self.rank}) on {n:,} ratings")

    def _fit_memory(self, n_ratings: int, n_users: int, n_items: int) -> int:
        # per rating: the serial sweep's int32 visiting order and, for dtype float64, a float64 copy
        # of the ratings; the block sweep's copy of the ratings in block order (int32 user and item,
        # the value in the dtype) and its visiting order (at most 4 bytes), or with block_copy=False
        # int32 positions as the serial sweep's; with "in-place" (float32) the caller's ratings are
        # reordered: the block ids and a scratch column while that runs (estimated as if it does:
        # ratings that share arrays with others are copied instead, which factorise fit never gives). Per row and factor: the
        # factors, the float32 draw they start from, and the best epoch's copy with patience
        size = np.dtype(self.dtype).itemsize
        row_bytes = (int(n_users) + int(n_items)) * int(self.rank) * np.dtype(self.dtype).itemsize
        n_blocks = resolve_n_blocks(self.n_blocks, self._threads, n_ratings, row_bytes)
        fixed, per_rating = 0, 4 + (8 if self.dtype == "float64" else 0)
        if use_blocks(n_ratings, n_blocks):
            if self.block_copy == "in-place" and self.dtype == "float32":
                # the block ids (becoming the visiting order) and one scratch column while reordering;
                # up to TRAIN_RMSE_SAMPLE ratings, a copy of them for the training RMSE
                per_rating = 4 + 4 + (12 if n_ratings <= TRAIN_RMSE_SAMPLE else 0)
            elif self.block_copy:
                per_rating = 4 + 4 + size + 4
            # the block sweep's compiled kernels and thread pool: benchmarks/memory.py measured the
            # peak 29-33 MiB above the serial-era one at 1M and 3M ratings, beyond the copy itself
            fixed = 24 * 2**20
        per_factor = size + 4 + (size if self.patience is not None else 0)
        per_row = int(self.rank) * per_factor + 2 * size + 64  # biases, block of each row, scratch
        return fixed + per_rating * n_ratings + per_row * (n_users + n_items) + 64 * n_blocks**2

    def _compute_dtype(self) -> np.dtype:
        return np.dtype(self.dtype)

    def _divergence_advice(self) -> str:
        rate, bias_rate = float(self.learning_rate), float(self.bias_learning_rate)
        return (
            f"try a smaller learning_rate (now {rate:.3g}; e.g. {rate / 10:.3g}) or bias_learning_rate "
            f"(now {bias_rate:.3g})"
        )

    def _initialize(self, data: TrainData, rng: np.random.Generator) -> None:
        k, std = int(self.rank), float(self.init_std)
        self._float = np.dtype(self.dtype).type
        deviation = sum_squared_deviation(data.values, float(data.global_mean))
        self._sigma = rating_scale(deviation, data.values.shape[0], data.global_mean)
        logger.debug("BiasedMF: SGD in units of the rating standard deviation %.4g", self._sigma)
        scale = self._float(math.sqrt(self._sigma) * std)
        self.user_bias_ = np.zeros(data.n_users, dtype=self.dtype)
        self.item_bias_ = np.zeros(data.n_items, dtype=self.dtype)
        # drawn in float32 whatever the dtype, in seeded chunks, so that every precision and engine
        # starts alike (the Spark engine draws each chunk on an executor)
        user_seed, item_seed = (int(s) for s in rng.integers(0, 2**63, size=2))
        self.user_factors_ = initial_factors(data.n_users, k, scale, user_seed, self.dtype)
        self.item_factors_ = initial_factors(data.n_items, k, scale, item_seed, self.dtype)
        n = data.values.shape[0]
        row_bytes = (data.n_users + data.n_items) * int(self.rank) * np.dtype(self.dtype).itemsize
        self._n_blocks = resolve_n_blocks(self.n_blocks, self._threads, n, row_bytes)
        self._torch = None
        if self._torch_device is not None:  # the torch engine: waves of a fresh order each epoch
            from factorise.torch_engine.sgd import TorchSGD

            values = data.values if self.dtype == "float32" else data.values.astype(np.float64)
            self._torch = TorchSGD(self._torch_device, data.users, data.items, values)
            self._grid = None
            self._values = None
            self._order = np.arange(n, dtype=np.int64)
            logger.debug("BiasedMF: torch SGD on %s", self._torch_device)
        elif use_blocks(n, self._n_blocks):
            row_block, col_block = assign_blocks(data.users, data.items, data.n_users, data.n_items, self._n_blocks, rng)
            copy: bool | str = bool(self.block_copy)
            also: tuple[np.ndarray, ...] = ()
            if isinstance(self.block_copy, str):  # "in-place"
                also = self._reorderable(data)
                if also is not None:
                    copy = "in-place"
                    # the training-RMSE sample, drawn where _run would draw it, from the ratings' order
                    # (all of them, up to TRAIN_RMSE_SAMPLE: copied, since their sum's order counts)
                    probe = _train_probe(data, rng)
                    if probe[0] is data.users:
                        probe = (probe[0].copy(), probe[1].copy(), probe[2].copy())
                    self._early_probe = probe
            self._grid: BlockGrid | None = build_grid(
                data.users, data.items, row_block, col_block, self._n_blocks, values=data.values, dtype=self.dtype,
                n_threads=self._threads, copy=copy, also=also or (),
            )  # fmt: skip
            self._values = None
            self._order = None
            logger.debug("BiasedMF: block-parallel SGD, %d x %d blocks", self._n_blocks, self._n_blocks)
        else:  # small data: the serial sweep (a parallel one would only add overhead)
            self._values = data.values if self.dtype == "float32" else data.values.astype(np.float64)
            self._grid = None
            self._order = np.arange(n, dtype=np.int32 if n < 2**31 else np.int64)
            logger.debug("BiasedMF: serial SGD (%d ratings)", n)
        self._last_sgd_rmse = math.nan
        self._last_lr = math.nan
        self._last_step = int(self.n_epochs)

    def _reorderable(self, data: TrainData) -> tuple[np.ndarray, ...] | None:
        """With ``block_copy="in-place"``: the arrays to reorder beside ``data``'s; None where the fit must copy.

        Every array of the ratings that hold ``data`` (the caller's
        :class:`Ratings` and its compacted form) is reordered alike, so each
        stays the same ratings. That needs float32 factors and arrays that are
        C-contiguous, writeable, 4 or 8 bytes an entry and apart in memory.
        """
        kernel = [data.users, data.items, data.values]
        arrays: list[np.ndarray] = []
        for holder in data.holders:
            for a in (holder.users, holder.items, holder.values, holder.timestamps):
                if a is not None and all(a is not b for b in kernel + arrays):
                    arrays.append(a)
        why = None
        if self.dtype != "float32":
            why = f"dtype {self.dtype} (the sweep reads float32 ratings as they are only in float32)"
        else:
            everything = kernel + arrays
            for a in everything:
                if not (a.flags.c_contiguous and a.flags.writeable) or a.dtype.itemsize not in (4, 8):
                    why = "an array of the ratings is read-only, not contiguous, or not of 4 or 8 bytes an entry"
                    break
            else:
                for j, a in enumerate(everything):
                    if any(np.may_share_memory(a, b) for b in everything[j + 1 :]):
                        why = "two arrays of the ratings share memory"
                        break
        if why is not None:
            logger.info("BiasedMF: block_copy='in-place' cannot reorder these ratings (%s): copying them instead", why)
            return None
        return tuple(arrays)

    def epoch_rates(self, step: int, sigma: float) -> tuple[float, float, float, float, float]:
        """The rates of epoch ``step`` (1-based) for ratings of standard deviation ``sigma``.

        Returns
        -------
        tuple of float
            ``(lr_t, lr_t / sigma, regularization * sigma, bias_lr_t,
            bias_regularization)``: the schedule's rate, then the four
            arguments of the sweep (to be cast to the factors' dtype), as
            every engine passes them.
        """
        decay = float(self.learning_rate_decay) ** (step - 1)
        lr = float(self.learning_rate) * decay
        return (
            lr,
            lr / sigma,
            float(self.regularization) * sigma,
            float(self.bias_learning_rate) * decay,
            float(self.bias_regularization),
        )

    def _step(self, data: TrainData, step: int, rng: np.random.Generator) -> bool:
        lr, factor_lr, factor_reg, bias_lr, bias_reg = self.epoch_rates(step, self._sigma)
        f = self._float
        scalars = (
            f(data.global_mean),
            self.user_bias_,
            self.item_bias_,
            self.user_factors_,
            self.item_factors_,
            f(factor_lr),
            f(factor_reg),
            f(bias_lr),
            f(bias_reg),
        )
        if self._torch is not None:
            rng.shuffle(self._order)
            sse = self._torch.epoch(self._order, *scalars)
        elif self._grid is not None:
            sse = sgd_blocks_sweep(self._grid, *scalars, rng=rng, n_threads=self._threads)
        else:
            rng.shuffle(self._order)  # a fresh order each epoch, in place: no copy of the data
            sse = sgd_ratings_epoch(data.users, data.items, self._values, self._order, *scalars)
        # a non-finite bias or factor makes the next errors non-finite, so the sum catches it
        # an epoch later at most; the arrays themselves are checked once, after the last epoch
        if not math.isfinite(sse) or (step == self._last_step and not self._factors_finite()):
            raise self._divergence(data, step, "the biases or factors became NaN or infinite")
        self._last_sgd_rmse = math.sqrt(sse / max(1, data.values.shape[0]))
        self._last_lr = lr
        return False

    def _finish(self) -> None:
        # the visiting order and the block grid hold 4 bytes per rating: drop them
        self._grid = None
        self._order = None
        self._values = None
        self._torch = None

    def _extra_history(self) -> dict[str, float]:
        return {"sgd_rmse": self._last_sgd_rmse, "learning_rate": self._last_lr}
