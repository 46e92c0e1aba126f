"""The Gibbs half-sweep of Bayesian matrix factorisation, compiled with numba.

For every row ``r`` of one side (every user, or every item), given the other
side's factors and biases, the noise precision ``alpha`` and the row prior
``N(m, Lambda^-1)`` over ``x_r = [b_r, p_r]`` (bias first), the conditional of
``x_r`` is Gaussian (Salakhutdinov and Mnih, ICML 2008, with the bias in the
block)::

    z_j  = [1, q_j]                       # each rating's features
    y_j  = rating_j - mu - b_j            # its target
    S    = Lambda + alpha * sum_j z_j z_j^T
    mean = S^-1 (Lambda m + alpha * sum_j z_j y_j)
    x_r  = mean + L^-T eps_r              # S = L L^T, eps_r ~ N(0, I)

so a draw is one Cholesky factorisation and three triangular solves. The
standard normals ``eps`` are drawn by the caller, row by row, from the
model's generator: the draws do not depend on how rows are spread over
threads. Rows are independent, so the half-sweep runs in parallel over
them. Arithmetic is float64. The slow reference, in NumPy, is
:func:`factorise.kernels.bayes_reference.gibbs_half_step`.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["gibbs_half_step", "squared_error"]


@numba.njit(cache=True, nogil=True)
def _draw_row(
    start: int,
    stop: int,
    others: np.ndarray,
    values: np.ndarray,
    mu: float,
    fixed_factors: np.ndarray,
    fixed_bias: np.ndarray,
    alpha: float,
    prior_mean: np.ndarray,
    prior_precision: np.ndarray,
    eps: np.ndarray,
    S: np.ndarray,
    rhs: np.ndarray,
    z: np.ndarray,
    out: np.ndarray,
) -> bool:  # pragma: no cover - compiled
    """One row's draw into ``out`` (length k + 1); False if ``S`` is not positive definite."""
    d = prior_mean.shape[0]
    k = d - 1
    for a in range(d):
        acc = 0.0
        for b in range(d):
            S[a, b] = prior_precision[a, b]
            acc += prior_precision[a, b] * prior_mean[b]
        rhs[a] = acc
    for t in range(start, stop):
        j = others[t]
        z[0] = 1.0
        for a in range(k):
            z[a + 1] = fixed_factors[j, a]
        y = values[t] - mu - fixed_bias[j]
        for a in range(d):
            za = alpha * z[a]
            rhs[a] += za * y
            for b in range(a, d):
                S[a, b] += za * z[b]
    # Cholesky S = L L^T in the lower triangle (S's upper triangle holds the sums)
    for a in range(d):
        for b in range(a):
            S[a, b] = S[b, a]
    for a in range(d):
        total = S[a, a]
        for c in range(a):
            total -= S[a, c] * S[a, c]
        if not total > 0.0:
            return False
        S[a, a] = np.sqrt(total)
        for b in range(a + 1, d):
            total = S[b, a]
            for c in range(a):
                total -= S[b, c] * S[a, c]
            S[b, a] = total / S[a, a]
    # mean = S^-1 rhs: L w = rhs, then L^T mean = w; the draw adds L^-T eps
    for a in range(d):
        total = rhs[a]
        for c in range(a):
            total -= S[a, c] * z[c]
        z[a] = total / S[a, a]
    for a in range(d - 1, -1, -1):
        total = z[a] + eps[a]
        for c in range(a + 1, d):
            total -= S[c, a] * out[c]
        out[a] = total / S[a, a]
    return True


@numba.njit(cache=True, nogil=True, parallel=True)
def gibbs_half_step(
    indptr: np.ndarray,
    others: np.ndarray,
    values: np.ndarray,
    mu: float,
    fixed_factors: np.ndarray,
    fixed_bias: np.ndarray,
    alpha: float,
    prior_mean: np.ndarray,
    prior_precision: np.ndarray,
    eps: np.ndarray,
    factors: np.ndarray,
    bias: np.ndarray,
    failed: np.ndarray,
    bounds: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Draw every row's ``[bias, factors]`` from its conditional, in place.

    Parameters
    ----------
    indptr : ndarray of int64, shape (n_rows + 1,)
        Row ``r``'s ratings are at ``indptr[r]:indptr[r + 1]``.
    others, values : ndarray
        The other side's index (int32) and the rating (float32) of each rating.
    mu : float
        The global mean (fixed).
    fixed_factors : ndarray of float64, shape (n_other, k)
    fixed_bias : ndarray of float64, shape (n_other,)
    alpha : float
        Noise precision.
    prior_mean : ndarray of float64, shape (k + 1,)
        Prior mean of ``[bias, factors]``.
    prior_precision : ndarray of float64, shape (k + 1, k + 1)
    eps : ndarray of float64, shape (n_rows, k + 1)
        Standard normal draws, one row per row.
    factors : ndarray of float64, shape (n_rows, k)
    bias : ndarray of float64, shape (n_rows,)
        Outputs: the draws.
    failed : ndarray of bool, shape (n_rows,)
        Output: True where the conditional's precision was not positive
        definite (that row is left as it was).
    bounds : ndarray of int64, shape (n_chunks + 1,)
        Chunk ``c`` holds rows ``bounds[c]:bounds[c + 1]`` (chunks run in
        parallel, each with its own scratch); must cover all rows. The draws
        do not depend on the chunks.
    """
    d = prior_mean.shape[0]
    k = d - 1
    for c in numba.prange(bounds.shape[0] - 1):
        S = np.empty((d, d))
        rhs = np.empty(d)
        z = np.empty(d)
        out = np.empty(d)
        for r in range(bounds[c], bounds[c + 1]):
            ok = _draw_row(indptr[r], indptr[r + 1], others, values, mu, fixed_factors, fixed_bias, alpha,
                           prior_mean, prior_precision, eps[r], S, rhs, z, out)  # fmt: skip
            failed[r] = not ok
            if ok:
                bias[r] = out[0]
                for a in range(k):
                    factors[r, a] = out[a + 1]


@numba.njit(cache=True, nogil=True, parallel=True)
def squared_error(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    n_chunks: int,
) -> float:  # pragma: no cover - compiled
    """Sum of ``(r - mu - b_u - b_i - p_u . q_i)^2`` over the ratings, in float64 (for the noise precision).

    The sum is taken in ``n_chunks`` fixed chunks added in order, so it does
    not depend on the thread count.
    """
    n = users.shape[0]
    k = P.shape[1]
    partial = np.zeros(n_chunks)
    size = (n + n_chunks - 1) // n_chunks
    for c in numba.prange(n_chunks):
        acc = 0.0
        for t in range(c * size, min(n, (c + 1) * size)):
            u, i = users[t], items[t]
            pred = mu + bu[u] + bi[i]
            for a in range(k):
                pred += P[u, a] * Q[i, a]
            e = values[t] - pred
            acc += e * e
        partial[c] = acc
    total = 0.0
    for c in range(n_chunks):
        total += partial[c]
    return total
