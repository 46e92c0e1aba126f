"""Slow, obvious reference for :func:`factorise.kernels.als.als_half_step`.

A Python loop over rows; each row's ridge problem is built with NumPy and
solved with :func:`numpy.linalg.solve`. Same signature and results as the
compiled kernel, up to rounding (``bounds`` is accepted and ignored).
"""

from __future__ import annotations

import numpy as np

__all__ = ["als_half_step"]


def als_half_step(
    indptr: np.ndarray,
    others: np.ndarray,
    values: np.ndarray,
    mu: float,
    fixed_factors: np.ndarray,
    fixed_bias: np.ndarray,
    factors: np.ndarray,
    bias: np.ndarray,
    regularization: float,
    bias_regularization: float,
    exponent: float,
    bounds: np.ndarray,
    row_loss: np.ndarray,
) -> float:
    """Reference for :func:`factorise.kernels.als.als_half_step`."""
    k = fixed_factors.shape[1]
    for r in range(indptr.shape[0] - 1):
        idx = slice(int(indptr[r]), int(indptr[r + 1]))
        j = others[idx]
        n = j.shape[0]
        if n == 0:
            factors[r] = 0.0
            bias[r] = 0.0
            row_loss[r] = 0.0
            continue
        X = np.hstack([fixed_factors[j].astype(np.float64), np.ones((n, 1))])
        y = values[idx].astype(np.float64) - mu - fixed_bias[j].astype(np.float64)
        scale = float(n) ** exponent
        D = np.diag(np.r_[np.full(k, regularization * scale), bias_regularization * scale])
        system = X.T @ X + D
        eig = np.linalg.eigvalsh(system)
        if eig.min() <= 1e-10 * eig.max():
            row_loss[r] = np.nan
            continue
        w = np.linalg.solve(system, X.T @ y)
        factors[r] = w[:k]
        bias[r] = w[k]
        row_loss[r] = float(np.sum((y - X @ w) ** 2) + w @ D @ w)
    return float(np.sum(row_loss))
