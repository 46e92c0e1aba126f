"""Delimited text read in blocks with pyarrow's CSV reader.

The file is streamed in pieces of about ``chunk_size`` bytes
(:func:`_segments`), each parsed on its own, so a large file is never held
as text and as a table at once. Errors are located afterwards: the 1-based
line of a bad row is found by a second pass over the file, on the error path
only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from factorise.data._collect import _R, _BadValue, _first_unconvertible, _one_line, _Target
from factorise.data._options import spell
from factorise.data._sniff import _COMPRESSION_SUFFIXES, _SAMPLE_BYTES, _Layout, _open_stream, _sniff

logger = logging.getLogger(__name__)


class _RetryAsStrings(Exception):
    """An id column guessed to hold integers holds something else."""

    def __init__(self, role: str) -> None:
        super().__init__(role)
        self.role = role

def _arrow_owned(data: bytes) -> pa.Buffer:
    """``data`` copied into memory pyarrow owns.

    pyarrow's streaming CSV reader reads ahead on its own I/O thread, which
    may drop the last reference to a piece. A piece wrapping a Python object
    (``pa.py_buffer``) is then freed from that thread, which takes the GIL
    and may start Python's garbage collector there; under CPython 3.11's
    ``tracemalloc`` this crashed the interpreter (a segfault in the fuzz
    tests). A copy in Arrow's memory pool is freed without Python.
    """
    buffer = pa.allocate_buffer(len(data))
    if len(data):
        np.frombuffer(buffer, dtype=np.uint8)[:] = np.frombuffer(data, dtype=np.uint8)
    return buffer


def _segments(file: Path, layout: _Layout, size: int) -> Iterator[pa.Buffer]:
    """The data lines of a text file in pieces of at most about ``size`` bytes, each ending with a line.

    The lines before the data (blank lines, comments, the header) are left
    out, comment lines (first non-blank character ``#``) are blanked where
    they occur (so line numbers stay right: pyarrow skips empty lines), and
    the layout's rewrite (separator clean-up) is applied. pyarrow's CSV reader is
    given one piece at a time: on a whole file it reads up to 32 blocks ahead
    on a background thread, so a large file would be held as text (hundreds of
    MB) while its table is built. Pieces are slices of the blocks read (no
    copy) except for the line that spans two blocks, passed on by itself. A
    line longer than twice ``size`` is passed on whole, for pyarrow to report
    as longer than a block.
    """
    transform = layout.transform()

    def piece(data: Any) -> pa.Buffer:
        starts = _comment_starts(data)
        if starts is not None:
            data = _blank_lines(data.to_pybytes() if isinstance(data, pa.Buffer) else bytes(data), starts)
        if transform is not None:
            return _arrow_owned(transform(data.to_pybytes() if isinstance(data, pa.Buffer) else bytes(data)))
        return data if isinstance(data, pa.Buffer) else _arrow_owned(data)

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


#: Bytes searched at a time for a '#' (bounds the copy made to search a block).
_FIND_STEP = 1 << 16
_HASH, _NEWLINE, _SPACE, _TAB = 0x23, 0x0A, 0x20, 0x09


def _comment_starts(data: Any) -> np.ndarray | None:
    """Offsets where the comment lines of ``data`` start (first non-blank character '#'); None if there are none.

    The common case, no '#' at all, costs one search of the bytes
    (``bytes.find``, a slice at a time); only a block holding a '#' is
    looked at further.
    """
    view = memoryview(data).cast("B")
    if not any(bytes(view[i : i + _FIND_STEP]).find(b"#") >= 0 for i in range(0, len(view), _FIND_STEP)):
        return None
    array = np.frombuffer(view, dtype=np.uint8)
    hashes = np.flatnonzero(array == _HASH)
    before = hashes - 1  # walk back over the blanks before each '#'
    walking = np.flatnonzero(before >= 0)
    while walking.size:
        at = array[before[walking]]
        walking = walking[(at == _SPACE) | (at == _TAB)]
        before[walking] -= 1
        walking = walking[before[walking] >= 0]
    at_line_start = (before < 0) | (array[np.maximum(before, 0)] == _NEWLINE)
    starts = np.unique(before[at_line_start] + 1)
    return starts if starts.size else None


def _blank_lines(data: bytes, starts: np.ndarray) -> bytes:
    """``data`` with the lines starting at ``starts`` emptied (their newlines kept)."""
    parts = []
    done = 0
    for start in starts.tolist():
        if start < done:
            continue
        parts.append(data[done:start])
        end = data.find(b"\n", start)
        done = len(data) if end < 0 else end
    parts.append(data[done:])
    return b"".join(parts)


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
                if line.lstrip(b" \t").startswith(b"#"):
                    line = b""  # a comment, blanked as in _segments
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


_RAGGED_RE = re.compile(r"Expected \d+ columns, got \d+")
#: Characters of a line shown in a message.
_SHOWN = 200


def _first_ragged_line(file: Path, layout: _Layout) -> tuple[int, str] | None:
    """(1-based number, text) of the first data line with the wrong number of fields; error path only."""
    for number, line in _numbered_lines(file, layout):
        if number <= layout.skip_rows or not line:
            continue
        text = line.decode("utf-8", errors="replace")
        if layout.step > 1:  # '::' is two separators to pyarrow
            wrong = len(text.split(layout.delimiter)) != layout.n_physical
        else:
            wrong = len(layout.split(text)) != layout.n_fields
        if wrong:
            return number, text
    return None


def _shown(text: str) -> str:
    """A line of the file for a message: its repr, cut to _SHOWN characters."""
    return repr(text) if len(text) <= _SHOWN else repr(text[:_SHOWN]) + f" ... ({len(text)} characters)"


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

    read_options = pa_csv.ReadOptions(
        column_names=[f"f{p}" for p in range(layout.n_physical)],
        block_size=chunk_size,
        use_threads=False,  # one block parsed at a time (_segments leaves out the lines before the data)
    )
    parse_options = pa_csv.ParseOptions(
        delimiter=layout.delimiter,
        quote_char='"',
        ignore_empty_lines=True,
        # no invalid_row_handler: pyarrow decodes the row for it as UTF-8 and, for other bytes, prints an
        # "Exception ignored" traceback; a bad row is located by _first_ragged_line instead
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
        message = _one_line(str(exc))
        if _RAGGED_RE.search(message):
            ragged = _first_ragged_line(file, layout)
            if ragged is not None:
                line, text = ragged
                raise ValueError(
                    f"{source}, line {line}: expected {layout.n_fields} fields separated by "
                    f"{layout.describe_sep()}, found {len(layout.split(text))}: {_shown(text)}"
                ) from None
        if not strings and "conversion error" in message.lower():
            return _read_text_pass(file, source, layout, chunk_size, target, strings=True)
        hint = ""
        if "block" in message.lower():
            hint = (
                f" (is a line longer than {spell('chunk_size')} = {chunk_size} bytes? "
                f"pass a larger {spell('chunk_size')})"
            )
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
