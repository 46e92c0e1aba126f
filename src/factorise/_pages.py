"""Large arrays that are read in order, on ordinary (4 KiB) pages.

NumPy asks the kernel for transparent huge pages (``madvise(MADV_HUGEPAGE)``)
on every array of 4 MiB or more. Where the kernel's huge pages are granted
on request (``/sys/kernel/mm/transparent_hugepage/enabled`` = ``madvise``,
the default of many distributions) and assembled on demand (``defrag`` =
``madvise``), the first touch of such an array can stall while the kernel
compacts memory to make each 2 MiB page: measured here, the first pass over
a fresh 126 MiB array took 0.29 s with huge pages and 0.05 s without (later
passes over memory the process already had, 0.02 s). An array that is
filled once and then streamed (the ratings in block order, the block ids
while they are reordered) gains nothing from huge pages, which pay off for
memory read at random (the factors, which keep NumPy's default). So those
arrays are mapped here, anonymously, with ``MADV_NOHUGEPAGE``.

Elsewhere (not Linux, no ``MADV_NOHUGEPAGE``, or small arrays) this is
:func:`numpy.empty`. The memory is returned to the system when the array
(and every view of it) is gone.
"""

from __future__ import annotations

import mmap
import sys
from typing import Any

import numpy as np

__all__ = ["SMALL_PAGES_MIN_BYTES", "empty_streamed"]

SMALL_PAGES_MIN_BYTES = 4 * 2**20
"""Arrays from this size on are mapped on small pages (NumPy asks for huge pages from 4 MiB on)."""


def empty_streamed(n: int, dtype: Any) -> np.ndarray:
    """An uninitialised 1-D array of ``n`` entries of ``dtype``, on small pages where that matters.

    Parameters
    ----------
    n : int
        Number of entries (>= 0).
    dtype : numpy dtype
        Entry type.

    Returns
    -------
    numpy.ndarray
        C-contiguous and writeable, like :func:`numpy.empty`'s.
    """
    dtype = np.dtype(dtype)
    n_bytes = int(n) * dtype.itemsize
    advice = getattr(mmap, "MADV_NOHUGEPAGE", None)
    if n_bytes < SMALL_PAGES_MIN_BYTES or advice is None or not sys.platform.startswith("linux"):
        return np.empty(int(n), dtype=dtype)
    try:
        region = mmap.mmap(-1, n_bytes, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except (OSError, ValueError):  # pragma: no cover - a mapping refused: NumPy's allocator then
        return np.empty(int(n), dtype=dtype)
    try:
        region.madvise(advice)
    except OSError:  # pragma: no cover - an old kernel without the advice: the pages are as NumPy's
        pass
    return np.frombuffer(region, dtype=dtype, count=int(n))
