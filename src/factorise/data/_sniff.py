"""Text layout detection: format, separator, header line, columns and id kinds.

:func:`_sniff` reads the first lines of a text file (at most
``_SAMPLE_BYTES``) and decides, unless given, the separator, whether the
first line is a header, and which columns hold the user id, item id, rating
and timestamp (:func:`factorise.data._columns._resolve_columns`). The
result is a :class:`_Layout`, which the streaming reader
(:mod:`factorise.data._text`) follows.
"""

from __future__ import annotations

import csv
import logging
import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from factorise.data._collect import _one_line, _Target
from factorise.data._columns import _NAMES, _REQUIRED, _normal_name, _resolve_columns
from factorise.data._options import example, spell

logger = logging.getLogger(__name__)

_PARQUET_SUFFIXES = frozenset({".parquet", ".pq", ".parq"})
_COMPRESSION_SUFFIXES = frozenset({".gz", ".bz2", ".zst", ".lz4", ".br"})
_SAMPLE_BYTES = 1 << 16
_SAMPLE_LINES = 100
_INT_RE = re.compile(r"-?[0-9]+\Z")
_INT64_MAX = np.iinfo(np.int64).max

#: Separators tried, in order, when ``sep`` is not given.
_CANDIDATES = ("::", "\t", ",", ";", "|", " ", "whitespace")

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
    try:
        return next(csv.reader([line], delimiter=sep, quotechar='"'), [])
    except csv.Error:  # a carriage return inside the line, say: fields without quoting rules
        return line.split(sep)


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _is_int(text: str) -> bool:
    return bool(_INT_RE.match(text)) and abs(int(text)) <= _INT64_MAX


def _is_blank_or_comment(line: str) -> bool:
    """Whether a line holds nothing to read: blank, or a comment (first non-blank character ``#``)."""
    stripped = line.lstrip(" \t")
    return not stripped.strip() or stripped.startswith("#")


def _read_sample(file: Path, source: str) -> tuple[int, list[str]]:
    """The first lines of a text file.

    Returns (the number of blank and comment lines before the first data or
    header line, up to _SAMPLE_LINES lines that are neither).
    """
    try:
        with _open_stream(file) as stream:
            raw = stream.read(_SAMPLE_BYTES)
            at_end = len(raw) < _SAMPLE_BYTES or not stream.read(1)
    except (OSError, pa.ArrowException) as exc:
        raise ValueError(f"{source}: cannot read the file: {_one_line(exc)}") from exc
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
        raise ValueError(
            f"{source}: unknown format: binary data, neither text nor Parquet; pass {spell('format')}"
        )
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
    while lead < len(lines) and _is_blank_or_comment(lines[lead]):
        lead += 1
    body = [line for line in lines[lead:] if not _is_blank_or_comment(line)][:_SAMPLE_LINES]
    if not body:
        raise ValueError(f"{source}: the file is empty (only blank lines and comments)")
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
        f"(tried tab, ',', ';', '|', '::' and whitespace); pass {spell('sep')}, or {example('format', 'parquet')}"
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

    columns, asked = _resolve_columns(
        names, n_fields, request, source, integer_column, target, lambda: data[0] if data else None
    )
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
