"""Options of the file readers: checks shared by :func:`read_ratings` and :func:`read_pairs`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _check_sep(sep: object) -> str | None:
    rule = "`sep` must be one character, a repeated character such as '::', or 'whitespace'"
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
