"""Read ratings from files and in-memory data into :class:`Ratings`.

:func:`read_ratings` reads delimited text (CSV, TSV, whitespace-separated,
MovieLens ``::``) and Parquet with pyarrow, in blocks, so a large file is never
held as text and as a table at once. The layout (separator, header line,
which column holds what) is detected from the file name and its first lines;
every detected choice can be overridden.

:func:`as_ratings` turns whatever a model's ``fit`` receives -- a file path, a
pandas DataFrame, a pyarrow Table, a scipy.sparse matrix, a dense array with
NaN for missing, or a tuple of arrays -- into :class:`Ratings`.

Error messages name the file and, for a problem on one line, the 1-based
line number (``ratings.csv, line 17: rating 'x' is not a number``).
"""

from __future__ import annotations

import csv
import logging
import math
import numbers
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from factorise.data._ratings import IdMap, Ratings, _IdEncoder, _owned_deduplicated, _shrink

__all__ = ["as_ratings", "read_pairs", "read_ratings"]

logger = logging.getLogger(__name__)

#: Default bytes of text per block (pyarrow ``block_size``).
DEFAULT_CHUNK_SIZE = 1 << 22

_ROLES = ("user", "item", "rating", "timestamp")
_REQUIRED = ("user", "item", "rating")
_T_co = TypeVar("_T_co", covariant=True)
_R = TypeVar("_R")

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

#: Parquet row groups of at most this many rows are read whole, larger ones in batches.
_WHOLE_ROW_GROUP = 1 << 21
_PARQUET_SUFFIXES = frozenset({".parquet", ".pq", ".parq"})
_COMPRESSION_SUFFIXES = frozenset({".gz", ".bz2", ".zst", ".lz4", ".br"})
_SAMPLE_BYTES = 1 << 16
_SAMPLE_LINES = 100
_INT_RE = re.compile(r"-?[0-9]+\Z")
_INT64_MAX = np.iinfo(np.int64).max

#: Separators tried, in order, when ``sep`` is not given.
_CANDIDATES = ("::", "\t", ",", ";", "|", " ", "whitespace")


class _BadValue(Exception):
    """A bad value at a 0-based data row; turned into a file/line message."""

    def __init__(self, row: int, message: str) -> None:
        super().__init__(message)
        self.row = row
        self.message = message


class _RetryAsStrings(Exception):
    """An id column guessed to hold integers holds something else."""

    def __init__(self, role: str) -> None:
        super().__init__(role)
        self.role = role


# ---------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------


def read_ratings(
    path: str | os.PathLike[str],
    *,
    sep: str | None = None,
    header: bool | None = None,
    columns: Mapping[str, str | int] | Sequence[str | int] | None = None,
    format: str | None = None,  # noqa: A002 - the natural name for the option
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> Ratings:
    """Read ``user, item, rating[, timestamp]`` records from a file.

    Text files are delimited by a comma, a tab, ``;``, ``|``, ``::``
    (MovieLens 1M ``ratings.dat``) or runs of spaces and tabs; files named
    ``*.gz``, ``*.bz2`` or ``*.zst`` are decompressed on the fly. Parquet is
    recognised by its suffix (``.parquet``, ``.pq``) or its magic bytes. The
    separator, whether the first line is a header, and which columns hold the
    user id, item id, rating and timestamp are detected from the first lines
    (a header such as ``userId,movieId,rating,timestamp``, ``user_id,item_id,
    rating`` or ``user,item,rating``; without one, the first three columns,
    and the fourth as timestamp when it holds integers). Other columns are
    ignored.

    Ids that are all integers are kept as int64 (so ``"007"`` and ``"7"`` are
    the same id); otherwise every id of that column is a string. Duplicate
    (user, item) pairs keep the last rating, with a
    :class:`~factorise.data.DuplicateRatingsWarning` giving the count.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    sep : str, optional
        Field separator of a text file: one character, a character repeated
        (``"::"``), or ``"whitespace"`` (runs of spaces and tabs; also spelled
        ``r"\\s+"``). Detected when not given.
    header : bool, optional
        Whether the first line of a text file names the columns. Detected
        when not given.
    columns : mapping or sequence, optional
        Where the fields are: a mapping from ``"user"``, ``"item"``,
        ``"rating"`` and optionally ``"timestamp"`` to a column name (from the
        header or Parquet schema) or a 0-based position, or a sequence of 3 or
        4 names/positions in that order. Without ``"timestamp"`` no timestamps
        are read. Detected when not given.
    format : {"csv", "parquet"}, optional
        ``"csv"`` for any delimited text, ``"parquet"`` for Parquet. Detected
        when not given.
    chunk_size : int, optional
        Bytes of text parsed per block (Parquet: row groups of more than
        2M rows are read in batches of about ``chunk_size // 32`` rows). A
        line must fit in one block.

    Returns
    -------
    Ratings
        With ``source`` set to ``str(path)``.

    Raises
    ------
    TypeError
        If an option has the wrong type.
    ValueError
        If the file is missing, empty, of an unknown format, has fewer than
        three columns, lacks a requested column, has a line with the wrong
        number of fields, or a missing, non-numeric or non-finite rating. The
        message names the file and, for a bad line, its 1-based number.

    Notes
    -----
    Line numbers count physical lines; a quoted field spanning several lines
    makes later line numbers approximate.
    """
    return _read_file(path, sep, header, columns, format, chunk_size, _RATINGS)


def read_pairs(
    path: str | os.PathLike[str],
    *,
    sep: str | None = None,
    header: bool | None = None,
    columns: Mapping[str, str | int] | Sequence[str | int] | None = None,
    format: str | None = None,  # noqa: A002 - the natural name for the option
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> tuple[np.ndarray, np.ndarray]:
    """Read ``(user, item)`` pairs -- the ids to predict for -- from a file.

    Accepts every file :func:`read_ratings` reads, detected the same way,
    and also files with only two columns, user id and item id, with or
    without a header line (``user,item``, ``userId\\tmovieId``, ...). Rating,
    timestamp and other columns are ignored: a missing or non-numeric rating
    is not an error. Every line gives one pair, in file order; duplicate
    pairs are kept.

    Ids that are all integers are int64 (so ``"007"`` and ``"7"`` are the
    same id); otherwise every id of that column is a string, as in
    :func:`read_ratings`.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    sep : str, optional
        Field separator of a text file, as in :func:`read_ratings`. Detected
        when not given.
    header : bool, optional
        Whether the first line of a text file names the columns. Detected
        when not given.
    columns : mapping or sequence, optional
        Where the ids are: a mapping from ``"user"`` and ``"item"`` to a
        column name or 0-based position, or a sequence of 2 to 4
        names/positions in the order user, item, rating, timestamp. A
        ``"rating"`` or ``"timestamp"`` entry is accepted (so the options of
        :func:`read_ratings` can be reused); its column must exist but is
        not read. Detected when not given: columns named as user and item
        in a header, else the first two.
    format : {"csv", "parquet"}, optional
        As in :func:`read_ratings`; detected when not given.
    chunk_size : int, optional
        As in :func:`read_ratings`: bytes of text parsed per block.

    Returns
    -------
    users, items : numpy.ndarray
        Raw ids, one per line, in file order: int64, or unicode strings.

    Raises
    ------
    TypeError
        If an option has the wrong type.
    ValueError
        If the file is missing, empty, of an unknown format, has fewer than
        two columns, lacks a requested column, has a header that names other
        columns (rating, timestamp) but no user or item column, or has a
        line with the wrong number of fields or a missing id. The message
        names the file and, for a bad line, its 1-based number.

    See Also
    --------
    read_ratings : Read ``user, item, rating[, timestamp]`` records.
    """
    return _read_file(path, sep, header, columns, format, chunk_size, _PAIRS)


def _read_file(
    path: str | os.PathLike[str],
    sep: str | None,
    header: bool | None,
    columns: Mapping[str, str | int] | Sequence[str | int] | None,
    format: str | None,  # noqa: A002 - as in the public functions
    chunk_size: int,
    target: _Target[_R],
) -> _R:
    """Check the options of :func:`read_ratings` / :func:`read_pairs` and read ``target`` from the file."""
    source = str(path)
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"`path` must be a str or os.PathLike; got {path!r} of type {type(path).__name__}")
    sep = _check_sep(sep)
    if header is not None and not isinstance(header, (bool, np.bool_)):
        raise TypeError(f"`header` must be True, False or None; got {header!r} of type {type(header).__name__}")
    request = _check_columns(columns, target)
    if format is not None and format not in ("csv", "parquet"):
        raise ValueError(f"`format` must be 'csv', 'parquet' or None; got {format!r}")
    if not isinstance(chunk_size, numbers.Integral) or isinstance(chunk_size, (bool, np.bool_)):
        raise TypeError(f"`chunk_size` must be an integer >= 1; got {chunk_size!r} of type {type(chunk_size).__name__}")
    if chunk_size < 1:
        raise ValueError(f"`chunk_size` must be an integer >= 1; got {chunk_size}")
    chunk_size = int(chunk_size)

    file = Path(path)
    if not file.exists():
        raise ValueError(f"{source}: no such file")
    if not file.is_file():
        raise ValueError(f"{source}: not a regular file")
    if file.stat().st_size == 0:
        raise ValueError(f"{source}: the file is empty")

    if format is None:
        format = _detect_format(file, source)
    if format == "parquet":
        if sep is not None or header is not None:
            raise ValueError(f"{source}: `sep` and `header` apply to text files, not Parquet")
        return _read_parquet(file, source, request, chunk_size, target)
    return _read_text(file, source, sep, header, request, chunk_size, target)


def as_ratings(data: Any, **kwargs: Any) -> Ratings:
    """Turn ratings in any accepted form into :class:`Ratings`.

    Accepted:

    * a :class:`Ratings` -- returned as is;
    * a ``str`` or ``os.PathLike`` -- read with :func:`read_ratings`
      (``kwargs`` are passed on);
    * a pandas DataFrame or a pyarrow Table -- columns found by name as in a
      file header (``userId``, ``user_id``, ``user``, ...) or else the first
      three (and a fourth integer column as timestamp); ``columns=`` as in
      :func:`read_ratings` overrides;
    * a scipy.sparse matrix -- row index = user id, column index = item id,
      every *stored* entry is a rating. Explicitly stored zeros are ratings
      of 0; entries that are not stored are missing. Duplicate stored
      entries are summed, as scipy does;
    * a dense 2-D numpy array (or nested lists, or anything
      :func:`numpy.asarray` accepts) -- rows are users, columns are items,
      NaN marks a missing rating, ids are the row and column indices;
    * a tuple ``(users, items, ratings)`` or ``(users, items, ratings,
      timestamps)`` of equal-length arrays of raw ids and values, or scipy's
      ``(ratings, (users, items))``. A tuple is never read as a dense matrix.

    For a matrix the id maps hold every row and column index, including
    users and items with no rating.

    Parameters
    ----------
    data : object
        The ratings.
    **kwargs
        Options of :func:`read_ratings` for a path; only ``columns`` for a
        DataFrame or Table; none otherwise.

    Returns
    -------
    Ratings

    Raises
    ------
    TypeError
        If ``data`` is of none of the accepted kinds, or an option does not
        apply to it.
    ValueError
        If the ratings are empty or hold a missing or non-finite rating.
    """
    if isinstance(data, Ratings):
        _no_options(kwargs, "a Ratings object")
        return data
    if isinstance(data, (str, os.PathLike)):
        return read_ratings(data, **kwargs)
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(data, pandas.DataFrame):
        return _from_frame(data, kwargs)
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        return _from_table(data, kwargs)
    sparse = sys.modules.get("scipy.sparse")
    if sparse is not None and sparse.issparse(data):
        _no_options(kwargs, "a sparse matrix")
        return _from_sparse(data)
    if isinstance(data, tuple):
        _no_options(kwargs, "a tuple of arrays")
        return _from_tuple(data)
    if isinstance(data, (bytes, bytearray, Mapping)) or isinstance(data, (numbers.Number, np.generic)):
        raise _type_error(data)
    _no_options(kwargs, "a dense matrix")
    try:
        array = np.asarray(data)
    except Exception as exc:  # noqa: BLE001 - whatever asarray rejects is not ratings
        raise _type_error(data) from exc
    if array.ndim != 2 or array.dtype.kind not in "biuf":
        raise _type_error(data, f" (as an array: {array.ndim}-D of dtype {array.dtype})")
    return _from_dense(array)


# ---------------------------------------------------------------------------
# Options
# ---------------------------------------------------------------------------


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


def _no_options(kwargs: Mapping[str, Any], what: str) -> None:
    if kwargs:
        raise TypeError(f"options {sorted(kwargs)} do not apply to {what}; they are for files (read_ratings)")


def _type_error(data: object, detail: str = "") -> TypeError:
    return TypeError(
        "`data` must be Ratings, a file path (str or os.PathLike), a pandas DataFrame, a pyarrow Table, "
        "a scipy.sparse matrix, a dense 2-D array of numbers with NaN for missing, or a tuple "
        f"(users, items, ratings[, timestamps]); got {type(data).__name__}{detail}"
    )


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


# ---------------------------------------------------------------------------
# Format detection and text sniffing
# ---------------------------------------------------------------------------


def _detect_format(file: Path, source: str) -> str:
    suffixes = [s.lower() for s in file.suffixes]
    if suffixes and suffixes[-1] in _PARQUET_SUFFIXES:
        return "parquet"
    with open(file, "rb") as handle:
        magic = handle.read(4)
    if magic == b"PAR1":
        return "parquet"
    if magic[:2] == b"\x1f\x8b" and not (suffixes and suffixes[-1] in _COMPRESSION_SUFFIXES):
        raise ValueError(f"{source}: unknown format: the file is gzip-compressed; name it with a .gz suffix")
    return "csv"


def _open_stream(file: Path) -> pa.NativeFile:
    """The file's bytes, decompressed when its suffix names a compression."""
    suffix = file.suffix.lower()
    compression = "detect" if suffix in _COMPRESSION_SUFFIXES else None
    return pa.input_stream(str(file), compression=compression)


@dataclass
class _Layout:
    """How a text file is laid out, as detected (or given)."""

    sep: str  # one character, a repeated character, or "whitespace"
    skip_rows: int  # physical lines before the data (blank lines and the header)
    n_fields: int
    names: list[str] | None
    columns: dict[str, int]
    id_kinds: dict[str, str] = field(default_factory=dict)  # role -> "int" | "str"
    padded: bool = False  # fields padded with spaces around the separator
    line_bytes: float = 0.0  # mean length of the sampled lines, newline included (for sizing arrays)

    @property
    def delimiter(self) -> str:
        return " " if self.sep == "whitespace" else self.sep[0]

    @property
    def step(self) -> int:
        """Physical columns per logical field: 2 for '::'."""
        return 1 if self.sep == "whitespace" else len(self.sep)

    @property
    def n_physical(self) -> int:
        return (self.n_fields - 1) * self.step + 1

    def describe_sep(self) -> str:
        return "whitespace" if self.sep == "whitespace" else repr(self.sep)

    def transform(self) -> Callable[[bytes], bytes] | None:
        """A rewrite of whole lines that leaves one plain separator between fields."""
        if self.sep == "whitespace":
            return _squeeze_whitespace
        if self.padded:
            pad = rb"[ ]" if "\t" in self.sep else rb"[ \t]"  # never the separator itself
            plain = self.sep.encode()
            around = re.compile(pad + rb"*" + re.escape(plain) + pad + rb"*")
            edges = re.compile(rb"(?m)^" + pad + rb"+|" + pad + rb"+(?=\r?$)")

            def unpad(data: bytes) -> bytes:
                return edges.sub(b"", around.sub(plain, data))

            return unpad
        return None

    def split(self, line: str) -> list[str]:
        return _split(line, self.sep)


_RUNS_RE = re.compile(rb"[ \t]+")
_EDGES_RE = re.compile(rb"(?m)^[ \t]+|[ \t]+(?=\r?$)")


def _squeeze_whitespace(data: bytes) -> bytes:
    return _EDGES_RE.sub(b"", _RUNS_RE.sub(b" ", data))


def _split(line: str, sep: str) -> list[str]:
    if sep == "whitespace":
        return line.split()
    if len(sep) > 1 or sep == " ":
        return line.split(sep)
    return next(csv.reader([line], delimiter=sep, quotechar='"'), [])


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _is_int(text: str) -> bool:
    return bool(_INT_RE.match(text)) and abs(int(text)) <= _INT64_MAX


def _read_sample(file: Path, source: str) -> tuple[int, list[str]]:
    """The first lines of a text file: (leading blank lines, up to _SAMPLE_LINES non-blank lines)."""
    try:
        with _open_stream(file) as stream:
            raw = stream.read(_SAMPLE_BYTES)
            at_end = len(raw) < _SAMPLE_BYTES or not stream.read(1)
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(f"{source}: cannot read the file: {exc}") from exc
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    if not at_end:
        cut = raw.rfind(b"\n")
        if cut < 0:
            raise ValueError(
                f"{source}: unknown format: the first line is longer than {_SAMPLE_BYTES} bytes; "
                "not a text file of ratings"
            )
        raw = raw[: cut + 1]
    if b"\x00" in raw:
        raise ValueError(f"{source}: unknown format: binary data, neither text nor Parquet; pass `format`")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = raw.decode("latin-1")
        except UnicodeDecodeError as exc:  # pragma: no cover - latin-1 decodes any bytes
            raise ValueError(f"{source}: unknown format: not text") from exc
    lines = [line.rstrip("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()
    lead = 0
    while lead < len(lines) and not lines[lead].strip():
        lead += 1
    body = [line for line in lines[lead:] if line.strip()][:_SAMPLE_LINES]
    if not body:
        raise ValueError(f"{source}: the file is empty (only blank lines)")
    return lead, body


def _choose_sep(
    lines: list[str], sep: str | None, file: Path, source: str, target: _Target[Any]
) -> tuple[str, int]:
    """The separator and the number of fields per line.

    Separators giving 3 or more fields are preferred even when ``target``
    needs only 2, so a ratings file is split alike by every reader.
    """
    need = len(target.required)
    if sep is not None:
        if sep == " ":
            if any("" in line.split(" ") for line in lines):
                sep = "whitespace"
        counts = Counter(len(_split(line, sep)) for line in lines)
        n_fields = counts.most_common(1)[0][0]
        if n_fields < need:
            raise ValueError(
                f"{source}: found {n_fields} field(s) per line separated by "
                f"{'whitespace' if sep == 'whitespace' else repr(sep)}; need at least {target.need}"
            )
        return sep, n_fields
    order = list(_CANDIDATES)
    suffix = next((s.lower() for s in reversed(Path(file).suffixes) if s.lower() not in _COMPRESSION_SUFFIXES), "")
    preferred = {".csv": ",", ".tsv": "\t", ".tab": "\t", ".dat": "::"}.get(suffix)
    if preferred is not None:
        order.remove(preferred)
        order.insert(0, preferred)
    scored: list[tuple[tuple[float, int, int], str, int]] = []  # (score, separator, fields per line)
    widest = 1
    for rank, candidate in enumerate(order):
        if candidate == "::" and not all("::" in line for line in lines):
            continue
        split = [_split(line, candidate) for line in lines]
        if candidate == " " and any("" in fields for fields in split):
            continue
        counts = Counter(len(fields) for fields in split)
        n_fields, agree = counts.most_common(1)[0]
        body = [f for f in split[1:] if len(f) == n_fields] or [f for f in split if len(f) == n_fields]
        if any(all(f[j] in _CANDIDATES for f in body) for j in range(n_fields)):
            continue  # a column of separators: spaces around the real one ('1 , 10' is not '1', ',', '10')
        widest = max(widest, n_fields)
        if n_fields < need:
            continue
        # Among separators that split the lines alike, prefer the one giving more numeric columns
        # (ratings, integer ids): '  1\t 10   3.5' is three numbers, not '1', '10   3.5'.
        numeric = sum(all(_is_number(f[j].strip()) for f in body) for j in range(n_fields))
        scored.append(((agree / len(lines), numeric, -rank), candidate, n_fields))
    for least in sorted({3, need}, reverse=True):
        fits = [entry for entry in scored if entry[2] >= least]
        if fits:
            _, chosen, n_fields = max(fits)
            return chosen, n_fields
    if 1 < widest < need or (widest < need <= 2):
        raise ValueError(
            f"{source}: found {widest} field{'s' if widest > 1 else ''} per line; need at least {target.need}"
        )
    raise ValueError(
        f"{source}: unknown format: cannot find a separator giving {need} or more fields per line "
        "(tried tab, ',', ';', '|', '::' and whitespace); pass `sep`, or `format='parquet'`"
    )


def _sniff(
    file: Path,
    source: str,
    sep: str | None,
    header: bool | None,
    request: dict[str, str | int] | None,
    target: _Target[Any],
) -> _Layout:
    lead, lines = _read_sample(file, source)
    sep, n_fields = _choose_sep(lines, sep, file, source, target)
    rows = [_split(line, sep) for line in lines]
    if sep != "whitespace":
        padded = any(f != f.strip(" \t") for fields in rows for f in fields)
        if padded:
            rows = [[f.strip(" \t") for f in fields] for fields in rows]
    else:
        padded = False
    if header is None:
        header = _looks_like_header(rows)
    names: list[str] | None = None
    data = rows
    if header:
        first = rows[0]
        names = [first[j] if j < len(first) else f"column {j}" for j in range(n_fields)]
        data = rows[1:]
    data = [r for r in data if len(r) == n_fields]

    def integer_column(j: int) -> bool:
        """Whether the sampled values of column ``j`` are integers (empty ones aside)."""
        values = [r[j] for r in data if r[j] != ""]
        return bool(values) and all(_is_int(v) for v in values)

    columns, asked = _resolve_columns(names, n_fields, request, source, integer_column, target)
    stamps = columns.get("timestamp")
    if stamps is not None and not asked and not any(_is_int(r[stamps]) for r in data):
        # a column named like a time but holding none (dates, say): not read, not an error
        logger.info("%s: column %d holds no integer times; timestamps not read", source, stamps)
        del columns["timestamp"]
    id_kinds = {role: "int" if integer_column(columns[role]) else "str" for role in ("user", "item")}
    return _Layout(
        sep=sep,
        skip_rows=lead + (1 if header else 0),
        n_fields=n_fields,
        names=names,
        columns=columns,
        id_kinds=id_kinds,
        padded=padded,
        line_bytes=sum(len(line.encode("utf-8", errors="surrogateescape")) + 1 for line in lines) / len(lines),
    )


def _looks_like_header(rows: list[list[str]]) -> bool:
    first = rows[0]
    if any(_is_number(f) for f in first):
        return False  # a header names columns; a line holding a number is data
    if any(_normal_name(f) in _NAMES[role] for f in first for role in _REQUIRED):
        return True
    # Text above a column that holds numbers in every other line.
    rest = [r for r in rows[1:] if len(r) == len(first)]
    return any(all(_is_number(r[j]) for r in rest) for j in range(len(first))) if rest else False


# ---------------------------------------------------------------------------
# Reading text
# ---------------------------------------------------------------------------


def _segments(file: Path, layout: _Layout, size: int) -> Iterator[pa.Buffer]:
    """The data lines of a text file in pieces of at most about ``size`` bytes, each ending with a line.

    The lines before the data (blank lines, the header) are left out, and the
    layout's rewrite (separator clean-up) is applied. pyarrow's CSV reader is
    given one piece at a time: on a whole file it reads up to 32 blocks ahead
    on a background thread, so a large file would be held as text (hundreds of
    MB) while its table is built. Pieces are slices of the blocks read (no
    copy) except for the line that spans two blocks, passed on by itself. A
    line longer than twice ``size`` is passed on whole, for pyarrow to report
    as longer than a block.
    """
    transform = layout.transform()

    def piece(data: Any) -> pa.Buffer:
        if transform is not None:
            return pa.py_buffer(transform(data.to_pybytes() if isinstance(data, pa.Buffer) else bytes(data)))
        return data if isinstance(data, pa.Buffer) else pa.py_buffer(data)

    with _open_stream(file) as stream:
        carry = _skip_lines(stream, layout.skip_rows)  # the start of a line (bytes)
        while True:
            block = stream.read_buffer(size)
            if block.size == 0:
                break
            first = _newline(block, last=False)
            if first < 0:  # the line in carry goes on
                carry += block.to_pybytes()
                if len(carry) > 2 * size:
                    yield piece(carry)  # no newline in two blocks: pyarrow raises
                    carry = b""
                continue
            last = _newline(block, last=True)
            if carry:
                yield piece(carry + block.slice(0, first + 1).to_pybytes())
                if last > first:
                    yield piece(block.slice(first + 1, last - first))
            else:
                yield piece(block.slice(0, last + 1))
            carry = block.slice(last + 1).to_pybytes()
            del block
        if carry:
            yield piece(carry)


def _skip_lines(stream: Any, n_lines: int) -> bytes:
    """Read past the first ``n_lines`` lines of ``stream``; return what was read of the rest."""
    data = b""
    while n_lines:
        cut = data.find(b"\n")
        if cut >= 0:
            data = data[cut + 1 :]
            n_lines -= 1
            continue
        more = stream.read(_SAMPLE_BYTES)
        if not more:
            return b""
        data += more
    return data


def _newline(buffer: pa.Buffer, *, last: bool) -> int:
    """Position of the first (or last) newline byte in ``buffer``; -1 if none."""
    n = buffer.size
    window = 1 << 12
    while True:
        if last:
            start = max(0, n - window)
            found = buffer.slice(start, n - start).to_pybytes().rfind(b"\n")
            if found >= 0:
                return start + found
        else:
            found = buffer.slice(0, min(n, window)).to_pybytes().find(b"\n")
            if found >= 0:
                return found
        if window >= n:
            return -1
        window *= 8


def _numbered_lines(file: Path, layout: _Layout) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line as pyarrow sees it) for every physical line; error path only."""
    transform = layout.transform()
    with _open_stream(file) as stream:
        number = 0
        carry = b""
        while True:
            block = stream.read(1 << 20)
            data = carry + block
            lines = data.split(b"\n")
            carry = lines.pop() if block else b""
            if not block and lines and lines[-1] == b"":
                lines.pop()
            for line in lines:
                number += 1
                line = line.rstrip(b"\r")
                if number == 1 and line.startswith(b"\xef\xbb\xbf"):
                    line = line[3:]
                yield number, (transform(line) if transform is not None else line)
            if not block:
                return


def _line_of_row(file: Path, layout: _Layout, row: int) -> int | None:
    """Line number of the 0-based data row ``row`` (pyarrow skips empty lines)."""
    count = -1
    for number, line in _numbered_lines(file, layout):
        if number <= layout.skip_rows or not line:
            continue
        count += 1
        if count == row:
            return number
    return None


def _line_of_text(file: Path, layout: _Layout, text: str) -> int | None:
    target = text.encode("utf-8", errors="surrogateescape").rstrip(b"\r")
    for number, line in _numbered_lines(file, layout):
        if number > layout.skip_rows and line == target:
            return number
    return None


def _read_text(
    file: Path,
    source: str,
    sep: str | None,
    header: bool | None,
    request: dict[str, str | int] | None,
    chunk_size: int,
    target: _Target[_R],
) -> _R:
    layout = _sniff(file, source, sep, header, request, target)
    for _ in range(3):  # an id column may turn out to hold strings: read again
        try:
            return _read_text_pass(file, source, layout, chunk_size, target, strings=False)
        except _RetryAsStrings as retry:
            logger.debug("%s: %s ids are not all integers; reading them as strings", source, retry.role)
            layout.id_kinds[retry.role] = "str"
    return _read_text_pass(file, source, layout, chunk_size, target, strings=False)  # pragma: no cover


def _read_text_pass(
    file: Path, source: str, layout: _Layout, chunk_size: int, target: _Target[_R], *, strings: bool
) -> _R:
    """One pass over the file. ``strings=True`` reads every field as text (to locate a conversion error)."""
    from pyarrow import csv as pa_csv

    step = layout.step
    wanted = {role: f"f{j * step}" for role, j in layout.columns.items()}
    separators = [f"f{p}" for p in range(layout.n_physical) if p % step]
    types: dict[str, pa.DataType] = {}
    for role, name in wanted.items():
        if strings or (role in ("user", "item") and layout.id_kinds[role] == "str"):
            types[name] = pa.string()
        elif role == "rating":
            types[name] = pa.float64()
        else:
            types[name] = pa.int64()
    for name in separators:
        types[name] = pa.string()

    invalid: list[tuple[int, int, str]] = []

    def on_invalid_row(row: Any) -> str:
        invalid.append((row.expected_columns, row.actual_columns, row.text))
        return "error"

    read_options = pa_csv.ReadOptions(
        column_names=[f"f{p}" for p in range(layout.n_physical)],
        block_size=chunk_size,
        use_threads=False,  # one block parsed at a time (_segments leaves out the lines before the data)
    )
    parse_options = pa_csv.ParseOptions(
        delimiter=layout.delimiter,
        quote_char='"',
        ignore_empty_lines=True,
        invalid_row_handler=on_invalid_row,
    )
    convert_options = pa_csv.ConvertOptions(
        column_types=types,
        include_columns=list(wanted.values()) + separators,
        null_values=[""],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )
    columns = target.collector(source, _expected_rows(file, layout))
    offset = 0
    try:
        for piece in _segments(file, layout, chunk_size):
            reader = pa_csv.open_csv(
                pa.BufferReader(piece),
                read_options=read_options,
                parse_options=parse_options,
                convert_options=convert_options,
            )
            del piece
            for batch in reader:
                for name in separators:
                    text = batch.column(name)
                    bad = pc.not_equal(text, "")
                    if pc.any(bad).as_py():
                        row = offset + int(np.flatnonzero(bad.to_numpy(zero_copy_only=False))[0])
                        raise _BadValue(row, f"expected {layout.describe_sep()} between fields")
                arrays = {role: batch.column(name) for role, name in wanted.items()}
                if strings:
                    _check_strings(arrays, layout, offset)
                else:
                    columns.add(arrays, offset)
                offset += batch.num_rows
    except _BadValue as bad:
        line = _line_of_row(file, layout, bad.row)
        where = f"line {line}" if line is not None else f"data row {bad.row + 1}"
        raise ValueError(f"{source}, {where}: {bad.message}") from None
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OSError) as exc:
        if invalid:
            expected, _, text = invalid[0]
            line = _line_of_text(file, layout, text)
            where = f", line {line}" if line is not None else ""
            found = len(layout.split(text))
            raise ValueError(
                f"{source}{where}: expected {layout.n_fields} fields separated by {layout.describe_sep()}, "
                f"found {found}: {text!r}"
            ) from None
        message = str(exc)
        if not strings and "conversion error" in message.lower():
            return _read_text_pass(file, source, layout, chunk_size, target, strings=True)
        hint = ""
        if "block" in message.lower():
            hint = f" (is a line longer than `chunk_size` = {chunk_size} bytes? pass a larger chunk_size)"
        raise ValueError(f"{source}: cannot read the file: {message}{hint}") from None
    if strings:
        # Every value converted on its own: the fast pass failed on something else.
        raise ValueError(f"{source}: cannot read the file (pyarrow could not convert a value)")
    if offset == 0:
        what = " (only a header line)" if layout.names is not None else ""
        raise ValueError(f"{source}: no {target.noun}{what}")
    return columns.build()


def _expected_rows(file: Path, layout: _Layout) -> int | None:
    """About how many data rows a text file holds, on the generous side; None when compressed."""
    if file.suffix.lower() in _COMPRESSION_SUFFIXES or layout.line_bytes <= 0:
        return None
    size = file.stat().st_size
    # a data line has at least two separated fields and a newline: 4 bytes
    return min(int(size / layout.line_bytes * 1.2) + 1024, size // 4 + 1)


def _check_strings(arrays: dict[str, pa.Array], layout: _Layout, offset: int) -> None:
    """Find the first value that does not convert (the text pass)."""
    targets = {"rating": pa.float64(), "timestamp": pa.int64()}
    bad: list[tuple[int, str, str]] = []
    for role, array in arrays.items():
        if role in ("user", "item"):
            if layout.id_kinds[role] == "int":
                row = _first_unconvertible(array, pa.int64())
                if row is not None and array[row].as_py() != "":
                    bad.append((row, role, "retry"))
                elif row is not None:
                    bad.append((row, role, f"missing {role} id"))
            continue
        row = _first_unconvertible(array, targets[role])
        if row is not None:
            text = array[row].as_py()
            if role == "rating":
                problem = "missing rating" if text == "" else f"rating {text!r} is not a number"
            else:
                problem = "missing timestamp" if text == "" else f"timestamp {text!r} is not an integer"
            bad.append((row, role, problem))
    if not bad:
        return
    row, role, problem = min(bad)
    if problem == "retry":
        raise _RetryAsStrings(role)
    raise _BadValue(offset + row, problem)


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


# ---------------------------------------------------------------------------
# Columns as they arrive, checked; then Ratings or pairs
# ---------------------------------------------------------------------------


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
    columns_rule: str  # the rule for the `columns` option
    collector: Callable[[str, int | None], _Collector[_R]]  # (source, expected number of rows)

    @property
    def need(self) -> str:
        """The required roles, for messages: '3 (user, item, rating)'."""
        return f"{len(self.required)} ({', '.join(self.required)})"

    def keep(self, found: dict[str, int]) -> dict[str, int]:
        """The positions of the roles read, from positions found for any role."""
        return {role: j for role, j in found.items() if role in self.roles}


_RATINGS: _Target[Ratings] = _Target(
    required=_REQUIRED,
    roles=_ROLES,
    noun="ratings",
    columns_rule=(
        "`columns` must map 'user', 'item', 'rating' (and optionally 'timestamp') to column names or "
        "0-based positions, or list 3 or 4 of them in that order"
    ),
    collector=_RatingColumns,
)
_PAIRS: _Target[tuple[np.ndarray, np.ndarray]] = _Target(
    required=("user", "item"),
    roles=("user", "item"),
    noun="pairs",
    columns_rule=(
        "`columns` must map 'user' and 'item' (and optionally 'rating', 'timestamp', not read) to column "
        "names or 0-based positions, or list 2 to 4 of them in the order user, item, rating, timestamp"
    ),
    collector=_PairColumns,
)


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


# ---------------------------------------------------------------------------
# Parquet, pyarrow Tables, pandas DataFrames
# ---------------------------------------------------------------------------


def _read_parquet(
    file: Path, source: str, request: dict[str, str | int] | None, chunk_size: int, target: _Target[_R]
) -> _R:
    from pyarrow import parquet as pq

    try:
        parquet = pq.ParquetFile(str(file), buffer_size=1 << 20)  # column chunks read in pieces
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"{source}: not a readable Parquet file: {exc}") from None
    with parquet:
        schema = parquet.schema_arrow
        batch_rows = max(1024, chunk_size // 32)

        def fetch(positions: list[int]) -> Iterator[list[Any]]:
            # A row group of moderate size is read whole (pyarrow's batch iterator holds more memory
            # beside it); a large one in batches.
            names = [schema.names[j] for j in positions]
            for group in range(parquet.metadata.num_row_groups):
                if parquet.metadata.row_group(group).num_rows <= max(batch_rows, _WHOLE_ROW_GROUP):
                    batches = parquet.read_row_group(group, columns=names, use_threads=False).to_batches()
                else:
                    batches = parquet.iter_batches(
                        batch_size=batch_rows, row_groups=[group], columns=names, use_threads=False
                    )
                for batch in batches:
                    yield [batch.column(k) for k in range(len(names))]
                del batches

        try:
            return _read_columnar(
                list(schema.names),
                lambda j: schema.field(j).type,
                fetch,
                request,
                source,
                target,
                parquet.metadata.num_rows,
            )
        except (pa.ArrowException, OSError) as exc:
            raise ValueError(f"{source}: cannot read the Parquet file: {exc}") from None


def _from_table(table: pa.Table | pa.RecordBatch, kwargs: dict[str, Any]) -> Ratings:
    request = _table_options(kwargs, "a pyarrow Table")

    def fetch(positions: list[int]) -> Iterator[list[Any]]:
        yield [table.column(j) for j in positions]

    names = [str(n) for n in table.schema.names]
    return _read_columnar(
        names, lambda j: table.schema.field(j).type, fetch, request, type(table).__name__, _RATINGS, table.num_rows
    )


def _table_options(kwargs: dict[str, Any], what: str) -> dict[str, str | int] | None:
    extra = sorted(k for k in kwargs if k != "columns")
    if extra:
        raise TypeError(f"options {extra} do not apply to {what}; only `columns` does")
    return _check_columns(kwargs.get("columns"), _RATINGS)


def _from_frame(frame: Any, kwargs: dict[str, Any]) -> Ratings:
    request = _table_options(kwargs, "a DataFrame")
    converted: dict[int, pa.Array] = {}

    def column(j: int) -> pa.Array:
        if j not in converted:
            series = frame.iloc[:, j]
            try:
                converted[j] = pa.array(series, from_pandas=True)
            except (pa.ArrowException, TypeError, ValueError):
                # mixed kinds (ints and strings, say): ids as text, missing values kept missing
                missing = series.isna().to_numpy(dtype=bool)
                text = series.astype(str).to_numpy(dtype=object)
                converted[j] = pa.array(text, mask=missing, type=pa.string())
        return converted[j]

    def fetch(positions: list[int]) -> Iterator[list[Any]]:
        yield [column(j) for j in positions]

    names = [str(c) for c in frame.columns]
    return _read_columnar(names, lambda j: column(j).type, fetch, request, "DataFrame", _RATINGS, len(frame))


def _read_columnar(
    names: list[str],
    column_type: Callable[[int], pa.DataType],
    fetch: Callable[[list[int]], Iterator[list[Any]]],
    request: dict[str, str | int] | None,
    source: str,
    target: _Target[_R],
    n_rows: int | None = None,
) -> _R:
    """Ratings or pairs from columnar data with typed columns (Parquet, a Table, a DataFrame).

    ``fetch(positions)`` yields batches: lists of arrays, one per position;
    ``n_rows`` is their total length when known.
    """

    def integer_like(j: int) -> bool:
        t = _value_type(column_type(j))
        return pa.types.is_integer(t) or pa.types.is_timestamp(t)

    columns, asked = _resolve_columns(names, len(names), request, source, integer_like, target)
    kinds: dict[str, str] = {}
    for role, j in list(columns.items()):
        t = _value_type(column_type(j))
        kind = _column_kind(role, t)
        if kind is None:
            if role == "timestamp" and not asked:
                logger.info("%s: column %r is %s, not a time; timestamps not read", source, names[j], t)
                del columns[role]
                continue
            raise ValueError(f"{source}: column {names[j]!r} ({role}) has type {t}; {_KIND_RULE[role]}")
        kinds[role] = kind
    roles = list(columns)
    acc = target.collector(source, n_rows)
    offset = 0
    try:
        for arrays in fetch([columns[r] for r in roles]):
            converted = {role: _convert(a, role, kinds[role], offset) for role, a in zip(roles, arrays, strict=True)}
            acc.add(converted, offset)
            offset += len(arrays[0])
    except _BadValue as bad:
        raise ValueError(f"{source}, row {bad.row + 1}: {bad.message}") from None
    return acc.build()


_KIND_RULE = {
    "user": "user ids must be integers or strings",
    "item": "item ids must be integers or strings",
    "rating": "ratings must be numbers",
    "timestamp": "timestamps must be integers or times",
}


def _value_type(t: pa.DataType) -> pa.DataType:
    return t.value_type if pa.types.is_dictionary(t) else t


def _column_kind(role: str, t: pa.DataType) -> str | None:
    if pa.types.is_null(t):
        return "null"
    if role in ("user", "item"):
        if pa.types.is_integer(t):
            return "int"
        if pa.types.is_floating(t):
            return "float-id"
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return "str"
        return None
    if role == "rating":
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
            return "number"
        if pa.types.is_string(t) or pa.types.is_large_string(t):
            return "text-number"
        return None
    if pa.types.is_integer(t):
        return "int"
    if pa.types.is_timestamp(t):
        return "time"
    if pa.types.is_floating(t):
        return "float-id"
    return None


def _convert(array: Any, role: str, kind: str, offset: int) -> pa.Array:
    """One column of a batch as int64/string ids, float32/float64 ratings or int64 timestamps."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_dictionary(array.type):
        array = array.dictionary_decode()
    if kind == "null":
        return pa.nulls(len(array), pa.int64() if role != "rating" else pa.float64())
    if kind == "int":
        return pc.cast(array, pa.int64())
    if kind == "str":
        return pc.cast(array, pa.large_string())
    if kind == "float-id":
        values = array.to_numpy(zero_copy_only=False)
        fractional = np.isfinite(values) & (values != np.round(values))
        fractional |= np.isinf(values) | (np.abs(np.nan_to_num(values)) > 2.0**62)
        if fractional.any():
            row = int(np.flatnonzero(fractional)[0])
            noun = "timestamp" if role == "timestamp" else f"{role} id"
            raise _BadValue(offset + row, f"{noun} {float(values[row])!r} is not an integer")
        valid = pc.is_valid(array).to_numpy(zero_copy_only=False)
        return pa.array(np.nan_to_num(values).astype(np.int64), mask=~valid)
    if kind == "time":
        return pc.cast(pc.cast(array, pa.timestamp("s", tz=array.type.tz), safe=False), pa.int64())
    if kind == "number":
        if pa.types.is_float32(array.type) or pa.types.is_float64(array.type):
            return array  # converted to float32 where it is stored
        return pc.cast(array, pa.float64(), safe=False)
    # text-number
    row = _first_unconvertible(array.fill_null("0"), pa.float64())
    if row is not None:
        raise _BadValue(offset + row, f"rating {array[row].as_py()!r} is not a number")
    return pc.cast(array, pa.float64())


# ---------------------------------------------------------------------------
# Matrices and tuples
# ---------------------------------------------------------------------------


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
