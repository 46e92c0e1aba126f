"""Reading ratings: every file layout, in-memory inputs, and errors naming file and line."""

from __future__ import annotations

import gzip
import re
import warnings
from pathlib import Path

import numpy as np
import pytest

from conftest import DATA_DIR, IN_CI
from factorise.data import DuplicateRatingsWarning, Ratings, as_ratings, read_ratings

# The ratings every small fixture holds: (user, item, rating, timestamp).
ROWS = [(1, 10, 4.0, 100), (2, 10, 3.5, 200), (1, 20, 5.0, 300), (3, 30, 1.0, 400)]


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _lines(sep: str, *, header: str | None = None, ts: bool = True) -> str:
    out = [header] if header is not None else []
    for u, i, r, t in ROWS:
        fields = [str(u), str(i), f"{r:g}"] + ([str(t)] if ts else [])
        out.append(sep.join(fields))
    return "\n".join(out) + "\n"


def _check(r: Ratings, *, ts: bool = True) -> None:
    """``r`` holds exactly ROWS, in order, with integer ids."""
    assert r.user_ids.ids.dtype == np.int64 and r.item_ids.ids.dtype == np.int64
    assert r.raw_users.tolist() == [u for u, _, _, _ in ROWS]
    assert r.raw_items.tolist() == [i for _, i, _, _ in ROWS]
    assert r.values.tolist() == [v for _, _, v, _ in ROWS]
    if ts:
        assert r.timestamps is not None and r.timestamps.tolist() == [t for _, _, _, t in ROWS]
    else:
        assert r.timestamps is None


def _error(path: Path, **kwargs: object) -> str:
    with pytest.raises(ValueError) as info:
        read_ratings(path, **kwargs)  # type: ignore[arg-type]
    return str(info.value)


# -- layouts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "userId,movieId,rating,timestamp",
        "user_id,item_id,rating,timestamp",
        "user,item,rating,ts",
        '"userId","movieId","rating","timestamp"',
    ],
)
def test_csv_with_header(tmp_path: Path, header: str) -> None:
    path = _write(tmp_path, "ratings.csv", _lines(",", header=header))
    r = read_ratings(path)
    _check(r)
    assert r.source == str(path)


def test_csv_header_in_another_order_is_followed(tmp_path: Path) -> None:
    text = "rating,timestamp,movieId,userId,title\n" + "".join(
        f"{v:g},{t},{i},{u},Film {i}\n" for u, i, v, t in ROWS
    )
    _check(read_ratings(_write(tmp_path, "r.csv", text)))


def test_csv_without_header_three_and_four_columns(tmp_path: Path) -> None:
    _check(read_ratings(_write(tmp_path, "a.csv", _lines(","))))
    _check(read_ratings(_write(tmp_path, "b.csv", _lines(",", ts=False))), ts=False)


def test_unrecognised_header_of_four_columns_is_ambiguous(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.csv", _lines(",", header="a,b,c,d"))
    message = _error(path)
    assert "cannot tell which columns hold the user, item and rating" in message, message
    assert "the header names none of them and there are 4 columns" in message, message
    assert "0='a', 1='b', 2='c', 3='d'" in message and "pass `columns` with their names" in message, message
    _check(read_ratings(path, columns=["a", "b", "c", "d"]))
    three = _write(tmp_path, "b.csv", _lines(",", header="a,b,c", ts=False))  # three columns: no guess
    _check(read_ratings(three), ts=False)
    stamped = _write(tmp_path, "c.csv", _lines(",", header="a,b,c,timestamp"))  # the fourth is named
    _check(read_ratings(stamped))


def test_movielens_100k_tsv_layout(tmp_path: Path) -> None:
    _check(read_ratings(_write(tmp_path, "u.data", _lines("\t"))))


def test_movielens_1m_double_colon_layout(tmp_path: Path) -> None:
    _check(read_ratings(_write(tmp_path, "ratings.dat", _lines("::"))))
    # the name does not matter: '::' is found by sniffing
    _check(read_ratings(_write(tmp_path, "ratings", _lines("::"))))


@pytest.mark.parametrize("sep", [";", "|"])
def test_other_one_character_separators(tmp_path: Path, sep: str) -> None:
    _check(read_ratings(_write(tmp_path, "r.txt", _lines(sep))))


def test_single_space_separated(tmp_path: Path) -> None:
    _check(read_ratings(_write(tmp_path, "r.txt", _lines(" "))))


def test_whitespace_runs_and_padding(tmp_path: Path) -> None:
    text = "".join(f"  {u}\t {i}   {v:g} \t{t}  \n" for u, i, v, t in ROWS)
    _check(read_ratings(_write(tmp_path, "r.txt", text)))
    _check(read_ratings(_write(tmp_path, "r2.txt", text), sep="whitespace"))
    _check(read_ratings(_write(tmp_path, "r3.txt", text), sep=r"\s+"))


def test_comma_with_spaces_around_fields(tmp_path: Path) -> None:
    _check(read_ratings(_write(tmp_path, "r.csv", _lines(", ", header="user, item, rating, timestamp"))))


def test_windows_line_endings_and_byte_order_mark(tmp_path: Path) -> None:
    text = "\ufeff" + _lines(",", header="userId,movieId,rating,timestamp").replace("\n", "\r\n")
    _check(read_ratings(_write(tmp_path, "r.csv", text)))


def test_blank_lines_are_skipped(tmp_path: Path) -> None:
    lines = _lines(",").splitlines()
    text = "\n\n" + lines[0] + "\n\n" + "\n".join(lines[1:]) + "\n\n"
    _check(read_ratings(_write(tmp_path, "r.csv", text)))


def test_no_trailing_newline(tmp_path: Path) -> None:
    _check(read_ratings(_write(tmp_path, "r.csv", _lines(",").rstrip("\n"))))


def test_gzip_compressed_text(tmp_path: Path) -> None:
    path = tmp_path / "ratings.csv.gz"
    path.write_bytes(gzip.compress(_lines(",", header="userId,movieId,rating,timestamp").encode()))
    _check(read_ratings(path))


def test_extra_columns_without_a_header_are_ambiguous(tmp_path: Path) -> None:
    text = "".join(f"{u}\t{i}\t{v:g}\t{t}\tsome text\t9.5\n" for u, i, v, t in ROWS)
    path = _write(tmp_path, "r.tsv", text)
    message = _error(path)
    assert "there is no header line and there are 6 columns" in message, message
    assert "0='1', 1='10', 2='4', 3='100', 4='some text', 5='9.5'" in message, message
    assert "pass `columns` with their 0-based positions, e.g. columns=[0, 1, 5]" in message, message
    _check(read_ratings(path, columns=[0, 1, 2, 3]))
    named = _write(tmp_path, "h.tsv", "user\titem\trating\ttimestamp\ttext\tx\n" + text)
    _check(read_ratings(named))  # a header that names the columns: the others are ignored


def test_non_integer_fourth_column_without_a_header_is_ambiguous(tmp_path: Path) -> None:
    text = "".join(f"{u},{i},{v:g},2020-01-0{k + 1}\n" for k, (u, i, v, _) in enumerate(ROWS))
    path = _write(tmp_path, "r.csv", text)
    message = _error(path)
    assert "the fourth column is not an integer timestamp" in message, message
    assert "3='2020-01-01'" in message, message
    _check(read_ratings(path, columns=[0, 1, 2]), ts=False)


def test_timestamp_column_of_dates_is_left_out(tmp_path: Path) -> None:
    text = "userId,movieId,rating,timestamp\n" + "".join(
        f"{u},{i},{v:g},2020-01-0{k + 1}\n" for k, (u, i, v, _) in enumerate(ROWS)
    )
    _check(read_ratings(_write(tmp_path, "r.csv", text)), ts=False)
    message = _error(_write(tmp_path, "s.csv", text), columns=[0, 1, 2, 3])
    assert message.endswith("line 2: timestamp '2020-01-01' is not an integer"), message


def test_tab_separated_with_padding_keeps_empty_fields_apart(tmp_path: Path) -> None:
    text = "".join(f" {u} \t{i}\t {v:g}\t\t{t}\n" for u, i, v, t in ROWS)  # an empty fourth field
    r = read_ratings(_write(tmp_path, "r.tsv", text), columns=[0, 1, 2, 4])
    _check(r)


# -- options -------------------------------------------------------------------------


def test_explicit_header_option(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.csv", _lines(","))
    r = read_ratings(path, header=True, columns=["1", "10", "4"])  # the first line is taken as a header
    assert r.raw_users.tolist() == [u for u, _, _, _ in ROWS[1:]]
    assert "the header names none of them and there are 4 columns" in _error(path, header=True)
    headed = _write(tmp_path, "h.csv", _lines(",", header="userId,movieId,rating,timestamp"))
    message = _error(headed, header=False, columns=[0, 1, 2, 3])
    assert re.search(r"h\.csv, line 1: rating 'rating' is not a number", message), message


def test_explicit_sep(tmp_path: Path) -> None:
    _check(read_ratings(_write(tmp_path, "r.csv", _lines("\t")), sep="\t"))
    _check(read_ratings(_write(tmp_path, "r.dat", _lines("::")), sep="::"))
    _check(read_ratings(_write(tmp_path, "r.x", _lines("||")), sep="||"))


def test_columns_by_name_position_and_sequence(tmp_path: Path) -> None:
    text = "when,who,score,what\n" + "".join(f"{t},{u},{v:g},{i}\n" for u, i, v, t in ROWS)
    path = _write(tmp_path, "r.csv", text)
    _check(read_ratings(path, columns={"user": "who", "item": "what", "rating": "score", "timestamp": "when"}))
    _check(read_ratings(path, columns=[1, 3, 2, 0]))
    _check(read_ratings(path, columns=("WHO", "What", "score")), ts=False)  # names match case-insensitively
    # without "timestamp" in the mapping no timestamps are read, even from a 'timestamp' column
    headed = _write(tmp_path, "h.csv", _lines(",", header="userId,movieId,rating,timestamp"))
    _check(read_ratings(headed, columns={"user": "userId", "item": "movieId", "rating": "rating"}), ts=False)


def test_columns_positions_without_header(tmp_path: Path) -> None:
    text = "".join(f"{i}\t{u}\t{v:g}\n" for u, i, v, _ in ROWS)
    _check(read_ratings(_write(tmp_path, "r.tsv", text), columns=[1, 0, 2]), ts=False)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"sep": "ab"}, ValueError, r"`sep` must be one character.*'ab'"),
        ({"sep": 3}, TypeError, r"`sep` must be.*got 3"),
        ({"header": "yes"}, TypeError, r"`header` must be True, False or None; got 'yes'"),
        ({"format": "xlsx"}, ValueError, r"`format` must be 'csv', 'parquet' or None; got 'xlsx'"),
        ({"chunk_size": 0}, ValueError, r"`chunk_size` must be an integer >= 1; got 0"),
        ({"chunk_size": 1.5}, TypeError, r"`chunk_size` must be an integer >= 1; got 1.5"),
        ({"columns": {"user": 0, "item": 1}}, ValueError, r"`columns` must map 'user', 'item', 'rating'"),
        ({"columns": {"user": 0, "item": 1, "rating": 2, "score": 3}}, ValueError, r"`columns` must map"),
        ({"columns": [0, 1]}, ValueError, r"got 2 entries"),
        ({"columns": "user"}, TypeError, r"`columns` must map"),
        ({"columns": [0, 1, 1]}, ValueError, r"different column"),
        ({"columns": [0, 1, -1]}, ValueError, r"position -1"),
        ({"columns": [0, 1, 2.0]}, TypeError, r"2.0"),
    ],
)
def test_bad_options(tmp_path: Path, kwargs: dict, error: type, pattern: str) -> None:
    path = _write(tmp_path, "r.csv", _lines(","))
    with pytest.raises(error, match=pattern):
        read_ratings(path, **kwargs)


def test_path_must_be_a_path(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="`path` must be a str or os.PathLike"):
        read_ratings(3)  # type: ignore[arg-type]


# -- ids -------------------------------------------------------------------------------


def test_string_ids(tmp_path: Path) -> None:
    text = "user,item,rating\nalice,The Matrix,5\nbob,Up,3\nalice,Up,4\n"
    r = read_ratings(_write(tmp_path, "r.csv", text))
    assert r.user_ids.is_string and r.item_ids.is_string
    assert r.user_ids.ids.tolist() == ["alice", "bob"]
    assert r.raw_users.tolist() == ["alice", "bob", "alice"]
    assert r.raw_items.tolist() == ["The Matrix", "Up", "Up"]
    assert r.values.tolist() == [5.0, 3.0, 4.0]


def test_string_ids_without_header_and_quoted_fields(tmp_path: Path) -> None:
    text = 'u1,"Crouching Tiger, Hidden Dragon",4.5\nu2,Heat,2\n'
    r = read_ratings(_write(tmp_path, "r.csv", text))
    assert r.raw_items.tolist() == ["Crouching Tiger, Hidden Dragon", "Heat"]
    assert r.raw_users.tolist() == ["u1", "u2"]


def test_mixed_ids_become_strings_keeping_their_text(tmp_path: Path) -> None:
    # the first 150 users look like integers (more than the sniffed sample), then one does not
    users = [f"{k:03d}" for k in range(150)] + ["x9"]
    text = "".join(f"{u},{k % 7},{1 + k % 5}\n" for k, u in enumerate(users))
    r = read_ratings(_write(tmp_path, "r.csv", text), chunk_size=256)
    assert r.user_ids.is_string
    assert r.raw_users.tolist() == users  # "007" kept as written, not 7
    assert not r.item_ids.is_string


def test_id_round_trip_raw_to_index_to_raw(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    users = rng.choice(np.array([3, 17, 42, 1000, 7]), size=60)
    items = rng.choice(np.array(["a", "bb", "c-d", "e e"]), size=60)
    keep = np.unique(users.astype(str).astype(object) + "/" + items.astype(object), return_index=True)[1]
    users, items = users[np.sort(keep)], items[np.sort(keep)]
    text = "user\titem\trating\n" + "".join(f"{u}\t{i}\t{k % 5 + 1}\n" for k, (u, i) in enumerate(zip(users, items)))
    r = read_ratings(_write(tmp_path, "r.tsv", text))
    np.testing.assert_array_equal(r.user_ids.raw(r.users), users)
    np.testing.assert_array_equal(r.item_ids.raw(r.items), items)
    np.testing.assert_array_equal(r.user_ids.index(users), r.users)
    np.testing.assert_array_equal(r.item_ids.index(items), r.items)
    assert r.user_ids.ids.tolist() == sorted(set(users.tolist()))


def test_duplicates_keep_last_and_warn_with_count(tmp_path: Path) -> None:
    text = "1,10,1\n2,10,2\n1,10,3\n1,20,4\n1,10,5\n2,10,6\n"
    path = _write(tmp_path, "dups.csv", text)
    with pytest.warns(DuplicateRatingsWarning, match=re.escape(f"{path}: 3 duplicate")):
        r = read_ratings(path)
    got = {(int(u), int(i)): float(v) for u, i, v in zip(r.raw_users, r.raw_items, r.values)}
    assert got == {(1, 10): 5.0, (2, 10): 6.0, (1, 20): 4.0}


# -- errors naming file and line ------------------------------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.csv"
    assert _error(path) == f"{path}: no such file"


@pytest.mark.parametrize("text", ["", "\n\n  \n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = _write(tmp_path, "empty.csv", text)
    assert _error(path).startswith(f"{path}: the file is empty")


def test_header_only(tmp_path: Path) -> None:
    path = _write(tmp_path, "h.csv", "userId,movieId,rating,timestamp\n")
    assert _error(path) == f"{path}: no ratings (only a header line)"


def test_binary_file_is_an_unknown_format(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.bin", bytes(range(256)) * 4)
    assert re.match(rf"{re.escape(str(path))}: unknown format", _error(path))
    gz = _write(tmp_path, "r.csv", gzip.compress(b"1,2,3\n"))
    assert "gzip" in _error(gz)
    assert "not a readable Parquet file" in _error(_write(tmp_path, "t.csv", _lines(",")), format="parquet")


def test_undetectable_separator(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.txt", "hello\nworld\n")
    message = _error(path)
    assert message.startswith(f"{path}: unknown format: cannot find a separator"), message


def test_fewer_than_three_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.csv", "1,2\n3,4\n")
    assert _error(path) == f"{path}: found 2 fields per line; need at least 3 (user, item, rating)"
    message = _error(path, sep=",")
    assert message.startswith(f"{path}: found 2 field(s) per line separated by ','"), message
    headed = _write(tmp_path, "p.parquet", b"")
    assert _error(headed) == f"{headed}: the file is empty"


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("1,2,3\n4,5,6\n7,8\n9,10,11\n", 3, "expected 3 fields separated by ',', found 2: '7,8'"),
        ("1,2,3\n4,5,6,7\n", 2, "expected 3 fields separated by ',', found 4: '4,5,6,7'"),
        ("userId,movieId,rating\n1,2,3\n\n4,5,x\n", 4, "rating 'x' is not a number"),
        ("userId,movieId,rating\n1,2,3\n4,5,nan\n", 3, "rating nan is not a finite number"),
        ("1,2,3\n4,5,NaN\n", 2, "rating nan is not a finite number"),
        ("1,2,3\n4,5,inf\n", 2, "rating inf is not a finite number"),
        ("1,2,3\n4,5,1e300\n", 2, "rating 1e+300 is out of the float32 range"),
        ("1,2,3\n\n4,5,\n", 3, "missing rating"),
        ("1,2,3\n4,,5\n", 2, "missing item id"),
        ("a,b,3\nc,,5\n", 2, "missing item id"),
        ("u,i,r,timestamp\n1,2,3,4\n5,6,7,8\n9,10,11,12x\n", 4, "timestamp '12x' is not an integer"),
        ("1::2::3\n4:x:5::6\n", 2, "expected '::' between fields"),
        ("1::2::3\n4::5::6::7\n", 2, "expected 3 fields separated by '::', found 4: '4::5::6::7'"),
    ],
)
def test_bad_line_is_named(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = _write(tmp_path, "bad.csv", text)
    assert _error(path) == f"{path}, line {line}: {problem}"


def test_bad_line_far_into_the_file_with_small_blocks(tmp_path: Path) -> None:
    good = "".join(f"{k},{k % 13},{k % 5 + 1}\n" for k in range(3000))
    # a header, blank lines, then the bad rating on line 1 + 3000 + 2 + 1
    path = _write(tmp_path, "bad.csv", "user,item,rating\n" + good + "\n\n" + "7,7,oops\n" + good)
    assert _error(path, chunk_size=1000) == f"{path}, line 3004: rating 'oops' is not a number"
    short = _write(tmp_path, "short.csv", good + "7,7\n" + good)
    message = _error(short, chunk_size=1000)
    assert message == f"{short}, line 3001: expected 3 fields separated by ',', found 2: '7,7'"


def test_bad_rating_after_ids_turn_out_to_be_strings(tmp_path: Path) -> None:
    lines = [f"{k},{k % 3},{k % 5 + 1}" for k in range(200)] + ["u7,1,2", "u8,1,bad"]
    path = _write(tmp_path, "r.csv", "userId,movieId,rating\n" + "\n".join(lines) + "\n")
    assert _error(path, chunk_size=512) == f"{path}, line 203: rating 'bad' is not a number"


def test_bad_line_in_whitespace_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.txt", "1  2  3\n  4 5   6\n7 8\n")
    assert _error(path) == f"{path}, line 3: expected 3 fields separated by whitespace, found 2: '7 8'"


def test_requested_column_does_not_exist(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.csv", _lines(",", header="userId,movieId,rating,timestamp"))
    message = _error(path, columns={"user": "userId", "item": "itemId", "rating": "rating"})
    assert message == (
        f"{path}: column 'itemId' (for item) does not exist; columns are ['userId', 'movieId', 'rating', 'timestamp']"
    )
    message = _error(path, columns=[0, 1, 9])
    assert message == f"{path}: column 9 (for rating) does not exist; there are 4 columns (positions 0 to 3)"
    bare = _write(tmp_path, "bare.csv", _lines(","))
    assert "has no header line" in _error(bare, columns=["user", "item", "rating"])


def test_partly_recognised_header_asks_for_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.csv", "userId,title,rating\n1,Heat,4\n")
    message = _error(path)
    assert message.startswith(f"{path}: cannot tell which column holds the item"), message
    r = read_ratings(path, columns={"user": "userId", "item": "title", "rating": "rating"})
    assert r.raw_items.tolist() == ["Heat"]


def test_line_longer_than_chunk_size(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.csv", "1,2,3\n" + "4,5," + "6" * 200 + "\n")
    assert "chunk_size" in _error(path, chunk_size=64)


# -- Parquet ---------------------------------------------------------------------------


def test_parquet_round_trip(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {
            "userId": pa.array([u for u, _, _, _ in ROWS], pa.int32()),
            "movieId": [i for _, i, _, _ in ROWS],
            "rating": pa.array([v for _, _, v, _ in ROWS], pa.float32()),
            "timestamp": [t for _, _, _, t in ROWS],
            "title": ["w", "x", "y", "z"],
        }
    )
    path = tmp_path / "ratings.parquet"
    pq.write_table(table, path, row_group_size=2)
    _check(read_ratings(path, chunk_size=1))
    # found by its magic bytes whatever its name, and by position
    other = tmp_path / "ratings.bin"
    other.write_bytes(path.read_bytes())
    _check(read_ratings(other, columns=[0, 1, 2]), ts=False)
    _check(read_ratings(other, format="parquet"))


def test_parquet_string_ids_times_and_errors(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    stamps = pa.array(np.array([1000, 2000, 3000], dtype="datetime64[ms]"))  # 1, 2, 3 seconds
    table = pa.table({"user": ["a", "b", "a"], "item": pa.array(["x", "x", "y"]).dictionary_encode(),
                      "stars": [1, 2, 3], "time": stamps})
    path = tmp_path / "r.parquet"
    pq.write_table(table, path)
    r = read_ratings(path)
    assert r.raw_users.tolist() == ["a", "b", "a"] and r.raw_items.tolist() == ["x", "x", "y"]
    assert r.values.tolist() == [1.0, 2.0, 3.0]
    assert r.timestamps is not None and r.timestamps.tolist() == [1, 2, 3]

    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"user": [1, 2, 3], "item": [1, 2, 3], "rating": [1.0, None, 2.0]}), bad)
    assert _error(bad) == f"{bad}, row 2: missing rating"
    nan = tmp_path / "nan.parquet"
    pq.write_table(pa.table({"user": [1, 2], "item": [1, 2], "rating": [1.0, float("nan")]}), nan)
    assert _error(nan) == f"{nan}, row 2: rating nan is not a finite number"
    text = tmp_path / "text.parquet"
    pq.write_table(pa.table({"user": [1, 2], "item": [1, 2], "rating": ["1.5", "lots"]}), text)
    assert _error(text) == f"{text}, row 2: rating 'lots' is not a number"
    kind = tmp_path / "kind.parquet"
    pq.write_table(pa.table({"user": [1], "item": [1], "rating": [True]}), kind)
    assert _error(kind) == f"{kind}: column 'rating' (rating) has type bool; ratings must be numbers"
    narrow = tmp_path / "narrow.parquet"
    pq.write_table(pa.table({"user": [1], "item": [1]}), narrow)
    assert _error(narrow).startswith(f"{narrow}: found 2 column(s); need at least 3")
    assert "sep" in _error(path, sep=",")


# -- in-memory inputs ------------------------------------------------------------------


def test_as_ratings_returns_ratings_as_is_and_reads_paths(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.csv", _lines(","))
    r = as_ratings(path)
    _check(r)
    assert as_ratings(r) is r
    _check(as_ratings(str(path)))
    _check(as_ratings(path, columns=[0, 1, 2]), ts=False)


def test_as_ratings_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "title": ["w", "x", "y", "z"],
            "userId": [u for u, _, _, _ in ROWS],
            "movieId": [i for _, i, _, _ in ROWS],
            "rating": [v for _, _, v, _ in ROWS],
            "timestamp": [t for _, _, _, t in ROWS],
        },
        index=[9, 8, 7, 6],
    )
    _check(as_ratings(frame))
    _check(as_ratings(frame, columns=["userId", "movieId", "rating"]), ts=False)
    unnamed = pd.DataFrame([list(row) for row in ROWS])
    _check(as_ratings(unnamed))
    strings = pd.DataFrame({"user": ["a", "b"], "item": pd.Categorical(["x", "y"]), "rating": [1, 2]})
    r = as_ratings(strings)
    assert r.raw_users.tolist() == ["a", "b"] and r.raw_items.tolist() == ["x", "y"]
    mixed = pd.DataFrame({"user": [1, "b"], "item": [1.0, 2.0], "rating": [1, 2]})
    r = as_ratings(mixed)
    assert r.raw_users.tolist() == ["1", "b"] and r.item_ids.ids.dtype == np.int64


def test_as_ratings_dataframe_errors_name_the_row() -> None:
    pd = pytest.importorskip("pandas")
    with pytest.raises(ValueError, match=r"^DataFrame, row 3: missing rating$"):
        as_ratings(pd.DataFrame({"u": [1, 2, 3], "i": [1, 2, 3], "r": [1.0, 2.0, np.nan]}))
    with pytest.raises(ValueError, match=r"^DataFrame, row 2: missing user id$"):
        as_ratings(pd.DataFrame({"u": ["a", None], "i": [1, 2], "r": [1.0, 2.0]}))
    with pytest.raises(ValueError, match=r"^DataFrame, row 2: item id 2.5 is not an integer$"):
        as_ratings(pd.DataFrame({"u": [1, 2], "i": [1.0, 2.5], "r": [1.0, 2.0]}))
    with pytest.raises(ValueError, match=r"^DataFrame: column 'x' \(for user\) does not exist"):
        as_ratings(pd.DataFrame({"u": [1], "i": [1], "r": [1.0]}), columns=["x", "i", "r"])
    with pytest.raises(TypeError, match=r"options \['sep'\] do not apply to a DataFrame"):
        as_ratings(pd.DataFrame({"u": [1], "i": [1], "r": [1.0]}), sep=",")


def test_as_ratings_pyarrow_table() -> None:
    pa = pytest.importorskip("pyarrow")
    table = pa.table({"user_id": [u for u, _, _, _ in ROWS], "item_id": [i for _, i, _, _ in ROWS],
                      "rating": [v for _, _, v, _ in ROWS], "timestamp": [t for _, _, _, t in ROWS]})
    _check(as_ratings(table))
    _check(as_ratings(table.to_batches()[0]))


def test_as_ratings_sparse_matrix_stored_zeros_are_ratings() -> None:
    from scipy import sparse

    rows, cols = np.array([0, 2, 2, 3]), np.array([1, 0, 3, 3])
    values = np.array([4.0, 0.0, 2.5, 1.0])  # the 0.0 is stored: a rating of zero
    for matrix in (sparse.csr_matrix((values, (rows, cols)), shape=(5, 4)),
                   sparse.coo_array((values, (rows, cols)), shape=(5, 4))):
        r = as_ratings(matrix)
        assert r.n_users == 5 and r.n_items == 4  # every row and column, rated or not
        assert len(r) == 4
        got = {(int(u), int(i)): float(v) for u, i, v in zip(r.raw_users, r.raw_items, r.values)}
        assert got == {(0, 1): 4.0, (2, 0): 0.0, (2, 3): 2.5, (3, 3): 1.0}
        np.testing.assert_array_equal(r.to_csr().toarray(), sparse.coo_matrix((values, (rows, cols)), (5, 4)).toarray())


def test_as_ratings_sparse_duplicates_keep_the_last_and_non_finite_rejected() -> None:
    from scipy import sparse

    matrix = sparse.coo_matrix((np.array([1.0, 2.0, 3.0]), (np.array([0, 0, 1]), np.array([0, 0, 1]))))
    with pytest.warns(DuplicateRatingsWarning, match="sparse matrix: 1 duplicate"):
        r = as_ratings(matrix)
    assert r.values.tolist() == [2.0, 3.0] and len(r) == 2  # not summed: the last stored of (0, 0)
    with pytest.raises(ValueError, match=r"cell \(1, 1\) is nan"):
        as_ratings(sparse.csr_matrix(np.array([[1.0, 0.0], [0.0, np.nan]])))


def test_as_ratings_dense_nan_is_missing() -> None:
    dense = np.array([[5.0, np.nan, 1.0], [np.nan, np.nan, np.nan], [0.0, 2.0, np.nan]])
    r = as_ratings(dense)
    assert r.n_users == 3 and r.n_items == 3 and len(r) == 4
    got = {(int(u), int(i)): float(v) for u, i, v in zip(r.raw_users, r.raw_items, r.values)}
    assert got == {(0, 0): 5.0, (0, 2): 1.0, (2, 0): 0.0, (2, 1): 2.0}
    r2 = as_ratings(dense.tolist(), layout="dense")  # rows of 3 numbers: could be records, so said
    np.testing.assert_array_equal(r2.to_csr().toarray(), np.nan_to_num(dense))
    full = as_ratings(np.arange(6).reshape(2, 3))  # integers: every cell observed
    assert len(full) == 6 and full.values.tolist() == [0, 1, 2, 3, 4, 5]
    with pytest.raises(ValueError, match=r"cell \(0, 1\) is inf"):
        as_ratings(np.array([[1.0, np.inf]]))
    with pytest.raises(ValueError, match="no ratings"):
        as_ratings(np.full((2, 2), np.nan))


def test_as_ratings_tuples() -> None:
    users = [u for u, _, _, _ in ROWS]
    items = [i for _, i, _, _ in ROWS]
    values = [v for _, _, v, _ in ROWS]
    stamps = [t for _, _, _, t in ROWS]
    _check(as_ratings((users, items, values)), ts=False)
    _check(as_ratings((np.array(users), np.array(items), np.array(values), np.array(stamps))))
    _check(as_ratings((values, (users, items))), ts=False)
    with pytest.raises(ValueError, match="must be 1-D"):
        as_ratings(([[1, 2]], [1], [1.0]))
    with pytest.raises(TypeError, match="length 5"):
        as_ratings((users, items, values, stamps, stamps))


@pytest.mark.parametrize("data", [None, 3, {"user": [1]}, np.array([1.0, 2.0]), [["a", "b"]], b"1,2,3"])
def test_as_ratings_rejects_other_kinds(data: object) -> None:
    with pytest.raises(TypeError, match=r"`data` must be Ratings, a file path .* a scipy.sparse matrix, a dense"):
        as_ratings(data)


def test_as_ratings_options_for_non_files_are_rejected() -> None:
    with pytest.raises(TypeError, match="do not apply to a list or a dense matrix"):
        as_ratings(np.ones((2, 2)), sep=",")


def test_as_ratings_does_not_import_pandas() -> None:
    import subprocess
    import sys

    code = (
        "import sys, numpy as np; from factorise.data import as_ratings; "
        "as_ratings(np.ones((2, 2))); print('pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- real and large files ---------------------------------------------------------------


def test_movielens_100k_u_data() -> None:
    path = DATA_DIR / "ml-100k" / "u.data"
    if not path.is_file():
        if IN_CI:
            pytest.fail(f"{path} is missing; CI must provide MovieLens 100K")
        pytest.skip(f"MovieLens 100K is not at {path}")
    with warnings.catch_warnings():
        warnings.simplefilter("error", DuplicateRatingsWarning)  # u.data has no duplicate pairs
        r = read_ratings(path)
    assert len(r) == 100_000
    assert r.n_users == 943 and r.n_items == 1682
    assert r.user_ids.ids.tolist() == list(range(1, 944))
    assert r.item_ids.ids.tolist() == list(range(1, 1683))
    assert set(np.unique(r.values).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert r.timestamps is not None and (r.timestamps > 8e8).all()
    # the first line of u.data, as documented in its README: 196 242 3 881250949
    assert (r.raw_users[0], r.raw_items[0], r.values[0], r.timestamps[0]) == (196, 242, 3.0, 881250949)


def test_large_csv_is_read_in_blocks(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    from pyarrow import csv as pa_csv

    n = 2_000_000
    j = np.arange(n, dtype=np.int64)
    users = j // 40
    items = (j % 40) * 1009 + (j // 40) % 997  # distinct within each user: no duplicate pairs
    values = (j % 9 + 2) / 2.0
    table = pa.table({"userId": users, "movieId": items, "rating": values, "timestamp": j * 3})
    path = tmp_path / "big.csv"
    pa_csv.write_csv(table, path)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DuplicateRatingsWarning)
        r = read_ratings(path, chunk_size=1 << 20)  # about 40 blocks
    assert len(r) == n
    np.testing.assert_array_equal(r.raw_users, users)
    np.testing.assert_array_equal(r.raw_items, items)
    np.testing.assert_array_equal(r.values, values.astype(np.float32))
    assert r.timestamps is not None
    np.testing.assert_array_equal(r.timestamps, j * 3)
    assert r.n_users == n // 40
