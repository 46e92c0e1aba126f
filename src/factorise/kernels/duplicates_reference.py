"""Slow, obvious reference for :func:`factorise.kernels.duplicates.mark_earlier_duplicates`.

A Python loop over the ratings of the block in file order with a dictionary
from (user, item) to the row last seen. Same signature and effect as the
compiled kernel (``indptr``, ``rows``, ``seen`` and ``last`` are accepted and
not used).
"""

from __future__ import annotations

import numpy as np

__all__ = ["mark_earlier_duplicates"]


def mark_earlier_duplicates(
    users: np.ndarray,
    items: np.ndarray,
    indptr: np.ndarray,
    first_user: int,
    stop_user: int,
    rows: np.ndarray,
    seen: np.ndarray,
    last: np.ndarray,
    drop: np.ndarray,
) -> int:
    """Reference for :func:`factorise.kernels.duplicates.mark_earlier_duplicates`."""
    latest: dict[tuple[int, int], int] = {}
    marked = 0
    for r, (u, i) in enumerate(zip(users.tolist(), items.tolist(), strict=True)):
        if not first_user <= u < stop_user:
            continue
        if (u, i) in latest:
            drop[latest[(u, i)]] = True
            marked += 1
        latest[(u, i)] = r
    return marked
