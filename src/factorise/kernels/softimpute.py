"""Residuals of a low-rank matrix at the observed cells, compiled with numba.

SoftImpute keeps its iterate ``Z = A B^T`` as factors and needs the sparse
residual ``P_Omega(X - Z)``: for each observed cell ``(u, i)`` the value
``x_ui - A[u] . B[i]``. Computing it costs one dot product per observed cell,
never the dense ``Z``.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["observed_residuals"]


@numba.njit(cache=True, nogil=True)
def observed_residuals(
    rows: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
    A: np.ndarray,
    B: np.ndarray,
    out: np.ndarray,
) -> float:  # pragma: no cover - compiled
    """Write ``values[t] - A[rows[t]] . B[cols[t]]`` into ``out[t]``.

    Parameters
    ----------
    rows, cols : ndarray of int
        Row and column index of each observed cell.
    values : ndarray
        The observed values.
    A : ndarray of shape (n_rows, r)
        Left factor (``U diag(d)``).
    B : ndarray of shape (n_cols, r)
        Right factor (``V``).
    out : ndarray of float64
        Output, one residual per cell.

    Returns
    -------
    float
        The sum of the squared residuals.
    """
    r = A.shape[1]
    total = 0.0
    for t in range(rows.shape[0]):
        u = rows[t]
        i = cols[t]
        acc = 0.0
        for j in range(r):
            acc += A[u, j] * B[i, j]
        e = values[t] - acc
        out[t] = e
        total += e * e
    return total
