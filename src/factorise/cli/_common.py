"""What every sub-command shares: common flags, reading options, and the safety of its paths.

Every command checks its output paths before any work (:func:`check_paths`):
the directory exists and is writable, the path is not a directory, no output
resolves to one of the command's inputs (symlinks, ``./``, hard links: same
device and inode), and no two outputs are one file. Overwriting an earlier
output (last run's model, say) stays allowed.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "READ_FLAGS",
    "about",
    "add_common_flags",
    "add_read_options",
    "check_paths",
    "given_read_flags",
    "note",
    "read_options",
    "reading",
]

#: The CLI flag for each option of the readers, as their errors should name it.
READ_FLAGS: dict[str, str] = {
    "columns": "--columns",
    "sep": "--sep",
    "header": "--header/--no-header",
    "format": "--format",
}


def add_common_flags(parser: argparse.ArgumentParser, *, json_help: str = "print the results as JSON") -> None:
    """``--quiet``, ``--verbose`` and ``--json``, the flags every sub-command takes.

    Their defaults are suppressed so that ``factorise -v fit ...`` (before the
    sub-command) and ``factorise fit ... -v`` (after it) both work.
    """
    group = parser.add_argument_group("common")
    group.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        default=argparse.SUPPRESS,
        help="no progress bars or notes on stderr (warnings and errors still show)",
    )
    group.add_argument(
        "--verbose", "-v", action="store_true", default=argparse.SUPPRESS, help="log details to stderr"
    )
    group.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help=json_help)


def note(args: argparse.Namespace, text: str) -> None:
    """An informational line on stderr, unless ``--quiet``."""
    if not getattr(args, "quiet", False):
        sys.stderr.write(f"factorise: {text}\n")


@contextlib.contextmanager
def about(source: object) -> Iterator[None]:
    """A divergence while fitting ``source`` names it: ``FILE: SGD diverged at epoch 3: ...``."""
    from factorise.exceptions import DivergenceError

    try:
        yield
    except DivergenceError as exc:
        raise DivergenceError(f"{source}: {exc}") from None


# ------------------------------------------------------------------ reading
def _columns(text: str) -> list[str | int]:
    """``--columns user,item,rating`` (header names) or ``0,1,4`` (0-based positions), mixed allowed."""
    parts = [p.strip() for p in text.split(",")]
    if not 2 <= len(parts) <= 4 or any(not p for p in parts):
        raise argparse.ArgumentTypeError(
            "must list 2 to 4 comma-separated column names or 0-based positions in the order "
            f"user,item[,rating[,timestamp]], e.g. userId,movieId,rating or 0,1,4; got {text!r}"
        )
    return [int(p) if re.fullmatch(r"[0-9]+", p) else p for p in parts]


def _separator(text: str) -> str:
    named = {"tab": "\t", "\\t": "\t", "comma": ",", "space": " ", "whitespace": "whitespace"}
    return named.get(text.lower(), text)


def add_read_options(parser: argparse.ArgumentParser, *, what: str = "ratings") -> None:
    """``--columns``, ``--sep``, ``--header/--no-header`` and ``--format`` for the files a command reads."""
    group = parser.add_argument_group(
        "reading files", f"how to read the {what} files (detected when not given; apply to every file read)"
    )
    group.add_argument(
        "--columns",
        type=_columns,
        metavar="U,I[,R[,T]]",
        help="where the user, item, rating (and timestamp) are: header names or 0-based positions, "
        "e.g. --columns userId,movieId,rating or --columns 0,1,4",
    )
    group.add_argument(
        "--sep",
        type=_separator,
        metavar="SEP",
        help="field separator: one character, '::', 'tab' or 'whitespace'",
    )
    group.add_argument(
        "--header",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="whether the first line names the columns",
    )
    group.add_argument("--format", choices=["csv", "parquet"], help="file format (csv: any delimited text)")


def read_options(args: argparse.Namespace) -> dict[str, Any]:
    """The reading options given on the command line, as keyword arguments of the readers."""
    options = {"columns": args.columns, "sep": args.sep, "header": args.header, "format": args.format}
    return {name: value for name, value in options.items() if value is not None}


def given_read_flags(args: argparse.Namespace) -> list[str]:
    """The reading flags given, spelled as on the command line."""
    return [READ_FLAGS[name] for name in read_options(args)]


@contextlib.contextmanager
def reading() -> Iterator[None]:
    """Let the readers' errors name the CLI flags (``--columns``) instead of keywords (```columns```)."""
    try:
        from factorise.data._options import option_spelling
    except ImportError:  # pragma: no cover - the readers without the spelling hook
        yield
        return
    with option_spelling(READ_FLAGS):
        yield


# -------------------------------------------------------------------- paths
def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def _check_target(flag: str, path: Path) -> None:
    parent = path.resolve().parent
    if path.is_dir():
        raise ValueError(f"{flag} {path}: is a directory; give a file name")
    if not parent.is_dir():
        raise ValueError(f"{flag} {path}: the directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"{flag} {path}: cannot write in the directory {parent} (permission denied)")
    if path.exists() and not os.access(path, os.W_OK):
        raise ValueError(f"{flag} {path}: the file exists and is not writable (permission denied)")


def check_paths(
    outputs: Sequence[tuple[str, str | os.PathLike[str] | None]],
    inputs: Iterable[tuple[str, str | os.PathLike[str] | None]],
) -> None:
    """Refuse, before any work, outputs that cannot be written or would overwrite an input.

    Parameters
    ----------
    outputs : sequence of (flag, path)
        The files the command will write, by the flag that names them; ``None`` paths are skipped.
    inputs : iterable of (label, path)
        The files it reads (``"RATINGS"``, ``"--validation"``, ...); ``None`` paths are skipped.

    Raises
    ------
    ValueError
        One line naming the flags and the path.
    """
    given = [(flag, Path(p)) for flag, p in outputs if p is not None]
    sources = [(label, Path(p)) for label, p in inputs if p is not None]
    for flag, path in given:
        _check_target(flag, path)
    for flag, path in given:
        if not path.exists():
            continue  # an input exists; a file yet to be made is none of them
        for label, source in sources:
            if source.exists() and _same_file(path, source):
                same = "" if str(path) == str(source) else f" ({source})"
                raise ValueError(
                    f"{flag} {path} is the input {label}{same}: refusing to overwrite an input; "
                    f"give {flag} another path"
                )
    for j, (flag, path) in enumerate(given):
        for other_flag, other in given[j + 1 :]:
            if path.resolve() == other.resolve() or (path.exists() and other.exists() and _same_file(path, other)):
                raise ValueError(f"{flag} and {other_flag} both name {path}: give each output its own path")
