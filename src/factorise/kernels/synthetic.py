"""Compiled kernels of the planted-data generator (:mod:`factorise.datasets.synthetic`).

Each draws from its own SplitMix64 stream (:mod:`factorise.kernels.rng`), seeded
from the caller's generator on the host: no global random state.
:mod:`factorise.kernels.synthetic_reference` holds their slow references.
"""

from __future__ import annotations

import numba
import numpy as np

from factorise.kernels.rng import mix64, uniform

__all__ = ["inverse_cdf_tables", "sample_items", "select_positions", "sort_small_ints"]


def inverse_cdf_tables(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative probabilities (last exactly 1) and the guide table of :func:`sample_items`.

    ``guide[j]`` is the first ``i`` with ``cdf[i] * n >= j``: a draw ``x``
    with ``int(x * n) == j`` has its item at ``guide[j]`` or after.
    """
    n = p.shape[0]
    cdf = np.cumsum(p)
    cdf /= cdf[-1]
    cdf[-1] = 1.0
    guide = np.searchsorted(cdf * n, np.arange(n, dtype=np.float64), side="left").astype(np.int32)
    return cdf, guide


@numba.njit(cache=True, nogil=True)
def sort_small_ints(
    values: np.ndarray, scratch: np.ndarray, counts: np.ndarray, n_bits: int
) -> None:  # pragma: no cover - compiled
    """Sort non-negative integers below ``2**n_bits`` in place (insertion sort, or LSD radix sort by bytes).

    ``scratch`` must be at least as long as ``values``; ``counts`` has 257 slots.
    """
    m = values.shape[0]
    if m <= 16:
        for x in range(1, m):
            v = values[x]
            y = x - 1
            while y >= 0 and values[y] > v:
                values[y + 1] = values[y]
                y -= 1
            values[y + 1] = v
        return
    src = values
    dst = scratch[:m]
    shift = 0
    while shift < n_bits:
        counts[:] = 0
        for x in range(m):
            counts[((src[x] >> shift) & 255) + 1] += 1
        for b in range(256):
            counts[b + 1] += counts[b]
        for x in range(m):
            b = (src[x] >> shift) & 255
            dst[counts[b]] = src[x]
            counts[b] += 1
        src, dst = dst, src
        shift += 8
    if shift % 16 != 0:  # an odd number of passes left the result in scratch
        values[:] = src


@numba.njit(cache=True, nogil=True)
def sample_items(
    offsets: np.ndarray,
    cdf: np.ndarray,
    guide: np.ndarray,
    weights: np.ndarray,
    seed: np.uint64,
    out: np.ndarray,
) -> int:  # pragma: no cover - compiled
    """Draw each user's distinct items, weighted, without replacement; one sweep over users.

    User ``u`` gets ``offsets[u + 1] - offsets[u]`` distinct items, written
    sorted into ``out[offsets[u]:offsets[u + 1]]``: successive sampling from
    ``weights`` (each next item in proportion to its weight among those not
    yet taken). While the sample is under a quarter of the items, draws are
    by inverse CDF (``guide`` narrows the search) and a repeat is redrawn; after
    ``2 * n_items`` draws, or for a larger sample, the remaining items are
    the smallest keys ``Exp(1) / weight`` among those not taken
    (Efraimidis-Spirakis), which continues the same process. User ``u``
    draws from its own SplitMix64 stream, seeded ``mix64(seed ^ mix64(u))``.

    Parameters
    ----------
    offsets : ndarray of int64, shape (n_users + 1,)
        Start of each user's items in ``out``; non-decreasing, each count at
        most ``n_items``.
    cdf : ndarray of float64, shape (n_items,)
        Cumulative weights, normalised, the last exactly 1.
    guide : ndarray of int32, shape (n_items,)
        ``guide[j]`` = the first ``i`` with ``cdf[i] * n_items >= j``.
    weights : ndarray of float64, shape (n_items,)
        The (positive) weights of ``cdf``.
    seed : uint64
        Seed of the streams.
    out : ndarray of int32, shape (offsets[-1],)
        Item indices, written.

    Returns
    -------
    int
        Number of inverse-CDF draws (repeats included).
    """
    n_users = offsets.shape[0] - 1
    n_items = cdf.shape[0]
    mark = np.full(n_items, -1, dtype=np.int64)
    keys = np.empty(n_items, dtype=np.float64)
    candidates = np.empty(n_items, dtype=np.int64)
    scratch = np.empty(n_items, dtype=out.dtype)
    counts = np.zeros(257, dtype=np.int64)
    n_bits = 1
    while (1 << n_bits) < n_items:
        n_bits += 1
    budget = 2 * n_items
    draws = 0
    for u in range(n_users):
        start = offsets[u]
        wanted = offsets[u + 1] - start
        if wanted == 0:
            continue
        state = mix64(seed ^ mix64(np.uint64(u)))
        count = 0
        if 4 * wanted < n_items:
            tries = 0
            while count < wanted and tries < budget:
                state, x = uniform(state)
                j = int(x * n_items)
                if j >= n_items:
                    j = n_items - 1
                i = guide[j]
                while cdf[i] <= x:
                    i += 1
                tries += 1
                if mark[i] != u:
                    mark[i] = u
                    out[start + count] = i
                    count += 1
            draws += tries
        if count < wanted:
            m = 0
            for i in range(n_items):
                if mark[i] != u:
                    state, x = uniform(state)
                    keys[m] = -np.log1p(-x) / weights[i]
                    candidates[m] = i
                    m += 1
            order = np.argsort(keys[:m], kind="mergesort")
            for t in range(wanted - count):
                out[start + count + t] = candidates[order[t]]
        sort_small_ints(out[start : start + wanted], scratch, counts, n_bits)
    return draws


@numba.njit(cache=True, nogil=True)
def select_positions(k: int, seed: np.uint64, mask: np.ndarray) -> int:  # pragma: no cover - compiled
    """Mark exactly ``k`` of the positions of ``mask``, uniformly at random; one sweep.

    Selection sampling (Knuth's Algorithm S): position ``t`` is taken with
    probability (still wanted) / (still left). ``mask`` must be all False.

    Returns
    -------
    int
        The number marked: ``k``.
    """
    n = mask.shape[0]
    state = mix64(seed)
    chosen = 0
    for t in range(n):
        if chosen == k:
            break
        state, x = uniform(state)
        if (n - t) * x < k - chosen:
            mask[t] = True
            chosen += 1
    return chosen
