"""Columns as they arrive, checked; then :class:`Ratings` or pairs.

A reader (text or columnar) converts each batch to typed arrays (role ->
array) and hands it to a collector, which checks it (missing ids, missing or
non-finite ratings) and stores it; ``build`` makes the result. A
:class:`_Target` says which roles a reader takes and which collector builds
the result: :data:`_RATINGS` or :data:`_PAIRS`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from factorise.data._columns import _REQUIRED, _ROLES
from factorise.data._options import is_flag, spell
from factorise.data._ratings import Ratings, _IdEncoder, _owned_deduplicated, _shrink

_T_co = TypeVar("_T_co", covariant=True)
_R = TypeVar("_R")


class _BadValue(Exception):
    """A bad value at a 0-based data row; turned into a file/line message."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(message)
        self.row = row
        self.message = message

class _Collector(Protocol[_T_co]):
    """Takes the converted arrays of each batch (role -> array); builds the result at the end."""

    def add(self, arrays: Mapping[str, pa.Array], offset: int) -> None: ...

    def build(self) -> _T_co: ...


def _check_ids(arrays: Mapping[str, pa.Array], offset: int) -> None:
    """No missing user or item id in a batch (null, or an empty string)."""
    for role in ("user", "item"):
        array = arrays[role]
        _no_nulls(array, f"missing {role} id", offset)
        if not pa.types.is_integer(array.type):
            empty = pc.equal(array, "")
            if pc.any(empty).as_py():
                row = int(np.flatnonzero(empty.to_numpy(zero_copy_only=False))[0])
                raise _BadValue(offset + row, f"missing {role} id")


class _PairColumns:
    """(user, item) ids of every row, kept in order, duplicates and all."""

    def __init__(self, source: str, expected_rows: int | None = None) -> None:
        self.source = source
        self.ids: dict[str, list[pa.Array]] = {"user": [], "item": []}
        self.n_rows = 0

    def add(self, arrays: Mapping[str, pa.Array], offset: int) -> None:
        _check_ids(arrays, offset)
        for role in ("user", "item"):
            array = arrays[role]
            self.ids[role].append(pc.cast(array, pa.int64()) if pa.types.is_integer(array.type) else array)
        self.n_rows += len(arrays["user"])

    def build(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n_rows == 0:
            raise ValueError(f"{self.source}: no pairs")
        return _raw_ids(self.ids["user"]), _raw_ids(self.ids["item"])


class _RatingColumns:
    """Ratings written batch by batch into the arrays of the result, checked on arrival.

    Ids become int32 codes at once (:class:`~factorise.data._ratings._IdEncoder`)
    and ratings float32, so a rating costs 12 bytes (20 with a timestamp)
    however the file spells it; a batch's own arrays are dropped after it.
    The arrays are allocated for ``expected_rows`` (exact for Parquet, an
    estimate for text; allocated pages that are never written cost no
    memory), grown by a quarter when full, and cut to size at the end, all by
    reallocation, which moves no data for arrays this large.
    """

    def __init__(self, source: str, expected_rows: int | None = None) -> None:
        self.source = source
        self.n_rows = 0
        capacity = max(int(expected_rows or 0), 0)
        self.users = np.empty(capacity, dtype=np.int32)
        self.items = np.empty(capacity, dtype=np.int32)
        self.values = np.empty(capacity, dtype=np.float32)
        self.timestamps: np.ndarray | None = None
        self.encoders = {"user": _IdEncoder(), "item": _IdEncoder()}

    def _columns(self) -> list[np.ndarray]:
        return [self.users, self.items, self.values] + ([] if self.timestamps is None else [self.timestamps])

    def _reserve(self, n_rows: int) -> None:
        """Room for ``n_rows`` rows in every array."""
        capacity = self.values.shape[0]
        if n_rows <= capacity:
            return
        capacity = max(n_rows, capacity + capacity // 4)
        for array in self._columns():
            array.resize(capacity, refcheck=False)  # the arrays are ours alone; no view of them is kept

    def add(self, arrays: Mapping[str, pa.Array], offset: int) -> None:
        _check_ids(arrays, offset)
        rating = arrays["rating"]
        _no_nulls(rating, "missing rating", offset)
        start, stop = self.n_rows, self.n_rows + len(rating)
        self._reserve(stop)
        values64 = rating.to_numpy(zero_copy_only=False)
        values = self.values[start:stop]
        with np.errstate(over="ignore"):
            values[...] = values64
        finite = np.isfinite(values)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raw = float(values64[row])
            detail = "out of the float32 range" if math.isfinite(raw) else "not a finite number"
            raise _BadValue(offset + row, f"rating {raw!r} is {detail}")
        del values, values64, finite
        stamps = arrays.get("timestamp")
        if stamps is not None:
            _no_nulls(stamps, "missing timestamp", offset)
            if self.timestamps is None:
                self.timestamps = np.empty(self.values.shape[0], dtype=np.int64)
            self.timestamps[start:stop] = stamps.to_numpy(zero_copy_only=False)
        self.encoders["user"].add(arrays["user"], self.users, start)
        self.encoders["item"].add(arrays["item"], self.items, start)
        self.n_rows = stop

    def build(self) -> Ratings:
        if self.n_rows == 0:
            raise ValueError(f"{self.source}: no ratings")
        pa.default_memory_pool().release_unused()  # what pyarrow kept of the batches, before more is needed
        n = self.n_rows
        users, items, values = (_shrink(a, n) for a in (self.users, self.items, self.values))
        stamps = None if self.timestamps is None else _shrink(self.timestamps, n)
        self.users = self.items = self.values = np.empty(0)
        self.timestamps = None
        user_map = self.encoders["user"].finish(users)
        item_map = self.encoders["item"].finish(items)
        ratings = Ratings(users, items, values, user_map, item_map, stamps, self.source)
        del users, items, values, stamps
        # the warning points at the caller of read_ratings: build < _read_text_pass/_read_columnar <
        # _read_text/_read_parquet < _read_file < read_ratings < caller
        return _owned_deduplicated(ratings, stacklevel=6)


@dataclass(frozen=True)
class _Target(Generic[_R]):
    """What a reader takes from each record, and how it collects it."""

    required: tuple[str, ...]  # roles every record has
    roles: tuple[str, ...]  # roles read: the required ones and optional ones (timestamp)
    noun: str  # what the records are, for messages: "ratings", "pairs"
    collector: Callable[[str, int | None], _Collector[_R]]  # (source, expected number of rows)

    @property
    def need(self) -> str:
        """The required roles, for messages: '3 (user, item, rating)'."""
        return f"{len(self.required)} ({', '.join(self.required)})"

    @property
    def columns_rule(self) -> str:
        """The rule for the `columns` option, spelled for the caller (keyword or flag)."""
        name = spell("columns")
        count = "3 or 4" if len(self.required) == 3 else "2 to 4"
        if is_flag("columns"):
            order = "user, item, rating[, timestamp]" if len(self.required) == 3 else "user, item[, rating, timestamp]"
            return f"{name} must list {count} column names or 0-based positions, separated by commas: {order}"
        if len(self.required) == 3:
            return (
                f"{name} must map 'user', 'item', 'rating' (and optionally 'timestamp') to column names or "
                f"0-based positions, or list {count} of them in that order"
            )
        return (
            f"{name} must map 'user' and 'item' (and optionally 'rating', 'timestamp', not read) to column "
            f"names or 0-based positions, or list {count} of them in the order user, item, rating, timestamp"
        )

    def keep(self, found: dict[str, int]) -> dict[str, int]:
        """The positions of the roles read, from positions found for any role."""
        return {role: j for role, j in found.items() if role in self.roles}


_RATINGS: _Target[Ratings] = _Target(
    required=_REQUIRED,
    roles=_ROLES,
    noun="ratings",
    collector=_RatingColumns,
)
_PAIRS: _Target[tuple[np.ndarray, np.ndarray]] = _Target(
    required=("user", "item"),
    roles=("user", "item"),
    noun="pairs",
    collector=_PairColumns,
)


def _one_line(message: object) -> str:
    """A message from elsewhere (pyarrow, the OS, NumPy) on one line."""
    return " ".join(str(message).split())


def _no_nulls(array: pa.Array, problem: str, offset: int) -> None:
    if array.null_count:
        row = int(np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False))[0])
        raise _BadValue(offset + row, problem)


def _raw_ids(chunks: list[pa.Array]) -> np.ndarray:
    """Ids arriving in chunks (arrow int64 or string arrays) as one int64 or unicode array."""
    ids = pa.chunked_array(chunks)
    if pa.types.is_integer(ids.type):
        return ids.to_numpy().astype(np.int64, copy=False)
    return np.asarray(ids.to_numpy().astype(str))

def _first_unconvertible(array: pa.Array, target: pa.DataType) -> int | None:
    """Index of the first value of ``array`` that does not cast to ``target`` (bisection)."""

    def converts(n: int) -> bool:
        try:
            pc.cast(array.slice(0, n), target)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return False
        return True

    if converts(len(array)):
        return None
    low, high = 0, len(array)  # array[:low] converts, array[:high] does not
    while high - low > 1:
        mid = (low + high) // 2
        if converts(mid):
            low = mid
        else:
            high = mid
    return high - 1
