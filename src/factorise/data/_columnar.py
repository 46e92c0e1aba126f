"""Typed columnar data: Parquet files, pyarrow Tables and RecordBatches, pandas DataFrames.

Columns are found by name (:func:`factorise.data._columns._resolve_columns`),
their types decide how each role converts (:func:`_column_kind`), and the
batches are collected as the text reader's are.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from factorise.data._collect import _R, _RATINGS, _BadValue, _first_unconvertible, _one_line, _Target
from factorise.data._columns import _check_columns, _resolve_columns
from factorise.data._options import spell
from factorise.data._ratings import Ratings

logger = logging.getLogger(__name__)

#: Parquet row groups of at most this many rows are read whole, larger ones in batches.
_WHOLE_ROW_GROUP = 1 << 21


def _read_parquet(
    file: Path, source: str, request: dict[str, str | int] | None, chunk_size: int, target: _Target[_R]
) -> _R:
    from pyarrow import parquet as pq

    try:
        parquet = pq.ParquetFile(str(file), buffer_size=1 << 20)  # column chunks read in pieces
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"{source}: not a readable Parquet file: {_one_line(exc)}") from None
    with parquet:
        schema = parquet.schema_arrow
        batch_rows = max(1024, chunk_size // 32)

        def fetch(positions: list[int]) -> Iterator[list[Any]]:
            # A row group of moderate size is read whole (pyarrow's batch iterator holds more memory
            # beside it); a large one in batches.
            names = [schema.names[j] for j in positions]
            for group in range(parquet.metadata.num_row_groups):
                if parquet.metadata.row_group(group).num_rows <= max(batch_rows, _WHOLE_ROW_GROUP):
                    batches = parquet.read_row_group(group, columns=names, use_threads=False).to_batches()
                else:
                    batches = parquet.iter_batches(
                        batch_size=batch_rows, row_groups=[group], columns=names, use_threads=False
                    )
                for batch in batches:
                    yield [batch.column(k) for k in range(len(names))]
                del batches

        def first_row() -> list[str] | None:
            batch = next(parquet.iter_batches(batch_size=1, use_threads=False), None)
            return None if batch is None else _row_text(batch)

        def fits_int64(j: int) -> bool:
            # the row groups' statistics when every group has them; else the column itself
            highs = []
            for group in range(parquet.metadata.num_row_groups):
                stats = parquet.metadata.row_group(group).column(j).statistics
                if stats is None or not stats.has_min_max:
                    return _max_fits(parquet.read(columns=[schema.names[j]], use_threads=False).column(0))
                highs.append(stats.max)
            return not highs or max(highs) <= _INT64_MAX

        try:
            return _read_columnar(
                list(schema.names),
                lambda j: schema.field(j).type,
                fetch,
                request,
                source,
                target,
                parquet.metadata.num_rows,
                first_row,
                fits_int64,
            )
        except (pa.ArrowException, OSError) as exc:
            raise ValueError(f"{source}: cannot read the Parquet file: {_one_line(exc)}") from None


def _from_table(table: pa.Table | pa.RecordBatch, kwargs: dict[str, Any]) -> Ratings:
    request = _table_options(kwargs, "a pyarrow Table")

    def fetch(positions: list[int]) -> Iterator[list[Any]]:
        yield [table.column(j) for j in positions]

    names = [str(n) for n in table.schema.names]
    return _read_columnar(
        names,
        lambda j: table.schema.field(j).type,
        fetch,
        request,
        type(table).__name__,
        _RATINGS,
        table.num_rows,
        lambda: _row_text(table.slice(0, 1)),
        lambda j: _max_fits(table.column(j)),
    )


def _table_options(kwargs: dict[str, Any], what: str) -> dict[str, str | int] | None:
    extra = sorted(k for k in kwargs if k != "columns")
    if extra:
        raise TypeError(f"options {extra} do not apply to {what}; only {spell('columns')} does")
    return _check_columns(kwargs.get("columns"), _RATINGS)


def _from_frame(frame: Any, kwargs: dict[str, Any]) -> Ratings:
    request = _table_options(kwargs, "a DataFrame")
    converted: dict[int, pa.Array] = {}

    def column(j: int) -> pa.Array:
        if j not in converted:
            series = frame.iloc[:, j]
            try:
                converted[j] = pa.array(series, from_pandas=True)
            except (pa.ArrowException, TypeError, ValueError, OverflowError):
                # mixed kinds (ints and strings, say), or integers beyond 64 bits: ids as text,
                # missing values kept missing
                missing = series.isna().to_numpy(dtype=bool)
                text = series.astype(str).to_numpy(dtype=object)
                converted[j] = pa.array(text, mask=missing, type=pa.string())
        return converted[j]

    def fetch(positions: list[int]) -> Iterator[list[Any]]:
        yield [column(j) for j in positions]

    def first_row() -> list[str] | None:
        return [str(frame.iloc[0, j]) for j in range(frame.shape[1])] if len(frame) else None

    names = [str(c) for c in frame.columns]
    return _read_columnar(
        names,
        lambda j: column(j).type,
        fetch,
        request,
        "DataFrame",
        _RATINGS,
        len(frame),
        first_row,
        lambda j: _max_fits(column(j)),
    )


def _read_columnar(
    names: list[str],
    column_type: Callable[[int], pa.DataType],
    fetch: Callable[[list[int]], Iterator[list[Any]]],
    request: dict[str, str | int] | None,
    source: str,
    target: _Target[_R],
    n_rows: int | None = None,
    first_row: Callable[[], list[str] | None] = lambda: None,
    fits_int64: Callable[[int], bool] = lambda j: True,
) -> _R:
    """Ratings or pairs from columnar data with typed columns (Parquet, a Table, a DataFrame).

    ``fetch(positions)`` yields batches: lists of arrays, one per position;
    ``n_rows`` is their total length when known; ``first_row()`` gives the
    first row's values as text, for messages; ``fits_int64(j)`` whether the
    unsigned 64-bit column ``j`` holds only values within int64 (ids beyond
    are kept exact as text, as the text reader does). Column names that are just
    their positions (``"0"``, ``"1"``, ...: a DataFrame built from a list)
    name nothing, as a file without a header line.
    """

    def integer_like(j: int) -> bool:
        t = _value_type(column_type(j))
        return pa.types.is_integer(t) or pa.types.is_timestamp(t)

    named = names != [str(j) for j in range(len(names))]
    columns, asked = _resolve_columns(
        names, len(names), request, source, integer_like, target, first_row, named=named
    )
    kinds: dict[str, str] = {}
    for role, j in list(columns.items()):
        t = _value_type(column_type(j))
        kind = _column_kind(role, t)
        if kind is None:
            if role == "timestamp" and not asked:
                logger.info("%s: column %r is %s, not a time; timestamps not read", source, names[j], t)
                del columns[role]
                continue
            raise ValueError(f"{source}: column {names[j]!r} ({role}) has type {t}; {_KIND_RULE[role]}")
        if kind == "int" and role in ("user", "item") and pa.types.is_uint64(t) and not fits_int64(j):
            kind = "int-text"  # ids beyond int64: kept exact, as decimal text
        kinds[role] = kind
    roles = list(columns)
    acc = target.collector(source, n_rows)
    offset = 0
    try:
        for arrays in fetch([columns[r] for r in roles]):
            converted = {role: _convert(a, role, kinds[role], offset) for role, a in zip(roles, arrays, strict=True)}
            acc.add(converted, offset)
            offset += len(arrays[0])
    except _BadValue as bad:
        raise ValueError(f"{source}, row {bad.row + 1}: {bad.message}") from None
    return acc.build()


_INT64_MAX = int(np.iinfo(np.int64).max)


def _max_fits(array: pa.Array | pa.ChunkedArray) -> bool:
    """Whether the largest value of an integer column fits in int64 (an empty or null column does)."""
    if not pa.types.is_uint64(_value_type(array.type)):
        return True
    high = pc.max(array).as_py()
    return high is None or high <= _INT64_MAX


def _row_text(table: pa.Table | pa.RecordBatch) -> list[str] | None:
    """The first row of ``table``, each value as text; None when it has no rows."""
    if table.num_rows == 0:
        return None
    return [str(table.column(j)[0].as_py()) for j in range(table.num_columns)]


_KIND_RULE = {
    "user": "user ids must be integers or strings",
    "item": "item ids must be integers or strings",
    "rating": "ratings must be numbers",
    "timestamp": "timestamps must be integers or times",
}


def _value_type(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def _column_kind(role: str, t: pa.DataType) -> str | None:
    if pa.types.is_null(t):
        return "null"
    if role in ("user", "item"):
        if pa.types.is_integer(t):
            return "int"
        if pa.types.is_floating(t):
            return "float-id"
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return "str"
        return None
    if role == "rating":
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            return "number"
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return "text-number"
        return None
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_timestamp(t):
        return "time"
    if pa.types.is_floating(t):
        return "float-id"
    return None


def _convert(array: Any, role: str, kind: str, offset: int) -> pa.Array:
    """One column of a batch as int64/string ids, float32/float64 ratings or int64 timestamps."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if kind == "null":
        return pa.nulls(len(array), pa.int64() if role != "rating" else pa.float64())
    if kind == "int-text":
        return pc.cast(array, pa.large_string())
    if kind == "int":
        if pa.types.is_uint64(array.type):
            big = pc.greater(array, pa.scalar(_INT64_MAX, pa.uint64())).fill_null(False)
            if pc.any(big).as_py():
                row = int(np.flatnonzero(big.to_numpy(zero_copy_only=False))[0])
                noun = "timestamp" if role == "timestamp" else f"{role} id"
                raise _BadValue(offset + row, f"{noun} {array[row].as_py()} does not fit in int64")
        return pc.cast(array, pa.int64())
    if kind == "str":
        return pc.cast(array, pa.large_string())
    if kind == "float-id":
        values = array.to_numpy(zero_copy_only=False)
        fractional = np.isfinite(values) & (values != np.round(values))
        fractional |= np.isinf(values) | (np.abs(np.nan_to_num(values)) > 2.0**62)
        if fractional.any():
            row = int(np.flatnonzero(fractional)[0])
            noun = "timestamp" if role == "timestamp" else f"{role} id"
            raise _BadValue(offset + row, f"{noun} {float(values[row])!r} is not an integer")
        valid = pc.is_valid(array).to_numpy(zero_copy_only=False)
        return pa.array(np.nan_to_num(values).astype(np.int64), mask=~valid)
    if kind == "time":
        return pc.cast(pc.cast(array, pa.timestamp("s", tz=array.type.tz), safe=False), pa.int64())
    if kind == "number":
        if pa.types.is_float32(array.type) or pa.types.is_float64(array.type):
            return array  # converted to float32 where it is stored
        return pc.cast(array, pa.float64(), safe=False)
    # text-number
    row = _first_unconvertible(array.fill_null("0"), pa.float64())
    if row is not None:
        raise _BadValue(offset + row, f"rating {array[row].as_py()!r} is not a number")
    return pc.cast(array, pa.float64())
