"""In-memory ratings that are not columnar: sparse and dense matrices, tuples of arrays."""

from __future__ import annotations

from typing import Any

import numpy as np

from factorise.data._ratings import IdMap, Ratings


def _type_error(data: object, detail: str = "") -> TypeError:
    return TypeError(
        "`data` must be Ratings, a file path (str or os.PathLike), a pandas DataFrame, a pyarrow Table, "
        "a scipy.sparse matrix, a dense 2-D array of numbers with NaN for missing, or a tuple "
        f"(users, items, ratings[, timestamps]); got {type(data).__name__}{detail}"
    )

def _from_sparse(matrix: Any) -> Ratings:
    coo = matrix.tocoo(copy=True)
    coo.sum_duplicates()
    if coo.ndim != 2:
        raise ValueError(f"a sparse matrix of ratings must be 2-D; got {coo.ndim}-D")
    if coo.dtype.kind not in "biuf":
        raise TypeError(f"a sparse matrix of ratings must hold real numbers; got dtype {coo.dtype}")
    return _from_cells(coo.row, coo.col, coo.data, coo.shape, "sparse matrix")


def _from_dense(array: np.ndarray) -> Ratings:
    observed = ~np.isnan(array) if array.dtype.kind == "f" else np.ones(array.shape, dtype=bool)
    rows, cols = np.nonzero(observed)
    return _from_cells(rows, cols, array[rows, cols], array.shape, "dense matrix")


def _from_cells(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int], what: str
) -> Ratings:
    if rows.shape[0] == 0:
        raise ValueError(f"{what} of shape {shape}: no ratings (every cell is missing)")
    for n, axis in ((shape[0], "rows"), (shape[1], "columns")):
        if n > np.iinfo(np.int32).max:
            raise ValueError(f"{what}: too many {axis} ({n}); at most {np.iinfo(np.int32).max}")
    as_float = values.astype(np.float32)
    bad = ~np.isfinite(as_float)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{what}: ratings must be finite numbers (NaN marks a missing rating only in a dense matrix); "
            f"cell ({int(rows[k])}, {int(cols[k])}) is {float(values[k])!r}"
        )
    return Ratings(
        rows.astype(np.int32),
        cols.astype(np.int32),
        as_float,
        IdMap(np.arange(shape[0], dtype=np.int64)),
        IdMap(np.arange(shape[1], dtype=np.int64)),
        None,
        what,
    )


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
