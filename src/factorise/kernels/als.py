"""One half-step of biased alternating least squares, compiled with numba.

The model predicts ``mu + b_u + b_i + p_u . q_i``. A half-step fixes one side
(say the items: ``q_i``, ``b_i``) and, for every row ``r`` of the other side
(a user), solves the ridge regression for ``w_r = [p_r, b_r]`` against the
features ``x_j = [q_j, 1]`` and targets ``y_j = r_rj - mu - b_j`` of the
row's ratings::

    minimise  sum_j (y_j - x_j . w_r)^2 + c_r * (lam * |p_r|^2 + lam_b * b_r^2)

with ``c_r = n_r ** alpha``, ``n_r`` the row's number of ratings: ``alpha = 1``
is the weighted-lambda form of Zhou et al. (2008), ``alpha = 0`` plain ridge
penalties. The solution satisfies the normal equations ``(X^T X + D) w = X^T y`` with
``D = c_r * diag(lam, ..., lam, lam_b)``; the ``(k+1) x (k+1)`` system is
solved by a Cholesky factorisation written out in loops (no allocation per
row, no LAPACK call, no exception inside the parallel region). The Gram
matrix is accumulated from gathered, transposed blocks of at most
``_BLOCK`` of the row's ratings (features and target together), so ``X^T X``,
``X^T y`` and ``y^T y`` come out of one pass in bounded memory.

Rows are independent: the kernel runs ``prange`` over chunks of rows given by
``bounds`` (the caller balances them by cost and chooses their number, one per
thread), and each row is computed by the same sequence of operations whatever
the chunking, so the result does not depend on the number of threads.
Arithmetic is float64; the solutions are written into the caller's arrays
(float32 for the models).
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["als_half_step"]

#: A Cholesky pivot at most this fraction of its original diagonal entry
#: marks the system as singular.
_PIVOT_RTOL = 1e-10
#: Ratings gathered at a time when building a row's Gram matrix.
_BLOCK = 1024


@numba.njit(cache=True, nogil=True, fastmath={"contract"})
def _cholesky_solve(
    A: np.ndarray, d: int, rhs: np.ndarray, w: np.ndarray, scratch: np.ndarray
) -> bool:  # pragma: no cover - compiled
    """Solve ``A[:d, :d] w = rhs`` for symmetric positive definite ``A[:d, :d]`` given by its upper triangle.

    ``A``'s upper triangle is overwritten by ``R`` with ``A = R^T R``
    (right-looking Cholesky; the current row of ``R`` is copied into
    ``scratch[d:2d]`` so the trailing update reads a separate buffer).
    ``scratch`` has length ``2 d``. Returns False, leaving ``w``
    undefined, when a pivot is not above ``_PIVOT_RTOL`` times its original
    diagonal entry (``A`` is not positive definite, or is so close to
    singular that rounding decides).
    """
    for j in range(d):
        scratch[j] = A[j, j]
    v = scratch[d:]
    for j in range(d):
        pivot = A[j, j]
        if not pivot > _PIVOT_RTOL * scratch[j]:  # also catches NaN
            return False
        rjj = np.sqrt(pivot)
        A[j, j] = rjj
        inv = 1.0 / rjj
        for i in range(j + 1, d):
            A[j, i] *= inv
            v[i] = A[j, i]
        for i in range(j + 1, d):
            ri = v[i]
            # zero-based views: the index is provably >= 0, so the loop vectorises
            row = A[i, i:d]
            vi = v[i:d]
            for t in range(d - i):
                row[t] -= ri * vi[t]
    # forward: R^T z = rhs  (z stored in w)
    for i in range(d):
        s = rhs[i]
        for p in range(i):
            s -= A[p, i] * w[p]
        w[i] = s / A[i, i]
    # backward: R w = z
    for i in range(d - 1, -1, -1):
        s = w[i]
        for p in range(i + 1, d):
            s -= A[i, p] * w[p]
        w[i] = s / A[i, i]
    return True


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _gram_upper(Xt: np.ndarray, n: int, G: np.ndarray) -> None:  # pragma: no cover - compiled
    """Add the upper triangle of ``Xt[:, :n] @ Xt[:, :n].T`` to ``G``, four rows of ``G`` at a time.

    The reassociation flag lets LLVM vectorise the dot products; the result
    is still the same on every call for the same inputs.
    """
    d = G.shape[0]
    a = 0
    while a + 4 <= d:
        for b in range(a, d):
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            s3 = 0.0
            for t in range(n):
                xb = Xt[b, t]
                s0 += Xt[a, t] * xb
                s1 += Xt[a + 1, t] * xb
                s2 += Xt[a + 2, t] * xb
                s3 += Xt[a + 3, t] * xb
            G[a, b] += s0
            G[a + 1, b] += s1
            G[a + 2, b] += s2
            G[a + 3, b] += s3
        a += 4
    for a2 in range(a, d):
        for b in range(a2, d):
            s0 = 0.0
            for t in range(n):
                s0 += Xt[a2, t] * Xt[b, t]
            G[a2, b] += s0


@numba.njit(cache=True, nogil=True)
def _solve_rows(
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
    first: int,
    stop: int,
    row_loss: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Rows ``first:stop`` of :func:`als_half_step` (serial; compiled on its own so it vectorises)."""
    k = fixed_factors.shape[1]
    d = k + 1
    n_max = 0
    for r in range(first, stop):
        n_max = max(n_max, indptr[r + 1] - indptr[r])
    Xt = np.empty((d + 1, min(n_max, _BLOCK)))
    G = np.empty((d + 1, d + 1))
    rhs = np.empty(d)
    w = np.empty(d)
    scratch = np.empty(2 * d)
    for r in range(first, stop):
        start = indptr[r]
        n = indptr[r + 1] - start
        if n == 0:
            for a in range(k):
                factors[r, a] = 0.0
            bias[r] = 0.0
            row_loss[r] = 0.0
            continue
        # rows of Xt: the k fixed factors, the constant 1, the target y
        G[:, :] = 0.0
        for block in range(start, start + n, _BLOCK):
            size = min(_BLOCK, start + n - block)
            for t in range(size):
                j = others[block + t]
                for a in range(k):
                    Xt[a, t] = fixed_factors[j, a]
                Xt[k, t] = 1.0
                Xt[d, t] = values[block + t] - mu - fixed_bias[j]
            _gram_upper(Xt, size, G)
        scale = float(n) ** exponent
        for a in range(k):
            G[a, a] += regularization * scale
        G[k, k] += bias_regularization * scale
        for a in range(d):
            rhs[a] = G[a, d]
        if not _cholesky_solve(G, d, rhs, w, scratch):
            row_loss[r] = np.nan
            continue
        # at the solution, |y - Xw|^2 + w^T D w = y^T y - w^T X^T y
        fit = 0.0
        for a in range(d):
            fit += w[a] * rhs[a]
        for a in range(k):
            factors[r, a] = w[a]
        bias[r] = w[k]
        row_loss[r] = G[d, d] - fit


@numba.njit(cache=True, nogil=True, parallel=True)
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
) -> float:  # pragma: no cover - compiled
    """Solve every row's ridge problem, writing ``factors`` and ``bias`` in place.

    Parameters
    ----------
    indptr : ndarray of int64, shape (n_rows + 1,)
        Row ``r``'s ratings are at ``indptr[r]:indptr[r + 1]``.
    others : ndarray of int32
        Index on the fixed side (an item for a user row) of each rating.
    values : ndarray of float32
        The ratings.
    mu : float
        Global mean.
    fixed_factors : ndarray of float64, shape (n_other, k)
        Factors of the fixed side.
    fixed_bias : ndarray of float64, shape (n_other,)
        Biases of the fixed side.
    factors : ndarray, shape (n_rows, k)
        Output: the solved factors.
    bias : ndarray, shape (n_rows,)
        Output: the solved biases.
    regularization, bias_regularization : float
        ``lam`` and ``lam_b`` (see the module docstring).
    exponent : float
        ``alpha``: both penalties are multiplied by ``n_r ** alpha``.
    bounds : ndarray of int64, shape (n_chunks + 1,)
        Chunk ``c`` holds rows ``bounds[c]:bounds[c + 1]``; must cover all rows.
    row_loss : ndarray of float64, shape (n_rows,)
        Output: each row's objective at its solution (squared error plus
        penalty); NaN where the system was not positive definite (that row's
        factors and bias are left unchanged). A row without ratings gets zero
        factors, zero bias and loss 0.

    Returns
    -------
    float
        The sum of ``row_loss`` (NaN if any row failed).
    """
    n_chunks = bounds.shape[0] - 1
    for c in numba.prange(n_chunks):
        _solve_rows(
            indptr,
            others,
            values,
            mu,
            fixed_factors,
            fixed_bias,
            factors,
            bias,
            regularization,
            bias_regularization,
            exponent,
            bounds[c],
            bounds[c + 1],
            row_loss,
        )
    total = 0.0
    for r in range(row_loss.shape[0]):
        total += row_loss[r]
    return total
