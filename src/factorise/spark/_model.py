"""Fitted rating models on Spark: factors as DataFrames, predictions and recommendations on the cluster.

:class:`SparkRatingModel` is the fitted state every Spark engine produces
(``mu + b_u + b_i + p_u . q_i``, clipped to the training range, unknown ids
falling back to the known biases, as :class:`factorise.models.RatingModel`):
``user_factors_`` and ``item_factors_`` are DataFrames with columns ``id``
(the raw id), ``idx``, ``bias`` and ``factors`` (array of float).
:meth:`~SparkRatingModel.to_local` turns it into the local model of the same
name, whose ``predict``, ``recommend`` and ``save`` are the local ones.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Iterator
from functools import partial
from typing import Any, ClassVar

import numpy as np

from factorise import __version__
from factorise._validation import check_non_negative_int, check_positive_int

__all__ = ["SparkRatingModel", "SPARK_FORMAT"]

logger = logging.getLogger(__name__)

#: ``format`` of a saved Spark model's metadata.
SPARK_FORMAT = "factorise-spark-model"
SPARK_FORMAT_VERSION = 1


def _check_column_name(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise TypeError(f"`{name}` must be a non-empty column name; got {value!r}")
    return value


class SparkRatingModel:
    """The fitted state and the cluster-side methods of a Spark rating model (see the module docstring)."""

    #: The local model class :meth:`to_local` builds (set by subclasses).
    _local_class: ClassVar[type]
    _param_names: ClassVar[tuple[str, ...]] = ()
    #: Name of the parameter giving the number of steps (as for the local models).
    _steps_param: ClassVar[str] = "n_epochs"

    user_factors_: Any
    item_factors_: Any
    global_mean_: float
    rating_range_: tuple[float, float]
    history_: list[dict[str, float]]
    n_epochs_: int
    _rated: Any  # DataFrame of (u, i) index pairs of the training ratings

    # ----------------------------------------------------------------- params
    def get_params(self) -> dict[str, Any]:
        """The constructor parameters, by name."""
        return {name: getattr(self, name) for name in self._param_names}

    def set_params(self, **params: Any) -> SparkRatingModel:
        """Set constructor parameters; return ``self``."""
        for name, value in params.items():
            if name not in self._param_names:
                raise ValueError(
                    f"unknown parameter {name!r} for {type(self).__name__}; expected one of {list(self._param_names)}"
                )
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_spark_params(self) -> None:
        """The parameters every Spark model shares: checkpoints and column names."""
        check_positive_int(self.checkpoint_interval, "checkpoint_interval")
        if self.checkpoint_dir is not None and not isinstance(self.checkpoint_dir, str):
            raise TypeError(f"`checkpoint_dir` must be None or a path/URI string; got {self.checkpoint_dir!r}")
        for name in ("user_col", "item_col", "rating_col"):
            _check_column_name(getattr(self, name), name)
        if len({self.user_col, self.item_col, self.rating_col}) < 3:
            raise ValueError(
                f"`user_col`, `item_col` and `rating_col` must be three different columns; got "
                f"{self.user_col!r}, {self.item_col!r}, {self.rating_col!r}"
            )

    def _check_fitted(self) -> None:
        if not hasattr(self, "user_factors_"):
            raise RuntimeError(f"this {type(self).__name__} is not fitted yet: call fit() or load() first")

    @property
    def _session(self) -> Any:
        return self.user_factors_.sparkSession

    # ---------------------------------------------------------------- predict
    def transform(self, frame: Any, *, user_col: str | None = None, item_col: str | None = None) -> Any:
        """``frame`` with a ``prediction`` column (computed on the cluster).

        Parameters
        ----------
        frame : pyspark.sql.DataFrame
            Has the user and item columns (the model's ``user_col`` and
            ``item_col`` unless given here); other columns are kept.
        user_col, item_col : str, optional

        Returns
        -------
        pyspark.sql.DataFrame
            Predictions clipped to the training rating range; an unknown user
            or item gets the global mean plus the known biases, never NaN.
        """
        from pyspark.sql import DataFrame
        from pyspark.sql import functions as F

        self._check_fitted()
        if not isinstance(frame, DataFrame):
            raise TypeError(f"`frame` must be a Spark DataFrame; got {type(frame).__name__}")
        user = _check_column_name(user_col or self.user_col, "user_col")
        item = _check_column_name(item_col or self.item_col, "item_col")
        for role, column in (("user", user), ("item", item)):
            if column not in frame.columns:
                raise ValueError(f"`frame` has no {role} column {column!r} (columns: {', '.join(frame.columns)})")
        if "prediction" in frame.columns:
            raise ValueError("`frame` already has a column 'prediction'; rename or drop it first")
        users = self.user_factors_.select(F.col("id").alias("_u"), F.col("bias").alias("_bu"), F.col("factors").alias("_pu"))
        items = self.item_factors_.select(F.col("id").alias("_i"), F.col("bias").alias("_bi"), F.col("factors").alias("_qi"))
        joined = frame.join(users, frame[user] == users["_u"], "left").join(items, frame[item] == items["_i"], "left")
        return joined.withColumn("prediction", self._prediction()).drop("_u", "_bu", "_pu", "_i", "_bi", "_qi")

    def _prediction(self) -> Any:
        """The clipped prediction from the joined columns ``_bu``, ``_pu``, ``_bi``, ``_qi`` (null when unknown)."""
        from pyspark.sql import functions as F

        dot = F.aggregate(
            F.zip_with("_pu", "_qi", lambda x, y: x.cast("double") * y.cast("double")), F.lit(0.0), lambda a, x: a + x
        )
        low, high = self.rating_range_
        raw = F.lit(self.global_mean_) + F.coalesce(F.col("_bu").cast("double"), F.lit(0.0))
        raw = raw + F.coalesce(F.col("_bi").cast("double"), F.lit(0.0)) + F.coalesce(dot, F.lit(0.0))
        return F.least(F.greatest(raw, F.lit(low)), F.lit(high))

    def _index_rmse(self, pairs: Any) -> float:
        """RMSE over ``pairs`` given by index (columns ``u``, ``i``, ``r``), on the cluster."""
        from pyspark.sql import functions as F

        users = self.user_factors_.select(F.col("idx").alias("u"), F.col("bias").alias("_bu"), F.col("factors").alias("_pu"))
        items = self.item_factors_.select(F.col("idx").alias("i"), F.col("bias").alias("_bi"), F.col("factors").alias("_qi"))
        error = self._prediction() - F.col("r").cast("double")
        row = pairs.join(users, "u", "left").join(items, "i", "left").agg(F.avg(error * error).alias("mse")).collect()[0]
        return math.sqrt(row["mse"]) if row["mse"] is not None else math.nan

    def evaluate(self, frame: Any, *, rating_col: str | None = None, **columns: str) -> dict[str, float]:
        """RMSE and MAE of the predictions for the ratings of ``frame`` (on the cluster).

        Returns
        -------
        dict
            ``{"rmse": ..., "mae": ..., "n": ...}``.
        """
        from pyspark.sql import functions as F

        rating = _check_column_name(rating_col or self.rating_col, "rating_col")
        if rating not in frame.columns:
            raise ValueError(f"`frame` has no rating column {rating!r} (columns: {', '.join(frame.columns)})")
        scored = self.transform(frame, **columns)
        error = F.col("prediction") - F.col(rating).cast("double")
        row = scored.agg(
            F.sqrt(F.avg(error * error)).alias("rmse"), F.avg(F.abs(error)).alias("mae"), F.count(F.lit(1)).alias("n")
        ).collect()[0]
        if row["n"] == 0:
            raise ValueError("`frame` holds no ratings to evaluate")
        return {"rmse": float(row["rmse"]), "mae": float(row["mae"]), "n": int(row["n"])}

    # -------------------------------------------------------------- recommend
    def recommend_for_all_users(self, n: int = 10, *, exclude_rated: bool = True) -> Any:
        """The top ``n`` items of every training user (see :meth:`recommend`)."""
        self._check_fitted()
        return self._recommend(self.user_factors_, n, exclude_rated)

    def recommend(self, users: Any, n: int = 10, *, exclude_rated: bool = True, user_col: str | None = None) -> Any:
        """The top ``n`` items of each user of ``users``, best first, as :meth:`RatingModel.recommend` ranks them.

        Parameters
        ----------
        users : pyspark.sql.DataFrame
            A column of raw user ids (``user_col``, default the model's).
            Unknown users get the items of highest ``mu + b_i``.
        n : int, default 10
        exclude_rated : bool, default True
            Leave out the items each user rated in training.

        Returns
        -------
        pyspark.sql.DataFrame
            Columns ``user``, ``rank`` (1 = best), ``item``, ``score`` (the
            clipped prediction) and ``ranking_score`` (unclipped): one row
            per recommendation, fewer than ``n`` where the catalogue runs
            out. The item factors are sent to every executor.
        """
        from pyspark.sql import functions as F

        self._check_fitted()
        column = _check_column_name(user_col or self.user_col, "user_col")
        if column not in users.columns:
            raise ValueError(f"`users` has no user column {column!r} (columns: {', '.join(users.columns)})")
        wanted = users.select(F.col(column).alias("id")).distinct()
        known = wanted.join(self.user_factors_, "id", "left")
        return self._recommend(known, n, exclude_rated)

    def _recommend(self, users: Any, n: int, exclude_rated: bool) -> Any:
        from pyspark.sql import functions as F

        n = check_non_negative_int(n, "n")
        spark = self._session
        items = self.item_factors_.orderBy("idx").collect()
        item_ids = [row["id"] for row in items]
        bias = np.array([row["bias"] for row in items], dtype=np.float64)
        factors = np.array([row["factors"] for row in items], dtype=np.float32).reshape(len(items), -1)
        shared = spark.sparkContext.broadcast((item_ids, bias, factors))
        if exclude_rated:
            rated = self._rated.groupBy(F.col("u").alias("idx")).agg(F.collect_list("i").alias("rated"))
            users = users.join(rated, "idx", "left")
        else:
            users = users.withColumn("rated", F.lit(None).cast("array<int>"))
        id_type = self.user_factors_.schema["id"].dataType.simpleString()
        item_type = self.item_factors_.schema["id"].dataType.simpleString()
        schema = f"user {id_type}, rank int, item {item_type}, score double, ranking_score double"
        from pyspark.sql.pandas.types import to_arrow_schema
        from pyspark.sql.types import _parse_datatype_string

        arrow_schema = to_arrow_schema(_parse_datatype_string(schema))
        task = partial(_top_items, shared=shared, mu=self.global_mean_, bounds=self.rating_range_, n=n, schema=arrow_schema)
        return users.select("id", "idx", "bias", "factors", "rated").mapInArrow(task, schema)

    # ---------------------------------------------------------------- convert
    def to_local(self) -> Any:
        """The same model as a local one (``BiasedMF`` or ``ALS``): NumPy factors, local predict and recommend.

        The factors, the id maps and the rated items are collected to the
        driver: for models whose factors fit in its memory.
        """
        from factorise.data import IdMap
        from factorise.models._base import _rated_lists

        self._check_fitted()
        local = self._local_class(**self._local_params())
        for side, frame in (("user", self.user_factors_), ("item", self.item_factors_)):
            rows = frame.orderBy("idx").collect()
            ids = np.array([row["id"] for row in rows])
            if ids.dtype.kind not in "U":
                ids = ids.astype(np.int64)
            dtype = getattr(local, "dtype", "float32")
            bias = np.array([row["bias"] for row in rows], dtype=dtype)
            factors = np.array([row["factors"] for row in rows], dtype=dtype).reshape(len(rows), -1)
            setattr(local, f"{side}_ids_", IdMap(ids))
            setattr(local, f"{side}_bias_", bias)
            setattr(local, f"{side}_factors_", factors)
        pairs = self._rated.select("u", "i").toArrow()
        users = np.asarray(pairs.column("u").to_numpy(), dtype=np.int32)
        items = np.asarray(pairs.column("i").to_numpy(), dtype=np.int32)
        n_users, n_items = len(local.user_ids_), len(local.item_ids_)
        if users.size and not (0 <= users.min() and users.max() < n_users and 0 <= items.min() and items.max() < n_items):
            raise RuntimeError("the training pairs do not match the model's id maps (was the input changed?)")
        order = np.argsort(users, kind="stable")
        local._rated_indptr, local._rated_items = _rated_lists(users[order], items[order], len(local.user_ids_), 1)
        local.global_mean_ = float(self.global_mean_)
        local.rating_range_ = (float(self.rating_range_[0]), float(self.rating_range_[1]))
        local.history_ = [dict(record) for record in self.history_]
        local.n_epochs_ = int(self.n_epochs_)
        return local

    def _local_params(self) -> dict[str, Any]:
        raise NotImplementedError

    # ------------------------------------------------------------ persistence
    def save(self, path: str, *, overwrite: bool = False) -> None:
        """Save to a directory of Parquet tables and a JSON metadata file (any Hadoop filesystem).

        Everything is written into a temporary sibling directory, which is
        renamed to ``path`` at the end: a failure leaves nothing at ``path``.

        Raises
        ------
        FileExistsError
            If ``path`` exists and ``overwrite`` is False.
        """
        self._check_fitted()
        spark = self._session
        fs, target = _filesystem(spark, path)
        jvm = spark.sparkContext._jvm
        if fs.exists(target) and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        temporary = jvm.org.apache.hadoop.fs.Path(f"{str(path).rstrip('/')}.tmp-{uuid.uuid4().hex}")
        try:
            where = temporary.toString()
            self.user_factors_.write.parquet(f"{where}/user_factors")
            self.item_factors_.write.parquet(f"{where}/item_factors")
            self._rated.select("u", "i").write.parquet(f"{where}/rated")
            metadata = {
                "format": SPARK_FORMAT,
                "format_version": SPARK_FORMAT_VERSION,
                "model": type(self).__name__,
                "params": {k: (None if isinstance(v, np.random.Generator) else v) for k, v in self.get_params().items()},
                "global_mean": self.global_mean_,
                "rating_range": list(self.rating_range_),
                "history": self.history_,
                "n_epochs": self.n_epochs_,
                "factorise_version": __version__,
            }
            stream = fs.create(jvm.org.apache.hadoop.fs.Path(temporary, "metadata.json"), True)
            stream.write(bytearray(json.dumps(metadata).encode("utf-8")))
            stream.close()
            if fs.exists(target):
                fs.delete(target, True)
            if not fs.rename(temporary, target):
                raise OSError(f"could not rename {where} to {path}")
        except BaseException:
            if fs.exists(temporary):
                fs.delete(temporary, True)
            raise

    @classmethod
    def load(cls, path: str, spark: Any = None) -> SparkRatingModel:
        """Load a model written by :meth:`save`."""
        from factorise.spark._runtime import spark_session

        spark = spark or spark_session()
        fs, target = _filesystem(spark, path)
        jvm = spark.sparkContext._jvm
        meta_path = jvm.org.apache.hadoop.fs.Path(target, "metadata.json")
        if not fs.exists(meta_path):
            raise FileNotFoundError(f"{path}: not a saved Spark model (no metadata.json)")
        stream = fs.open(meta_path)
        reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(stream, "UTF-8"))
        lines = []
        while (line := reader.readLine()) is not None:
            lines.append(line)
        reader.close()
        try:
            metadata = json.loads("\n".join(lines))
        except ValueError as exc:
            raise ValueError(f"{path}/metadata.json is not valid JSON: {exc}") from None
        if metadata.get("format") != SPARK_FORMAT:
            raise ValueError(f"{path}: not a saved Spark model (format {metadata.get('format')!r})")
        classes = {c.__name__: c for c in _spark_models()}
        model_class = classes.get(metadata.get("model"))
        if model_class is None or (cls is not SparkRatingModel and not issubclass(model_class, cls)):
            raise ValueError(f"{path}: holds a {metadata.get('model')}, not a {cls.__name__}")
        model = model_class(**metadata["params"])
        model.user_factors_ = spark.read.parquet(f"{path}/user_factors")
        model.item_factors_ = spark.read.parquet(f"{path}/item_factors")
        model._rated = spark.read.parquet(f"{path}/rated")
        model.global_mean_ = float(metadata["global_mean"])
        model.rating_range_ = tuple(metadata["rating_range"])
        model.history_ = metadata["history"]
        model.n_epochs_ = int(metadata["n_epochs"])
        return model


def _spark_models() -> list[type]:
    from factorise.spark._biased import SparkBiasedMF

    models: list[type] = [SparkBiasedMF]
    try:
        from factorise.spark._als import SparkALS

        models.append(SparkALS)
    except ImportError:  # pragma: no cover
        pass
    return models


def _filesystem(spark: Any, path: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    target = jvm.org.apache.hadoop.fs.Path(str(path))
    return target.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), target


def _top_items(
    batches: Any, *, shared: Any, mu: float, bounds: tuple[float, float], n: int, schema: Any
) -> Iterator[Any]:
    """mapInArrow body of recommend: score every item for each user of the batch, keep the top ``n``."""
    import pyarrow as pa

    item_ids, item_bias, item_factors = shared.value
    low, high = bounds
    base = mu + item_bias
    for batch in batches:
        columns = batch.to_pydict()
        out_user, out_rank, out_item, out_score, out_raw = [], [], [], [], []
        for uid, bias, factors, rated in zip(columns["id"], columns["bias"], columns["factors"], columns["rated"], strict=True):
            scores = base.copy()
            if factors is not None:
                scores += float(bias) + item_factors.astype(np.float64) @ np.asarray(factors, dtype=np.float32).astype(np.float64)
                if rated:
                    scores[np.asarray(rated, dtype=np.int64)] = -np.inf
            count = min(n, int(np.isfinite(scores).sum()))
            top = np.argsort(-scores, kind="stable")[:count]
            for rank, j in enumerate(top, start=1):
                out_user.append(uid)
                out_rank.append(rank)
                out_item.append(item_ids[j])
                out_score.append(float(min(max(scores[j], low), high)))
                out_raw.append(float(scores[j]))
        yield pa.RecordBatch.from_pydict(
            {"user": out_user, "rank": out_rank, "item": out_item, "score": out_score, "ranking_score": out_raw},
            schema=schema,
        )
