"""The sampled residual of :func:`factorise.gd_factorise_masked`'s sparse engine, compiled with numba.

``out[t] = values[t] - U[rows[t]] . V[cols[t]]`` for every observed cell
``t``: the error matrix at its non-zero cells, without gathering the rows
into temporaries first (NumPy's ``einsum`` over ``U[rows]`` and ``V[cols]``
spends most of its time copying them). The slow reference is that NumPy
expression (:func:`sampled_residual_reference`).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["sampled_residual", "sampled_residual_reference"]


@numba.njit(cache=True, nogil=True)
def sampled_residual(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, U: np.ndarray, V: np.ndarray, out: np.ndarray
) -> None:  # pragma: no cover - compiled
    """``out[t] = values[t] - U[rows[t]] . V[cols[t]]`` (float arithmetic in ``out``'s dtype)."""
    k = U.shape[1]
    for t in range(rows.shape[0]):
        r, c = rows[t], cols[t]
        dot = U[r, 0] * V[c, 0]
        for a in range(1, k):
            dot += U[r, a] * V[c, a]
        out[t] = values[t] - dot


def sampled_residual_reference(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, U: np.ndarray, V: np.ndarray, out: np.ndarray
) -> None:
    """The same in NumPy."""
    out[:] = values - np.einsum("ij,ij->i", U[rows], V[cols])
