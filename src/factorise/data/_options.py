"""Options of the readers: how messages spell them, and the checks shared by every reader.

A message that names an option says how the caller gives it: the keyword
in backquotes (`` `columns` ``) in the Python API, the flag (``--columns``) when the CLI
called the reader. The CLI sets its spelling for the duration of a command
with :func:`option_spelling`; readers build messages with :func:`spell` and
:func:`example`. The setting lives in a :class:`contextvars.ContextVar`, so
threads and asyncio tasks each see their own.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["example", "option_spelling", "spell"]

_SPELLING: ContextVar[Mapping[str, str]] = ContextVar("factorise_option_spelling", default={})


@contextmanager
def option_spelling(mapping: Mapping[str, str]) -> Iterator[None]:
    """Spell options in reader messages as ``mapping`` says, inside the ``with`` block.

    Parameters
    ----------
    mapping : mapping of str to str
        Keyword (``"columns"``, ``"sep"``, ``"header"``, ``"format"``,
        ``"chunk_size"``, ``"layout"``) to how the caller spells it
        (``"--columns"``). A spelling that starts with ``-`` is a command-line
        flag: examples in messages are then written as flags
        (``--columns 0,1,4``). Keywords not in ``mapping`` keep the enclosing
        spelling (by default the keyword in backquotes, `` `columns` ``).

    Examples
    --------
    >>> with option_spelling({"columns": "--columns"}):
    ...     spell("columns")
    '--columns'
    >>> spell("columns")
    '`columns`'
    """
    for keyword, spelling in mapping.items():
        if not isinstance(keyword, str) or not isinstance(spelling, str) or not spelling:
            raise TypeError(
                f"`mapping` must map option keywords to non-empty strings; got {keyword!r}: {spelling!r}"
            )
    token = _SPELLING.set({**_SPELLING.get(), **mapping})
    try:
        yield
    finally:
        _SPELLING.reset(token)


def spell(keyword: str) -> str:
    """How the caller spells option ``keyword``: `` `columns` `` in the API, ``--columns`` in the CLI."""
    return _SPELLING.get().get(keyword, f"`{keyword}`")


def is_flag(keyword: str) -> bool:
    """Whether option ``keyword`` is spelled as a command-line flag here."""
    return spell(keyword).startswith("-")


def example(keyword: str, value: Any) -> str:
    """Option ``keyword`` given ``value``, as the caller would write it.

    ``columns=[0, 1, 4]`` in the API; ``--columns 0,1,4`` in the CLI (a
    sequence joined by commas; ``True``/``False`` pick one of two flags
    spelled ``--header/--no-header``).
    """
    if not is_flag(keyword):
        return f"{keyword}={value!r}"
    flag = spell(keyword)
    if isinstance(value, bool):
        yes, _, no = flag.partition("/")
        return yes if value or not no else no
    if isinstance(value, Sequence) and not isinstance(value, str):
        text = ",".join(str(v) for v in value)
    else:
        text = str(value)
    return f"{flag} {shlex.quote(text)}"


def _check_sep(sep: object) -> str | None:
    rule = f"{spell('sep')} must be one character, a repeated character such as '::', or 'whitespace'"
    if sep is None:
        return None
    if not isinstance(sep, str):
        raise TypeError(f"{rule}; got {sep!r} of type {type(sep).__name__}")
    if sep in ("whitespace", r"\s+", r"\s"):
        return "whitespace"
    if sep == "" or sep in ("\n", "\r") or len(set(sep)) != 1 or sep[0] in "\r\n\"":
        raise ValueError(f"{rule} (not a quote or newline); got {sep!r}")
    return sep


def _no_options(kwargs: Mapping[str, Any], what: str) -> None:
    if kwargs:
        raise TypeError(f"options {sorted(kwargs)} do not apply to {what}; they are for files (read_ratings)")
