"""``SparkBiasedMF``: :class:`factorise.models.BiasedMF` trained on Spark by DSGD (see :mod:`factorise.spark._dsgd`)."""

from __future__ import annotations

import logging
import math
import uuid
import warnings
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np

from factorise._validation import check_random_state
from factorise.exceptions import DivergenceError
from factorise.spark._model import SparkRatingModel

__all__ = ["SparkBiasedMF"]

logger = logging.getLogger(__name__)

#: BiasedMF's parameters that SparkBiasedMF shares (same names, defaults, meaning).
_SHARED = (
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
    "n_blocks",
    "dtype",
)


class SparkBiasedMF(SparkRatingModel):
    """Biased matrix factorisation fitted by distributed SGD over strata on Spark.

    The model, its parameters, defaults, per-rating update and learning-rate
    schedule are those of :class:`factorise.models.BiasedMF`, whose
    validation and rates it uses; the sweep is DSGD over the same block
    schedule (a random Latin square per epoch) and the same per-block
    shuffles, so that ``SparkBiasedMF`` and ``BiasedMF`` with the same
    ``random_state`` and ``n_blocks`` give the same factors to rounding
    (BiasedMF takes the block sweep from ``2000 * n_blocks**2`` ratings on;
    SparkBiasedMF always does).

    Parameters
    ----------
    rank, n_epochs, learning_rate, regularization, bias_learning_rate, bias_regularization, learning_rate_decay, init_std, patience, random_state, dtype
        As for :class:`~factorise.models.BiasedMF`.
    n_blocks : int or None, default None
        Blocks per side: each epoch runs ``n_blocks`` rounds of
        ``n_blocks`` tasks. None: twice the cluster's default parallelism
        (at least 2).
    barrier : bool or None, default None
        Run each epoch as one barrier stage: all ``n_blocks`` tasks start
        together, run every round, and hand the rotating factor blocks on
        through files in the checkpoint directory, with a barrier between
        rounds (one Spark job an epoch, no shuffle). False: each round is a
        stage of its own and the blocks move by shuffles (works with any
        cluster). None: barrier stages where the cluster can run all
        ``n_blocks`` tasks at once (and has no dynamic allocation or
        speculation), rounds otherwise. Both give the same factors.
    checkpoint_interval : int, default 5
        Checkpoint the factors every this many epochs (cuts the lineage, so
        that long fits do not overflow the stack).
    checkpoint_dir : str or None, default None
        Where checkpoints go when the SparkContext has no checkpoint
        directory (None: a new temporary directory, which on a cluster must
        be on a filesystem every node sees).
    user_col, item_col, rating_col : str, default "user", "item", "rating"
        Columns of the input DataFrames.

    Attributes
    ----------
    user_factors_, item_factors_ : pyspark.sql.DataFrame
        Columns ``id`` (raw), ``idx``, ``bias``, ``factors`` (array of float).
    global_mean_ : float
    rating_range_ : tuple of float
    history_ : list of dict
        As BiasedMF's: ``epoch``, ``train_rmse`` (over the same ratings or
        sample as a local fit), ``valid_rmse``, ``sgd_rmse``, ``learning_rate``.
    n_epochs_ : int
    barrier_ : bool
        Whether the epochs ran as barrier stages (see ``barrier``).
    """

    @property
    def _local_class(self) -> type:  # type: ignore[override]
        from factorise.models import BiasedMF

        return BiasedMF

    _param_names: ClassVar[tuple[str, ...]] = _SHARED + (
        "barrier",
        "checkpoint_interval",
        "checkpoint_dir",
        "user_col",
        "item_col",
        "rating_col",
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
        n_blocks: int | None = None,
        dtype: str = "float32",
        barrier: bool | None = None,
        checkpoint_interval: int = 5,
        checkpoint_dir: str | None = None,
        user_col: str = "user",
        item_col: str = "item",
        rating_col: str = "rating",
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
        self.n_blocks = n_blocks
        self.dtype = dtype
        self.barrier = barrier
        self.checkpoint_interval = checkpoint_interval
        self.checkpoint_dir = checkpoint_dir
        self.user_col = user_col
        self.item_col = item_col
        self.rating_col = rating_col
        self._fault: tuple[str, int, int, int] | None = None  # tests: (marker dir, epoch, round, partition)

    # ----------------------------------------------------------------- params
    def _local_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _SHARED}

    def _local_model(self) -> Any:
        from factorise.models import BiasedMF

        return BiasedMF(**self._local_params(), n_threads=1)

    def validate_params(self) -> SparkBiasedMF:
        """Check every parameter without data (BiasedMF's checks, then the Spark ones); return ``self``."""
        self._local_model().validate_params()
        self._check_spark_params()
        if self.barrier is not None and not isinstance(self.barrier, (bool, np.bool_)):
            raise TypeError(f"`barrier` must be None, True or False; got {self.barrier!r}")
        return self

    # -------------------------------------------------------------------- fit
    def fit(
        self,
        ratings: Any,
        *,
        validation: Any = None,
        callback: Callable[[int, dict[str, float]], Any] | None = None,
        spark: Any = None,
    ) -> SparkBiasedMF:
        """Fit on a Spark DataFrame, or a path/URI Spark reads (Parquet, CSV, TSV).

        Parameters
        ----------
        ratings : pyspark.sql.DataFrame or str
            With the ``user_col``, ``item_col``, ``rating_col`` columns
            (integer or string ids).
        validation : same types, optional
            Held-out ratings: ``valid_rmse`` in ``history_``, early stopping with ``patience``.
        callback : callable, optional
            ``callback(epoch, record)`` after every epoch.
        spark : pyspark.sql.SparkSession, optional
            Default: the active session, else a new local one.

        Returns
        -------
        self

        Raises
        ------
        TypeError, ValueError
            Bad parameters or data (the message names which).
        factorise.DivergenceError
            The factors became NaN or infinite (no factors are kept).
        """
        from factorise.data import DuplicateRatingsWarning
        from factorise.models._base import TRAIN_RMSE_SAMPLE, probe_positions
        from factorise.models._blocks import assign_from_counts, block_unit, draw_epoch, resolve_n_blocks
        from factorise.models.sgd import rating_scale
        from factorise.spark import _dsgd, _prepare
        from factorise.spark._runtime import spark_session

        self.validate_params()
        local = self._local_model()
        spark = spark or spark_session()
        sc = spark.sparkContext
        B = resolve_n_blocks(self.n_blocks if self.n_blocks is not None else max(2, sc.defaultParallelism), 1)
        barrier = self._use_barrier(sc, B)
        columns = _prepare.Columns(self.user_col, self.item_col, self.rating_col)
        frame = _prepare.check_columns(_prepare.read_frame(spark, ratings, columns), columns)
        pieces = _prepare.parquet_pieces(spark, ratings)
        if pieces is not None:
            data = _prepare.index_parquet(spark, frame, pieces, columns)
        else:
            data = _prepare.index_ratings(spark, frame)
        local._check_params(SimpleNamespace(n_users=data.n_users, n_items=data.n_items))
        rng = check_random_state(self.random_state)
        # the draws of BiasedMF.fit, in its order: factor seeds, user blocks, item blocks, [sample]
        seeds = tuple(int(s) for s in rng.integers(0, 2**63, size=2))
        user_unit, item_unit = block_unit(data.n_users, B), block_unit(data.n_items, B)
        user_block = assign_from_counts(_prepare.unit_counts(data.user_counts, user_unit), data.n_users, B, rng)
        item_block = assign_from_counts(_prepare.unit_counts(data.item_counts, item_unit), data.n_items, B, rng)
        sample = None
        if data.n_ratings > TRAIN_RMSE_SAMPLE:
            sample = sc.broadcast(probe_positions(data.n_ratings, rng))
        user_row, user_sizes = _dsgd.local_indices(user_block, B)
        item_row, item_sizes = _dsgd.local_indices(item_block, B)
        home_is_user = data.n_users >= data.n_items
        layout = _dsgd.Layout(
            n_blocks=B,
            home_is_user=home_is_user,
            home_sizes=tuple(int(x) for x in (user_sizes if home_is_user else item_sizes)),
            rot_sizes=tuple(int(x) for x in (item_sizes if home_is_user else user_sizes)),
            rank=int(self.rank),
            dtype=str(self.dtype),
        )
        maps = sc.broadcast((data.user_ids, data.item_ids, user_block, user_row, item_block, item_row))
        blocks = _dsgd.build_blocks(
            data.frame, layout, maps, offsets=data.offsets, sample=sample, pieces=data.pieces, columns=columns
        )
        ratings_rdd, sample_rdd, stats = _dsgd.split_blocks(blocks)
        if stats.dropped:
            warnings.warn(
                DuplicateRatingsWarning(
                    f"{stats.dropped} ratings repeat an earlier (user, item) pair: the last rating of each pair is "
                    f"kept (the blocks were balanced counting them, so the fit may differ from BiasedMF's)"
                ),
                stacklevel=2,
            )
        mu, sigma = stats.mean, rating_scale(stats.squared_deviation, stats.n, stats.mean)
        f = np.dtype(self.dtype).type
        scale = f(math.sqrt(sigma) * float(self.init_std))
        state = _dsgd.initial_state(sc, layout, maps, seeds, (data.n_users, data.n_items), scale)
        valid_sets = []
        if validation is not None:
            vframe = _prepare.check_columns(
                _prepare.read_frame(spark, validation, columns, name="validation"), columns, name="validation"
            )
            valid_sets.append(_dsgd.build_blocks(vframe, layout, maps, kind="V"))
        self.global_mean_ = float(mu)
        self.rating_range_ = (float(stats.low), float(stats.high))
        self.n_ratings_ = int(stats.n)
        exchange = _dsgd.file_uri(_dsgd.ensure_checkpoint_dir(sc, self.checkpoint_dir)).rstrip("/")
        exchange = f"{exchange}/dsgd-{uuid.uuid4().hex}"
        train_sets = [sample_rdd] if sample_rdd is not None else [ratings_rdd]
        train_tag = "T" if sample_rdd is not None else "R"
        self.history_ = []
        epoch_seeds = np.zeros((0, B * B), dtype=np.uint64)
        best_rmse, best, since_best = math.inf, None, 0
        previous: list[Any] = []
        try:
            for epoch in range(1, int(self.n_epochs) + 1):
                seeds_e, rounds = draw_epoch(B, rng)
                epoch_seeds = np.vstack([epoch_seeds, seeds_e[None, :]])
                lr, factor_lr, factor_reg, bias_lr, bias_reg = local.epoch_rates(epoch, sigma)
                scalars = (f(mu), f(factor_lr), f(factor_reg), f(bias_lr), f(bias_reg))
                evaluation = (layout, [*train_sets, *valid_sets], float(mu), stats.low, stats.high, train_tag)
                checkpoint = epoch % int(self.checkpoint_interval) == 0
                if barrier:
                    state, outs, sse, rmse = _dsgd.run_epoch_barrier(
                        sc, layout, ratings_rdd, state, epoch=epoch, rounds=rounds, epoch_seeds=epoch_seeds,
                        scalars=scalars, checkpoint=checkpoint, directory=f"{exchange}/epoch-{epoch}",
                        fault=self._fault, evaluation=evaluation,
                    )  # fmt: skip
                else:
                    state, outs, sse, rmse = _dsgd.run_epoch(
                        sc, layout, ratings_rdd, state, epoch=epoch, rounds=rounds, epoch_seeds=epoch_seeds,
                        scalars=scalars, checkpoint=checkpoint, fault=self._fault, evaluation=evaluation,
                    )  # fmt: skip
                for rdd in previous:  # the last epoch's rounds, now that this one's are computed
                    if rdd is not best:
                        rdd.unpersist()
                for rdd in outs[:-1]:
                    rdd.unpersist()
                previous = [state]
                if not math.isfinite(sse):
                    raise DivergenceError(
                        f"SparkBiasedMF diverged at step {epoch}: the biases or factors became NaN or infinite; "
                        f"{local._divergence_advice()}"
                    )
                record: dict[str, float] = {"epoch": epoch, "train_rmse": rmse.get("train", math.nan)}
                if not math.isfinite(record["train_rmse"]):
                    raise DivergenceError(
                        f"SparkBiasedMF diverged at step {epoch}: the biases or factors became NaN or infinite; "
                        f"{local._divergence_advice()}"
                    )
                if valid_sets:
                    record["valid_rmse"] = rmse.get("valid", math.nan)
                record["sgd_rmse"] = math.sqrt(sse / max(1, stats.n))
                record["learning_rate"] = lr
                self.history_.append(record)
                logger.info("SparkBiasedMF %s", record)
                if callback is not None:
                    callback(epoch, record)
                if valid_sets and self.patience is not None:
                    if record["valid_rmse"] < best_rmse - 1e-7:
                        if best is not None and best is not state:
                            best.unpersist()
                        best_rmse, best, since_best = record["valid_rmse"], state, 0
                    else:
                        since_best += 1
                        if since_best > self.patience:
                            logger.info("early stop at step %d; best validation RMSE %.5f", epoch, best_rmse)
                            state = best
                            break
            self.n_epochs_ = len(self.history_)
            self.barrier_ = barrier
            self._set_factors(spark, layout, state, maps, data)
        except BaseException:
            for name in ("user_factors_", "item_factors_"):
                self.__dict__.pop(name, None)
            raise
        finally:
            for rdd in (ratings_rdd, sample_rdd, *valid_sets, *previous, best):
                if rdd is not None:
                    rdd.unpersist()
            if barrier:
                _dsgd.remove_dir(exchange)
        return self

    def _use_barrier(self, sc: Any, n_blocks: int) -> bool:
        """Whether to run epochs as barrier stages (see ``barrier``); a clear error where True cannot be honoured."""
        from factorise.spark import _dsgd

        slots = _dsgd.barrier_slots(sc)
        where = _dsgd.ensure_checkpoint_dir(sc, self.checkpoint_dir)
        try:
            import pyarrow.fs as pafs

            pafs.FileSystem.from_uri(_dsgd.file_uri(where))
            files = True
        except Exception:  # noqa: BLE001 -- pyarrow cannot reach the checkpoint filesystem
            files = False
        possible = files and n_blocks <= slots
        if self.barrier and not possible:
            why = (
                f"pyarrow cannot write to the checkpoint directory {where!r}"
                if not files
                else f"n_blocks is {n_blocks} and the cluster runs {slots} tasks at once "
                "(0 with dynamic allocation or speculation on)"
            )
            raise ValueError(
                f"`barrier`=True needs all n_blocks tasks running at once and a checkpoint directory pyarrow "
                f"writes to: {why}; pass barrier=None or False"
            )
        use = possible if self.barrier is None else bool(self.barrier)
        kind = "one barrier stage an epoch" if use else "one stage a round"
        logger.info("SparkBiasedMF: %s (%d blocks, %d task slots)", kind, n_blocks, slots)
        return use

    def _set_factors(self, spark: Any, layout: Any, state: Any, maps: Any, data: Any) -> None:
        from pyspark import StorageLevel

        from factorise.spark import _dsgd, _prepare

        where = _dsgd.file_uri(_dsgd.ensure_checkpoint_dir(spark.sparkContext, self.checkpoint_dir)).rstrip("/")
        files = _dsgd.factor_frames(spark, layout, state, maps, f"{where}/factors-{uuid.uuid4().hex}")
        for side, ids in (("user", data.user_ids), ("item", data.item_ids)):
            if files is not None:  # written by the tasks as Parquet and read from there (no Python rows, no cache)
                frame = files[side].select("id", "idx", "bias", "factors")
            else:  # built from the state, which the fit unpersists: cached and computed now
                frame = spark.createDataFrame(_dsgd.factor_rows(layout, state, maps, side), _dsgd.factor_schema(ids))
                frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
                frame.count()
            setattr(self, f"{side}_factors_", frame)
        self._rated = _prepare.indexed_frame(spark, data.frame, data, positions=False).select("u", "i")
