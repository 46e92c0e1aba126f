"""The lean reading machinery against slow, obvious references.

Reading builds its result in place: ids get codes as they arrive
(``_IdEncoder``), duplicate pairs are found by a counting-sort kernel
(``factorise.kernels.duplicates``) and dropped in place, and arrays are sized
ahead (exactly for Parquet, estimated for text) and grown when the estimate
is short. Each piece is checked here against a dictionary or ``np.unique``
reference on random data with many duplicates, and every way through the
reader (estimate too small or too large, compressed text, Parquet, a Table,
tiny blocks) must give the same ``Ratings``. No test looks at time or memory;
``benchmarks/read_memory.py`` measures those.
"""

from __future__ import annotations

import gzip
import itertools
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from factorise.data import (
    DuplicateRatingsWarning,
    IdMap,
    Ratings,
    _collect,
    _columnar,
    _ratings,
    _sniff,
    _text,
    as_ratings,
    read_ratings,
)
from factorise.kernels import duplicates, duplicates_reference

# -- the duplicate kernel against its reference ------------------------------------------------


def _random_pairs(rng: np.random.Generator, n: int, n_users: int, n_items: int) -> tuple[np.ndarray, np.ndarray]:
    return (
        rng.integers(0, n_users, size=n).astype(np.int32),
        rng.integers(0, n_items, size=n).astype(np.int32),
    )


def _blocks(rng: np.random.Generator, n_users: int) -> list[tuple[int, int]]:
    """A random partition of the users into consecutive blocks."""
    cuts = sorted(set(rng.integers(1, n_users, size=rng.integers(0, 4)).tolist())) if n_users > 1 else []
    edges = [0, *cuts, n_users]
    return list(itertools.pairwise(edges))


@pytest.mark.parametrize("seed", range(40))
def test_duplicate_kernel_matches_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_users, n_items = int(rng.integers(1, 8)), int(rng.integers(1, 6))
    n = int(rng.integers(0, 60))  # few cells, many ratings: many duplicates
    users, items = _random_pairs(rng, n, n_users, n_items)
    counts = np.bincount(users, minlength=n_users)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    fast = np.zeros(n, dtype=bool)
    slow = np.zeros(n, dtype=bool)
    seen = np.full(n_items, -1, dtype=np.int32)
    last = np.empty(n_items, dtype=np.int64)
    rows = np.empty(max(n, 1), dtype=np.int32)
    for first, stop in _blocks(rng, n_users):
        marked_fast = duplicates.mark_earlier_duplicates(users, items, indptr, first, stop, rows, seen, last, fast)
        marked_slow = duplicates_reference.mark_earlier_duplicates(
            users, items, indptr, first, stop, rows, seen, last, slow
        )
        assert marked_fast == marked_slow
    np.testing.assert_array_equal(fast, slow)


def _last_wins(users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """Rows to drop: every row whose pair occurs again later (a dictionary of last rows)."""
    latest = {}
    for r, pair in enumerate(zip(users.tolist(), items.tolist(), strict=True)):
        latest[pair] = r
    drop = np.ones(users.shape[0], dtype=bool)
    drop[list(latest.values())] = False
    return drop


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("block_rows", [1, 3, None])
def test_earlier_duplicates_matches_dictionary(seed: int, block_rows: int | None) -> None:
    rng = np.random.default_rng(seed)
    n_users, n_items = int(rng.integers(1, 30)), int(rng.integers(1, 30))
    n = int(rng.integers(2, 400))
    users, items = _random_pairs(rng, n, n_users, n_items)
    expected = _last_wins(users, items)
    got = _ratings._earlier_duplicates(users, items, n_users, n_items, block_rows=block_rows)
    if expected.any():
        assert got is not None
        np.testing.assert_array_equal(got, expected)
    else:
        assert got is None


def test_earlier_duplicates_of_indices_out_of_range_sorts_instead() -> None:
    users = np.array([-1, 5, -1, 0, 5], dtype=np.int64)
    items = np.array([2, 9, 2, 0, 9], dtype=np.int64)
    got = _ratings._earlier_duplicates(users, items, 1, 1)
    assert got is not None
    np.testing.assert_array_equal(got, _last_wins(users, items))


def test_no_duplicates_gives_none() -> None:
    users = np.array([0, 0, 1, 1], dtype=np.int32)
    items = np.array([0, 1, 0, 1], dtype=np.int32)
    assert _ratings._earlier_duplicates(users, items, 2, 2) is None


# -- Ratings: deduplicated, from_raw, compact -----------------------------------------------


def _random_raw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    users = rng.choice(np.array([7, -3, 10**12, 42, 5, 0]), size=n)
    items = rng.integers(100, 106, size=n)
    values = rng.integers(1, 6, size=n).astype(np.float32)
    stamps = rng.integers(0, 10**9, size=n)
    return users, items, values, stamps


def _expected_last_wins(users: np.ndarray, items: np.ndarray, values: np.ndarray, stamps: np.ndarray) -> list:
    keep = ~_last_wins(users, items)
    return list(
        zip(users[keep].tolist(), items[keep].tolist(), values[keep].tolist(), stamps[keep].tolist(), strict=True)
    )


def _table(r: Ratings) -> list:
    assert r.timestamps is not None
    return list(zip(r.raw_users.tolist(), r.raw_items.tolist(), r.values.tolist(), r.timestamps.tolist(), strict=True))


@pytest.mark.parametrize("seed", range(15))
def test_from_raw_and_deduplicated_keep_the_last_rating_in_order(seed: int) -> None:
    rng = np.random.default_rng(seed)
    users, items, values, stamps = _random_raw(rng, int(rng.integers(1, 200)))
    copies = [a.copy() for a in (users, items, values, stamps)]
    expected = _expected_last_wins(users, items, values, stamps)
    dropped = len(users) - len(expected)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = Ratings.from_raw(users, items, values, stamps, source="s")
    assert _table(r) == expected
    messages = [str(w.message) for w in caught if issubclass(w.category, DuplicateRatingsWarning)]
    assert messages == (
        [f"s: {dropped} duplicate (user, item) rating(s); kept the last rating of each pair"] if dropped else []
    )
    for before, after in zip(copies, (users, items, values, stamps), strict=True):
        np.testing.assert_array_equal(before, after)  # the caller's arrays are not touched

    # the same through deduplicated() on ratings that keep every duplicate
    user_map, user_index = IdMap.from_raw(users)
    item_map, item_index = IdMap.from_raw(items)
    full = Ratings(user_index, item_index, values, user_map, item_map, stamps, "s")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateRatingsWarning)
        once = full.deduplicated()
    assert _table(once) == expected
    assert (once is full) == (dropped == 0)
    np.testing.assert_array_equal(full.values, values)  # deduplicated() makes new arrays


def _compact_reference(r: Ratings) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    used_users, used_items = np.unique(r.users), np.unique(r.items)
    return (
        np.searchsorted(used_users, r.users),
        np.searchsorted(used_items, r.items),
        r.user_ids.ids[used_users],
        r.item_ids.ids[used_items],
    )


@pytest.mark.parametrize("seed", range(10))
def test_compact_matches_unique_and_shares_what_it_can(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n_users, n_items = int(rng.integers(1, 12)), int(rng.integers(1, 12))
    n = int(rng.integers(1, 30))
    users, items = _random_pairs(rng, n, n_users, n_items)
    values = rng.random(n, dtype=np.float32)
    r = Ratings(users, items, values, IdMap(np.arange(n_users) * 10), IdMap(np.arange(n_items) * 3), None, "x")
    c = r.compact()
    u, i, uid, iid = _compact_reference(r)
    np.testing.assert_array_equal(c.users, u)
    np.testing.assert_array_equal(c.items, i)
    np.testing.assert_array_equal(c.user_ids.ids, uid)
    np.testing.assert_array_equal(c.item_ids.ids, iid)
    assert c.users.dtype == np.int32 and c.items.dtype == np.int32
    assert c.values is r.values
    all_users = len(uid) == n_users
    all_items = len(iid) == n_items
    assert (c.users is r.users) == all_users and (c.items is r.items) == all_items
    assert (c is r) == (all_users and all_items)


# -- the id encoder -----------------------------------------------------------------------


def _encode(chunks: list, n: int) -> tuple[IdMap, np.ndarray]:
    out = np.full(n, -99, dtype=np.int32)
    encoder = _ratings._IdEncoder()
    offset = 0
    for chunk in chunks:
        encoder.add(chunk, out, offset)
        offset += len(chunk)
    return encoder.finish(out), out


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("kind", ["small", "large", "switch", "strings"])
def test_id_encoder_matches_unique(seed: int, kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_ratings, "_MIN_PENDING", 5)  # hash in many small batches
    monkeypatch.setattr(_ratings, "_DENSE_LIMIT", 1000)
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 120))
    if kind == "small":
        raw = rng.integers(0, 900, size=n)
    elif kind == "large":
        raw = rng.choice(np.array([-(2**62), -5, 0, 999, 1000, 2**40, 17]), size=n)
    elif kind == "switch":  # dense at first, then an id outside the dense range
        raw = rng.integers(0, 50, size=n)
        raw[rng.integers(n // 2, n)] = 5000
    else:
        raw = rng.choice(np.array(["b", "a", "", "zz", "é", "10", "9"]), size=n)
    cuts = sorted(set(rng.integers(0, n, size=rng.integers(0, 6)).tolist()))
    pieces = np.split(raw, cuts)
    chunks = [pa.array(p.tolist(), type=pa.string()) if kind == "strings" else p for p in pieces]
    id_map, index = _encode(chunks, n)
    ids, inverse = np.unique(raw, return_inverse=True)
    np.testing.assert_array_equal(id_map.ids, ids)
    np.testing.assert_array_equal(index, inverse.reshape(-1))
    assert index.dtype == np.int32
    assert (id_map.ids.dtype.kind == "U") == (kind == "strings")


def test_id_encoder_takes_arrow_integers_and_empty_chunks() -> None:
    chunks = [pa.array([5, 3], pa.int32()), np.array([], dtype=np.int64), pa.array([3, 9], pa.int64())]
    id_map, index = _encode(chunks, 4)
    assert id_map.ids.tolist() == [3, 5, 9]
    assert index.tolist() == [1, 0, 0, 2]


# -- every way through the reader gives the same ratings -------------------------------------------


def _sample(rng: np.random.Generator, n: int, *, strings: bool = False) -> dict[str, np.ndarray]:
    users = rng.integers(0, 300, size=n) * 7 + 11
    items = rng.integers(0, 40, size=n) ** 2
    columns: dict[str, np.ndarray] = {
        "user": users.astype(str) if strings else users,
        "item": items,
        "rating": rng.integers(1, 11, size=n) / 2,
        "timestamp": rng.integers(10**8, 10**9, size=n),
    }
    return columns


def _csv(columns: dict[str, np.ndarray], *, blank_every: int = 0, crlf: bool = False) -> str:
    end = "\r\n" if crlf else "\n"
    lines = ["user,item,rating,timestamp"]
    for k, row in enumerate(zip(*(c.tolist() for c in columns.values()), strict=True)):
        lines.append(",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in row))
        if blank_every and k % blank_every == 0:
            lines.append("")
    return end.join(lines) + end


def _same(a: Ratings, b: Ratings) -> None:
    for name in ("users", "items", "values", "timestamps"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype, name
        np.testing.assert_array_equal(x, y, err_msg=name)
    np.testing.assert_array_equal(a.user_ids.ids, b.user_ids.ids)
    np.testing.assert_array_equal(a.item_ids.ids, b.item_ids.ids)


def _read(path: Path, **kwargs: object) -> Ratings:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateRatingsWarning)
        return read_ratings(path, **kwargs)  # type: ignore[arg-type]


def _reference(columns: dict[str, np.ndarray]) -> Ratings:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateRatingsWarning)
        return Ratings.from_raw(columns["user"], columns["item"], columns["rating"], columns["timestamp"])


@pytest.mark.parametrize("seed", range(3))
def test_text_reader_gives_the_same_ratings_every_way(
    seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(seed)
    columns = _sample(rng, 3000)
    expected = _reference(columns)
    text = _csv(columns, blank_every=int(rng.integers(5, 50)), crlf=bool(seed % 2))
    path = tmp_path / "r.csv"
    path.write_text(text, newline="")
    gz = tmp_path / "r.csv.gz"
    gz.write_bytes(gzip.compress(text.encode()))
    for chunk_size in (37, 1000, 1 << 22):
        _same(_read(path, chunk_size=chunk_size), expected)
        _same(_read(gz, chunk_size=chunk_size), expected)  # no estimate: the arrays grow
    monkeypatch.setattr(_text, "_expected_rows", lambda file, layout: 1)  # far too few: grown many times
    _same(_read(path, chunk_size=200), expected)
    monkeypatch.setattr(_text, "_expected_rows", lambda file, layout: 10**6)  # far too many: cut at the end
    got = _read(path, chunk_size=200)
    _same(got, expected)
    assert got.users.shape[0] == len(expected)


def test_string_ids_are_hashed_the_same_as_from_raw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_ratings, "_MIN_PENDING", 50)
    columns = _sample(np.random.default_rng(7), 2000, strings=True)
    columns["user"] = np.char.add("u", columns["user"])
    path = tmp_path / "r.csv"
    path.write_text(_csv(columns))
    expected = _reference(columns)
    got = _read(path, chunk_size=300)
    assert got.user_ids.is_string
    _same(got, expected)


def test_parquet_table_and_text_agree(tmp_path: Path) -> None:
    columns = _sample(np.random.default_rng(3), 5000)
    expected = _reference(columns)
    table = pa.table({name: pa.array(values) for name, values in columns.items()})
    for rows_per_group in (64, 5000):
        path = tmp_path / f"r{rows_per_group}.parquet"
        pq.write_table(table, path, row_group_size=rows_per_group)
        _same(_read(path), expected)
        _same(_read(path, chunk_size=1), expected)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DuplicateRatingsWarning)
        _same(as_ratings(table), expected)
    text = tmp_path / "r.csv"
    text.write_text(_csv(columns))
    _same(_read(text), expected)


def test_large_row_groups_are_read_in_batches(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_columnar, "_WHOLE_ROW_GROUP", 100)
    columns = _sample(np.random.default_rng(4), 3000)
    path = tmp_path / "r.parquet"
    pq.write_table(pa.table({k: pa.array(v) for k, v in columns.items()}), path, row_group_size=1000)
    _same(_read(path, chunk_size=32 * 1024), _reference(columns))


def test_read_arrays_are_what_training_takes_without_a_copy(tmp_path: Path) -> None:
    columns = _sample(np.random.default_rng(5), 1000)
    path = tmp_path / "r.csv"
    path.write_text(_csv(columns))
    r = _read(path)
    for array, dtype in ((r.users, np.int32), (r.items, np.int32), (r.values, np.float32)):
        assert np.ascontiguousarray(array, dtype=dtype) is array
        assert array.base is None  # no larger buffer behind the result
    assert r.compact() is r  # every id read occurs in the ratings


def test_segments_cover_every_line_once(tmp_path: Path) -> None:
    lines = [f"{k},{k % 7},{k % 5}" for k in range(500)]
    text = "\ufeffuser,item,rating\n\n" + "\n".join(lines) + "\n\n"
    path = tmp_path / "r.csv"
    path.write_text(text)
    layout = _sniff._sniff(path, str(path), None, None, None, _collect._RATINGS)
    for size in (5, 16, 100, 4096):
        pieces = [p.to_pybytes() for p in _text._segments(path, layout, size)]
        assert all(p.endswith(b"\n") for p in pieces[:-1])
        joined = b"".join(pieces).decode()
        assert [line for line in joined.split("\n") if line] == lines


def test_stored_ratings_are_12_bytes_each_and_fit_does_not_copy(tmp_path: Path) -> None:
    """int32 users, int32 items, float32 values, C-contiguous; the fit's training arrays are those."""
    import factorise.models._base as base
    from factorise import read_ratings
    from factorise.models import BiasedMF

    rng = np.random.default_rng(0)
    n = 5000
    path = tmp_path / "r.csv"
    pairs = {(int(u), int(i)): int(r) for u, i, r in zip(rng.integers(0, 200, n), rng.integers(0, 90, n), rng.integers(1, 6, n))}
    path.write_text("user,item,rating\n" + "".join(f"{u},{i},{r}\n" for (u, i), r in pairs.items()))
    ratings = read_ratings(path)
    for array, dtype in ((ratings.users, np.int32), (ratings.items, np.int32), (ratings.values, np.float32)):
        assert array.dtype == dtype and array.flags.c_contiguous and array.ndim == 1
    assert ratings.users.nbytes + ratings.items.nbytes + ratings.values.nbytes == 12 * len(ratings)
    assert ratings.timestamps is None  # none in the file: none kept

    seen: list[base.TrainData] = []
    real = BiasedMF._initialize

    def spy(self, data, rng):  # type: ignore[no-untyped-def]
        seen.append(data)
        return real(self, data, rng)

    BiasedMF._initialize = spy  # type: ignore[method-assign]
    try:
        BiasedMF(rank=4, n_epochs=1, random_state=0).fit(ratings)
    finally:
        BiasedMF._initialize = real  # type: ignore[method-assign]
    data = seen[0]
    assert np.shares_memory(data.users, ratings.users) or data.users is ratings.users
    assert np.shares_memory(data.values, ratings.values)
