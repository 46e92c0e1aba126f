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


# -- item 6: ids beyond int64 stay exact -----------------------------------------------------------

BIG = [2**64 - 1, 2**63, 5]  # unsigned 64-bit ids, two of them beyond int64


def _exact(ids: np.ndarray) -> list[str]:
    assert ids.dtype.kind == "U", ids.dtype  # a column holding an id beyond int64 is kept as text
    return ids.tolist()


@pytest.mark.parametrize(
    "make",
    [
        lambda: (np.array(BIG, dtype=np.uint64), [1, 2, 3], [1.0, 2.0, 3.0]),  # a tuple of arrays
        lambda: (BIG, [1, 2, 3], [1.0, 2.0, 3.0]),  # of lists of Python ints (NumPy would make floats)
        lambda: [(u, i, r) for u, i, r in zip(BIG, [1, 2, 3], [1.0, 2.0, 3.0], strict=True)],  # records
    ],
    ids=["uint64-array", "int-list", "records"],
)
def test_unsigned_64_bit_ids_are_kept_exact(make) -> None:  # type: ignore[no-untyped-def]
    r = as_ratings(make())
    assert sorted(_exact(r.raw_users)) == sorted(str(u) for u in BIG)
    expected = {str(u): float(k + 1) for k, u in enumerate(BIG)}
    assert dict(zip(r.raw_users.tolist(), r.values.tolist(), strict=True)) == expected


def test_python_ints_of_any_size_are_kept_exact() -> None:
    huge = [2**70, 3]
    r = as_ratings((huge, [1, 2], [4.0, 5.0]))
    assert _exact(r.raw_users) == sorted(str(u) for u in huge)  # no OverflowError, no rounding
    raw = r.user_ids.ids.tolist()
    assert r.user_ids.index([2**70, 3, 2**71]).tolist() == [raw.index(str(2**70)), raw.index("3"), -1]


def test_frames_tables_and_parquet_keep_unsigned_ids_exact(tmp_path: Path) -> None:
    pd = pytest.importorskip("pandas")
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    columns = {"user": np.array(BIG, dtype=np.uint64), "item": [1, 2, 3], "rating": [1.0, 2.0, 3.0]}
    path = tmp_path / "r.parquet"
    pq.write_table(pa.table(columns), path)
    for r in (as_ratings(pd.DataFrame(columns)), as_ratings(pa.table(columns)), read_ratings(path)):
        assert sorted(_exact(r.raw_users)) == sorted(str(u) for u in BIG), r
    small = {"user": np.array([1, 2], dtype=np.uint64), "item": [1, 2], "rating": [1.0, 2.0]}
    assert as_ratings(pa.table(small)).raw_users.dtype == np.int64  # within int64: integers as before
    huge = pd.DataFrame({"user": [2**70, 1], "item": [1, 2], "rating": [1.0, 2.0]})  # object column
    assert sorted(_exact(as_ratings(huge).raw_users)) == sorted(["1", str(2**70)])


def test_a_timestamp_beyond_int64_is_refused_clearly() -> None:
    pa = pytest.importorskip("pyarrow")
    table = pa.table({"user": [1, 2], "item": [1, 2], "rating": [1.0, 2.0],
                      "timestamp": np.array([1, 2**64 - 1], dtype=np.uint64)})
    _raises(ValueError, lambda: as_ratings(table), "row 2", f"timestamp {2**64 - 1} does not fit in int64")
    _raises(ValueError, lambda: as_ratings(([1], [1], [1.0], [2**70])), "timestamps must fit in int64", str(2**70))


def test_a_model_fitted_on_big_ids_predicts_and_recommends_for_them() -> None:
    from factorise.models import Baseline

    users = [2**64 - 1, 2**63, 5, 2**64 - 1]
    items = [1, 2, 1, 2]
    model = Baseline(n_epochs=5).fit((np.array(users, dtype=np.uint64), items, [5.0, 1.0, 3.0, 4.0]))
    known = model.predict([2**64 - 1, np.uint64(2**63), "18446744073709551615"], [1, 2, 1])
    unknown = model.predict([2**70, 2**64 - 2], [1, 1])
    assert known[0] == known[2]  # the same id given as an int and as text
    assert not np.isclose(known[0], unknown[0])  # a known user is not treated as unknown
    assert np.isclose(unknown[0], unknown[1])  # both unknown: the same fallback
    assert model.recommend(2**63, 5).items.tolist() == [1]  # the one item user 2**63 has not rated


# -- item 4: a list of records is records, never a matrix ----------------------------------------


def test_a_list_of_tuples_is_records() -> None:
    from factorise.models import BiasedMF

    records = [(10, 20, 4.0), (11, 21, 2.0)]
    r = as_ratings(records)
    assert _ratings(r) == [(10, 20, 4.0), (11, 21, 2.0)]  # two ratings, not a 2x3 matrix of six
    model = BiasedMF(rank=1, n_epochs=1, random_state=0).fit(records)
    assert model.user_ids_.ids.tolist() == [10, 11] and model.item_ids_.ids.tolist() == [20, 21]
    stamped = as_ratings([("u1", "i1", 5, 100), ("u2", "i1", 3, 200)])  # with timestamps, string ids
    assert stamped.timestamps is not None and stamped.timestamps.tolist() == [100, 200]
    assert _ratings(as_ratings(iter(records))) == _ratings(r)  # a generator of records
    assert _ratings(as_ratings(tuple(records))) == _ratings(r)  # a tuple of two records


def test_rows_holding_strings_are_records_and_rows_of_five_are_a_matrix() -> None:
    assert _ratings(as_ratings([["u1", "i1", 4.0], ["u2", "i1", 2.0]])) == [("u1", "i1", 4.0), ("u2", "i1", 2.0)]
    wide = as_ratings([[1.0, 2.0, 3.0, 4.0, 5.0], [5.0, 4.0, 3.0, 2.0, float("nan")]])  # only a matrix
    assert wide.source == "dense matrix" and len(wide) == 9


def test_a_list_that_could_be_either_is_refused_saying_how_to_choose() -> None:
    rows = [[10, 20, 4.0], [11, 21, 2.0]]
    _raises(
        ValueError,
        lambda: as_ratings(rows),
        "`data` is ambiguous",
        "could be (user, item, rating[, timestamp]) records or a dense 2x3 matrix",
        "layout='records'",
        "layout='dense'",
        "NumPy array",
    )
    assert len(as_ratings(rows, layout="records")) == 2
    assert len(as_ratings(rows, layout="dense")) == 6
    assert len(as_ratings(np.array(rows))) == 6  # a NumPy array is a matrix
    assert len(as_ratings(np.array(rows), layout="records")) == 2
    with option_spelling(CLI_SPELLING):
        _raises(ValueError, lambda: as_ratings(rows), "--layout records", "--layout dense")
    # a tuple of three records could be the three columns
    _raises(ValueError, lambda: as_ratings(((1, 2, 3.0), (4, 5, 6.0), (7, 8, 9.0))), "could be", "layout='records'")
    assert _ratings(as_ratings(((1, 2, 3.0), (4, 5, 6.0), (7, 8, 9.0)), layout="records"))[0] == (1, 2, 3.0)


def test_layout_is_checked() -> None:
    _raises(ValueError, lambda: as_ratings([(1, 2, 3.0)], layout="matrix"), "`layout` must be None, 'records' or")
    _raises(TypeError, lambda: as_ratings("r.csv", layout="dense"), "`layout` applies to lists and dense arrays")
    _raises(ValueError, lambda: as_ratings([(1, 2, 3.0), (1, 2)]), "record #2 is (1, 2) (length 2, expected 3)")
    _raises(ValueError, lambda: as_ratings([(1, 2, "x")]), "ratings must be numbers", "'x'")
    _raises(ValueError, lambda: as_ratings([]), "`data` is empty")


# -- item 5: duplicate stored entries of a sparse matrix are not summed ----------------------------


def test_coo_duplicates_keep_the_last_with_a_warning() -> None:
    from scipy import sparse

    coo = sparse.coo_matrix(([1.0, 2.0, 5.0, 4.0], ([0, 0, 1, 0], [0, 0, 1, 0])), shape=(2, 2))
    with pytest.warns(DuplicateRatingsWarning, match=r"sparse matrix: 2 duplicate \(user, item\) rating") as caught:
        r = as_ratings(coo)
    assert caught[0].filename == __file__  # the warning points at the caller
    assert sorted(_ratings(r)) == [(0, 0, 4.0), (1, 1, 5.0)]  # not 1 + 2 + 4 = 7


def test_non_canonical_csr_duplicates_keep_the_last() -> None:
    from scipy import sparse

    # row 0 stores column 1 twice (1.0 then 2.0)
    csr = sparse.csr_matrix((np.array([1.0, 2.0, 5.0]), np.array([1, 1, 0]), np.array([0, 2, 3])), shape=(2, 2))
    assert not csr.has_canonical_format
    with pytest.warns(DuplicateRatingsWarning, match="1 duplicate"):
        r = as_ratings(csr)
    assert sorted(_ratings(r)) == [(0, 1, 2.0), (1, 0, 5.0)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", DuplicateRatingsWarning)  # no duplicates: no warning
        assert len(as_ratings(sparse.csr_matrix(np.eye(3)))) == 3


# -- item 17: torch sparse and meta tensors --------------------------------------------------------


TORCH_SPARSE_NOTICES = [
    "ignore:Sparse CSR tensor support is in beta:UserWarning",
    "ignore:Sparse invariant checks are implicitly disabled:UserWarning",
]


@pytest.mark.filterwarnings(*TORCH_SPARSE_NOTICES[:1])
def test_torch_sparse_tensors_are_ratings_like_scipy_sparse(torch) -> None:  # type: ignore[no-untyped-def]
    indices = torch.tensor([[0, 0, 1, 2], [0, 0, 1, 0]])
    coo = torch.sparse_coo_tensor(indices, torch.tensor([1.0, 2.0, 5.0, 3.0]), (3, 2), check_invariants=True)
    assert not coo.is_coalesced()
    with pytest.warns(DuplicateRatingsWarning, match="sparse tensor: 1 duplicate"):
        r = as_ratings(coo)
    assert sorted(_ratings(r)) == [(0, 0, 2.0), (1, 1, 5.0), (2, 0, 3.0)]
    assert r.n_users == 3 and r.n_items == 2  # every row and column, as for a matrix
    plain = torch.tensor([[4.0, 0.0], [0.0, 5.0], [3.0, 0.0]])
    for tensor in (plain.to_sparse(), plain.to_sparse_csr(), plain.to_sparse_csc()):
        assert sorted(_ratings(as_ratings(tensor))) == [(0, 0, 4.0), (1, 1, 5.0), (2, 0, 3.0)], tensor.layout
    dense = as_ratings(torch.tensor([[1.0, float("nan")], [2.0, 3.0]]))  # a dense tensor is a matrix
    assert sorted(_ratings(dense)) == [(0, 0, 1.0), (1, 0, 2.0), (1, 1, 3.0)]


@pytest.mark.filterwarnings(*TORCH_SPARSE_NOTICES[1:])
def test_meta_tensors_are_refused_naming_the_parameter_and_device(torch) -> None:  # type: ignore[no-untyped-def]
    from factorise.lab import sgd_factorise_masked

    meta = torch.empty(3, 2, device="meta")
    _raises(TypeError, lambda: as_ratings(meta), "`data`", "meta device")
    meta_sparse = torch.sparse_coo_tensor(torch.tensor([[0], [0]]), torch.tensor([1.0]), (3, 2), device="meta")
    _raises(TypeError, lambda: as_ratings(meta_sparse), "`data`", "meta device")
    A = torch.rand(3, 2)
    _raises(TypeError, lambda: sgd_factorise_masked(meta, None, 1), "`A`", "meta device")
    _raises(TypeError, lambda: sgd_factorise_masked(A, meta, 1), "`M`", "meta device")


@pytest.mark.filterwarnings(*TORCH_SPARSE_NOTICES[:1])
def test_lab_takes_a_sparse_mask_and_refuses_a_sparse_matrix_with_a_hint(torch) -> None:  # type: ignore[no-untyped-def]
    from factorise.lab import sgd_factorise_masked

    A = torch.rand(4, 3, generator=torch.Generator().manual_seed(0))
    M = torch.tensor([[1, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]], dtype=torch.float32)
    U, V = sgd_factorise_masked(A, M, 2, num_epochs=5, random_state=0)
    for sparse_mask in (M.to_sparse(), M.to_sparse_csr(), M.bool().to_sparse()):
        U2, V2 = sgd_factorise_masked(A, sparse_mask, 2, num_epochs=5, random_state=0)
        assert torch.equal(U, U2) and torch.equal(V, V2), sparse_mask.layout  # the same mask, the same fit
    _raises(TypeError, lambda: sgd_factorise_masked(A.to_sparse(), M, 2), "`A` must be a dense matrix", "A.to_dense()")


# -- the catalogue that already worked: each a one-line error naming the file ---------------------

READERS = [read_ratings, read_pairs]


@pytest.mark.parametrize("read", READERS, ids=["ratings", "pairs"])
@pytest.mark.parametrize(
    ("name", "data", "fragment"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("blank.csv", b"\n\n  \n", "the file is empty (only blank lines and comments)"),
        ("ragged.csv", b"user,item,rating\n1,10,4\n2,20\n", "line 3: expected 3 fields separated by ',', found 2"),
        ("long.csv", b"user,item,rating\n1,10,4\n2,20,3,5\n", "line 3: expected 3 fields separated by ',', found 4"),
        ("binary.csv", b"\x00\x01\x02\x03PK\x05", "unknown format: binary data"),
        ("packed.csv", b"\x1f\x8b\x08\x00rest", "gzip-compressed; name it with a .gz suffix"),
        ("short.parquet", b"1,10,4\n", "not a readable Parquet file"),
        ("no_user.csv", b"user,item,rating\n1,10,4\n,10,4\n", "line 3: missing user id"),
    ],
)
def test_catalogue_of_bad_files(  # type: ignore[no-untyped-def]
    files: dict, tmp_path: Path, read, name: str, data: bytes, fragment: str
) -> None:
    path = _write(files, tmp_path, name, data)
    _raises(ValueError, lambda: read(path), f"{path}", fragment)


@pytest.mark.parametrize("read", READERS, ids=["ratings", "pairs"])
def test_header_only(files: dict, tmp_path: Path, read) -> None:  # type: ignore[no-untyped-def]
    path = _write(files, tmp_path, "h.csv", "user,item,rating\n")
    _raises(ValueError, lambda: read(path), str(path), "(only a header line)")


def test_missing_file_and_unknown_format_option(tmp_path: Path) -> None:
    _raises(ValueError, lambda: read_ratings(tmp_path / "nope.csv"), "nope.csv: no such file")
    _raises(ValueError, lambda: read_ratings(tmp_path), "not a regular file")
    path = tmp_path / "r.csv"
    path.write_text("1,10,4\n")
    _raises(ValueError, lambda: read_ratings(path, format="xlsx"), "`format` must be 'csv', 'parquet'", "'xlsx'")


@pytest.mark.parametrize(
    "bom_then", ["user,item,rating\n1,10,4\n2,20,3\n", "1,10,4\n2,20,3\n"], ids=["header", "no-header"]
)
def test_a_byte_order_mark_is_skipped(files: dict, tmp_path: Path, bom_then: str) -> None:
    path = _write(files, tmp_path, "bom.csv", b"\xef\xbb\xbf" + bom_then.encode())
    assert _ratings(read_ratings(path)) == [(1, 10, 4.0), (2, 20, 3.0)]
    assert read_pairs(path)[0].tolist() == [1, 2]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [("nan", "rating nan is not a finite number"), ("inf", "rating inf is not a finite number"),
     ("-inf", "rating -inf is not a finite number"), ("1e300", "rating 1e+300 is out of the float32 range"),
     ("x", "rating 'x' is not a number"), ("", "missing rating")],
)
def test_bad_ratings_in_a_file_name_the_line(files: dict, tmp_path: Path, value: str, fragment: str) -> None:
    path = _write(files, tmp_path, "r.csv", f"user,item,rating\n1,10,4\n2,20,{value}\n")
    _raises(ValueError, lambda: read_ratings(path), f"{path}, line 3: {fragment}")
    assert read_pairs(path)[0].tolist() == [1, 2]  # pairs do not read the rating


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 1e300])
def test_bad_ratings_in_memory_are_refused(value: float) -> None:
    message = _raises(ValueError, lambda: as_ratings([(1, 10, 4.0), (2, 20, value)]), "ratings must be finite", "#2")
    assert repr(value) in message  # the value given, not what float32 made of it
    if value == 1e300:
        assert "out of the float32 range" in message
    _raises(ValueError, lambda: as_ratings(([1, 2], [10, 20], [4.0, value])), "ratings must be finite numbers")
    if value == value:  # NaN is a missing cell of a dense matrix, not an error
        _raises(ValueError, lambda: as_ratings(np.array([[1.0, value]])), "cell (0, 1)")


# -- found by tests/test_fuzz_readers.py ------------------------------------------------------------


@pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")
def test_a_ragged_line_of_non_utf8_bytes_is_one_clean_error(files: dict, tmp_path: Path) -> None:
    # pyarrow's invalid-row handler decoded such a row as UTF-8 and printed an "Exception ignored" traceback
    path = _write(files, tmp_path, "r.csv", b"user,item,rating\n1,10,4\n\x84\xe9,20\n")
    _raises(ValueError, lambda: read_ratings(path), f"{path}, line 3: expected 3 fields separated by ','")


def test_a_carriage_return_inside_a_line_is_no_crash(files: dict, tmp_path: Path) -> None:
    # Python's csv module raised its own csv.Error while sniffing
    path = _write(files, tmp_path, "r.csv", b'1,10,4\n2,"2\r0",3\n3,30,5\n')
    try:
        read_ratings(path)
    except ValueError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
