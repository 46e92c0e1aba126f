"""Which column holds what: the role names a header may use, and the `columns` option.

Shared by every reader: text files (:mod:`factorise.data._text`) and typed
columnar data (:mod:`factorise.data._columnar`) resolve the positions of the
user, item, rating and timestamp columns here.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from factorise.data._collect import _Target

_ROLES = ("user", "item", "rating", "timestamp")
_REQUIRED = ("user", "item", "rating")

#: Column names (lower case, letters and digits only) recognised for each role.
_NAMES: dict[str, frozenset[str]] = {
    "user": frozenset(
        {"user", "users", "userid", "uid", "u", "customer", "customerid", "reviewer", "reviewerid", "member"}
    ),
    "item": frozenset(
        {
            "item",
            "items",
            "itemid",
            "iid",
            "i",
            "movie",
            "movieid",
            "product",
            "productid",
            "asin",
            "book",
            "bookid",
            "isbn",
            "track",
            "trackid",
            "song",
            "songid",
            "artist",
            "artistid",
            "business",
            "businessid",
        }
    ),
    "rating": frozenset(
        {"rating", "ratings", "score", "stars", "star", "rate", "r", "value", "overall", "bookrating", "preference"}
    ),
    "timestamp": frozenset({"timestamp", "time", "ts", "unixtime", "unixtimestamp", "unixreviewtime", "epoch"}),
}

def _check_columns(columns: object, target: _Target[Any]) -> dict[str, str | int] | None:
    rule = target.columns_rule
    if columns is None:
        return None
    if isinstance(columns, Mapping):
        request = dict(columns)
        unknown = sorted(str(k) for k in request if k not in _ROLES)
        missing = [r for r in target.required if r not in request]
        if unknown or missing:
            raise ValueError(f"{rule}; got {columns!r}")
    elif isinstance(columns, Sequence) and not isinstance(columns, (str, bytes)):
        if not len(target.required) <= len(columns) <= len(_ROLES):
            raise ValueError(f"{rule}; got {len(columns)} entries: {columns!r}")
        request = dict(zip(_ROLES, columns, strict=False))
    else:
        raise TypeError(f"{rule}; got {columns!r} of type {type(columns).__name__}")
    for role, where in request.items():
        is_position = isinstance(where, numbers.Integral) and not isinstance(where, (bool, np.bool_))
        if not (isinstance(where, str) or is_position):
            raise TypeError(f"{rule}; got {where!r} of type {type(where).__name__} for {role!r}")
        if is_position and where < 0:
            raise ValueError(f"{rule}; got position {where} for {role!r}")
    positions = [w for w in request.values()]
    if len(set(map(repr, positions))) != len(positions):
        raise ValueError(f"`columns` must name a different column for each field; got {columns!r}")
    return request

def _normal_name(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _resolve_columns(
    names: Sequence[str] | None,
    n_columns: int,
    request: dict[str, str | int] | None,
    source: str,
    integer_column: Callable[[int], bool],
    target: _Target[Any],
) -> tuple[dict[str, int], bool]:
    """Positions of the roles ``target`` reads; and whether the timestamp was asked for.

    For ratings: user, item, rating (and timestamp); for pairs: user and item.
    ``integer_column(j)`` says whether column ``j`` looks like integers (for
    taking an unnamed fourth column as the timestamp).
    """
    if n_columns < len(target.required):
        raise ValueError(
            f"{source}: found {n_columns} column(s); need at least {target.need}"
            + (f"; columns are {list(names)}" if names else "")
        )
    if request is not None:
        found: dict[str, int] = {}
        for role, where in request.items():
            if isinstance(where, str):
                if names is None:
                    raise ValueError(
                        f"{source}: column {where!r} (for {role}) cannot be found by name: the file has no "
                        "header line; give 0-based positions in `columns`"
                    )
                exact = [j for j, n in enumerate(names) if n == where]
                loose = [j for j, n in enumerate(names) if n.lower() == where.lower()]
                hits = exact or loose
                if not hits:
                    raise ValueError(
                        f"{source}: column {where!r} (for {role}) does not exist; columns are {list(names)}"
                    )
                found[role] = hits[0]
            else:
                if where >= n_columns:
                    raise ValueError(
                        f"{source}: column {where} (for {role}) does not exist; there are {n_columns} columns "
                        f"(positions 0 to {n_columns - 1})"
                    )
                found[role] = int(where)
        return target.keep(found), "timestamp" in target.keep(found)
    if names is not None:
        normal = [_normal_name(n) for n in names]
        found = {}
        for role in _ROLES:
            hits = [j for j, n in enumerate(normal) if n in _NAMES[role] and j not in found.values()]
            if hits:
                found[role] = hits[0]
        named = [r for r in target.required if r in found]
        example = ", ".join(f"'{r}': ..." for r in target.required)
        if len(named) == len(target.required):
            return target.keep(found), False
        if named:
            missing = [r for r in target.required if r not in found]
            raise ValueError(
                f"{source}: cannot tell which column holds the {' and '.join(missing)} "
                f"(columns are {list(names)}); pass `columns`, e.g. columns={{{example}}}"
            )
        ignored = [role for role in found if role not in target.roles]
        if ignored:
            # A header naming only columns this reader skips (pairs: rating, timestamp) is understood,
            # and holds no ids: the first two columns are not the user and item.
            raise ValueError(
                f"{source}: no {'/'.join(target.required)} columns: the header {list(names)} names "
                f"{' and '.join(ignored)} but no {' or '.join(target.required)} column; pass `columns`, "
                f"e.g. columns={{{example}}}"
            )
    found = {"user": 0, "item": 1}
    if "rating" in target.roles:
        found["rating"] = 2
        if n_columns >= 4 and integer_column(3):
            found["timestamp"] = 3
    return found, False
