"""Ratings on Spark: read, checked, ids mapped to contiguous indices, positions numbered.

Everything here runs on the cluster: the driver sees per-partition counts and
the ratings per unit of user (item) ids, never the ratings themselves.

Raw ids are mapped as :class:`factorise.data.IdMap` maps them locally: the
distinct ids in ascending order (numeric for integer ids, by code point for
strings) get indices ``0 .. n - 1``. Each rating gets its position in the
input's order (partition by partition, row by row), the order a local fit of
the same rows would see; the DSGD engine keeps each block's ratings in that
order, as the shared-memory sweep does.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["Columns", "IndexedRatings", "index_ratings", "map_ids", "read_frame"]

logger = logging.getLogger(__name__)

#: Spark SQL types accepted as ids.
_INTEGER_TYPES = ("ByteType", "ShortType", "IntegerType", "LongType")
_NUMERIC_TYPES = _INTEGER_TYPES + ("FloatType", "DoubleType", "DecimalType")

#: Most distinct users or items (indices are int32).
MAX_IDS = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class Columns:
    """Names of the user, item and rating columns of an input DataFrame."""

    user: str = "user"
    item: str = "item"
    rating: str = "rating"


def read_frame(spark: Any, source: Any, columns: Columns, *, name: str = "ratings") -> Any:
    """A DataFrame of ``source``: a DataFrame as it is, or a path or URI read by Spark.

    Parquet (a ``.parquet`` file or a directory of them) is read as it is;
    ``.csv`` files are comma-separated with a header line; ``.tsv``,
    ``.data`` (MovieLens) and ``.txt`` files are tab-separated, with a header
    when the first field of the first line is not a number. Files without a
    header get the columns ``columns.user``, ``columns.item``,
    ``columns.rating`` (and ``timestamp``) in that order.

    Raises
    ------
    TypeError
        ``source`` is neither a DataFrame nor a path.
    ValueError
        A path of an unknown format.
    FileNotFoundError
        A local path that does not exist.
    """
    from pyspark.sql import DataFrame

    if isinstance(source, DataFrame):
        return source
    if not isinstance(source, (str, Path)):
        raise TypeError(
            f"`{name}` must be a Spark DataFrame or a path/URI Spark can read; got {type(source).__name__}"
        )
    text = str(source)
    local = "://" not in text or text.startswith("file://")
    if local and not Path(text.removeprefix("file://")).exists():
        raise FileNotFoundError(f"`{name}`: no such file or directory: {text}")
    lower = text.rstrip("/").lower()
    if lower.endswith(".parquet") or (local and Path(text.removeprefix("file://")).is_dir()):
        return spark.read.parquet(text)
    if lower.endswith(".csv"):
        return spark.read.csv(text, header=True, inferSchema=True)
    if lower.endswith((".tsv", ".data", ".txt", ".base", ".test")):
        first = spark.read.text(text).limit(1).collect()
        head = first[0][0].split("\t")[0] if first else ""
        header = not _is_number(head)
        frame = spark.read.csv(text, sep="\t", header=header, inferSchema=True)
        if not header:
            names = [columns.user, columns.item, columns.rating, "timestamp"][: len(frame.columns)]
            frame = frame.toDF(*names, *frame.columns[len(names) :])
        return frame
    raise ValueError(
        f"`{name}`: cannot tell the format of {text!r}: name a .parquet file or directory, a .csv file "
        f"(with a header) or a .tsv/.data/.txt file (tab-separated), or pass a DataFrame"
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_columns(frame: Any, columns: Columns, *, name: str = "ratings") -> Any:
    """``frame``'s user, item and rating columns, checked by type, as ``u``, ``i``, ``r``.

    Raises
    ------
    ValueError
        A column is missing.
    TypeError
        Ids that are neither integers nor strings, or ratings that are not numbers.
    """
    from pyspark.sql import functions as F

    fields = {f.name: f for f in frame.schema.fields}
    for role, column in (("user", columns.user), ("item", columns.item), ("rating", columns.rating)):
        if column not in fields:
            raise ValueError(
                f"`{name}` has no {role} column {column!r} (columns: {', '.join(map(repr, fields)) or 'none'}); "
                f"pass {role}_col= to name it"
            )
    for role, column in (("user", columns.user), ("item", columns.item)):
        kind = type(fields[column].dataType).__name__
        if kind not in _INTEGER_TYPES and kind != "StringType":
            raise TypeError(
                f"`{name}`: {role} ids (column {column!r}) must be integers or strings; got {fields[column].dataType.simpleString()}"
            )
    if type(fields[columns.rating].dataType).__name__ not in _NUMERIC_TYPES:
        raise TypeError(
            f"`{name}`: ratings (column {columns.rating!r}) must be numbers; got "
            f"{fields[columns.rating].dataType.simpleString()}"
        )
    return frame.select(
        F.col(columns.user).alias("u_raw"), F.col(columns.item).alias("i_raw"), F.col(columns.rating).cast("double").alias("r")
    )


@dataclasses.dataclass
class IndexedRatings:
    """Ratings with contiguous indices, on the cluster.

    Attributes
    ----------
    frame : pyspark.sql.DataFrame
        Columns ``u`` (int), ``i`` (int), ``r`` (float), ``pos`` (long: the
        rating's position in the input, 0-based and contiguous).
    users, items : pyspark.sql.DataFrame
        Id maps, columns ``raw`` and ``idx`` (int), cached.
    n_ratings, n_users, n_items : int
    positioned : pyspark.sql.DataFrame
        The cached input with positions (unpersisted once the blocks are built).
    string_users, string_items : bool
        Whether the raw ids are strings.
    """

    frame: Any
    users: Any
    items: Any
    positioned: Any
    n_ratings: int
    n_users: int
    n_items: int
    string_users: bool
    string_items: bool


def _offsets_column(pid: Any, offsets: np.ndarray) -> Any:
    """``offsets[pid]`` as a Spark column (``offsets`` is short: one per partition)."""
    from pyspark.sql import functions as F

    return F.element_at(F.array(*[F.lit(int(o)) for o in offsets]), pid + 1)


def index_frame(frame: Any) -> tuple[Any, np.ndarray]:
    """``frame`` with a contiguous 0-based ``pos`` (its rows' order) and the rows of each partition.

    The rows are tagged with their partition and their number within it and
    cached (on the executors, memory and disk), so that the count of each
    partition's rows (one job) and every later use see the same rows in the
    same places even when ``frame`` comes out of a shuffle; ``pos`` is the
    partition's offset plus the row's number. The caller unpersists the
    result when done with it.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    tagged = (
        frame.withColumn("_pid", F.spark_partition_id())
        .withColumn("_mono", F.monotonically_increasing_id())
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    counts = {row[0]: row[1] for row in tagged.groupBy("_pid").count().collect()}
    n_parts = max(counts) + 1 if counts else 0
    sizes = np.array([counts.get(p, 0) for p in range(n_parts)], dtype=np.int64)
    if not n_parts:
        return tagged.withColumn("pos", F.lit(0).cast("long")).drop("_pid", "_mono"), sizes
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    pos = _offsets_column(F.col("_pid"), offsets) + (F.col("_mono") - F.shiftleft(F.col("_pid").cast("long"), 33))
    return tagged.withColumn("pos", pos.cast("long")).drop("_pid", "_mono"), sizes


def map_ids(frame: Any, raw: str) -> tuple[Any, int]:
    """The id map of column ``raw``: its distinct values in ascending order, numbered from 0.

    Returns
    -------
    ids : pyspark.sql.DataFrame
        Columns ``raw``, ``idx`` (int), ``count`` (ratings of the id), cached.
    n : int
        Distinct ids.
    """
    from pyspark.sql import functions as F

    counted = frame.groupBy(F.col(raw).alias("raw")).count().orderBy("raw")
    numbered, sizes = index_frame(counted)
    ids = numbered.select("raw", F.col("pos").cast("int").alias("idx"), "count")
    n = int(sizes.sum())
    if n > MAX_IDS:
        raise ValueError(f"{n} distinct ids in column {raw!r}: at most {MAX_IDS} are supported")
    return ids, n


def index_ratings(spark: Any, frame: Any, *, name: str = "ratings") -> IndexedRatings:
    """Check ratings (``u_raw``, ``i_raw``, ``r`` from :func:`check_columns`) and map them to indices.

    Raises
    ------
    ValueError
        No ratings, a null id or rating, or a rating that is not finite.
    """
    from pyspark.sql import functions as F

    stats = frame.agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.col("u_raw").isNull().cast("long")).alias("null_u"),
        F.sum(F.col("i_raw").isNull().cast("long")).alias("null_i"),
        F.sum(F.col("r").isNull().cast("long")).alias("null_r"),
        F.sum((F.isnan("r") | (F.abs("r") == float("inf"))).cast("long")).alias("bad_r"),
    ).collect()[0]
    if stats["n"] == 0:
        raise ValueError(f"`{name}` holds no ratings")
    for role, key in (("user id", "null_u"), ("item id", "null_i"), ("rating", "null_r")):
        if stats[key]:
            raise ValueError(f"`{name}`: {stats[key]} of {stats['n']} rows have a null {role}; drop or fill them first")
    if stats["bad_r"]:
        raise ValueError(f"`{name}`: {stats['bad_r']} ratings are NaN or infinite; every rating must be a finite number")
    positioned, _ = index_frame(frame)
    users, n_users = map_ids(positioned, "u_raw")
    items, n_items = map_ids(positioned, "i_raw")
    user_map = users.select(F.col("raw").alias("u_raw"), F.col("idx").alias("u"))
    item_map = items.select(F.col("raw").alias("i_raw"), F.col("idx").alias("i"))
    indexed = (
        positioned.join(_small(user_map, n_users), "u_raw")
        .join(_small(item_map, n_items), "i_raw")
        .select("u", "i", F.col("r").cast("float").alias("r"), "pos")
    )
    fields = {f.name: type(f.dataType).__name__ for f in frame.schema.fields}
    return IndexedRatings(
        frame=indexed,
        users=users,
        items=items,
        positioned=positioned,
        n_ratings=int(stats["n"]),
        n_users=n_users,
        n_items=n_items,
        string_users=fields["u_raw"] == "StringType",
        string_items=fields["i_raw"] == "StringType",
    )


#: Id maps of up to this many ids are broadcast to every executor for joins (hash-joined beyond).
BROADCAST_IDS = 2_000_000


def _small(ids: Any, n: int | None = None) -> Any:
    """An id map, marked for a broadcast join when it is small."""
    from pyspark.sql import functions as F

    if n is None:
        n = ids.count()
    return F.broadcast(ids) if n <= BROADCAST_IDS else ids


def unit_counts(ids: Any, n: int, unit: int) -> np.ndarray:
    """Ratings of each run of ``unit`` consecutive indices, from an id map of :func:`map_ids`."""
    from pyspark.sql import functions as F

    counts = np.zeros(-(-n // unit), dtype=np.int64)
    rows = ids.groupBy((F.col("idx") / F.lit(unit)).cast("int").alias("unit")).agg(F.sum("count").alias("c")).collect()
    for row in rows:
        counts[row["unit"]] = row["c"]
    return counts


def lookup(frame: Any, users: Any, items: Any, n_users: int, n_items: int) -> Any:
    """``frame`` (``u_raw``, ``i_raw``, ``r``) with indices ``u``, ``i`` of the fit's maps, -1 where unknown."""
    from pyspark.sql import functions as F

    return (
        frame.join(_small(users.select(F.col("raw").alias("u_raw"), F.col("idx").alias("u")), n_users), "u_raw", "left")
        .join(_small(items.select(F.col("raw").alias("i_raw"), F.col("idx").alias("i")), n_items), "i_raw", "left")
        .select(F.coalesce("u", F.lit(-1)).alias("u"), F.coalesce("i", F.lit(-1)).alias("i"), F.col("r").cast("float").alias("r"))
    )
