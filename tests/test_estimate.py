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


def test_read_and_held_memory_grow_by_their_stated_rates() -> None:
    from factorise.data._estimate import (
        HELD_BYTES_PER_ID,
        HELD_BYTES_PER_RATING,
        READ_BUFFER_BYTES,
        READ_BYTES_PER_RATING,
        RUNTIME_BYTES,
        estimate_read_memory,
        held_ratings_memory,
    )

    assert estimate_read_memory(0) == RUNTIME_BYTES + READ_BUFFER_BYTES
    assert estimate_read_memory(10**6) - estimate_read_memory(0) == READ_BYTES_PER_RATING * 10**6
    assert READ_BYTES_PER_RATING >= 20  # at least the result with timestamps: 4 + 4 + 4 + 8 bytes
    assert held_ratings_memory(10, 2, 3) == RUNTIME_BYTES + 10 * HELD_BYTES_PER_RATING + 5 * HELD_BYTES_PER_ID
    with pytest.raises(ValueError, match=r"`n_ratings` must be an integer >= 0; got -5"):
        estimate_read_memory(-5)
    with pytest.raises(TypeError, match=r"`n_items` must be an integer >= 0; got 2.5 of type float"):
        held_ratings_memory(1, 1, 2.5)  # type: ignore[arg-type]
