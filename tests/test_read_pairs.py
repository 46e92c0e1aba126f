"""Reading (user, item) pairs to predict: every layout, ratings files, two-column files, errors."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import DATA_DIR, IN_CI

from factorise.data import read_pairs, read_ratings

# Pairs every small fixture holds, in file order; (1, 10) comes three times.
PAIRS = [(1, 10), (2, 10), (1, 20), (1, 10), (3, 30), (1, 10)]


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _text(sep: str, rows: list[tuple[object, ...]], header: str | None = None) -> str:
    lines = [header] if header is not None else []
    lines += [sep.join(str(f) for f in row) for row in rows]
    return "\n".join(lines) + "\n"


def _check(result: tuple[np.ndarray, np.ndarray], pairs: list[tuple[object, object]] = PAIRS) -> None:
    """``result`` holds exactly ``pairs``, in order, with the ids' expected dtype."""
    users, items = result
    assert isinstance(users, np.ndarray) and isinstance(items, np.ndarray)
    assert users.shape == items.shape == (len(pairs),)
    for ids, raw in ((users, [u for u, _ in pairs]), (items, [i for _, i in pairs])):
        if all(isinstance(v, int) for v in raw):
            assert ids.dtype == np.int64
        else:
            assert ids.dtype.kind == "U"
        assert ids.tolist() == raw


def _error(path: Path, **kwargs: object) -> str:
    with pytest.raises(ValueError) as info:
        read_pairs(path, **kwargs)  # type: ignore[arg-type]
    return str(info.value)


# -- two-column files, every layout ----------------------------------------------------


@pytest.mark.parametrize(
    ("name", "sep"),
    [
        ("p.csv", ","),
        ("p.tsv", "\t"),
        ("p.txt", "\t"),
        ("p.txt", ";"),
        ("p.txt", "|"),
        ("p.dat", "::"),
        ("p.txt", " "),
        ("p.txt", "   "),
        ("p.csv", "\t"),  # a tab-separated file named .csv
    ],
)
@pytest.mark.parametrize("header", [None, "user,item", "userId,movieId", "a,b"])
def test_two_columns_every_separator_with_and_without_header(
    tmp_path: Path, name: str, sep: str, header: str | None
) -> None:
    head = None if header is None else header.replace(",", sep)
    _check(read_pairs(_write(tmp_path, name, _text(sep, PAIRS, head))))


def test_whitespace_runs_padding_crlf_bom_blank_lines(tmp_path: Path) -> None:
    text = "\ufeffuser  item\r\n\r\n" + "".join(f"  {u} \t {i}  \r\n" for u, i in PAIRS) + "\r\n"
    _check(read_pairs(_write(tmp_path, "p.txt", text)))
    padded = "".join(f" {u} , {i}\n" for u, i in PAIRS)
    _check(read_pairs(_write(tmp_path, "q.csv", padded)))


def test_header_names_are_followed_in_any_order(tmp_path: Path) -> None:
    swapped = [(i, u) for u, i in PAIRS]
    _check(read_pairs(_write(tmp_path, "p.csv", _text(",", swapped, "movieId,userId"))))


def test_gzip_and_no_trailing_newline(tmp_path: Path) -> None:
    _check(read_pairs(_write(tmp_path, "p.csv.gz", gzip.compress(_text(",", PAIRS).encode()))))
    _check(read_pairs(_write(tmp_path, "p.csv", _text(",", PAIRS).rstrip("\n"))))


def test_explicit_options(tmp_path: Path) -> None:
    # a first line of strings that is not detected as a header unless told
    text = _text(",", [("alice", "x"), ("bob", "y")], "who,what")
    path = _write(tmp_path, "p.csv", text)
    _check(read_pairs(path), [("who", "what"), ("alice", "x"), ("bob", "y")])
    _check(read_pairs(path, header=True), [("alice", "x"), ("bob", "y")])
    _check(read_pairs(path, header=True, sep=","), [("alice", "x"), ("bob", "y")])
    _check(read_pairs(path, format="csv", header=True, columns={"user": "what", "item": "who"}),
           [("x", "alice"), ("y", "bob")])


def test_columns_by_name_position_and_sequence(tmp_path: Path) -> None:
    rows = [(f"t{u}", i, u, 5) for u, i in PAIRS]
    headed = _write(tmp_path, "h.csv", _text(",", rows, "title,movie,uid,rating"))
    plain = _write(tmp_path, "p.csv", _text(",", rows))
    _check(read_pairs(headed, columns={"user": "uid", "item": "movie"}))
    _check(read_pairs(headed, columns={"user": 2, "item": 1}))
    _check(read_pairs(headed, columns=["UID", "Movie"]))  # names match regardless of case
    _check(read_pairs(headed, columns=["uid", "movie", "rating"]))  # read_ratings' options are accepted
    _check(read_pairs(plain, columns=(2, 1)))
    _check(read_pairs(plain, columns={"user": 2, "item": 1, "rating": 3, "timestamp": 0}))


# -- files of ratings ---------------------------------------------------------------------


RATINGS = [(u, i, 4.5 - k, 100 * k) for k, (u, i) in enumerate(PAIRS)]


@pytest.mark.parametrize(
    ("name", "sep", "header"),
    [
        ("ratings.csv", ",", "userId,movieId,rating,timestamp"),
        ("ratings.csv", ",", None),
        ("u.data", "\t", None),  # MovieLens 100K
        ("ratings.dat", "::", None),  # MovieLens 1M
        ("r.txt", "  ", None),
        ("r.txt", ";", "user;item;rating;ts"),
    ],
)
def test_ratings_files_give_their_pairs(tmp_path: Path, name: str, sep: str, header: str | None) -> None:
    path = _write(tmp_path, name, _text(sep, RATINGS, header))
    _check(read_pairs(path))
    # the same ids read_ratings finds (it keeps one rating per pair; read_pairs keeps every line)
    with pytest.warns(UserWarning, match="duplicate"):
        r = read_ratings(path)
    assert set(zip(r.raw_users.tolist(), r.raw_items.tolist(), strict=True)) == set(PAIRS)


def test_extra_columns_are_ignored(tmp_path: Path) -> None:
    rows = [(5, "Film, with comma", i, u, "2001-01-01") for u, i in PAIRS]
    text = "rating,title,movieId,userId,date\n" + "".join(
        f'{r},"{t}",{i},{u},{d}\n' for r, t, i, u, d in rows
    )
    _check(read_pairs(_write(tmp_path, "r.csv", text)))
    four = "".join(f"{u},{i},3,extra text\n" for u, i in PAIRS)  # up to four: the first two are the ids
    _check(read_pairs(_write(tmp_path, "p.csv", four)))
    five = "".join(f"{u},{i},3,{u * 7},extra text\n" for u, i in PAIRS)
    path = _write(tmp_path, "q.csv", five)
    message = _error(path)
    assert "cannot tell which columns hold the user and item" in message, message
    assert "there is no header line and there are 5 columns" in message, message
    assert "e.g. columns=[0, 1]" in message, message
    _check(read_pairs(path, columns=[0, 1]))


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("r.csv", "userId,movieId,rating\n1,10,good\n2,10,\n1,20,nan\n"),
        ("r.csv", "1,10,good\n2,10,\n1,20,inf\n"),
        ("r.dat", "1::10::good::5\n2::10::::6\n1::20::1e999::7\n"),
        ("r.tsv", "1\t10\tgood\n2\t10\t\n1\t20\t-\n"),
    ],
)
def test_missing_or_non_numeric_ratings_are_not_errors(tmp_path: Path, name: str, text: str) -> None:
    path = _write(tmp_path, name, text)
    with pytest.raises(ValueError, match="rating"):
        read_ratings(path)  # the same file is bad as ratings
    _check(read_pairs(path), [(1, 10), (2, 10), (1, 20)])


def test_duplicates_are_kept_in_file_order(tmp_path: Path) -> None:
    pairs = [(3, 1), (1, 2), (3, 1), (3, 1), (2, 2), (1, 2)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DuplicateRatingsWarning: duplicates are wanted here
        _check(read_pairs(_write(tmp_path, "p.csv", _text(",", pairs))), pairs)
        _check(read_pairs(_write(tmp_path, "r.csv", _text(",", [(u, i, 1) for u, i in pairs]))), pairs)


# -- ids -----------------------------------------------------------------------------------


def test_string_ids(tmp_path: Path) -> None:
    pairs = [("alice", "The Film"), ("bob", "x"), ("alice", "The Film")]
    text = 'user,item\n"alice","The Film"\nbob,x\nalice,The Film\n'
    _check(read_pairs(_write(tmp_path, "p.csv", text)), pairs)
    # without a header, and strings in one column only
    _check(read_pairs(_write(tmp_path, "q.tsv", "a\t1\nb\t2\n")), [("a", 1), ("b", 2)])


def test_integer_ids_are_numbers_and_mixed_ids_keep_their_text(tmp_path: Path) -> None:
    _check(read_pairs(_write(tmp_path, "p.csv", "007,1\n7,-2\n")), [(7, 1), (7, -2)])
    _check(read_pairs(_write(tmp_path, "q.csv", "007,1\nx7,2\n")), [("007", 1), ("x7", 2)])


def test_strings_after_the_sampled_lines_turn_the_column_to_strings(tmp_path: Path) -> None:
    pairs: list[tuple[object, object]] = [(k % 17, k) for k in range(5000)]
    pairs[4321] = ("u-late", 4321)
    pairs[4999] = (16, "i-late")
    path = _write(tmp_path, "p.csv", _text(",", pairs, "user,item"))
    expected = [(str(u), str(i)) for u, i in pairs]
    _check(read_pairs(path, chunk_size=4096), expected)


# -- Parquet --------------------------------------------------------------------------------


def test_parquet_pairs_and_ratings(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    users = [u for u, _ in PAIRS]
    items = [i for _, i in PAIRS]
    two = tmp_path / "pairs.parquet"
    pq.write_table(pa.table({"who": pa.array(users, pa.int32()), "what": items}), two, row_group_size=2)
    _check(read_pairs(two, chunk_size=1))
    other = tmp_path / "pairs.bin"  # found by its magic bytes
    other.write_bytes(two.read_bytes())
    _check(read_pairs(other))
    # a ratings table whose rating column holds text and gaps: ignored
    rated = tmp_path / "rated.parquet"
    table = pa.table({"rating": ["good", None] * 3, "item": pa.array([str(i) for i in items]).dictionary_encode(),
                      "userId": [float(u) for u in users]})
    pq.write_table(table, rated)
    _check(read_pairs(rated), [(u, str(i)) for u, i in PAIRS])
    _check(read_pairs(rated, columns=["userId", "item"]), [(u, str(i)) for u, i in PAIRS])


def test_parquet_errors(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    narrow = tmp_path / "narrow.parquet"
    pq.write_table(pa.table({"user": [1, 2]}), narrow)
    assert _error(narrow) == f"{narrow}: found 1 column(s); need at least 2 (user, item); columns are ['user']"
    named = tmp_path / "named.parquet"
    pq.write_table(pa.table({"rating": [1.0], "timestamp": [5]}), named)
    assert _error(named).startswith(f"{named}: no user/item columns: the header ['rating', 'timestamp']")
    missing = tmp_path / "missing.parquet"
    pq.write_table(pa.table({"user": [1, None], "item": [1, 2]}), missing)
    assert _error(missing) == f"{missing}, row 2: missing user id"
    assert _error(missing, columns={"user": "user", "item": "nope"}).startswith(
        f"{missing}: column 'nope' (for item) does not exist"
    )
    assert "sep" in _error(missing, sep=",")


# -- bad input ------------------------------------------------------------------------------


def test_missing_empty_and_header_only_files(tmp_path: Path) -> None:
    nope = tmp_path / "nope.csv"
    assert _error(nope) == f"{nope}: no such file"
    for text in ("", "\n \n\t\n"):
        empty = _write(tmp_path, "empty.csv", text)
        assert _error(empty).startswith(f"{empty}: the file is empty")
    header = _write(tmp_path, "h.csv", "user,item\n")
    assert _error(header) == f"{header}: no pairs (only a header line)"


def test_fewer_than_two_columns(tmp_path: Path) -> None:
    path = _write(tmp_path, "pairs.csv", "1\n2\n3\n")
    assert _error(path) == f"{path}: found 1 field per line; need at least 2 (user, item)"
    message = _error(path, sep=",")
    assert message.startswith(f"{path}: found 1 field(s) per line separated by ','"), message


@pytest.mark.parametrize("header", ["rating,timestamp", "score,time", "x,rating,ts"])
def test_header_naming_only_other_columns(tmp_path: Path, header: str) -> None:
    row = ",".join(str(k + 1) for k in range(header.count(",") + 1))
    path = _write(tmp_path, "pairs.csv", f"{header}\n{row}\n{row}\n")
    message = _error(path)
    assert message.startswith(f"{path}: no user/item columns: the header "), message
    assert "pass `columns`" in message


def test_header_naming_one_id_column_only(tmp_path: Path) -> None:
    path = _write(tmp_path, "pairs.csv", "userId,title\n1,x\n")
    assert _error(path).startswith(f"{path}: cannot tell which column holds the item")


def test_requested_column_does_not_exist(tmp_path: Path) -> None:
    headed = _write(tmp_path, "pairs.csv", "user,item\n1,2\n")
    plain = _write(tmp_path, "plain.csv", "1,2\n")
    assert _error(headed, columns={"user": "user", "item": "movie"}) == (
        f"{headed}: column 'movie' (for item) does not exist; columns are ['user', 'item']"
    )
    assert _error(plain, columns=[0, 2]).startswith(f"{plain}: column 2 (for item) does not exist")
    assert _error(plain, columns=[0, 1, 5]).startswith(f"{plain}: column 5 (for rating) does not exist")
    assert "has no header line" in _error(plain, columns=["user", "item"])


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"columns": {"user": 0}}, ValueError, "must map 'user' and 'item'"),
        ({"columns": {"user": 0, "item": 1, "title": 2}}, ValueError, "must map 'user' and 'item'"),
        ({"columns": [0]}, ValueError, "list 2 to 4"),
        ({"columns": [0, 1, 2, 3, 4]}, ValueError, "list 2 to 4"),
        ({"columns": [0, 0]}, ValueError, "a different column for each field"),
        ({"columns": "user,item"}, TypeError, "must map"),
        ({"columns": [0, 1.5]}, TypeError, "must map"),
        ({"sep": ""}, ValueError, "`sep`"),
        ({"header": "yes"}, TypeError, "`header`"),
        ({"format": "xlsx"}, ValueError, "`format`"),
        ({"chunk_size": 0}, ValueError, "`chunk_size`"),
    ],
)
def test_bad_options(tmp_path: Path, kwargs: dict, error: type, pattern: str) -> None:
    path = _write(tmp_path, "p.csv", "1,2\n")
    with pytest.raises(error, match=pattern):
        read_pairs(path, **kwargs)


@pytest.mark.parametrize(
    ("text", "line", "problem"),
    [
        ("1,2\n3,4\n5,6,7\n", 3, "expected 2 fields separated by ',', found 3: '5,6,7'"),
        ("user,item\n1,2\n\n,4\n", 4, "missing user id"),
        ("a,x\nb,\n", 2, "missing item id"),
        ("1::2\n" * 150 + "3:4\n", 151, "expected 2 fields separated by '::', found 1: '3:4'"),
    ],
)
def test_bad_line_is_named(tmp_path: Path, text: str, line: int, problem: str) -> None:
    path = _write(tmp_path, "pairs.dat", text)
    assert _error(path) == f"{path}, line {line}: {problem}"


def test_bad_line_far_into_the_file_with_small_blocks(tmp_path: Path) -> None:
    text = "user\titem\n" + "".join(f"{k}\t{k % 7}\n" for k in range(3000)) + "9\t\n"
    path = _write(tmp_path, "pairs.tsv", text)
    assert _error(path, chunk_size=2048) == f"{path}, line 3002: missing item id"


# -- real data ------------------------------------------------------------------------------


def test_movielens_100k_split_pairs_match_its_ratings() -> None:
    path = DATA_DIR / "ml-100k" / "u1.test"
    if not path.is_file():
        if IN_CI:
            pytest.fail(f"{path} is missing; CI must provide MovieLens 100K")
        pytest.skip(f"MovieLens 100K is not at {path}")
    users, items = read_pairs(path)
    r = read_ratings(path)  # no duplicate pairs, so the same rows in the same order
    assert len(users) == len(r) == 20_000
    np.testing.assert_array_equal(users, r.raw_users)
    np.testing.assert_array_equal(items, r.raw_items)
