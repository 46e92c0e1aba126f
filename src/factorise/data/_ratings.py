"""Explicit ratings as a sparse (user, item, rating) list with raw-id maps.

Everything downstream (models, evaluation, the CLI) works on :class:`Ratings`:
int32 user and item indices, float32 rating values (12 bytes per rating), and
two :class:`IdMap` objects that translate between the raw ids users know
(integers or strings) and the contiguous indices the kernels use.

Building them is lean enough for ratings in the hundreds of millions: ids are
given indices as they arrive (:class:`_IdEncoder`, used by the file readers),
duplicate (user, item) pairs are found without sorting
(:mod:`factorise.kernels.duplicates`), and arrays this module made itself are
compacted in place rather than copied.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from factorise.kernels.duplicates import mark_earlier_duplicates
from factorise.kernels.grouping import mark_used

__all__ = ["IdMap", "Ratings", "DuplicateRatingsWarning"]


class DuplicateRatingsWarning(UserWarning):
    """The same (user, item) pair was rated more than once; the last rating was kept."""


_INT64_MAX = int(np.iinfo(np.int64).max)
_INT64_MIN = int(np.iinfo(np.int64).min)


def _is_integer(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _as_id_array(raw: Any) -> np.ndarray:
    """Raw ids as a 1-D int64 or unicode array (never object).

    Integers that fit in int64 are int64. A column holding an integer beyond
    int64 (an unsigned 64-bit id >= 2**63, a Python int of any size) is kept
    exact as decimal strings, every id of it -- as the text readers do.
    """
    array = np.asarray(raw)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.dtype.kind == "f" and not isinstance(raw, np.ndarray):
        # NumPy turns Python ints beyond int64 mixed with smaller ones into floats (losing digits):
        # look at the values themselves
        objects = np.asarray(raw, dtype=object).reshape(array.shape)
        if objects.size and all(_is_integer(v) for v in objects.reshape(-1)):
            array = objects
    if array.dtype.kind == "u" and array.size and int(array.max()) > _INT64_MAX:
        return array.astype(str)
    if array.dtype.kind in "iub":
        return array.astype(np.int64, copy=False)
    if array.dtype.kind == "U":
        return array
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        integral = finite & (np.abs(array) < 2.0**63)
        integral[integral] = array[integral] == np.round(array[integral])
        if not integral.all():
            bad = array[~integral].reshape(-1)[0]
            raise TypeError(f"ids must be integers or strings; got the floating value {float(bad)!r}")
        return array.astype(np.int64)
    if array.dtype.kind == "O":
        flat = array.reshape(-1)
        missing = [j for j, v in enumerate(flat) if v is None or (isinstance(v, float) and v != v)]
        if missing:
            raise ValueError(f"ids must not be missing; id #{missing[0] + 1} is {flat[missing[0]]!r}")
        if all(_is_integer(v) for v in flat):
            if all(_INT64_MIN <= int(v) <= _INT64_MAX for v in flat):
                return array.astype(np.int64)
            return np.array([str(int(v)) for v in flat]).reshape(array.shape)
    # bytes, or objects other than integers: strings
    return array.astype(str)


def _finite_float32(values: np.ndarray) -> tuple[np.ndarray, int | None, str]:
    """Ratings as float32; the index of the first that is not finite there (or None), and why.

    The reason is ``", out of the float32 range"`` for a finite number beyond
    float32 (1e300), empty for NaN or inf; no NumPy overflow warning either way.
    """
    with np.errstate(over="ignore"):
        as_float = values.astype(np.float32)
    bad = ~np.isfinite(as_float)
    if not bad.any():
        return as_float, None, ""
    first = int(np.flatnonzero(bad)[0])
    return as_float, first, ", out of the float32 range" if math.isfinite(float(values[first])) else ""


def _as_timestamps(raw: Any, where: str) -> np.ndarray:
    """Timestamps as int64; integral numbers within int64 only."""
    array = np.asarray(raw)
    if array.dtype.kind == "O" and array.size and all(_is_integer(v) for v in array.reshape(-1)):
        big = [int(v) for v in array.reshape(-1) if not _INT64_MIN <= int(v) <= _INT64_MAX]
        if big:
            raise ValueError(f"{where}timestamps must fit in int64; got {big[0]}")
        array = array.astype(np.int64)
    if array.dtype.kind == "u" and array.size and int(array.max()) > _INT64_MAX:
        raise ValueError(f"{where}timestamps must fit in int64; got {int(array.max())}")
    if array.dtype.kind in "iub":
        return array.astype(np.int64)
    if array.dtype.kind == "f":
        ok = np.isfinite(array) & (np.abs(array) < 2.0**63)
        ok[ok] = array[ok] == np.round(array[ok])
        if ok.all():
            return array.astype(np.int64)
        first = int(np.flatnonzero(~ok)[0])
        raise ValueError(f"{where}timestamps must be integers; timestamp #{first + 1} is {float(array[first])!r}")
    raise TypeError(f"{where}timestamps must be integers; got dtype {array.dtype}")


class IdMap:
    """Translate raw ids (integers or strings) to contiguous indices and back.

    The raw ids are kept sorted and unique; the index of an id is its position.

    Parameters
    ----------
    ids : numpy.ndarray
        Sorted, unique raw ids, int64 or unicode.
    """

    __slots__ = ("ids",)

    def __init__(self, ids: np.ndarray) -> None:
        self.ids = ids

    @classmethod
    def from_raw(cls, raw: Any) -> tuple[IdMap, np.ndarray]:
        """Build a map from raw ids; return it and the int32 index of each raw id.

        Parameters
        ----------
        raw : array_like
            Raw ids, one per rating.

        Returns
        -------
        id_map : IdMap
        index : numpy.ndarray of int32
        """
        array = _as_id_array(raw).reshape(-1)
        if array.dtype.kind == "U":
            ids, inverse = np.unique(array, return_inverse=True)
            _check_id_count(len(ids))
            return cls(ids), inverse.reshape(-1).astype(np.int32)
        index = np.empty(array.shape[0], dtype=np.int32)
        encoder = _IdEncoder()
        for start in range(0, array.shape[0], _SLICE):
            encoder.add(array[start : start + _SLICE], index, start)
        return encoder.finish(index), index

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    @property
    def is_string(self) -> bool:
        """Whether the raw ids are strings."""
        return self.ids.dtype.kind == "U"

    def index(self, raw: Any) -> np.ndarray:
        """Indices of raw ids; -1 where an id is unknown.

        Integer queries against string ids compare as strings, and string
        queries against integer ids are parsed as integers (unparseable ones are
        unknown). Integers beyond int64 (an unsigned 64-bit id >= 2**63, a
        Python int of any size) are compared exactly, as decimal strings:
        found among string ids, unknown among int64 ones.

        Parameters
        ----------
        raw : array_like
            Raw ids.

        Returns
        -------
        numpy.ndarray of int64
        """
        query = _as_id_array(raw)
        if self.is_string and query.dtype.kind != "U":
            query = query.astype(str)
        elif not self.is_string and query.dtype.kind == "U":
            parsed = np.full(query.shape, -1, dtype=np.int64)
            ok = np.zeros(query.shape, dtype=bool)
            flat_parsed, flat_ok = parsed.reshape(-1), ok.reshape(-1)
            for j, text in enumerate(query.reshape(-1)):
                try:
                    flat_parsed[j] = int(text)
                    flat_ok[j] = True
                except (ValueError, OverflowError):
                    pass
            index = self.index(parsed)
            index[~ok] = -1
            return index
        if len(self) == 0:
            return np.full(query.shape, -1, dtype=np.int64)
        pos = np.searchsorted(self.ids, query)
        pos_clipped = np.minimum(pos, len(self) - 1)
        found = self.ids[pos_clipped] == query
        return np.where(found, pos_clipped, -1).astype(np.int64)

    def raw(self, index: Any) -> np.ndarray:
        """Raw ids at the given indices.

        Raises
        ------
        IndexError
            If an index is outside ``[0, len(self))`` -- in particular the
            ``-1`` that :meth:`index` gives for an unknown id.
        """
        index = np.asarray(index)
        if index.dtype.kind not in "iu":
            if index.size == 0:
                index = index.astype(np.int64)
            else:
                raise IndexError(f"indices must be integers; got dtype {index.dtype}")
        if index.size and (int(index.min()) < 0 or int(index.max()) >= len(self)):
            bad = index[(index < 0) | (index >= len(self))].reshape(-1)[0]
            raise IndexError(f"index {int(bad)} is outside [0, {len(self)}) (-1 marks an unknown id)")
        return self.ids[index]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, IdMap) and np.array_equal(self.ids, other.ids)

    def __repr__(self) -> str:
        kind = "string" if self.is_string else "integer"
        return f"IdMap({len(self)} {kind} ids)"


_INT32_MAX = int(np.iinfo(np.int32).max)
#: Rows handled at once by the passes over whole columns (bounds their temporaries).
_SLICE = 1 << 20
#: Integer ids in ``[0, _DENSE_LIMIT)`` are looked up in an array (4 bytes per possible id).
_DENSE_LIMIT = 1 << 24
#: Rows of hashed ids (strings, large integers) gathered before they are looked up together.
_MIN_PENDING = 1 << 20


def _check_id_count(n: int) -> None:
    if n > _INT32_MAX:
        raise ValueError(f"too many distinct ids ({n}); at most {_INT32_MAX}")


class _IdEncoder:
    """Give raw ids arriving in chunks an int32 index each, in bounded memory.

    Every new id gets the next free *provisional* code; :meth:`finish` sorts the
    distinct ids (so the result equals :meth:`IdMap.from_raw` of all ids at
    once) and rewrites the codes into indices. Integer ids in
    ``[0, _DENSE_LIMIT)`` are looked up in an array indexed by id; other ids
    (strings, negative or large integers) are hashed by pyarrow, a batch of at
    least as many rows as there are distinct ids at a time, so the hash table
    of the known ids is rebuilt a bounded number of times per row.

    The codes of a chunk are written into the caller's array ``out`` at the
    chunk's rows, at once or, for hashed ids, at a later :meth:`add` or at
    :meth:`finish`; the caller passes its current array each time (it may
    have grown) and must not read the codes before :meth:`finish`.
    """

    def __init__(self) -> None:
        self._kind: str | None = None  # "int" or "str"
        self._n = 0  # distinct ids so far
        self._ints = np.empty(0, dtype=np.int64)  # integer ids by code (first self._n)
        self._strings: Any = None  # pyarrow large_string array of the string ids by code
        self._lookup: np.ndarray | None = np.empty(0, dtype=np.int32)  # id -> code, -1 unseen; None: hashing
        self._pending: list[tuple[int, Any]] = []  # (first row, pyarrow array) waiting to be hashed
        self._pending_rows = 0

    def add(self, ids: Any, out: np.ndarray, offset: int) -> None:
        """Code ``ids`` (int64 NumPy array or pyarrow integer/string array) into ``out[offset:]``."""
        import pyarrow as pa

        if isinstance(ids, (pa.Array, pa.ChunkedArray)) and pa.types.is_integer(ids.type):
            ids = ids.to_numpy().astype(np.int64, copy=False)
        kind = "int" if isinstance(ids, np.ndarray) else "str"
        if self._kind is None:
            self._kind = kind
        elif kind != self._kind:  # pragma: no cover - a column has one kind throughout
            raise TypeError(f"ids of one column must be all integers or all strings; got {kind} after {self._kind}")
        if len(ids) == 0:
            return
        if kind == "int" and self._lookup is not None:
            low, high = int(ids.min()), int(ids.max())
            if low >= 0 and high < _DENSE_LIMIT:
                self._add_dense(self._lookup, ids, high, out[offset : offset + len(ids)])
                return
            self._lookup = None  # from now on every id is hashed
        if kind == "int":
            ids = pa.array(ids, type=pa.int64())
        elif isinstance(ids, pa.ChunkedArray):
            ids = ids.combine_chunks()
        if kind == "str" and not pa.types.is_large_string(ids.type):
            ids = ids.cast(pa.large_string())
        self._pending.append((offset, ids))
        self._pending_rows += len(ids)
        if self._pending_rows >= max(self._n, _MIN_PENDING):
            self._flush(out)

    def _add_dense(self, lookup: np.ndarray, ids: np.ndarray, high: int, out: np.ndarray) -> None:
        if high >= lookup.shape[0]:
            grown = np.full(min(_DENSE_LIMIT, max(high + 1, 2 * lookup.shape[0])), -1, dtype=np.int32)
            grown[: lookup.shape[0]] = lookup
            self._lookup = lookup = grown
        np.take(lookup, ids, out=out, mode="clip")  # ids are in range; "clip" writes without a buffer
        new = out < 0
        if new.any():
            lookup[ids[new]] = -2  # mark the new ids; then number them in increasing order
            fresh = np.flatnonzero(lookup == -2)
            lookup[fresh] = self._append_ints(fresh)
            np.take(lookup, ids, out=out, mode="clip")

    def _append_ints(self, fresh: np.ndarray) -> np.ndarray:
        """Store new integer ids; return their codes."""
        n_new = self._n + fresh.shape[0]
        _check_id_count(n_new)
        if n_new > self._ints.shape[0]:
            grown = np.empty(max(n_new, 2 * self._ints.shape[0]), dtype=np.int64)
            grown[: self._n] = self._ints[: self._n]
            self._ints = grown
        self._ints[self._n : n_new] = fresh
        codes = np.arange(self._n, n_new, dtype=np.int32)
        self._n = n_new
        return codes

    def _flush(self, out: np.ndarray) -> None:
        """Code the pending ids: hash them once against the known ids."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if not self._pending:
            return
        batch = pa.concat_arrays([a for _, a in self._pending])
        encoded = pc.dictionary_encode(batch)
        distinct = encoded.dictionary  # this batch's distinct ids, in order of first appearance
        if self._n:
            known = self._strings if self._kind == "str" else pa.array(self._ints[: self._n], type=pa.int64())
            codes = pc.index_in(distinct, value_set=known).fill_null(-1).to_numpy().astype(np.int32)
        else:
            codes = np.full(len(distinct), -1, dtype=np.int32)
        new = np.flatnonzero(codes < 0)
        if new.shape[0]:
            fresh = distinct.take(pa.array(new))
            if self._kind == "str":
                _check_id_count(self._n + len(fresh))
                codes[new] = np.arange(self._n, self._n + len(fresh), dtype=np.int32)
                self._strings = fresh if self._strings is None else pa.concat_arrays([self._strings, fresh])
                self._n += len(fresh)
            else:
                codes[new] = self._append_ints(fresh.to_numpy())
        index = encoded.indices.to_numpy()
        start = 0
        for offset, ids in self._pending:
            stop = start + len(ids)
            np.take(codes, index[start:stop], out=out[offset : offset + len(ids)])
            start = stop
        self._pending, self._pending_rows = [], 0

    def finish(self, out: np.ndarray) -> IdMap:
        """The id map; ``out`` (every row given to :meth:`add`) rewritten from codes to indices."""
        self._flush(out)
        if self._kind == "str" and self._n:
            ids = np.asarray(self._strings.to_numpy(zero_copy_only=False).astype(str))
        else:
            ids = self._ints[: self._n].copy()
        self._ints, self._strings, self._lookup = np.empty(0, dtype=np.int64), None, None
        if ids.shape[0] > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            order = np.argsort(ids, kind="stable")
            ids = ids[order]
            rank = np.empty(order.shape[0], dtype=np.int32)
            rank[order] = np.arange(order.shape[0], dtype=np.int32)
            for start in range(0, out.shape[0], _SLICE):
                part = out[start : start + _SLICE]
                part[...] = rank[part]
        return IdMap(ids)


@dataclass(frozen=True, eq=False)
class Ratings:
    """Explicit ratings: parallel arrays of user index, item index and value.

    Build one with :meth:`from_raw` (or :func:`factorise.read_ratings`); the
    constructor takes already-validated arrays.

    Attributes
    ----------
    users, items : numpy.ndarray of int32
        Indices into ``user_ids`` and ``item_ids``.
    values : numpy.ndarray of float32
        The ratings.
    user_ids, item_ids : IdMap
        Raw ids of the indices. Several ``Ratings`` (a train/test split) may
        share the same maps, so a map can hold ids with no rating here.
    timestamps : numpy.ndarray of int64 or None
        Optional time of each rating.
    source : str or None
        Where the ratings came from, for messages.
    """

    users: np.ndarray
    items: np.ndarray
    values: np.ndarray
    user_ids: IdMap
    item_ids: IdMap
    timestamps: np.ndarray | None = None
    source: str | None = None

    @classmethod
    def from_raw(
        cls,
        users: Any,
        items: Any,
        values: Any,
        timestamps: Any = None,
        *,
        source: str | None = None,
    ) -> Ratings:
        """Build ratings from raw ids and values.

        Duplicate (user, item) pairs keep the last rating, with a
        :class:`DuplicateRatingsWarning` giving the count.

        Parameters
        ----------
        users, items : array_like
            Raw user and item ids (integers or strings), one per rating. A
            column holding an integer beyond int64 (an unsigned 64-bit id >=
            2**63, a Python int of any size) is kept exact: every id of it
            becomes its decimal string, as the file readers do.
        values : array_like
            Ratings, finite real numbers.
        timestamps : array_like, optional
            Integer time of each rating.
        source : str, optional
            Name used in messages (a file path, say).

        Returns
        -------
        Ratings

        Raises
        ------
        ValueError
            If the arrays differ in length, are empty, or a rating is not a
            finite number.
        """
        where = f"{source}: " if source else ""
        values = np.asarray(values)
        arrays = [np.asarray(users), np.asarray(items), values]
        if timestamps is not None:
            arrays.append(np.asarray(timestamps))
        if any(a.ndim != 1 for a in arrays) or len({a.shape[0] for a in arrays}) != 1:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError(
                f"{where}users, items, values (and timestamps) must be 1-D and of one length; got shapes {shapes}"
            )
        n = values.shape[0]
        if n == 0:
            raise ValueError(f"{where}no ratings")
        if values.dtype.kind not in "biuf":
            raise TypeError(f"{where}ratings must be numbers; got dtype {values.dtype}")
        given = values
        values, first, detail = _finite_float32(values)
        if first is not None:
            raise ValueError(
                f"{where}ratings must be finite numbers; rating #{first + 1} is {float(given[first])!r}{detail}"
            )
        user_map, user_index = IdMap.from_raw(users)
        item_map, item_index = IdMap.from_raw(items)
        ts = None if timestamps is None else _as_timestamps(timestamps, where)
        # every array here is new (astype copies), so duplicates are dropped in place
        return _owned_deduplicated(
            cls(user_index, item_index, values, user_map, item_map, ts, source), stacklevel=2
        )

    def deduplicated(self) -> Ratings:
        """These ratings with each (user, item) pair once: the last one given.

        Without duplicates, ``self`` is returned. Otherwise a
        :class:`DuplicateRatingsWarning` gives the number of ratings dropped,
        and the kept ratings are in their original order.
        """
        drop = _earlier_duplicates(self.users, self.items, self.n_users, self.n_items)
        if drop is None:
            return self
        _warn_duplicates(self.source, int(np.count_nonzero(drop)), stacklevel=2)
        return self.subset(~drop)

    def __len__(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_users(self) -> int:
        """Number of users in the id map."""
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        """Number of items in the id map."""
        return len(self.item_ids)

    @property
    def raw_users(self) -> np.ndarray:
        """Raw user id of each rating."""
        return self.user_ids.raw(self.users)

    @property
    def raw_items(self) -> np.ndarray:
        """Raw item id of each rating."""
        return self.item_ids.raw(self.items)

    def subset(self, index: Any) -> Ratings:
        """The ratings at ``index`` (an integer or boolean array), sharing the id maps."""
        index = np.asarray(index)
        ts = None if self.timestamps is None else self.timestamps[index]
        return Ratings(
            self.users[index], self.items[index], self.values[index], self.user_ids, self.item_ids, ts, self.source
        )

    def compact(self) -> Ratings:
        """The same ratings with id maps holding only the ids that occur.

        ``self`` when every id occurs; otherwise the index arrays of the side
        (users, items) that loses ids are new, and everything else is shared.
        """
        users, user_ids = _compact_side(self.users, self.user_ids)
        items, item_ids = _compact_side(self.items, self.item_ids)
        if users is self.users and items is self.items:
            return self
        return Ratings(users, items, self.values, user_ids, item_ids, self.timestamps, self.source)

    def to_csr(self) -> Any:
        """A ``scipy.sparse.csr_matrix`` of shape (n_users, n_items), float32."""
        from scipy import sparse

        return sparse.csr_matrix(
            (self.values, (self.users, self.items)), shape=(self.n_users, self.n_items), dtype=np.float32
        )

    @property
    def rating_range(self) -> tuple[float, float]:
        """The smallest and largest rating."""
        if len(self) == 0:
            raise ValueError("no ratings, so no rating range")
        return float(self.values.min()), float(self.values.max())

    def __repr__(self) -> str:
        where = f" from {self.source}" if self.source else ""
        return f"Ratings({len(self)} ratings, {self.n_users} users, {self.n_items} items{where})"


def _compact_side(index: np.ndarray, id_map: IdMap) -> tuple[np.ndarray, IdMap]:
    """``index`` renumbered over the ids that occur, and their map; the inputs when all occur."""
    used = np.zeros(len(id_map), dtype=bool)
    if mark_used(index, used) == used.shape[0]:
        return index, id_map
    renumber = np.cumsum(used, dtype=np.int32)
    renumber -= 1
    return renumber[index], IdMap(id_map.ids[used])


def _warn_duplicates(source: str | None, dropped: int, stacklevel: int) -> None:
    where = f"{source}: " if source else ""
    warnings.warn(
        f"{where}{dropped} duplicate (user, item) rating(s); kept the last rating of each pair",
        DuplicateRatingsWarning,
        stacklevel=stacklevel + 1,
    )


def _earlier_duplicates(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int, block_rows: int | None = None
) -> np.ndarray | None:
    """Mask of the ratings whose (user, item) pair is rated again later; None when there are none.

    Users are taken in blocks of at most ``block_rows`` ratings (by default
    an eighth of them, at least 4M, at least the most ratings of one user);
    each block costs one pass over the ratings and a scratch of its size.
    Indices outside ``[0, n_users)`` / ``[0, n_items)`` (never made by this
    package) are handled by sorting instead.
    """
    n = users.shape[0]
    if n < 2:
        return None
    if not (_in_range(users, n_users) and _in_range(items, n_items)):
        return _earlier_duplicates_by_sorting(users, items)
    users = np.ascontiguousarray(users)
    items = np.ascontiguousarray(items)
    counts = np.zeros(n_users, dtype=np.int64)
    for start in range(0, n, _SLICE):
        counts += np.bincount(users[start : start + _SLICE], minlength=n_users)  # as intp: a slice at a time
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    most = int(counts.max())
    del counts
    if block_rows is None:
        block_rows = min(n, max(1 << 22, n // 8))
    block_rows = max(int(block_rows), most)
    rows = np.empty(block_rows, dtype=np.int32 if n <= _INT32_MAX else np.int64)
    seen = np.full(n_items, -1, dtype=np.int32)
    last = np.empty(n_items, dtype=np.int64)
    drop = np.zeros(n, dtype=bool)  # pages stay untouched (and cost nothing) while no row is dropped
    marked = 0
    first = 0
    while first < n_users:
        stop = int(np.searchsorted(indptr, indptr[first] + block_rows, side="right")) - 1
        stop = min(max(stop, first + 1), n_users)
        marked += mark_earlier_duplicates(users, items, indptr, first, stop, rows, seen, last, drop)
        first = stop
    return drop if marked else None


def _in_range(index: np.ndarray, n: int) -> bool:
    return index.dtype.kind in "iu" and (index.shape[0] == 0 or (int(index.min()) >= 0 and int(index.max()) < n))


def _earlier_duplicates_by_sorting(users: np.ndarray, items: np.ndarray) -> np.ndarray | None:
    """:func:`_earlier_duplicates` for any integer indices: the last row of each pair by a sort."""
    pairs = np.stack([np.asarray(users, dtype=np.int64), np.asarray(items, dtype=np.int64)], axis=1)
    _, first_in_reversed = np.unique(pairs[::-1], axis=0, return_index=True)
    if first_in_reversed.shape[0] == pairs.shape[0]:
        return None
    drop = np.ones(pairs.shape[0], dtype=bool)
    drop[pairs.shape[0] - 1 - first_in_reversed] = False
    return drop


def _owned_deduplicated(ratings: Ratings, stacklevel: int) -> Ratings:
    """:meth:`Ratings.deduplicated` for ratings whose arrays nobody else holds: compacted in place."""
    drop = _earlier_duplicates(ratings.users, ratings.items, ratings.n_users, ratings.n_items)
    if drop is None:
        return ratings
    dropped = int(np.count_nonzero(drop))
    _warn_duplicates(ratings.source, dropped, stacklevel=stacklevel + 1)
    ts = None if ratings.timestamps is None else _compress(ratings.timestamps, drop)
    return Ratings(
        _compress(ratings.users, drop),
        _compress(ratings.items, drop),
        _compress(ratings.values, drop),
        ratings.user_ids,
        ratings.item_ids,
        ts,
        ratings.source,
    )


def _compress(array: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """``array[~drop]``, written over ``array`` itself (which must be held by nobody else)."""
    n_kept = 0
    for start in range(0, array.shape[0], _SLICE):
        part = array[start : start + _SLICE][~drop[start : start + _SLICE]]
        array[n_kept : n_kept + part.shape[0]] = part
        n_kept += part.shape[0]
    return _shrink(array, n_kept)


def _shrink(array: np.ndarray, n: int) -> np.ndarray:
    """The first ``n`` entries of a 1-D array nobody else holds, without a copy where possible.

    A large array's memory is mapped pages; :meth:`numpy.ndarray.resize`
    reallocates it (``mremap``), so shrinking gives pages back without
    copying. Arrays that are views are copied.
    """
    if n == array.shape[0]:
        return array
    if array.flags.owndata and array.flags.c_contiguous and array.base is None:
        array.resize(n, refcheck=False)
        return array
    return array[:n].copy()


def concatenate(parts: Sequence[Ratings]) -> Ratings:
    """Join ratings that share id maps (for example the folds of a split)."""
    if len(parts) == 0:
        raise ValueError("`parts` must hold at least one Ratings; got none")
    first = parts[0]
    for p in parts[1:]:
        if p.user_ids is not first.user_ids or p.item_ids is not first.item_ids:
            raise ValueError("can only concatenate ratings that share their id maps")
    ts = None
    if all(p.timestamps is not None for p in parts):
        ts = np.concatenate([p.timestamps for p in parts])  # type: ignore[misc]
    return Ratings(
        np.concatenate([p.users for p in parts]),
        np.concatenate([p.items for p in parts]),
        np.concatenate([p.values for p in parts]),
        first.user_ids,
        first.item_ids,
        ts,
        first.source,
    )
