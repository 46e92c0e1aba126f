"""Slow reference for :mod:`factorise.kernels.grouping`: a stable argsort."""

from __future__ import annotations

import numpy as np

__all__ = ["group", "mark_used"]


def group(keys: np.ndarray, others: np.ndarray, n_groups: int) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, grouped)`` with ``grouped`` = ``others`` stably sorted by ``keys``."""
    order = np.argsort(keys, kind="stable")
    indptr = np.concatenate([[0], np.cumsum(np.bincount(keys, minlength=n_groups))])
    return indptr, others[order]


def mark_used(index: np.ndarray, used: np.ndarray) -> int:
    """Reference for :func:`factorise.kernels.grouping.mark_used`."""
    used[index] = True
    return int(np.count_nonzero(used))
