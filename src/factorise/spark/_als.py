"""``SparkALS``: explicit-feedback ALS on MLlib's solver, with biases, checkpoints and cold start handled.

MLlib's ``ALS`` fits ``r_ui ~ p_u . q_i`` alone: no global mean, no biases,
so on star ratings its factors spend their first dimensions on the mean and
the users' and items' generosity. It needs a checkpoint directory for long
runs (without one the lineage of its iterations overflows the JVM stack
after a few dozen), and by default it predicts NaN for users or items it has
not seen (``coldStartStrategy="drop"`` silently drops those rows instead).

SparkALS fits, on the cluster:

1. ``mu``, the mean training rating, and the biases ``b_u``, ``b_i`` of
   :class:`factorise.models.BaselineModel` (alternating exact ridge solves,
   ``b_i = sum (r - mu - b_u) / (bias_regularization + n_i)``, items then
   users, ``bias_epochs`` times);
2. MLlib's ALS on the residuals ``r - mu - b_u - b_i``, with ``regParam =
   regularization``: the weighted-lambda penalty ``lambda * n_u * |p_u|^2``
   (Zhou et al. 2008), which is :class:`factorise.models.ALS`'s with
   ``regularization_exponent=1``;

and predicts ``mu + b_u + b_i + p_u . q_i`` clipped to the training range,
with unknown users or items falling back to the known biases. A checkpoint
directory is set when the SparkContext has none.
"""

from __future__ import annotations

import logging
import math
import numbers
from collections.abc import Callable
from typing import Any, ClassVar

from factorise._validation import check_non_negative_float, check_positive_int, check_random_state
from factorise.spark._model import SparkRatingModel

__all__ = ["SparkALS"]

logger = logging.getLogger(__name__)

#: Ratings past which the training RMSE of ``history_`` is that of a fixed sample of this many (as locally).
_TRAIN_SAMPLE = 1_000_000


class SparkALS(SparkRatingModel):
    """Biased matrix factorisation by MLlib's alternating least squares (see the module docstring).

    Parameters
    ----------
    rank : int, default 32
        Latent factors.
    n_epochs : int, default 10
        MLlib ALS iterations (``maxIter``).
    regularization : float, default 0.05
        ``lambda`` of the factors, weighted by each row's rating count
        (MLlib's ``regParam``), >= 0.
    bias_regularization : float, default 2.0
        ``lambda`` of the biases (pseudo-ratings at the mean), >= 0.
    bias_epochs : int, default 3
        Alternating passes of the bias fit (items, then users).
    n_blocks : int or None, default None
        MLlib's ``numUserBlocks`` and ``numItemBlocks`` (None: the cluster's
        default parallelism).
    random_state : None or int, default None
        Seed of MLlib's initial factors (None: a fresh one, drawn here).
    checkpoint_interval : int, default 5
        MLlib's ``checkpointInterval``.
    checkpoint_dir : str or None, default None
        Used when the SparkContext has no checkpoint directory (None: a new
        temporary one; on a cluster it must be on a filesystem all nodes see).
    user_col, item_col, rating_col : str

    Attributes
    ----------
    user_factors_, item_factors_ : pyspark.sql.DataFrame
        ``id``, ``idx``, ``bias``, ``factors``.
    global_mean_, rating_range_, history_, n_epochs_
        As for the other models; ``history_`` holds one record, after the
        last iteration (MLlib runs them in one call).
    """

    _param_names: ClassVar[tuple[str, ...]] = (
        "rank",
        "n_epochs",
        "regularization",
        "bias_regularization",
        "bias_epochs",
        "n_blocks",
        "random_state",
        "checkpoint_interval",
        "checkpoint_dir",
        "user_col",
        "item_col",
        "rating_col",
    )

    def __init__(
        self,
        *,
        rank: int = 32,
        n_epochs: int = 10,
        regularization: float = 0.05,
        bias_regularization: float = 2.0,
        bias_epochs: int = 3,
        n_blocks: int | None = None,
        random_state: Any = None,
        checkpoint_interval: int = 5,
        checkpoint_dir: str | None = None,
        user_col: str = "user",
        item_col: str = "item",
        rating_col: str = "rating",
    ) -> None:
        self.rank = rank
        self.n_epochs = n_epochs
        self.regularization = regularization
        self.bias_regularization = bias_regularization
        self.bias_epochs = bias_epochs
        self.n_blocks = n_blocks
        self.random_state = random_state
        self.checkpoint_interval = checkpoint_interval
        self.checkpoint_dir = checkpoint_dir
        self.user_col = user_col
        self.item_col = item_col
        self.rating_col = rating_col

    @property
    def _local_class(self) -> type:  # type: ignore[override]
        from factorise.models import ALS

        return ALS

    def _local_params(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "n_epochs": self.n_epochs,
            "regularization": self.regularization,
            "bias_regularization": self.bias_regularization,
            "regularization_exponent": 1.0,
            "patience": None,
            "random_state": self.random_state if isinstance(self.random_state, numbers.Integral) else None,
            "n_threads": 1,
        }

    def validate_params(self) -> SparkALS:
        """Check every parameter without data; return ``self``."""
        check_positive_int(self.rank, "rank")
        check_positive_int(self.n_epochs, "n_epochs")
        check_non_negative_float(self.regularization, "regularization")
        check_non_negative_float(self.bias_regularization, "bias_regularization")
        check_positive_int(self.bias_epochs, "bias_epochs")
        if self.n_blocks is not None:
            check_positive_int(self.n_blocks, "n_blocks")
        if self.random_state is not None and (
            not isinstance(self.random_state, numbers.Integral) or isinstance(self.random_state, bool)
        ):
            raise TypeError(
                f"`random_state` must be None or an integer (MLlib's seed); got {self.random_state!r} of type "
                f"{type(self.random_state).__name__}"
            )
        self._check_spark_params()
        return self

    def fit(
        self,
        ratings: Any,
        *,
        validation: Any = None,
        callback: Callable[[int, dict[str, float]], Any] | None = None,
        spark: Any = None,
    ) -> SparkALS:
        """Fit on a Spark DataFrame or a path/URI (as :meth:`SparkBiasedMF.fit`); return ``self``."""
        import warnings

        from pyspark import StorageLevel
        from pyspark.ml.recommendation import ALS as MLlibALS
        from pyspark.sql import functions as F

        from factorise.data import DuplicateRatingsWarning
        from factorise.spark import _dsgd, _prepare
        from factorise.spark._runtime import spark_session

        self.validate_params()
        spark = spark or spark_session()
        sc = spark.sparkContext
        columns = _prepare.Columns(self.user_col, self.item_col, self.rating_col)
        frame = _prepare.check_columns(_prepare.read_frame(spark, ratings, columns), columns)
        data = _prepare.index_ratings(spark, frame)
        limit = min(data.n_users, data.n_items)
        if self.rank > limit:
            raise ValueError(
                f"`rank` must be an integer with 1 <= rank <= min(n_users, n_items) = {limit}; got {self.rank}"
            )
        indexed = _prepare.indexed_frame(spark, data.frame, data)
        # the last rating of a repeated (user, item) pair, as Ratings.from_raw keeps it
        train = indexed.groupBy("u", "i").agg(F.max_by("r", "pos").alias("r")).persist(StorageLevel.MEMORY_AND_DISK)
        stats = train.agg(
            F.count(F.lit(1)).alias("n"), F.avg("r").alias("mu"), F.min("r").alias("low"), F.max("r").alias("high")
        ).collect()[0]
        dropped = data.n_ratings - int(stats["n"])
        if dropped:
            warnings.warn(
                DuplicateRatingsWarning(f"{dropped} ratings repeat an earlier (user, item) pair: the last one is kept"),
                stacklevel=2,
            )
        mu = float(stats["mu"])
        self.n_ratings_ = int(stats["n"])
        self.global_mean_ = mu
        self.rating_range_ = (float(stats["low"]), float(stats["high"]))
        user_bias, item_bias = self._fit_biases(train, mu)
        residual = (
            train.join(user_bias, "u", "left")
            .join(item_bias, "i", "left")
            .select(
                F.col("u").alias("user"),
                F.col("i").alias("item"),
                (F.col("r") - F.lit(mu) - F.coalesce("bu", F.lit(0.0)) - F.coalesce("bi", F.lit(0.0))).alias("rating"),
            )
        )
        _dsgd.ensure_checkpoint_dir(sc, self.checkpoint_dir)
        seed = self.random_state
        if seed is None:
            seed = int(check_random_state(None).integers(0, 2**31 - 1))
        blocks = int(self.n_blocks) if self.n_blocks is not None else max(1, sc.defaultParallelism)
        solver = MLlibALS(
            rank=int(self.rank),
            maxIter=int(self.n_epochs),
            regParam=float(self.regularization),
            implicitPrefs=False,
            nonnegative=False,
            seed=int(seed),
            checkpointInterval=int(self.checkpoint_interval),
            numUserBlocks=blocks,
            numItemBlocks=blocks,
            coldStartStrategy="nan",
            userCol="user",
            itemCol="item",
            ratingCol="rating",
        )
        fitted = solver.fit(residual)
        try:
            for side, ids, factors, bias, key in (
                ("user", data.user_ids, fitted.userFactors, user_bias, "u"),
                ("item", data.item_ids, fitted.itemFactors, item_bias, "i"),
            ):
                table = (
                    _prepare.id_frame(spark, ids).select(F.col("raw").alias("id"), "idx")
                    .join(bias.select(F.col(key).alias("idx"), F.col("b" + key).cast("float").alias("bias")), "idx", "left")
                    .join(factors.select(F.col("id").alias("idx"), F.col("features").alias("factors")), "idx", "left")
                    .select(
                        "id",
                        "idx",
                        F.coalesce("bias", F.lit(0.0).cast("float")).alias("bias"),
                        F.coalesce("factors", F.array_repeat(F.lit(0.0).cast("float"), int(self.rank))).alias("factors"),
                    )
                    .persist(StorageLevel.MEMORY_AND_DISK)
                )
                table.count()
                setattr(self, f"{side}_factors_", table)
            self._rated = indexed.select("u", "i")
            record: dict[str, float] = {"epoch": int(self.n_epochs)}
            fraction = min(1.0, _TRAIN_SAMPLE / max(1, int(stats["n"])))
            sample = train if fraction >= 1.0 else train.sample(fraction=fraction, seed=int(seed))
            record["train_rmse"] = self._index_rmse(sample)
            if validation is not None:
                vframe = _prepare.read_frame(spark, validation, columns, name="validation")
                _prepare.check_columns(vframe, columns, name="validation")
                record["valid_rmse"] = self.evaluate(vframe)["rmse"]
            self.history_ = [record]
            self.n_epochs_ = int(self.n_epochs)
            logger.info("SparkALS %s", record)
            if callback is not None:
                callback(int(self.n_epochs), record)
        except BaseException:
            for name in ("user_factors_", "item_factors_"):
                self.__dict__.pop(name, None)
            raise
        finally:
            train.unpersist()
        if not all(math.isfinite(v) for k, v in record.items() if k != "epoch"):
            from factorise.exceptions import DivergenceError

            for name in ("user_factors_", "item_factors_"):
                self.__dict__.pop(name, None)
            raise DivergenceError(f"SparkALS diverged: {record}; try a larger `regularization`")
        return self

    def _fit_biases(self, train: Any, mu: float) -> tuple[Any, Any]:
        """BaselineModel's alternating ridge solves on the cluster: (users ``u``, ``bu``), (items ``i``, ``bi``)."""
        from pyspark import StorageLevel
        from pyspark.sql import functions as F

        lam = float(self.bias_regularization)
        spark = train.sparkSession
        user_bias = spark.createDataFrame([], "u int, bu double")
        item_bias = None
        for _ in range(int(self.bias_epochs)):
            new_items = (
                train.join(F.broadcast(user_bias), "u", "left")
                .groupBy("i")
                .agg((F.sum(F.col("r") - F.lit(mu) - F.coalesce("bu", F.lit(0.0))) / (F.lit(lam) + F.count(F.lit(1)))).alias("bi"))
                .persist(StorageLevel.MEMORY_AND_DISK)
            )
            new_users = (
                train.join(F.broadcast(new_items), "i", "left")
                .groupBy("u")
                .agg((F.sum(F.col("r") - F.lit(mu) - F.coalesce("bi", F.lit(0.0))) / (F.lit(lam) + F.count(F.lit(1)))).alias("bu"))
                .persist(StorageLevel.MEMORY_AND_DISK)
            )
            new_users.count()
            if item_bias is not None:
                item_bias.unpersist()
            user_bias.unpersist()
            item_bias, user_bias = new_items, new_users
        return user_bias, item_bias
