"""In-memory ratings that are not columnar: records, sparse and dense matrices, tuples of arrays, tensors.

What a list means is decided here (:func:`_sequence_layout`): a list of
``(user, item, rating[, timestamp])`` tuples, or of rows holding a string,
is records; rows of any other length than 3 or 4 can only be a dense
matrix; a list of numeric lists of length 3 or 4 could be either and is
refused unless ``layout`` says which. A NumPy array is dense unless
``layout="records"``.

Sparse input keeps every stored entry as a rating; duplicate stored entries
(a COO matrix or tensor that is not coalesced, a non-canonical CSR matrix)
are not summed: the last in stored order is kept, with a
:class:`~factorise.data.DuplicateRatingsWarning` giving the count, as for
duplicate lines in a file.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from factorise._arrays import is_torch_tensor, to_numpy, torch_sparse_cells
from factorise.data._collect import _one_line
from factorise.data._options import example, spell
from factorise.data._ratings import IdMap, Ratings, _finite_float32, _owned_deduplicated

LAYOUTS = (None, "records", "dense")


def _type_error(data: object, detail: str = "") -> TypeError:
    return TypeError(
        "`data` must be Ratings, a file path (str or os.PathLike), a pandas DataFrame, a pyarrow Table, "
        "a scipy.sparse matrix, a dense 2-D array of numbers with NaN for missing, a list of "
        "(user, item, rating[, timestamp]) records, or a tuple (users, items, ratings[, timestamps]); "
        f"got {type(data).__name__}{detail}"
    )


def _check_layout(layout: object) -> str | None:
    if layout is not None and not isinstance(layout, str):
        raise TypeError(f"{spell('layout')} must be None, 'records' or 'dense'; got {layout!r} of type "
                        f"{type(layout).__name__}")
    if layout not in LAYOUTS:
        raise ValueError(f"{spell('layout')} must be None, 'records' or 'dense'; got {layout!r}")
    return layout


def _no_layout(layout: str | None, what: str) -> None:
    if layout is not None:
        raise TypeError(
            f"{spell('layout')} applies to lists and dense arrays, not to {what}; got {example('layout', layout)}"
        )


# ---------------------------------------------------------------------------
# Lists: records or a dense matrix
# ---------------------------------------------------------------------------


def _is_row(value: object) -> bool:
    return isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.ndim == 1)


def _sequence_layout(rows: Sequence[Any]) -> str:
    """"records" or "dense" for a list given without ``layout``; a ValueError where it could be either."""
    if not all(_is_row(row) for row in rows):
        return "dense"  # not rows at all: np.asarray decides (and the dense path explains)
    if all(isinstance(row, tuple) for row in rows):
        return "records"
    lengths = {len(row) for row in rows}
    if not lengths <= {3, 4}:
        return "dense"  # only a matrix has rows of other lengths
    if any(isinstance(v, (str, bytes)) for row in rows for v in row):
        return "records"  # a matrix holds numbers only
    if any(isinstance(row, tuple) for row in rows):
        return "records"
    n = len(rows)
    raise ValueError(
        f"`data` is ambiguous: a list of {n} row(s) of {' or '.join(map(str, sorted(lengths)))} numbers could be "
        f"(user, item, rating[, timestamp]) records or a dense {n}x{max(lengths)} matrix; say which with "
        f"{example('layout', 'records')} or {example('layout', 'dense')}, or pass records as tuples "
        "and a matrix as a NumPy array"
    )


def _tuple_of_records(data: tuple[Any, ...]) -> bool:
    """Whether a tuple (given without ``layout``) holds records rather than columns.

    A tuple of tuples of 3 or 4 fields each is records -- unless there are
    three or four of them, which could be the columns (users, items,
    ratings[, timestamps]): a ValueError.
    """
    if not data or not all(isinstance(row, tuple) for row in data):
        return False
    if len(data) == 2 and len(data[1]) == 2:
        return False  # scipy's (ratings, (users, items))
    if not {len(row) for row in data} <= {3, 4}:
        return False  # not records: _from_tuple explains
    if len(data) in (3, 4):
        raise ValueError(
            f"`data` is ambiguous: a tuple of {len(data)} tuples of {len(data[0])} values could be "
            f"{len(data)} (user, item, rating[, timestamp]) records or the columns (users, items, ratings"
            f"[, timestamps]); say {example('layout', 'records')} for records, or give the columns as lists "
            "or arrays"
        )
    return True


def _from_records(rows: Sequence[Any], source: str = "records") -> Ratings:
    """Ratings from ``(user, item, rating[, timestamp])`` rows."""
    if len(rows) == 0:
        raise ValueError(f"{source}: no ratings (the list is empty)")
    width = None
    for k, row in enumerate(rows):
        if not _is_row(row) or len(row) not in (3, 4) or (width is not None and len(row) != width):
            expected = "3 or 4" if width is None else str(width)
            raise ValueError(
                f"{source}: each record must be (user, item, rating) or (user, item, rating, timestamp), all "
                f"alike; record #{k + 1} is {_short(row)} ({_length(row)}, expected {expected})"
            )
        width = len(row)
    columns = list(zip(*rows, strict=True))
    values = columns[2]
    for k, v in enumerate(values):
        if not isinstance(v, (numbers.Real, np.number)) or isinstance(v, (bool, np.bool_)):
            raise ValueError(f"{source}: ratings must be numbers; record #{k + 1} {_short(rows[k])} has {v!r}")
    timestamps = columns[3] if width == 4 else None
    return Ratings.from_raw(columns[0], columns[1], np.asarray(values, dtype=np.float64), timestamps, source=source)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _length(row: object) -> str:
    return f"length {len(row)}" if _is_row(row) else f"a {type(row).__name__}"  # type: ignore[arg-type]


def _materialise(data: Any) -> Sequence[Any] | None:
    """``data`` as a sequence of rows when it is a list-like of rows (not an array); None otherwise."""
    if isinstance(data, np.ndarray):
        return None
    if isinstance(data, (list, tuple)):
        return data
    if isinstance(data, Iterator):
        return list(data)  # a generator of records, say
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes, bytearray)):
        return list(data)
    return None


def _from_list_like(data: Any, layout: str | None) -> Ratings:
    """A list, a generator or an array: records or a dense matrix, by ``layout`` or by its shape."""
    rows = _materialise(data)
    if rows is not None:
        if len(rows) == 0:
            raise ValueError("`data` is empty: no ratings")
        chosen = layout or _sequence_layout(rows)
        if chosen == "records":
            return _from_records(rows)
        return _from_dense_like(np.asarray(_as_dense(rows, data)), data)
    if is_torch_tensor(data):
        array, _ = to_numpy(data, "data")
    else:
        try:
            array = np.asarray(data)
        except Exception as exc:  # noqa: BLE001 - whatever asarray rejects is not ratings
            raise _type_error(data) from exc
    if layout == "records":
        if array.ndim != 2 or array.shape[1] not in (3, 4):
            raise ValueError(
                f"records given as an array must have 3 or 4 columns (user, item, rating[, timestamp]); "
                f"got shape {array.shape}"
            )
        return _from_records_array(array)
    return _from_dense_like(array, data)


def _as_dense(rows: Sequence[Any], data: Any) -> np.ndarray:
    try:
        return np.asarray(rows)
    except Exception as exc:  # noqa: BLE001 - ragged rows and the like
        raise _type_error(data, f" (as an array: {_one_line(exc)})") from None


def _from_records_array(array: np.ndarray) -> Ratings:
    timestamps = array[:, 3] if array.shape[1] == 4 else None
    return Ratings.from_raw(array[:, 0], array[:, 1], array[:, 2], timestamps, source="records")


def _from_dense_like(array: np.ndarray, data: Any) -> Ratings:
    if array.ndim != 2 or array.dtype.kind not in "biuf":
        raise _type_error(data, f" (as an array: {array.ndim}-D of dtype {array.dtype})")
    return _from_dense(array)


# ---------------------------------------------------------------------------
# Matrices and tuples
# ---------------------------------------------------------------------------


def _from_sparse(matrix: Any) -> Ratings:
    """Every stored entry of a scipy.sparse matrix is a rating; of duplicates the last in stored order."""
    if matrix.ndim != 2:
        raise ValueError(f"a sparse matrix of ratings must be 2-D; got {matrix.ndim}-D")
    if matrix.dtype.kind not in "biuf":
        raise TypeError(f"a sparse matrix of ratings must hold real numbers; got dtype {matrix.dtype}")
    coo = matrix.tocoo(copy=True)  # CSR/CSC give their stored entries in order, duplicates and all
    return _from_cells(coo.row, coo.col, coo.data, coo.shape, "sparse matrix", duplicates=True)


def _from_torch_sparse(tensor: Any) -> Ratings:
    """Every stored entry of a torch sparse tensor is a rating (COO not coalesced: duplicates kept last)."""
    rows, cols, values, shape = torch_sparse_cells(tensor, "data")
    return _from_cells(rows, cols, values, shape, "sparse tensor", duplicates=True)


def _from_dense(array: np.ndarray) -> Ratings:
    observed = ~np.isnan(array) if array.dtype.kind == "f" else np.ones(array.shape, dtype=bool)
    rows, cols = np.nonzero(observed)
    return _from_cells(rows, cols, array[rows, cols], array.shape, "dense matrix")


def _from_cells(
    rows: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
    shape: tuple[int, int],
    what: str,
    *,
    duplicates: bool = False,
) -> Ratings:
    """Ratings at matrix cells; ``duplicates``: cells may repeat (the last is kept, with a warning)."""
    if rows.shape[0] == 0:
        raise ValueError(f"{what} of shape {shape}: no ratings (every cell is missing)")
    for n, axis in ((shape[0], "rows"), (shape[1], "columns")):
        if n > np.iinfo(np.int32).max:
            raise ValueError(f"{what}: too many {axis} ({n}); at most {np.iinfo(np.int32).max}")
    as_float, k, detail = _finite_float32(values)
    if k is not None:
        raw = float(values[k])
        raise ValueError(
            f"{what}: ratings must be finite numbers (NaN marks a missing rating only in a dense matrix); "
            f"cell ({int(rows[k])}, {int(cols[k])}) is {raw!r}{detail}"
        )
    ratings = Ratings(
        rows.astype(np.int32),
        cols.astype(np.int32),
        as_float,
        IdMap(np.arange(shape[0], dtype=np.int64)),
        IdMap(np.arange(shape[1], dtype=np.int64)),
        None,
        what,
    )
    if not duplicates:
        return ratings
    # the arrays above are new (astype copies); the warning points at the caller of as_ratings:
    # _from_cells < _from_sparse / _from_torch_sparse < as_ratings < caller
    return _owned_deduplicated(ratings, stacklevel=4)


def _from_tuple(data: tuple[Any, ...]) -> Ratings:
    rule = (
        "a tuple of ratings must be (users, items, ratings), (users, items, ratings, timestamps) "
        "or (ratings, (users, items))"
    )
    if len(data) == 2 and isinstance(data[1], tuple) and len(data[1]) == 2:
        values, (users, items) = data
        return Ratings.from_raw(users, items, values, source="tuple")
    if len(data) in (3, 4):
        users, items, values = data[:3]
        timestamps = data[3] if len(data) == 4 else None
        for name, array in (("users", users), ("items", items), ("ratings", values), ("timestamps", timestamps)):
            if array is not None and np.ndim(array) != 1:
                raise ValueError(f"{rule}; `{name}` must be 1-D, got shape {np.shape(array)}")
        return Ratings.from_raw(users, items, values, timestamps, source="tuple")
    raise TypeError(f"{rule}; got a tuple of length {len(data)}")
