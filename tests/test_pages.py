"""Streamed arrays on small pages (factorise._pages)."""

from __future__ import annotations

import mmap
import sys

import numpy as np
import pytest

from factorise._pages import SMALL_PAGES_MIN_BYTES, empty_streamed


@pytest.mark.parametrize("dtype", [np.int32, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("n", [0, 1, 1000, SMALL_PAGES_MIN_BYTES // 2, SMALL_PAGES_MIN_BYTES])
def test_empty_streamed_is_a_writeable_contiguous_array(n: int, dtype: type) -> None:
    array = empty_streamed(n, dtype)
    assert array.shape == (n,) and array.dtype == np.dtype(dtype)
    assert array.flags.c_contiguous and array.flags.writeable and array.flags.aligned
    array[:] = 7
    assert int(array.sum(dtype=np.int64)) == 7 * n


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or not hasattr(mmap, "MADV_NOHUGEPAGE"), reason="Linux's madvise only"
)
def test_large_arrays_are_mapped_with_no_huge_pages_and_small_ones_are_numpy_s() -> None:
    large = empty_streamed(SMALL_PAGES_MIN_BYTES // 4, np.int32)
    base = large.base
    assert isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap)
    small = empty_streamed(SMALL_PAGES_MIN_BYTES // 8, np.int32)
    assert small.base is None  # numpy.empty's own
    view = large[10:20]
    del large
    view[:] = 1  # the mapping lives as long as a view of it
    assert view.sum() == 10
