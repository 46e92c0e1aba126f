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

__all__ = ["Columns", "IndexedRatings", "check_columns", "index_ratings", "indexed_frame", "raw_indices", "read_frame"]

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
    """Checked ratings on the cluster, and what the driver knows of them.

    Attributes
    ----------
    frame : pyspark.sql.DataFrame
        The input's ``u_raw``, ``i_raw``, ``r`` columns (not cached: read again where needed).
    user_ids, item_ids : numpy.ndarray
        The distinct raw ids, sorted as :class:`factorise.data.IdMap` sorts
        them (int64 or unicode): the index of an id is its position.
    user_counts, item_counts : numpy.ndarray of int64
        Ratings of each id, in that order.
    partition_sizes : numpy.ndarray of int64
        Rows of each input partition: a rating's position is its
        partition's offset plus its row within it.
    n_ratings : int
    """

    frame: Any
    user_ids: np.ndarray
    item_ids: np.ndarray
    user_counts: np.ndarray
    item_counts: np.ndarray
    partition_sizes: np.ndarray
    n_ratings: int
    #: With a Parquet path read by pyarrow on the executors: ``(uri, row group, rows)`` of each piece,
    #: in input order (the "partitions" of ``partition_sizes``); None when Spark reads the rows.
    pieces: list[tuple[str, int, int]] | None = None

    @property
    def n_users(self) -> int:
        return int(self.user_ids.shape[0])

    @property
    def n_items(self) -> int:
        return int(self.item_ids.shape[0])

    @property
    def offsets(self) -> np.ndarray:
        """Position of the first rating of each input partition."""
        return np.concatenate([[0], np.cumsum(self.partition_sizes)[:-1]]).astype(np.int64)


def _check_scan(name: str, n: int, null_u: int, null_i: int, null_r: int, bad: int) -> None:
    """The checks of a first pass over the ratings (however it was read): no empty data, nulls or NaN."""
    if n == 0:
        raise ValueError(f"`{name}` holds no ratings")
    for role, count in (("user id", null_u), ("item id", null_i), ("rating", null_r)):
        if count:
            raise ValueError(f"`{name}`: {count} of {n} rows have a null {role}; drop or fill them first")
    if bad:
        raise ValueError(f"`{name}`: {bad} ratings are NaN or infinite; every rating must be a finite number")


def _check_id_count(n: int, column: str) -> None:
    if n > MAX_IDS:
        raise ValueError(f"{n} distinct ids in column {column!r}: at most {MAX_IDS} are supported")


def _id_counts(frame: Any, column: str) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of ``column`` (sorted as IdMap sorts them) and their counts: one job."""
    import pyarrow as pa
    from pyspark.sql import functions as F

    table = frame.groupBy(F.col(column).alias("raw")).count().toArrow()
    raw = table.column("raw")

    if pa.types.is_string(raw.type) or pa.types.is_large_string(raw.type):
        ids = np.asarray(raw.to_pylist(), dtype=str)
    else:
        ids = raw.to_numpy().astype(np.int64)
    counts = table.column("count").to_numpy().astype(np.int64)
    order = np.argsort(ids, kind="stable")
    _check_id_count(ids.shape[0], column)
    return ids[order], counts[order]


def index_ratings(spark: Any, frame: Any, *, name: str = "ratings") -> IndexedRatings:
    """Check ratings (``u_raw``, ``i_raw``, ``r`` from :func:`check_columns`) and learn their ids: three jobs.

    Raises
    ------
    ValueError
        No ratings, a null id or rating, or a rating that is not finite.
    """
    from pyspark.sql import functions as F

    if _shuffled(frame):  # rows that come out of a shuffle may land elsewhere when recomputed: fix them
        from pyspark import StorageLevel

        frame = frame.persist(StorageLevel.MEMORY_AND_DISK)
    rows = frame.groupBy(F.spark_partition_id().alias("pid")).agg(
        F.count(F.lit(1)).alias("n"),
        F.sum(F.col("u_raw").isNull().cast("long")).alias("null_u"),
        F.sum(F.col("i_raw").isNull().cast("long")).alias("null_i"),
        F.sum(F.col("r").isNull().cast("long")).alias("null_r"),
        F.sum((F.isnan("r") | (F.abs("r") == float("inf"))).cast("long")).alias("bad_r"),
    ).collect()
    total = {key: sum(int(row[key] or 0) for row in rows) for key in ("n", "null_u", "null_i", "null_r", "bad_r")}
    _check_scan(name, total["n"], total["null_u"], total["null_i"], total["null_r"], total["bad_r"])
    n_parts = max(int(row["pid"]) for row in rows) + 1
    sizes = np.zeros(n_parts, dtype=np.int64)
    for row in rows:
        sizes[int(row["pid"])] = int(row["n"])
    user_ids, user_counts = _id_counts(frame, "u_raw")
    item_ids, item_counts = _id_counts(frame, "i_raw")
    return IndexedRatings(frame, user_ids, item_ids, user_counts, item_counts, sizes, int(total["n"]))


def _shuffled(frame: Any) -> bool:
    """Whether ``frame``'s plan has a shuffle (an Exchange) before its output."""
    try:
        plan = frame._jdf.queryExecution().executedPlan().toString()
    except Exception:  # noqa: BLE001  (a plan we cannot read: assume the worst)
        return True
    return "Exchange" in plan


def unit_counts(counts: np.ndarray, unit: int) -> np.ndarray:
    """Ratings of each run of ``unit`` consecutive indices, from the ratings of each index."""
    n = counts.shape[0]
    padded = np.zeros(-(-n // unit) * unit, dtype=np.int64)
    padded[:n] = counts
    return padded.reshape(-1, unit).sum(axis=1)


def raw_indices(column: Any, ids: np.ndarray) -> np.ndarray:
    """Index of each raw id of an Arrow ``column`` in the sorted ``ids``; -1 where it is not there."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if ids.dtype.kind == "U":
        if not (pa.types.is_string(column.type) or pa.types.is_large_string(column.type)):
            column = pc.cast(column, pa.string())  # integer queries of string ids compare as strings
        found = pc.index_in(column, value_set=pa.array(ids.tolist(), pa.string()))
        return found.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return np.full(len(column), -1, dtype=np.int64)  # string queries of integer ids: unknown
    raw = column.to_numpy(zero_copy_only=False).astype(np.int64)
    if ids.shape[0] == 0:
        return np.full(raw.shape[0], -1, dtype=np.int64)
    where = np.minimum(np.searchsorted(ids, raw), ids.shape[0] - 1)
    return np.where(ids[where] == raw, where, -1).astype(np.int64)


def _index_batches(batches: Any, ids: Any, offsets: np.ndarray | None) -> Any:
    """mapInArrow body: ``u``, ``i`` (indices, -1 unknown), ``r`` and, with ``offsets``, ``pos``."""
    import pyarrow as pa
    from pyspark import TaskContext

    user_ids, item_ids = ids.value
    row = 0
    base = int(offsets[TaskContext.get().partitionId()]) if offsets is not None else 0
    for batch in batches:
        u = raw_indices(batch.column("u_raw"), user_ids).astype(np.int32)
        i = raw_indices(batch.column("i_raw"), item_ids).astype(np.int32)
        r = batch.column("r").to_numpy(zero_copy_only=False).astype(np.float32)
        columns = {"u": u, "i": i, "r": r}
        if offsets is not None:
            columns["pos"] = base + row + np.arange(u.shape[0], dtype=np.int64)
        row += u.shape[0]
        yield pa.RecordBatch.from_pydict(columns)


def indexed_frame(spark: Any, frame: Any, data: IndexedRatings, *, positions: bool = True) -> Any:
    """``frame`` (``u_raw``, ``i_raw``, ``r``) as indices of ``data``'s ids: ``u``, ``i`` (-1 unknown), ``r``, ``pos``.

    ``pos`` (the rating's position in the input) is only right for the
    training ratings themselves (``frame`` is ``data.frame``).
    """
    from functools import partial

    ids = spark.sparkContext.broadcast((data.user_ids, data.item_ids))
    schema = "u int, i int, r float" + (", pos long" if positions else "")
    body = partial(_index_batches, ids=ids, offsets=data.offsets if positions else None)
    return frame.mapInArrow(body, schema)


def id_frame(spark: Any, ids: np.ndarray) -> Any:
    """A DataFrame of ``ids`` with their indices: columns ``raw``, ``idx``."""
    import pyarrow as pa

    raw = pa.array(ids.tolist(), pa.string()) if ids.dtype.kind == "U" else pa.array(ids, pa.int64())
    return spark.createDataFrame(pa.table({"raw": raw, "idx": pa.array(np.arange(ids.shape[0], dtype=np.int32))}))


# --------------------------------------------------- Parquet read on the executors
def parquet_pieces(spark: Any, source: Any) -> list[tuple[str, int, int]] | None:
    """The row groups of a Parquet path, ``(uri, row group, rows)`` in file order, or None for other inputs.

    Spark lists the files (any Hadoop filesystem); pyarrow reads each footer
    here. A path pyarrow cannot open (a filesystem it has no driver for) is
    left to Spark's reader (None).
    """
    if not isinstance(source, (str, Path)):
        return None
    text = str(source)
    lower = text.rstrip("/").lower()
    local = "://" not in text or text.startswith("file://")
    if not (lower.endswith(".parquet") or (local and Path(text.removeprefix("file://")).is_dir())):
        return None
    try:
        import pyarrow.fs as pafs
        import pyarrow.parquet as pq

        files = sorted(spark.read.parquet(text).inputFiles())
        pieces = []
        for uri in files:
            fs, path = pafs.FileSystem.from_uri(uri)
            meta = pq.read_metadata(path, filesystem=fs)
            pieces += [(uri, g, int(meta.row_group(g).num_rows)) for g in range(meta.num_row_groups)]
    except Exception as exc:  # noqa: BLE001  (no pyarrow driver for this filesystem: Spark reads it)
        logger.info("Parquet pieces of %s not readable by pyarrow (%s): Spark reads the rows", text, exc)
        return None
    return pieces or None


def read_piece(uri: str, group: int, columns: Columns) -> Any:
    """One row group's user, item and rating columns, as a pyarrow Table (``u_raw``, ``i_raw``, ``r``)."""
    import pyarrow.compute as pc
    import pyarrow.fs as pafs
    import pyarrow.parquet as pq

    fs, path = pafs.FileSystem.from_uri(uri)
    table = pq.ParquetFile(path, filesystem=fs).read_row_group(group, columns=[columns.user, columns.item, columns.rating])
    return table.rename_columns(["u_raw", "i_raw", "r"]).set_column(2, "r", pc.cast(table.column(2), "float64"))


def _value_counts(column: Any) -> tuple[np.ndarray, np.ndarray]:
    import pyarrow as pa
    import pyarrow.compute as pc

    counted = pc.value_counts(column)
    values = counted.field("values")
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        ids = np.asarray(values.to_pylist(), dtype=str)
    else:
        ids = values.to_numpy(zero_copy_only=False).astype(np.int64)
    counts = counted.field("counts").to_numpy(zero_copy_only=False).astype(np.int64)
    order = np.argsort(ids, kind="stable")  # value_counts keeps the order of first appearance
    return ids[order], counts[order]


def _merge_counts(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    if a[0].shape[0] == 0:
        return b
    if b[0].shape[0] == 0:
        return a
    if a[0].dtype.kind != b[0].dtype.kind:
        a = (a[0].astype(str), a[1])
        b = (b[0].astype(str), b[1])
    ids, inverse = np.unique(np.concatenate([a[0], b[0]]), return_inverse=True)
    return ids, np.bincount(inverse.reshape(-1), weights=np.concatenate([a[1], b[1]]), minlength=ids.shape[0]).astype(np.int64)


def _piece_summary(pieces: Any, columns: Columns) -> Any:
    import pyarrow.compute as pc

    for uri, group, _ in pieces:
        table = read_piece(uri, group, columns)
        r = table.column("r")
        bad = int(pc.sum(pc.or_(pc.is_nan(r), pc.is_inf(r))).as_py() or 0) if len(r) else 0
        nulls = tuple(int(table.column(c).null_count) for c in ("u_raw", "i_raw", "r"))
        users = _value_counts(table.column("u_raw").drop_null())
        items = _value_counts(table.column("i_raw").drop_null())
        yield (len(table), *nulls, bad), users, items


def _merge_summaries(a: Any, b: Any) -> Any:
    return tuple(x + y for x, y in zip(a[0], b[0], strict=True)), _merge_counts(a[1], b[1]), _merge_counts(a[2], b[2])


def index_parquet(spark: Any, frame: Any, pieces: list[tuple[str, int, int]], columns: Columns, *, name: str = "ratings") -> IndexedRatings:
    """:func:`index_ratings` for a Parquet path whose pieces pyarrow reads on the executors: one pass."""
    from functools import partial

    sc = spark.sparkContext
    slices = max(1, min(len(pieces), 4 * sc.defaultParallelism))
    summary = sc.parallelize(pieces, slices).mapPartitions(partial(_piece_summary, columns=columns))
    (n, null_u, null_i, null_r, bad), (user_ids, user_counts), (item_ids, item_counts) = summary.treeReduce(_merge_summaries)
    _check_scan(name, n, null_u, null_i, null_r, bad)
    for side, ids in (("u_raw", user_ids), ("i_raw", item_ids)):
        _check_id_count(ids.shape[0], side)
    sizes = np.array([rows for _, _, rows in pieces], dtype=np.int64)
    return IndexedRatings(frame, user_ids, item_ids, user_counts, item_counts, sizes, int(n), pieces=pieces)
