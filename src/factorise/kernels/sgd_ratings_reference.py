"""Slow, obvious reference for :mod:`factorise.kernels.sgd_ratings`, used by the tests.

The biased-MF SGD sweep written with a Python loop over the ratings and NumPy
row arithmetic. Same signature and results as the compiled kernel, up to
rounding (NumPy may sum the dot product in another order).
"""

from __future__ import annotations

import numpy as np

__all__ = ["sgd_ratings_epoch"]


def sgd_ratings_epoch(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    order: np.ndarray,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    lr: float,
    reg: float,
    lr_bias: float,
    reg_bias: float,
) -> float:
    """Reference for :func:`factorise.kernels.sgd_ratings.sgd_ratings_epoch`."""
    sse = 0.0
    for idx in order:
        u, i = users[idx], items[idx]
        e = values[idx] - (mu + bu[u] + bi[i] + P[u] @ Q[i])
        sse += float(e) ** 2
        bu[u] += lr_bias * (e - reg_bias * bu[u])
        bi[i] += lr_bias * (e - reg_bias * bi[i])
        p_old = P[u].copy()
        P[u] += lr * (e * Q[i] - reg * P[u])
        Q[i] += lr * (e * p_old - reg * Q[i])
    return sse
