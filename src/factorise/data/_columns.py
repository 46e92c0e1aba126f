"""Which column holds what: the role names a header may use, and the `columns` option.

Shared by every reader: text files (:mod:`factorise.data._text`) and typed
columnar data (:mod:`factorise.data._columnar`) resolve the positions of the
user, item, rating and timestamp columns here.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from factorise.data._options import example, spell

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
    """The `columns` option as a mapping from role to name or position; None when not given."""
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
        raise ValueError(f"{spell('columns')} must name a different column for each field; got {columns!r}")
    return request


def _normal_name(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


#: Values shown per column, and columns shown, in a message listing the columns found.
_SHOW_CHARS = 24
_SHOW_COLUMNS = 12


def _show_columns(names: Sequence[str] | None, first_row: Sequence[str] | None) -> str:
    """The columns found, for a message: ``0='u1', 1='i7', 2='3'`` (header names, or the first row's values)."""

    def short(text: str) -> str:
        return repr(text if len(text) <= _SHOW_CHARS else text[: _SHOW_CHARS - 3] + "...")

    values = list(names) if names is not None else list(first_row or [])
    shown = ", ".join(f"{j}={short(v)}" for j, v in enumerate(values[:_SHOW_COLUMNS]))
    if len(values) > _SHOW_COLUMNS:
        shown += f", ... ({len(values) - _SHOW_COLUMNS} more)"
    if names is not None and first_row:
        return f"header {shown}; first row " + ", ".join(short(v) for v in list(first_row)[:_SHOW_COLUMNS])
    return shown


def _example_columns(
    names: Sequence[str] | None, first_row: Sequence[str] | None, n_columns: int, target: _Target[Any]
) -> list[str | int]:
    """A plausible value of `columns` for a message: the first two columns and a later numeric one.

    Only an example (the message says so); nothing is read by it.
    """
    if len(target.required) == 2:
        picks = [0, 1]
    else:
        row = list(first_row or [])
        numeric = [j for j in range(2, min(n_columns, len(row))) if _looks_like_rating(row[j])]
        picks = [0, 1, numeric[-1] if numeric else 2]
    if names is not None:
        return [names[j] for j in picks]
    return list(picks)


def _looks_like_rating(text: str) -> bool:
    try:
        value = float(text)
    except ValueError:
        return False
    return math.isfinite(value) and abs(value) < 1e6  # a timestamp is not an example rating


def _resolve_columns(
    names: Sequence[str] | None,
    n_columns: int,
    request: dict[str, str | int] | None,
    source: str,
    integer_column: Callable[[int], bool],
    target: _Target[Any],
    first_row: Callable[[], Sequence[str] | None] = lambda: None,
    *,
    named: bool | None = None,
) -> tuple[dict[str, int], bool]:
    """Positions of the roles ``target`` reads; and whether the timestamp was asked for.

    For ratings: user, item, rating (and timestamp); for pairs: user and item.
    ``integer_column(j)`` says whether column ``j`` looks like integers (for
    taking an unnamed fourth column as the timestamp); ``first_row()`` gives
    the first data row's values, as text, for messages. ``named`` says
    whether ``names`` are real names (False for a DataFrame whose column
    labels are just their positions); by default whether ``names`` is given.

    Without ``request``, columns are found by their names; when the names
    identify none of them (or there are none), the first columns are taken
    in role order only where that is no guess: at most three columns, or
    four with an integer fourth column (the timestamp) or a fourth named
    as the timestamp. Pairs take the first two columns of up to four.
    Anything wider is ambiguous: a ValueError lists the columns found and
    names the option that chooses them.
    """
    if named is None:
        named = names is not None
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
                        f"header line; give 0-based positions in {spell('columns')}, e.g. "
                        f"{example('columns', _example_columns(None, first_row(), n_columns, target))}"
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
    found = {}
    if names is not None and named:
        normal = [_normal_name(n) for n in names]
        for role in _ROLES:
            hits = [j for j, n in enumerate(normal) if n in _NAMES[role] and j not in found.values()]
            if hits:
                found[role] = hits[0]
        named_roles = [r for r in target.required if r in found]
        if len(named_roles) == len(target.required):
            return target.keep(found), False
        if named_roles:
            missing = [r for r in target.required if r not in found]
            raise ValueError(
                f"{source}: cannot tell which column holds the {' and '.join(missing)} "
                f"(columns are {list(names)}); pass {spell('columns')}, e.g. "
                f"{example('columns', _example_columns(names, None, n_columns, target))}"
            )
        ignored = [role for role in found if role not in target.roles]
        if ignored:
            # A header naming only columns this reader skips (pairs: rating, timestamp) is understood,
            # and holds no ids: the first two columns are not the user and item.
            raise ValueError(
                f"{source}: no {'/'.join(target.required)} columns: the header {list(names)} names "
                f"{' and '.join(ignored)} but no {' or '.join(target.required)} column; pass "
                f"{spell('columns')}, e.g. {example('columns', _example_columns(names, None, n_columns, target))}"
            )
    by_position = {"user": 0, "item": 1}
    if "rating" in target.roles:
        by_position["rating"] = 2
    problem = _ambiguity(n_columns, named, found, integer_column, target)
    if problem is not None:
        header = names if named else None
        raise ValueError(
            f"{source}: cannot tell which columns hold the {', '.join(target.required[:-1])} and "
            f"{target.required[-1]}: {problem} ({_show_columns(header, first_row())}); pass "
            f"{spell('columns')} with their {'names' if named else '0-based positions'}, e.g. "
            f"{example('columns', _example_columns(header, first_row(), n_columns, target))}"
        )
    if "rating" in target.roles and n_columns == 4:
        by_position["timestamp"] = 3
    return by_position, False


def _ambiguity(
    n_columns: int,
    named: bool,
    found: Mapping[str, int],
    integer_column: Callable[[int], bool],
    target: _Target[Any],
) -> str | None:
    """Why taking the first columns in role order would be a guess; None when it would not."""
    if named:
        if n_columns <= 3 or (n_columns == 4 and found.get("timestamp") == 3):
            return None
        return f"the header names none of them and there are {n_columns} columns"
    if n_columns > 4:
        return f"there is no header line and there are {n_columns} columns"
    if n_columns == 4 and "timestamp" in target.roles and not integer_column(3):
        return "there is no header line and the fourth column is not an integer timestamp"
    return None
