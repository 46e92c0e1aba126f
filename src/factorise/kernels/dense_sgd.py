"""Per-entry SGD sweeps over a dense matrix (the lab's algorithm), compiled with numba.

For each row ``r`` and then each column ``c`` (row-major order)::

    e = A[r, c] - U[r] . V[c]
    U[r] += lr * e * V[c]
    V[c] += lr * e * U[r]        # with the row of U just updated

All arithmetic stays in the dtype of the factors (float32 or float64); the
caller passes ``lr`` already cast to that dtype. The returned progress measure
is the sum of the squared errors ``e`` seen during the sweep (each taken
before its update), accumulated in float64.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["sgd_dense_epoch", "sgd_masked_epoch"]


@numba.njit(cache=True, nogil=True)
def _update(a, U, V, r, c, lr):  # pragma: no cover - compiled
    k = U.shape[1]
    pred = U[r, 0] * V[c, 0]
    for j in range(1, k):
        pred += U[r, j] * V[c, j]
    e = a - pred
    g = lr * e
    for j in range(k):
        U[r, j] += g * V[c, j]
    for j in range(k):
        V[c, j] += g * U[r, j]
    return e


@numba.njit(cache=True, nogil=True)
def sgd_dense_epoch(A: np.ndarray, U: np.ndarray, V: np.ndarray, lr: float) -> float:  # pragma: no cover
    """One SGD sweep over every cell of ``A``, updating ``U`` and ``V`` in place.

    Parameters
    ----------
    A : ndarray of shape (m, n)
        The matrix, same dtype as the factors.
    U : ndarray of shape (m, k)
        Row factors, updated in place.
    V : ndarray of shape (n, k)
        Column factors, updated in place.
    lr : float
        Learning rate, of the factors' dtype.

    Returns
    -------
    float
        Sum of squared pre-update errors over the sweep.
    """
    m, n = A.shape
    sse = 0.0
    for r in range(m):
        for c in range(n):
            e = _update(A[r, c], U, V, r, c, lr)
            sse += e * e
    return sse


@numba.njit(cache=True, nogil=True)
def sgd_masked_epoch(
    A: np.ndarray, M: np.ndarray, U: np.ndarray, V: np.ndarray, lr: float
) -> float:  # pragma: no cover
    """One SGD sweep over the cells of ``A`` where ``M`` is true.

    Cells where ``M`` is false are never read.

    Parameters
    ----------
    A : ndarray of shape (m, n)
        The matrix, same dtype as the factors.
    M : ndarray of bool, shape (m, n)
        True where the cell is observed.
    U : ndarray of shape (m, k)
        Row factors, updated in place.
    V : ndarray of shape (n, k)
        Column factors, updated in place.
    lr : float
        Learning rate, of the factors' dtype.

    Returns
    -------
    float
        Sum of squared pre-update errors over the observed cells.
    """
    m, n = A.shape
    sse = 0.0
    for r in range(m):
        for c in range(n):
            if M[r, c]:
                e = _update(A[r, c], U, V, r, c, lr)
                sse += e * e
    return sse
