"""Reading and writing dense matrices: CSV, TSV, whitespace-separated text, ``.npy``.

Empty cells and ``nan``/``NA`` mark missing values (read as NaN). A first row
whose cells are all non-numeric is taken as a header and skipped. Lines that
are blank or start with ``#`` are ignored. Errors name the file and the line.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from factorise.io._atomic import atomic_write

__all__ = ["DenseMatrix", "read_dense_matrix", "write_dense_csv"]

logger = logging.getLogger(__name__)

_MISSING = frozenset({"", "nan", "na", "n/a"})


@dataclass(frozen=True)
class DenseMatrix:
    """A matrix read from a file.

    Attributes
    ----------
    values : numpy.ndarray
        float64 array of shape (m, n), NaN where a cell was missing.
    lines : numpy.ndarray
        For each row of ``values``, the 1-based line of the file it came from
        (all zeros for ``.npy``).
    path : pathlib.Path
        The file read.
    """

    values: np.ndarray
    lines: np.ndarray
    path: Path

    def describe_row(self, row: int) -> str:
        """Where row ``row`` (0-based) sits in the file: its line (1-based), or its 1-based number."""
        if self.lines[row] > 0:
            return f"{self.path}, line {int(self.lines[row])}"
        return f"{self.path}, row {row + 1}"

    def describe_cell(self, row: int, column: int) -> str:
        """Where cell (row, column) (0-based) sits in the file, 1-based as in editors, for messages."""
        return f"{self.describe_row(row)}, column {column + 1}"


def _delimiter_for(path: Path, first_line: str) -> str | None:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return ","
    if suffix in (".tsv", ".tab"):
        return "\t"
    if "\t" in first_line:
        return "\t"
    if "," in first_line:
        return ","
    return None  # any run of whitespace


def _parse_cell(cell: str) -> float | None:
    """Return the cell's value, NaN if missing, or None if it is not a number."""
    text = cell.strip()
    if text.lower() in _MISSING:
        return float("nan")
    try:
        return float(text)
    except ValueError:
        return None


def read_dense_matrix(path: str | os.PathLike[str]) -> DenseMatrix:
    """Read a dense matrix from CSV, TSV, whitespace-separated text or ``.npy``.

    Parameters
    ----------
    path : str or os.PathLike
        The file. ``.csv`` is comma-separated, ``.tsv``/``.tab`` tab-separated,
        ``.npy`` a NumPy array file; other text files are sniffed (tab, comma,
        else whitespace).

    Returns
    -------
    DenseMatrix
        The values (float64, NaN for missing cells) and where each row came from.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If the file is empty, ragged, holds a non-numeric or infinite cell, or is
        not 2-D; the message names the file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() == ".npy":
        return _read_npy(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None

    rows: list[list[float]] = []
    lines: list[int] = []
    delimiter: str | None = None
    width = 0
    first = True
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if first:
            delimiter = _delimiter_for(path, line)
        cells = line.split(delimiter) if delimiter else line.split()
        values = [_parse_cell(c) for c in cells]
        if first:
            first = False
            if all(v is None for v in values):
                logger.info("%s: line %d taken as a header", path, number)
                continue
        for column, (cell, value) in enumerate(zip(cells, values)):
            if value is None:
                raise ValueError(
                    f"{path}, line {number}, column {column + 1}: non-numeric cell {cell.strip()!r}"
                )
            if np.isinf(value):
                raise ValueError(f"{path}, line {number}, column {column + 1}: infinite value {cell.strip()!r}")
        if not rows:
            width = len(values)
        elif len(values) != width:
            raise ValueError(
                f"{path}, line {number}: ragged rows: expected {width} cells as on the first "
                f"data row, got {len(values)}"
            )
        rows.append(values)  # type: ignore[arg-type]
        lines.append(number)
    if not rows:
        raise ValueError(f"{path}: no data rows")
    return DenseMatrix(np.array(rows, dtype=np.float64), np.array(lines, dtype=np.int64), path)


def _read_npy(path: Path) -> DenseMatrix:
    try:
        array = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise ValueError(f"{path}: not a readable .npy array file ({exc})") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{path}: the array must hold real numbers; got dtype {array.dtype}")
    if array.ndim != 2 or array.size == 0:
        raise ValueError(f"{path}: the array must be a non-empty 2-D matrix; got shape {array.shape}")
    values = array.astype(np.float64)
    if np.isinf(values).any():
        r, c = (int(i) for i in np.argwhere(np.isinf(values))[0])
        raise ValueError(f"{path}, row {r + 1}, column {c + 1}: infinite value")
    return DenseMatrix(values, np.zeros(values.shape[0], dtype=np.int64), path)


def write_dense_csv(path: str | os.PathLike[str], values: np.ndarray) -> None:
    """Write a 2-D array as comma-separated text, atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Destination file.
    values : numpy.ndarray
        2-D array; written with 10 significant digits.
    """
    with atomic_write(path) as handle:
        np.savetxt(handle, np.asarray(values, dtype=np.float64), delimiter=",", fmt="%.10g")
