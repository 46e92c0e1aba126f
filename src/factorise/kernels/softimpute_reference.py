"""Slow, obvious reference for :func:`factorise.kernels.softimpute.observed_residuals`.

Forms the dense product ``A @ B.T`` (fine for the small test problems it is
meant for) and reads the observed cells from it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["observed_residuals"]


def observed_residuals(
    rows: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
    A: np.ndarray,
    B: np.ndarray,
    out: np.ndarray,
) -> float:
    """Reference for :func:`factorise.kernels.softimpute.observed_residuals`."""
    Z = np.asarray(A, dtype=np.float64) @ np.asarray(B, dtype=np.float64).T
    out[:] = np.asarray(values, dtype=np.float64) - Z[rows, cols]
    return float(np.sum(out**2))
