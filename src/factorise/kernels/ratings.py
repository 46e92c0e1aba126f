"""Compiled kernels shared by the rating models: prediction and squared error.

A rating model predicts ``mu + bu[u] + bi[i] + P[u] . Q[i]``; an index of -1
marks an unknown user or item, whose bias and factors count as zero.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["predict_pairs", "sum_squared_deviation", "sum_squared_error", "sum_squared_error_parallel"]

_FASTMATH = {"reassoc", "contract"}


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH, inline="always")
def _predict_one(u, i, mu, bu, bi, P, Q):  # pragma: no cover - compiled
    """``mu + bu[u] + bi[i] + P[u] . Q[i]``, an index of -1 counting as zero bias and factors."""
    s = mu
    if u >= 0:
        s += bu[u]
    if i >= 0:
        s += bi[i]
    if u >= 0 and i >= 0:
        acc = 0.0
        for j in range(P.shape[1]):
            acc += P[u, j] * Q[i, j]
        s += acc
    return s


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH)
def predict_pairs(
    users: np.ndarray,
    items: np.ndarray,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Write ``mu + bu[u] + bi[i] + P[u] . Q[i]`` for each pair into ``out``.

    Parameters
    ----------
    users, items : ndarray of int
        Indices; -1 for unknown.
    mu : float
        Global mean.
    bu, bi : ndarray
        User and item biases.
    P, Q : ndarray of shape (n_users, k) and (n_items, k)
        Factors.
    out : ndarray of float64
        Output, one per pair.
    """
    for t in range(users.shape[0]):
        out[t] = _predict_one(users[t], items[t], mu, bu, bi, P, Q)


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH)
def sum_squared_error(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    low: float,
    high: float,
) -> float:  # pragma: no cover - compiled
    """Sum of squared errors of the clipped predictions against ``values``.

    Parameters
    ----------
    users, items : ndarray of int
        Indices; -1 for unknown.
    values : ndarray
        True ratings.
    mu, bu, bi, P, Q
        The model (see :func:`predict_pairs`).
    low, high : float
        Predictions are clipped to ``[low, high]``.

    Returns
    -------
    float
    """
    total = 0.0
    for t in range(users.shape[0]):
        e = values[t] - min(max(_predict_one(users[t], items[t], mu, bu, bi, P, Q), low), high)
        total += e * e
    return total


@numba.njit(cache=True, nogil=True, parallel=True, fastmath=_FASTMATH)
def sum_squared_error_parallel(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    low: float,
    high: float,
) -> float:  # pragma: no cover - compiled
    """:func:`sum_squared_error` over the ratings in parallel (the sum's order may vary)."""
    total = 0.0
    for t in numba.prange(users.shape[0]):
        e = values[t] - min(max(_predict_one(users[t], items[t], mu, bu, bi, P, Q), low), high)
        total += e * e
    return total


@numba.njit(cache=True, nogil=True)
def sum_squared_deviation(values: np.ndarray, centre: float) -> float:  # pragma: no cover - compiled
    """``sum((values - centre) ** 2)`` in float64, in one pass and without a temporary array."""
    total = 0.0
    for t in range(values.shape[0]):
        d = float(values[t]) - centre
        total += d * d
    return total
