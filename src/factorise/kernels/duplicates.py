"""Duplicate (user, item) pairs found without sorting, compiled with numba.

A rating list may give the same (user, item) pair more than once; the last
rating is kept. Sorting 64-bit pair keys finds them but needs several copies
of the data. Here the rows of a block of users are grouped by a counting sort
into a caller-owned scratch array (the caller passes ``indptr``, the
cumulative rating counts per user, and chooses blocks that fit the scratch),
and each user's rows are walked in file order against two arrays indexed by
item: ``seen[i]``, the last user found rating item ``i``, and ``last[i]``, the
row of that rating. A row whose item the same user rated before marks the
earlier row as dropped. Memory: the scratch for one block, two arrays of the
number of items, and the output mask; time: one pass over the ratings per
block.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["mark_earlier_duplicates"]


@numba.njit(cache=True, nogil=True)
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
) -> int:  # pragma: no cover - compiled
    """Mark the rows of users ``first_user .. stop_user - 1`` whose pair occurs again later.

    Parameters
    ----------
    users, items : ndarray of int
        User and item index of each rating; users in ``[0, len(indptr) - 1)``,
        items in ``[0, len(seen))``.
    indptr : ndarray of int64
        ``indptr[u]`` is the number of ratings of users before ``u``
        (``len(indptr) = n_users + 1``).
    first_user, stop_user : int
        The block of users handled by this call.
    rows : ndarray of int
        Scratch with room for the ratings of the block:
        ``indptr[stop_user] - indptr[first_user]`` entries at least.
    seen : ndarray of int
        One entry per item: a user index, or -1. Set to -1 before the first
        call; later calls (other blocks) reuse it as left.
    last : ndarray of int64
        One entry per item: scratch (the row of ``seen``'s rating).
    drop : ndarray of bool
        One entry per rating; set True for each rating with a later rating
        of the same pair. Entries of other rows are left alone.

    Returns
    -------
    int
        The number of ratings marked in this block.
    """
    base = indptr[first_user]
    n_block = stop_user - first_user
    cursor = np.empty(n_block, dtype=np.int64)
    for k in range(n_block):
        cursor[k] = indptr[first_user + k] - base
    for r in range(users.shape[0]):
        u = users[r]
        if u >= first_user and u < stop_user:
            k = u - first_user
            rows[cursor[k]] = r
            cursor[k] += 1
    marked = 0
    for u in range(first_user, stop_user):
        for j in range(indptr[u] - base, indptr[u + 1] - base):
            r = rows[j]
            i = items[r]
            if seen[i] == u:
                drop[last[i]] = True
                marked += 1
            seen[i] = u
            last[i] = r
    return marked
