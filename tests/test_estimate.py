"""Counting ratings before reading them (for --max-memory)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from factorise.data import estimate_n_ratings


def lines(n: int, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    u, i, r = rng.integers(0, 10**6, n), rng.integers(0, 10**4, n), rng.integers(1, 6, n)
    return "".join(f"{a},{b},{c}\n" for a, b, c in zip(u, i, r))


def test_parquet_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "r.parquet"
    pq.write_table(pa.table({"user": np.arange(1234), "item": np.arange(1234), "rating": np.ones(1234)}), path)
    assert estimate_n_ratings(path) == (1234, True)


def test_small_text_counts_lines(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text(lines(500))
    assert estimate_n_ratings(path) == (500, False)


@pytest.mark.parametrize("n", [200_000])
def test_large_text_is_estimated_closely(tmp_path: Path, n: int) -> None:
    path = tmp_path / "r.csv"
    path.write_text(lines(n))
    assert path.stat().st_size > 1 << 20  # beyond the sample
    estimate, exact = estimate_n_ratings(path)
    assert not exact and abs(estimate - n) < 0.05 * n
    gz = tmp_path / "r.csv.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    estimate, exact = estimate_n_ratings(gz)
    assert not exact and 0.2 * n < estimate < 5 * n  # a rough guess: the compression ratio is assumed


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.csv: no such file"):
        estimate_n_ratings(tmp_path / "nope.csv")
