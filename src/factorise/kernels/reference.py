"""Slow, obvious references for the compiled kernels, used by the tests.

Written the way the lab writes the algorithm: Python loops over rows and
columns, NumPy for the row arithmetic. Same signatures and results as the
compiled kernels in :mod:`factorise.kernels.dense_sgd`, up to rounding.
"""

from __future__ import annotations

import numpy as np

__all__ = ["sgd_dense_epoch", "sgd_masked_epoch", "predict_pairs", "sum_squared_error"]


def sgd_masked_epoch(A: np.ndarray, M: np.ndarray, U: np.ndarray, V: np.ndarray, lr: float) -> float:
    """Reference for :func:`factorise.kernels.dense_sgd.sgd_masked_epoch`."""
    m, n = A.shape
    sse = 0.0
    for r in range(m):
        for c in range(n):
            if not M[r, c]:
                continue
            e = A[r, c] - U[r] @ V[c]
            U[r] = U[r] + lr * e * V[c]
            V[c] = V[c] + lr * e * U[r]
            sse += float(e) ** 2
    return sse


def sgd_dense_epoch(A: np.ndarray, U: np.ndarray, V: np.ndarray, lr: float) -> float:
    """Reference for :func:`factorise.kernels.dense_sgd.sgd_dense_epoch`."""
    return sgd_masked_epoch(A, np.ones(A.shape, dtype=bool), U, V, lr)


def predict_pairs(users, items, mu, bu, bi, P, Q, out) -> None:  # type: ignore[no-untyped-def]
    """Reference for :func:`factorise.kernels.ratings.predict_pairs`."""
    for t, (u, i) in enumerate(zip(users, items)):
        s = float(mu)
        if u >= 0:
            s += float(bu[u])
        if i >= 0:
            s += float(bi[i])
        if u >= 0 and i >= 0:
            s += float(np.dot(P[u].astype(np.float64), Q[i].astype(np.float64)))
        out[t] = s


def sum_squared_error(users, items, values, mu, bu, bi, P, Q, low, high) -> float:  # type: ignore[no-untyped-def]
    """Reference for :func:`factorise.kernels.ratings.sum_squared_error`."""
    out = np.empty(len(users))
    predict_pairs(users, items, mu, bu, bi, P, Q, out)
    return float(np.sum((np.asarray(values, np.float64) - np.clip(out, low, high)) ** 2))
