"""The bad-input catalogue of the data readers (issue 7), at the library level.

One test (or a few) per item of the issue that the readers own -- 3
(ambiguous layouts), 4 (records), 5 (duplicate sparse entries), 6 (ids beyond
int64), 17 (torch sparse and meta tensors), 19 (comment lines) -- and the
catalogue that already worked (empty file, header only, BOM, ragged rows,
NaN/inf/1e300 ratings, unknown format). Each asserts the exception type and
that the message names the option or parameter, the rule and the value; each
compares against a truth known by construction, never a value copied from a
run. No test changes an input: files are compared byte for byte afterwards.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from factorise.data import DuplicateRatingsWarning, Ratings, as_ratings, read_pairs, read_ratings
from factorise.data._options import example, option_spelling, spell

#: How the CLI spells the reader options (what the lead's CLI enters).
CLI_SPELLING = {
    "columns": "--columns",
    "sep": "--sep",
    "header": "--header/--no-header",
    "format": "--format",
    "chunk_size": "--chunk-size",
    "layout": "--layout",
}


@pytest.fixture
def files(tmp_path: Path) -> Iterator[dict[Path, bytes]]:
    """Files written by a test; after it, each must hold exactly what was written."""
    written: dict[Path, bytes] = {}
    yield written
    for path, data in written.items():
        assert path.read_bytes() == data, f"{path} was changed"


def _write(files: dict[Path, bytes], tmp_path: Path, name: str, text: str | bytes) -> Path:
    path = tmp_path / name
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(data)
    files[path] = data
    return path


def _raises(kind: type[Exception], call, *fragments: str) -> str:  # type: ignore[no-untyped-def]
    """Run ``call``; it must raise ``kind`` with a one-line message holding every fragment."""
    with pytest.raises(kind) as info:
        call()
    message = str(info.value)
    assert "\n" not in message, message
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    return message


def _ratings(r: Ratings) -> list[tuple[object, object, float]]:
    return list(zip(r.raw_users.tolist(), r.raw_items.tolist(), r.values.tolist(), strict=True))


# -- the option spelling ------------------------------------------------------------------------


def test_spelling_is_the_keyword_by_default_and_the_flag_inside_option_spelling() -> None:
    assert spell("columns") == "`columns`"
    assert example("columns", [0, 1, 4]) == "columns=[0, 1, 4]"
    with option_spelling(CLI_SPELLING):
        assert spell("columns") == "--columns"
        assert example("columns", [0, 1, 4]) == "--columns 0,1,4"
        assert example("header", True) == "--header" and example("header", False) == "--no-header"
        with option_spelling({"sep": "-s"}):  # nested: the rest stays as set outside
            assert spell("sep") == "-s" and spell("columns") == "--columns"
        assert spell("sep") == "--sep"
    assert spell("columns") == "`columns`" and spell("sep") == "`sep`"


def test_spelling_is_restored_after_an_error() -> None:
    with pytest.raises(RuntimeError), option_spelling(CLI_SPELLING):
        raise RuntimeError("boom")
    assert spell("columns") == "`columns`"


# -- item 3: an ambiguous layout is an error, never a guess --------------------------------------

#: The issue's file: user, item, category, review, rating, date -- no header.
REVIEWS = "".join(
    f"{u},{i},{c},{review},{r},2020-01-{d:02d}\n"
    for u, i, c, review, r, d in [(1, 10, 17, "great", 4.5, 1), (2, 11, 3, "bad", 1.0, 2), (1, 12, 9, "ok", 3.0, 3)]
)


def test_headerless_file_of_six_columns_is_refused_listing_the_columns(files: dict, tmp_path: Path) -> None:
    path = _write(files, tmp_path, "reviews.csv", REVIEWS)
    message = _raises(
        ValueError,
        lambda: read_ratings(path),
        str(path),
        "cannot tell which columns hold the user, item and rating",
        "no header line and there are 6 columns",
        "0='1', 1='10', 2='17', 3='great', 4='4.5', 5='2020-01-01'",  # the first row, with positions
        "pass `columns` with their 0-based positions",
    )
    assert re.search(r"e\.g\. columns=\[0, 1, \d\]", message), message
    # the choice is the user's: explicit columns always win
    r = read_ratings(path, columns=[0, 1, 4])
    assert _ratings(r) == [(1, 10, 4.5), (2, 11, 1.0), (1, 12, 3.0)]
    # and the pairs reader refuses the same file (more than four columns)
    _raises(ValueError, lambda: read_pairs(path), "cannot tell which columns hold the user and item", "6 columns")
    users, items = read_pairs(path, columns=[0, 1])
    assert users.tolist() == [1, 2, 1] and items.tolist() == [10, 11, 12]


def test_the_cli_spelling_names_the_flag(files: dict, tmp_path: Path) -> None:
    path = _write(files, tmp_path, "reviews.csv", REVIEWS)
    with option_spelling(CLI_SPELLING):
        message = _raises(ValueError, lambda: read_ratings(path), "pass --columns with their 0-based positions")
        assert re.search(r"e\.g\. --columns 0,1,\d", message), message
        assert "`columns`" not in message
        _raises(ValueError, lambda: read_ratings(path, columns=[0]), "--columns must list 3 or 4", "got 1")
        _raises(TypeError, lambda: read_ratings(path, header="yes"), "--header/--no-header must be True")
        _raises(ValueError, lambda: read_ratings(path, sep=""), "--sep must be one character")
        _raises(ValueError, lambda: read_ratings(path, format="xlsx"), "--format must be 'csv', 'parquet'")
    # outside, the keyword again
    _raises(ValueError, lambda: read_ratings(path, format="xlsx"), "`format` must be 'csv', 'parquet'", "'xlsx'")


def test_headerless_fourth_column_that_is_not_an_integer_timestamp_is_refused(files: dict, tmp_path: Path) -> None:
    path = _write(files, tmp_path, "r.csv", "1,10,4,2020-01-01\n2,20,3,2020-01-02\n")
    _raises(
        ValueError,
        lambda: read_ratings(path),
        "no header line and the fourth column is not an integer timestamp",
        "3='2020-01-01'",
        "columns",
    )
    assert _ratings(read_ratings(path, columns=[0, 1, 2])) == [(1, 10, 4.0), (2, 20, 3.0)]
    # an integer fourth column is the timestamp: no guess
    stamped = _write(files, tmp_path, "s.csv", "1,10,4,100\n2,20,3,200\n")
    r = read_ratings(stamped)
    assert r.timestamps is not None and r.timestamps.tolist() == [100, 200]
    # pairs take the first two of four columns
    assert read_pairs(path)[0].tolist() == [1, 2]


def test_header_naming_no_role_with_more_than_three_columns_is_refused(files: dict, tmp_path: Path) -> None:
    path = _write(files, tmp_path, "r.csv", "a,b,c,d\n1,10,4,7\n2,20,3,8\n")
    _raises(
        ValueError,
        lambda: read_ratings(path),
        "the header names none of them and there are 4 columns",
        "0='a', 1='b', 2='c', 3='d'",
        "with their names",
    )
    _raises(ValueError, lambda: read_pairs(path), "the header names none of them")
    assert _ratings(read_ratings(path, columns=["a", "b", "d"])) == [(1, 10, 7.0), (2, 20, 8.0)]
    three = _write(files, tmp_path, "t.csv", "a,b,c\n1,10,4\n")  # three columns: one reading only
    assert _ratings(read_ratings(three)) == [(1, 10, 4.0)]


def test_frames_and_tables_follow_the_same_rule() -> None:
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    wide = pd.DataFrame([[1, 10, 17, "great", 4.5], [2, 11, 3, "bad", 1.0]])  # labels 0..4: no header
    _raises(ValueError, lambda: as_ratings(wide), "DataFrame", "there are 5 columns", "4='4.5'", "`columns`")
    assert _ratings(as_ratings(wide, columns=[0, 1, 4])) == [(1, 10, 4.5), (2, 11, 1.0)]
    table = pa.table({"a": [1, 2], "b": [10, 11], "c": [17, 3], "d": [4.5, 1.0]})
    _raises(ValueError, lambda: as_ratings(table), "Table", "the header names none of them", "3='d'")
    assert _ratings(as_ratings(table, columns=["a", "b", "d"])) == [(1, 10, 4.5), (2, 11, 1.0)]
    named = pd.DataFrame({"userId": [1], "movieId": [10], "category": [17], "rating": [4.5]})
    assert _ratings(as_ratings(named)) == [(1, 10, 4.5)]  # a header naming the roles is no guess


# -- item 19: comment lines are skipped by the ratings and pairs readers --------------------------


@pytest.mark.parametrize("chunk_size", [7, 64, 1 << 22])
def test_comment_lines_are_skipped_everywhere_in_the_file(files: dict, tmp_path: Path, chunk_size: int) -> None:
    text = (
        "# exported 2024-01-01\n"
        "user,item,rating\n"
        "# after the header\n"
        "1,10,4\n"
        "   # indented\n"
        "2,i#2,3\n"  # a '#' inside a line is data
        "#\n"
        "3,30,5\n"
        "# no newline at the end"
    )
    path = _write(files, tmp_path, "c.csv", text)
    assert _ratings(read_ratings(path, chunk_size=chunk_size)) == [(1, "10", 4.0), (2, "i#2", 3.0), (3, "30", 5.0)]
    users, items = read_pairs(path, chunk_size=chunk_size)
    assert users.tolist() == [1, 2, 3] and items.tolist() == ["10", "i#2", "30"]


def test_line_numbers_count_comment_lines(files: dict, tmp_path: Path) -> None:
    path = _write(files, tmp_path, "c.csv", "# c\r\n1,10,4\r\n#\r\n  # more\r\n2,20,x\r\n")
    _raises(ValueError, lambda: read_ratings(path), f"{path}, line 5: rating 'x' is not a number")
    ragged = _write(files, tmp_path, "p.csv", "# c\n1,10\n#\n2,20,3\n")
    _raises(ValueError, lambda: read_pairs(ragged), "line 4", "expected 2 fields")


def test_whitespace_separated_file_with_comments(files: dict, tmp_path: Path) -> None:
    path = _write(files, tmp_path, "r.txt", "# u i r\n1  10   4\n   # x y z\n2 20 3\n")
    assert _ratings(read_ratings(path)) == [(1, 10, 4.0), (2, 20, 3.0)]


def test_only_comments_is_an_empty_file(files: dict, tmp_path: Path) -> None:
    path = _write(files, tmp_path, "c.csv", "# nothing\n\n#\n")
    _raises(ValueError, lambda: read_ratings(path), str(path), "the file is empty (only blank lines and comments)")
