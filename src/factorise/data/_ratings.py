"""Explicit ratings as a sparse (user, item, rating) list with raw-id maps.

Everything downstream (models, evaluation, the CLI) works on :class:`Ratings`:
int32 user and item indices, float32 rating values (12 bytes per rating), and
two :class:`IdMap` objects that translate between the raw ids users know
(integers or strings) and the contiguous indices the kernels use.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["IdMap", "Ratings", "DuplicateRatingsWarning"]


class DuplicateRatingsWarning(UserWarning):
    """The same (user, item) pair was rated more than once; the last rating was kept."""


def _as_id_array(raw: Any) -> np.ndarray:
    """Raw ids as a 1-D int64 or unicode array (never object)."""
    array = np.asarray(raw)
    if array.ndim == 0:
        array = array.reshape(1)
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
        if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in flat):
            return array.astype(np.int64)
    # bytes, or objects other than integers: strings
    return array.astype(str)


def _as_timestamps(raw: Any, where: str) -> np.ndarray:
    """Timestamps as int64; integral numbers only."""
    array = np.asarray(raw)
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
        array = _as_id_array(raw)
        ids, inverse = np.unique(array, return_inverse=True)
        if len(ids) > np.iinfo(np.int32).max:
            raise ValueError(f"too many distinct ids ({len(ids)}); at most {np.iinfo(np.int32).max}")
        return cls(ids), inverse.astype(np.int32).reshape(-1)

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
        unknown).

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
            Raw user and item ids (integers or strings), one per rating.
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
        values = values.astype(np.float32)
        bad = ~np.isfinite(values)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"{where}ratings must be finite numbers; rating #{first + 1} is {float(values[first])}"
            )
        user_map, user_index = IdMap.from_raw(users)
        item_map, item_index = IdMap.from_raw(items)
        ts = None if timestamps is None else _as_timestamps(timestamps, where)
        ratings = cls(user_index, item_index, values, user_map, item_map, ts, source)
        return ratings.deduplicated()

    def deduplicated(self) -> Ratings:
        """These ratings with each (user, item) pair once: the last one given."""
        key = self.users.astype(np.int64) * max(1, len(self.item_ids)) + self.items
        reversed_key = key[::-1]
        _, first_in_reversed = np.unique(reversed_key, return_index=True)
        if first_in_reversed.shape[0] == key.shape[0]:
            return self
        keep = np.sort(key.shape[0] - 1 - first_in_reversed)
        dropped = key.shape[0] - keep.shape[0]
        where = f"{self.source}: " if self.source else ""
        warnings.warn(
            f"{where}{dropped} duplicate (user, item) rating(s); kept the last rating of each pair",
            DuplicateRatingsWarning,
            stacklevel=3,
        )
        return self.subset(keep)

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
        """The same ratings with id maps holding only the ids that occur."""
        used_users = np.unique(self.users)
        used_items = np.unique(self.items)
        if used_users.shape[0] == self.n_users and used_items.shape[0] == self.n_items:
            return self
        user_pos = np.searchsorted(used_users, self.users).astype(np.int32)
        item_pos = np.searchsorted(used_items, self.items).astype(np.int32)
        return Ratings(
            user_pos,
            item_pos,
            self.values,
            IdMap(self.user_ids.ids[used_users]),
            IdMap(self.item_ids.ids[used_items]),
            self.timestamps,
            self.source,
        )

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
