"""Slow NumPy references of :mod:`factorise.kernels.bayes`, for the tests."""

from __future__ import annotations

import numpy as np
from scipy.linalg import solve_triangular

__all__ = ["conditional", "gibbs_half_step", "implicit_step", "implicit_transform", "row_squared_errors", "squared_error"]


def conditional(
    others: np.ndarray, values: np.ndarray, mu: float, fixed_factors: np.ndarray, fixed_bias: np.ndarray,
    alpha: float | np.ndarray, prior_mean: np.ndarray, prior_precision: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The Gaussian conditional of one row's ``[bias, factors]``: (mean, precision).

    ``alpha`` is the noise precision, one for all the row's ratings or one per rating.
    """
    Z = np.column_stack([np.ones(others.shape[0]), fixed_factors[others]])
    y = values.astype(np.float64) - mu - fixed_bias[others]
    w = np.broadcast_to(np.asarray(alpha, dtype=np.float64), y.shape)
    precision = prior_precision + (Z * w[:, None]).T @ Z
    mean = np.linalg.solve(precision, prior_precision @ prior_mean + Z.T @ (w * y))
    return mean, precision


def gibbs_half_step(
    indptr: np.ndarray, others: np.ndarray, values: np.ndarray, mu: float, fixed_factors: np.ndarray,
    fixed_bias: np.ndarray, alpha: float, row_weight: np.ndarray, other_weight: np.ndarray, prior_mean: np.ndarray,
    prior_precision: np.ndarray, prior_shift: np.ndarray, eps: np.ndarray, factors: np.ndarray, bias: np.ndarray,
    failed: np.ndarray, bounds: np.ndarray | None = None,
) -> None:  # fmt: skip
    """Row by row: ``x = mean + L^-T eps`` with ``precision = L L^T``; row ``r``'s prior mean ``prior_mean + prior_shift[r]``."""
    for r in range(indptr.shape[0] - 1):
        sl = slice(indptr[r], indptr[r + 1])
        row_mean = prior_mean + prior_shift[r] if prior_shift.shape[0] else prior_mean
        w = alpha * row_weight[r] * other_weight[others[sl]] if row_weight.shape[0] else alpha
        mean, precision = conditional(others[sl], values[sl], mu, fixed_factors, fixed_bias, w, row_mean,
                                      prior_precision)  # fmt: skip
        try:
            L = np.linalg.cholesky(precision)
        except np.linalg.LinAlgError:
            failed[r] = True
            continue
        failed[r] = False
        x = mean + solve_triangular(L.T, eps[r], lower=False)
        bias[r], factors[r] = x[0], x[1:]


def implicit_transform(precision: np.ndarray, implicit_precision: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(G, D)`` with ``(implicit_precision + s precision)^-1 = G^T diag(1 / (1 + s D)) G``, each eigenvector signed alike."""
    L = np.linalg.cholesky(implicit_precision)
    Linv = solve_triangular(L, np.eye(L.shape[0]), lower=True)
    D, V = np.linalg.eigh(Linv @ precision @ Linv.T)
    V = V * np.where(V[np.abs(V).argmax(axis=0), np.arange(V.shape[1])] >= 0, 1.0, -1.0)
    return V.T @ Linv, D


def implicit_step(
    indptr: np.ndarray, members: np.ndarray, weight: np.ndarray, factors: np.ndarray, bias: np.ndarray,
    mean: np.ndarray, precision: np.ndarray, implicit_mean: np.ndarray, implicit_precision: np.ndarray,
    eps: np.ndarray, implicit: np.ndarray, shift: np.ndarray,
) -> bool:  # fmt: skip
    """Implicit row by implicit row: the Gaussian regression of the explicit rows on ``y_j``, shifts recomputed.

    The mean by a dense solve; the noise ``G^T diag(1 / sqrt(1 + s D)) eps``, of covariance ``S^-1``.
    """
    try:
        G, D = implicit_transform(precision, implicit_precision)
    except np.linalg.LinAlgError:
        return False
    X = np.column_stack([bias, factors])
    for j in range(indptr.shape[0] - 1):
        rows = members[indptr[j] : indptr[j + 1]]
        w = weight[rows]
        # the part of each member's row that y_j explains: x_u - m - (w_u sum_{l != j} y_l)
        target = X[rows] - mean - shift[rows] + np.outer(w, implicit[j])
        S = implicit_precision + (w @ w) * precision
        rhs = implicit_precision @ implicit_mean + precision @ (w @ target)
        new = np.linalg.solve(S, rhs) + G.T @ (eps[j] / np.sqrt(1.0 + (w @ w) * D))
        shift[rows] += np.outer(w, new - implicit[j])
        implicit[j] = new
    return True


def row_squared_errors(indptr, others, values, mu, factors, bias, fixed_factors, fixed_bias, other_weight, out):  # type: ignore[no-untyped-def]
    """Row by row, the (weighted) sum of squared errors of its ratings."""
    for r in range(indptr.shape[0] - 1):
        sl = slice(indptr[r], indptr[r + 1])
        j = others[sl]
        e = values[sl] - (mu + bias[r] + fixed_bias[j] + fixed_factors[j] @ factors[r])
        w = other_weight[j] if other_weight.shape[0] else 1.0
        out[r] = float(np.sum(w * e * e))


def squared_error(users, items, values, mu, bu, bi, P, Q, n_chunks):  # type: ignore[no-untyped-def]
    pred = mu + bu[users] + bi[items] + np.einsum("ij,ij->i", P[users], Q[items])
    return float(np.sum((values - pred) ** 2))
