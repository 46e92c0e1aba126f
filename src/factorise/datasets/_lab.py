"""The lab exercise's 3x3 matrix and its observation mask."""

from __future__ import annotations

import numpy as np

__all__ = ["lab_matrix", "lab_mask"]

_LAB_MATRIX = (
    (0.3374, 0.6005, 0.1735),
    (3.3359, 0.0492, 1.8374),
    (2.9407, 0.5301, 2.2620),
)
_LAB_MASK = (
    (1, 1, 1),
    (0, 1, 1),
    (1, 0, 1),
)


def lab_matrix() -> np.ndarray:
    """The lab's 3x3 matrix (float64, a fresh copy).

    Its singular values are about 5.3339, 0.6959 and 0.3492, so the best
    rank-2 approximation leaves a squared error of 0.3492**2 = 0.12191.

    Returns
    -------
    numpy.ndarray of shape (3, 3)
    """
    return np.array(_LAB_MATRIX, dtype=np.float64)


def lab_mask() -> np.ndarray:
    """The lab's observation mask: cells (1, 0) and (2, 1) are missing.

    Returns
    -------
    numpy.ndarray of bool, shape (3, 3)
    """
    return np.array(_LAB_MASK, dtype=bool)
