"""Fuzzing the file readers: random bytes and near-valid ratings files (issue 7).

``read_ratings`` and ``read_pairs`` get random bytes, and mutations of valid
ratings files (dropped and extra fields, odd separators, quotes, byte-order
marks, huge numbers, comments, blank lines, padding, CRLF, non-ASCII), with
and without options. Whatever the input, only the documented exceptions come
out -- ValueError or TypeError, with a one-line message -- never another
exception, a crash or a hang; each case runs in bounded time (hypothesis'
deadline, and an alarm for a true hang) and bounded memory (the peaks of
Python's allocations and of pyarrow's memory pool stay under
``MEMORY_BOUND`` for inputs of a few KB; see :func:`_arrow_peak`). A file that reads must give ids and
ratings of the documented types.
"""

from __future__ import annotations

import gzip
import io
import signal
import tracemalloc
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

from factorise.data import DuplicateRatingsWarning, Ratings, read_pairs, read_ratings

#: Peak bytes a case may allocate (Python objects, and pyarrow's pool), for inputs of a few KB.
MEMORY_BOUND = 64 << 20
#: Seconds after which a case is a hang (hypothesis' deadline reports slow cases long before).
HANG_SECONDS = 20

FUZZ = settings(
    max_examples=200,
    deadline=2000,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # the same cases on every run: a failure is reproducible and CI is stable
)

SUFFIXES = [".csv", ".tsv", ".txt", ".dat", ".gz", ".parquet", ""]
SEPARATORS = [None, ",", "\t", ";", "|", "::", " ", "whitespace"]
COLUMNS: list[Any] = [
    None,
    [0, 1, 2],
    [0, 1, 2, 3],
    [0, 1],
    ["user", "item", "rating"],
    {"user": 0, "item": 1, "rating": 3},
    [5, 6, 7],
    ["nope", "item", "rating"],
]

# -- the guard: bounded time and memory, only documented exceptions -----------------------------


@contextmanager
def _alarm(seconds: int) -> Iterator[None]:
    """Fail a case that runs past ``seconds`` (a hang), restoring the previous handler after."""

    def hang(signum: int, frame: object) -> None:
        raise TimeoutError(f"a reader ran for more than {seconds} s")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@contextmanager
def _arrow_peak() -> Iterator[Callable[[], int | None]]:
    """What a case added to the peak of pyarrow's default pool; None when it did not raise the peak.

    pyarrow keeps one peak per pool for the life of the process and swapping the default pool for
    a case of its own races with pyarrow's threads (it crashed), so a case is measured by whether it
    raised the pool's peak, and by how much above what was allocated when it began. A case below an
    earlier peak did not use more than that case did.
    """
    pool = pa.default_memory_pool()
    peak, allocated = pool.max_memory(), pool.bytes_allocated()
    yield lambda: pool.max_memory() - allocated if pool.max_memory() > peak else None


def _run(read: Callable[..., Any], path: Path, **options: Any) -> object:
    """Read; return the result or the (documented) exception. Anything else fails the test."""
    tracemalloc.start()
    try:
        with _alarm(HANG_SECONDS), _arrow_peak() as arrow_peak, warnings.catch_warnings():
            warnings.simplefilter("ignore", DuplicateRatingsWarning)
            try:
                result: object = read(path, **options)
            except (ValueError, TypeError) as exc:
                result = exc
        _, python_peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert python_peak < MEMORY_BOUND, f"Python allocations peaked at {python_peak} bytes"
    added = arrow_peak()
    assert added is None or added < MEMORY_BOUND, f"pyarrow's pool peaked {added} bytes above the start"
    if currently_in_test_context():
        event(f"{read.__name__}: {type(result).__name__}")  # the mix of outcomes: --hypothesis-show-statistics
    if isinstance(result, Exception):
        message = str(result)
        assert message and "\n" not in message, f"not a one-line message: {message!r}"
        assert "Traceback" not in message
    elif isinstance(result, Ratings):
        _check_ratings(result)
    else:
        _check_pairs(result)
    return result


def _check_ratings(r: Ratings) -> None:
    n = len(r)
    assert n > 0
    assert r.users.dtype == np.int32 and r.items.dtype == np.int32 and r.values.dtype == np.float32
    assert r.users.shape == r.items.shape == r.values.shape == (n,)
    assert np.isfinite(r.values).all()
    assert 0 <= r.users.min() and r.users.max() < r.n_users and 0 <= r.items.min() and r.items.max() < r.n_items
    for ids in (r.user_ids.ids, r.item_ids.ids):
        assert ids.dtype == np.int64 or ids.dtype.kind == "U"
    if r.timestamps is not None:
        assert r.timestamps.dtype == np.int64 and r.timestamps.shape == (n,)


def _check_pairs(result: object) -> None:
    assert isinstance(result, tuple) and len(result) == 2
    users, items = result
    assert users.shape == items.shape and users.shape[0] > 0
    for ids in (users, items):
        assert ids.dtype == np.int64 or ids.dtype.kind == "U"


# -- inputs -----------------------------------------------------------------------------------

def _mostly(usual: st.SearchStrategy[Any], odd: st.SearchStrategy[Any], odd_in_ten: int = 2) -> st.SearchStrategy[Any]:
    """``usual`` most of the time, ``odd`` ``odd_in_ten`` times in ten: files near validity, not far from it."""
    # sampled_from, not integers: hypothesis favours small integers, which would make odd values common
    return st.sampled_from([False] * (10 - odd_in_ten) + [True] * odd_in_ten).flatmap(lambda o: odd if o else usual)


ids = _mostly(
    st.integers(0, 10**6),
    st.one_of(
        st.sampled_from([2**63, 2**64 - 1, -(2**63), 10**30, -5, 7]),
        st.text(alphabet="abcé7 _-#\"',;|:\t", min_size=0, max_size=6),
    ),
)
ratings = _mostly(
    st.integers(1, 5),
    st.one_of(
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from(["nan", "inf", "1e300", "-1e39", "", "x", "4.5", "1_000", "0x10"]),
    ),
    odd_in_ten=1,
)
stamps = _mostly(st.integers(0, 2**40), st.sampled_from(["2020-01-01", "", 10**20, -1]), odd_in_ten=1)
rows = st.lists(st.tuples(ids, ids, ratings, stamps), min_size=1, max_size=25)
headers = st.sampled_from(
    [None, None, "user,item,rating,timestamp", "userId,movieId,rating", "a,b,c,d", "user,item", "rating,timestamp"]
)

MUTATIONS = [
    "drop_field",
    "extra_field",
    "other_separator",
    "quote",
    "unbalanced_quote",
    "bom",
    "comment",
    "blank",
    "pad",
    "crlf",
    "huge",
    "nul",
    "long_line",
    "truncate",
]


def _render(table: list[tuple[Any, ...]], sep: str, header: str | None) -> list[str]:
    lines = [] if header is None else [header.replace(",", sep)]
    for row in table:
        lines.append(sep.join(str(v) for v in row))
    return lines


def _mutate(lines: list[str], sep: str, data: st.DataObject) -> bytes:
    n_mutations = data.draw(st.sampled_from([0, 1, 0, 1, 2, 4]), label="number of mutations")
    for op in data.draw(st.lists(st.sampled_from(MUTATIONS), min_size=n_mutations, max_size=n_mutations)):
        if not lines:
            break
        k = data.draw(st.integers(0, len(lines) - 1), label="line")
        fields = lines[k].split(sep)
        if op == "drop_field" and len(fields) > 1:
            del fields[data.draw(st.integers(0, len(fields) - 1))]
            lines[k] = sep.join(fields)
        elif op == "extra_field":
            lines[k] = lines[k] + sep + data.draw(st.sampled_from(["x", "1", "", "9.5", '"a,b"']))
        elif op == "other_separator":
            lines[k] = lines[k].replace(sep, data.draw(st.sampled_from([",", "\t", ";", " ", "::", "  "])))
        elif op == "quote":
            lines[k] = sep.join(f'"{f}"' for f in fields)
        elif op == "unbalanced_quote":
            lines[k] = '"' + lines[k]
        elif op == "bom":
            lines[0] = "\ufeff" + lines[0]
        elif op == "comment":
            lines.insert(k, data.draw(st.sampled_from(["# a comment", "  # indented", "#", "#1,2,3"])))
        elif op == "blank":
            lines.insert(k, data.draw(st.sampled_from(["", "  ", "\t"])))
        elif op == "pad":
            lines[k] = "  " + f" {sep} ".join(fields) + " "
        elif op == "crlf":
            lines = [line + "\r" for line in lines]
        elif op == "huge":
            fields[data.draw(st.integers(0, len(fields) - 1))] = data.draw(
                st.sampled_from(["9" * 40, "1e999", "-" + "9" * 25, "18446744073709551616"])
            )
            lines[k] = sep.join(fields)
        elif op == "nul":
            lines[k] = lines[k] + "\x00"
        elif op == "long_line":
            lines[k] = lines[k] + sep + "z" * data.draw(st.sampled_from([100, 5000, 70000]))
        elif op == "truncate":
            lines[k] = lines[k][: data.draw(st.integers(0, max(0, len(lines[k]) - 1)))]
    text = "\n".join(lines) + data.draw(st.sampled_from(["\n", ""]), label="last newline")
    return text.encode("utf-8", errors="surrogatepass")


def _options(data: st.DataObject) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if data.draw(st.booleans(), label="with options"):
        sep = data.draw(st.sampled_from(SEPARATORS), label="sep")
        if sep is not None:
            options["sep"] = sep
        header = data.draw(st.sampled_from([None, True, False]), label="header")
        if header is not None:
            options["header"] = header
        columns = data.draw(st.sampled_from(COLUMNS), label="columns")
        if columns is not None:
            options["columns"] = columns
        if data.draw(st.booleans(), label="small chunks"):
            options["chunk_size"] = data.draw(st.sampled_from([1, 7, 64, 1000]), label="chunk_size")
    return options


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    return path


# -- the fuzz tests ------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _compiled(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Read valid files of each kind once first, so that numba's first compile (seconds, under
    tracemalloc) does not count against the first case's deadline when this file runs alone."""
    where = tmp_path_factory.mktemp("warm")
    text = "user,item,rating,timestamp\n1,2,3.5,10\n2,1,4,20\n"
    for name, sep in (("w.csv", ","), ("w.dat", "::"), ("w.tsv", "\t"), ("w.gz", ",")):
        path = _file(where, name, text.replace(",", sep).encode())
        read_ratings(path)
        read_pairs(path)
    path = _file(where, "w.parquet", PARQUET)
    read_ratings(path)
    read_pairs(path)


@FUZZ
@given(data=st.data())
def test_random_bytes(tmp_path: Path, data: st.DataObject) -> None:
    raw = data.draw(st.binary(min_size=0, max_size=3000), label="bytes")
    suffix = data.draw(st.sampled_from(SUFFIXES), label="suffix")
    path = _file(tmp_path, "f" + suffix, raw)
    before = path.read_bytes()
    for read in (read_ratings, read_pairs):
        _run(read, path, **_options(data))
    assert path.read_bytes() == before  # reading never writes


@FUZZ
@given(data=st.data(), table=rows, header=headers)
def test_near_valid_text(tmp_path: Path, data: st.DataObject, table: list[tuple[Any, ...]], header: str | None) -> None:
    sep = data.draw(st.sampled_from([",", "\t", ";", "|", "::", " "]), label="separator")
    width = data.draw(_mostly(st.sampled_from([3, 4]), st.just(2)), label="fields")
    lines = _render([row[:width] for row in table], sep, header)
    raw = _mutate(lines, sep, data)
    suffix = data.draw(st.sampled_from([".csv", ".tsv", ".txt", ".dat", ".gz"]), label="suffix")
    path = _file(tmp_path, "r" + suffix, raw)
    before = path.read_bytes()
    for read in (read_ratings, read_pairs):
        _run(read, path, **_options(data))
    assert path.read_bytes() == before


def _valid_parquet() -> bytes:
    from pyarrow import parquet as pq

    table = pa.table(
        {
            "user": pa.array([1, 2, 3, 1], pa.int64()),
            "item": pa.array(["a", "b", "a", "c"]),
            "rating": pa.array([4.0, 3.5, 1.0, 5.0]),
            "timestamp": pa.array([10, 20, 30, 40], pa.int64()),
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=2)
    return sink.getvalue()


PARQUET = _valid_parquet()


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_damaged_parquet(tmp_path: Path, data: st.DataObject) -> None:
    raw = bytearray(PARQUET)
    for _ in range(data.draw(st.integers(0, 6), label="flips")):
        at = data.draw(st.integers(0, len(raw) - 1))
        raw[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(raw)), label="length")
    path = _file(tmp_path, "r.parquet", bytes(raw[:cut]) if data.draw(st.booleans(), label="truncate") else bytes(raw))
    columns = data.draw(st.sampled_from([None, ["user", "item", "rating"], [0, 1, 2], ["x", "item", "rating"]]))
    for read in (read_ratings, read_pairs):
        _run(read, path, **({} if columns is None else {"columns": columns}))


def test_the_guard_catches_what_it_should(tmp_path: Path) -> None:
    """The fuzz tests can fail: a wrong exception, a multi-line message and a wrong result are caught."""
    path = _file(tmp_path, "r.csv", b"1,10,4\n")

    def crash(p: Path, **_: Any) -> None:
        raise KeyError("boom")

    def two_lines(p: Path, **_: Any) -> None:
        raise ValueError("line one\nline two")

    def empty_pairs(p: Path, **_: Any) -> tuple[np.ndarray, np.ndarray]:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)

    def hog(p: Path, **_: Any) -> None:
        buffer = bytearray(MEMORY_BOUND + (1 << 20))  # held while measured
        raise ValueError(f"too much: {len(buffer)} bytes")

    with pytest.raises(KeyError):
        _run(crash, path)
    for bad in (two_lines, empty_pairs, hog):
        with pytest.raises(AssertionError):
            _run(bad, path)
    assert isinstance(_run(read_ratings, path), Ratings)  # and a good file passes
