"""Reading dense matrices from text and .npy files; atomic writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from factorise.io import atomic_write, read_dense_matrix, write_dense_csv


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("m.csv", "1,2,3\n4,5,6\n"),
        ("m.tsv", "1\t2\t3\n4\t5\t6\n"),
        ("m.txt", "1 2   3\n4 5 6\n"),
        ("m.dat", "1\t2\t3\n4\t5\t6\n"),
        ("m.txt", "# comment\n\n1,2,3\n\n4,5,6\n"),
        ("m.csv", "a,b,c\n1,2,3\n4,5,6\n"),
    ],
)
def test_layouts(tmp_path: Path, name: str, text: str) -> None:
    matrix = read_dense_matrix(write(tmp_path, name, text))
    np.testing.assert_array_equal(matrix.values, [[1, 2, 3], [4, 5, 6]])


def test_missing_cells_and_line_numbers(tmp_path: Path) -> None:
    matrix = read_dense_matrix(write(tmp_path, "m.csv", "# x\n1,,3\nnan,5,NA\n"))
    assert np.isnan(matrix.values).sum() == 3
    assert matrix.values[0, 0] == 1 and matrix.values[1, 1] == 5
    assert matrix.lines.tolist() == [2, 3]
    assert matrix.describe_cell(1, 2).endswith("m.csv, line 3, column 3")


def test_npy(tmp_path: Path) -> None:
    path = tmp_path / "m.npy"
    np.save(path, np.arange(6, dtype=np.int32).reshape(2, 3))
    np.testing.assert_array_equal(read_dense_matrix(path).values, [[0, 1, 2], [3, 4, 5]])


@pytest.mark.parametrize(
    ("name", "text", "pattern"),
    [
        ("m.csv", "1,2,3\n4,5\n", r"m.csv, line 2: ragged rows: expected 3 cells .* got 2"),
        ("m.csv", "1,2\n3,x\n", r"m.csv, line 2, column 2: non-numeric cell 'x'"),
        ("m.csv", "1,2\n3,inf\n", r"m.csv, line 2, column 2: infinite value"),
        ("m.csv", "# only a comment\n\n", r"m.csv: no data rows"),
        ("m.csv", "", r"m.csv: no data rows"),
    ],
)
def test_bad_files(tmp_path: Path, name: str, text: str, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        read_dense_matrix(write(tmp_path, name, text))


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"nope.csv: no such file"):
        read_dense_matrix(tmp_path / "nope.csv")


def test_bad_npy(tmp_path: Path) -> None:
    path = tmp_path / "m.npy"
    path.write_bytes(b"not numpy")
    with pytest.raises(ValueError, match=r"m.npy: not a readable .npy"):
        read_dense_matrix(path)
    np.save(path, np.ones(3))
    with pytest.raises(ValueError, match=r"must be a non-empty 2-D matrix; got shape \(3,\)"):
        read_dense_matrix(path)


def test_write_round_trip(tmp_path: Path) -> None:
    values = np.random.default_rng(0).normal(size=(4, 3))
    write_dense_csv(tmp_path / "out.csv", values)
    np.testing.assert_allclose(read_dense_matrix(tmp_path / "out.csv").values, values, rtol=1e-9)


def test_atomic_write_leaves_nothing_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "out.csv"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(target) as handle:
        handle.write("partial")
        raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.csv"]


def test_atomic_write_gives_usual_permissions(tmp_path: Path) -> None:
    import os

    umask = os.umask(0o022)
    try:
        write_dense_csv(tmp_path / "out.csv", np.ones((2, 2)))
    finally:
        os.umask(umask)
    assert (tmp_path / "out.csv").stat().st_mode & 0o777 == 0o644
