"""Slow NumPy references of :mod:`factorise.kernels.bayes`, for the tests."""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular

__all__ = ["conditional", "gibbs_half_step", "squared_error"]


def conditional(
    others: np.ndarray, values: np.ndarray, mu: float, fixed_factors: np.ndarray, fixed_bias: np.ndarray,
    alpha: float, prior_mean: np.ndarray, prior_precision: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The Gaussian conditional of one row's ``[bias, factors]``: (mean, precision)."""
    Z = np.column_stack([np.ones(others.shape[0]), fixed_factors[others]])
    y = values.astype(np.float64) - mu - fixed_bias[others]
    precision = prior_precision + alpha * Z.T @ Z
    mean = np.linalg.solve(precision, prior_precision @ prior_mean + alpha * Z.T @ y)
    return mean, precision


def gibbs_half_step(
    indptr: np.ndarray, others: np.ndarray, values: np.ndarray, mu: float, fixed_factors: np.ndarray,
    fixed_bias: np.ndarray, alpha: float, prior_mean: np.ndarray, prior_precision: np.ndarray, eps: np.ndarray,
    factors: np.ndarray, bias: np.ndarray, failed: np.ndarray, bounds: np.ndarray | None = None,
) -> None:  # fmt: skip
    """Row by row: ``x = mean + L^-T eps`` with ``precision = L L^T``."""
    for r in range(indptr.shape[0] - 1):
        sl = slice(indptr[r], indptr[r + 1])
        mean, precision = conditional(others[sl], values[sl], mu, fixed_factors, fixed_bias, alpha, prior_mean,
                                      prior_precision)  # fmt: skip
        try:
            L = np.linalg.cholesky(precision)
        except np.linalg.LinAlgError:
            failed[r] = True
            continue
        failed[r] = False
        x = mean + solve_triangular(L.T, eps[r], lower=False)
        bias[r], factors[r] = x[0], x[1:]


def squared_error(users, items, values, mu, bu, bi, P, Q, n_chunks):  # type: ignore[no-untyped-def]
    pred = mu + bu[users] + bi[items] + np.einsum("ij,ij->i", P[users], Q[items])
    return float(np.sum((values - pred) ** 2))
