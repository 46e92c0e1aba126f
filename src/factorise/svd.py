"""The truncated SVD, the Eckart-Young optimum, and the reconstruction loss.

By the Eckart-Young(-Mirsky) theorem the truncated SVD ``A_k`` is a best
rank-``k`` approximation of ``A`` in the Frobenius norm, and
``||A - A_k||_F^2 = sum_{i > k} sigma_i^2``. Any rank-``k`` factorisation
``U @ V.T`` therefore has ``reconstruction_loss(A, U, V) >= svd_optimum(A, k)``.

Convention at every boundary: ``(U, s, Vt)`` with ``s`` descending and the
sign of each singular pair fixed so that the entry of largest magnitude in
each column of ``U`` is positive (the first such entry on ties).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from factorise._arrays import compute_dtype, to_numpy
from factorise._validation import (
    check_finite_where,
    check_mask,
    check_rank,
    check_real_matrix,
)

__all__ = ["truncated_svd", "svd_optimum", "reconstruction_loss", "singular_values"]


def _finite_matrix(A: Any, name: str = "A") -> tuple[np.ndarray, Any]:
    array, output = to_numpy(A, name)
    check_real_matrix(array, name)
    check_finite_where(array, None, name)
    return array, output


def truncated_svd(A: Any, rank: int) -> tuple[Any, Any, Any]:
    """Return the rank-``rank`` truncated SVD of ``A`` as ``(U, s, Vt)``.

    Parameters
    ----------
    A : array_like or torch.Tensor of shape (m, n)
        A finite matrix.
    rank : int
        Number of singular triplets kept, ``1 <= rank <= min(m, n)``.

    Returns
    -------
    U : shape (m, rank)
        Left singular vectors; the largest-magnitude entry of each column is
        positive.
    s : shape (rank,)
        Singular values in descending order.
    Vt : shape (rank, n)
        Right singular vectors, as rows.

    Notes
    -----
    ``U * s @ Vt`` is a best rank-``rank`` approximation of ``A``. Computed
    by LAPACK's full SVD in float64 (float32 for float32 input); results are
    returned in the caller's array type.
    """
    array, output = _finite_matrix(A)
    rank = check_rank(rank, array.shape)
    work = np.asarray(array, dtype=compute_dtype(array))
    U, s, Vt = np.linalg.svd(work, full_matrices=False)
    U, s, Vt = U[:, :rank], s[:rank], Vt[:rank]
    pivot = np.argmax(np.abs(U), axis=0)
    signs = np.sign(U[pivot, np.arange(rank)])
    signs[signs == 0] = 1
    U = U * signs
    Vt = Vt * signs[:, None]
    return output(U), output(s), output(Vt)


def singular_values(A: Any) -> np.ndarray:
    """All singular values of ``A`` in descending order, as float64 NumPy.

    Parameters
    ----------
    A : array_like or torch.Tensor of shape (m, n)
        A finite matrix.

    Returns
    -------
    numpy.ndarray of shape (min(m, n),)
    """
    array, _ = _finite_matrix(A)
    return np.linalg.svd(np.asarray(array, dtype=np.float64), compute_uv=False)


def svd_optimum(A: Any, rank: int) -> float:
    """The Eckart-Young optimum: the least ``||A - B||_F^2`` over rank-``rank`` ``B``.

    Parameters
    ----------
    A : array_like or torch.Tensor of shape (m, n)
        A finite matrix.
    rank : int
        ``1 <= rank <= min(m, n)``.

    Returns
    -------
    float
        ``sum(sigma_i**2 for i > rank)``, computed in float64; ``inf`` when
        that sum is beyond float64's range (values of ``A`` near 1e154 and
        above), without a floating-point warning.

    Examples
    --------
    >>> round(svd_optimum([[0.3374, 0.6005, 0.1735],
    ...                    [3.3359, 0.0492, 1.8374],
    ...                    [2.9407, 0.5301, 2.2620]], 2), 5)
    0.12191
    """
    s = singular_values(A)
    rank = check_rank(rank, (s.size, s.size))
    tail = s[rank:]
    with np.errstate(over="ignore"):
        return float(tail @ tail)


def reconstruction_loss(A: Any, U: Any, V: Any, M: Any = None) -> float:
    """Squared reconstruction error ``||M o (A - U @ V.T)||_F^2``.

    Parameters
    ----------
    A : array_like or torch.Tensor of shape (m, n)
        The matrix; may hold NaN where ``M == 0``.
    U : array_like or torch.Tensor of shape (m, k)
        Row factors.
    V : array_like or torch.Tensor of shape (n, k)
        Column factors.
    M : array_like or torch.Tensor of shape (m, n), optional
        Mask: only cells with ``M != 0`` count. Default: every cell.

    Returns
    -------
    float
        The sum of squared errors over the counted cells, in float64.
    """
    a, _ = to_numpy(A, "A")
    check_real_matrix(a, "A")
    u, _ = to_numpy(U, "U")
    v, _ = to_numpy(V, "V")
    check_real_matrix(u, "U")
    check_real_matrix(v, "V")
    m, n = a.shape
    if u.shape[0] != m or v.shape[0] != n or u.shape[1] != v.shape[1]:
        raise ValueError(
            "`U` and `V` must have shapes (m, k) and (n, k) for A of shape "
            f"({m}, {n}); got U {u.shape} and V {v.shape}"
        )
    observed = None if M is None else check_mask(to_numpy(M, "M")[0], a.shape, "M")
    check_finite_where(a, observed, "A")
    check_finite_where(u, None, "U")
    check_finite_where(v, None, "V")
    residual = np.asarray(a, dtype=np.float64) - np.asarray(u, np.float64) @ np.asarray(v, np.float64).T
    if observed is not None:
        residual = residual[observed]
    return float(np.sum(residual * residual))
