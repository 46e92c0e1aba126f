"""Slow, obvious references of :mod:`factorise.kernels.synthetic` (for the tests)."""

from __future__ import annotations

import math

import numpy as np

from factorise.kernels.rng_reference import SplitMix64, mix64
from factorise.kernels.synthetic import inverse_cdf_tables

__all__ = ["sample_items", "select_positions"]


def sample_items(offsets: np.ndarray, weights: np.ndarray, seed: int) -> tuple[np.ndarray, int]:
    """Reference for :func:`factorise.kernels.synthetic.sample_items` (``weights`` summing to 1): plain loops, ``numpy.searchsorted``."""
    n_items = weights.shape[0]
    cdf, _ = inverse_cdf_tables(weights)
    out = np.empty(int(offsets[-1]), dtype=np.int32)
    draws = 0
    for u in range(offsets.shape[0] - 1):
        start, stop = int(offsets[u]), int(offsets[u + 1])
        wanted = stop - start
        if wanted == 0:
            continue
        stream = SplitMix64(mix64(int(seed) ^ mix64(u)))
        taken: list[int] = []
        if 4 * wanted < n_items:
            tries = 0
            while len(taken) < wanted and tries < 2 * n_items:
                i = int(np.searchsorted(cdf, stream.uniform(), side="right"))
                tries += 1
                if i not in taken:
                    taken.append(i)
            draws += tries
        if len(taken) < wanted:
            rest = [i for i in range(n_items) if i not in taken]
            keys = np.array([-math.log1p(-stream.uniform()) / weights[i] for i in rest])
            order = np.argsort(keys, kind="stable")
            taken += [rest[j] for j in order[: wanted - len(taken)]]
        out[start:stop] = sorted(taken)
    return out, draws


def select_positions(n: int, k: int, seed: int) -> np.ndarray:
    """Reference for :func:`factorise.kernels.synthetic.select_positions`: the positions chosen."""
    stream = SplitMix64(mix64(int(seed)))
    chosen: list[int] = []
    for t in range(n):
        if len(chosen) == k:
            break
        if (n - t) * stream.uniform() < k - len(chosen):
            chosen.append(t)
    return np.array(chosen, dtype=np.int64)
