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

#: Ratings gathered at a time by a row's draw (its scratch: (k + 4) x _TILE float64).
_TILE = 128
#: The step of LLVM's vectorised sum loops (4 doubles a vector, 4 interleaved): tiles are padded to a multiple of it.
_PAD = 16
#: Reassociation lets LLVM vectorise the sums over a tile (each row's sums still in one fixed order: the draws do not
#: depend on the thread count)
_FASTMATH = {"reassoc", "contract"}

__all__ = ["gibbs_half_step", "implicit_step", "implicit_transform", "row_squared_errors", "squared_error"]


@numba.njit(cache=True, nogil=True)
def _cholesky(S: np.ndarray) -> bool:  # pragma: no cover - compiled
    """Overwrite the lower triangle of ``S`` with ``L``, ``S = L L^T`` (reads the lower triangle); False if not PD."""
    d = S.shape[0]
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
    return True


@numba.njit(cache=True, nogil=True)
def _gaussian_draw(
    S: np.ndarray, rhs: np.ndarray, eps: np.ndarray, w: np.ndarray, out: np.ndarray
) -> bool:  # pragma: no cover - compiled
    """``out = S^-1 rhs + L^-T eps``, a draw of ``N(S^-1 rhs, S^-1)``, with ``S = L L^T``.

    Reads the lower triangle of ``S`` and overwrites it with ``L`` (Cholesky,
    in place); ``w`` is scratch. False, and ``out`` untouched, if ``S`` is not
    positive definite.
    """
    d = rhs.shape[0]
    if not _cholesky(S):
        return False
    # mean = S^-1 rhs: L w = rhs, then L^T mean = w; the draw adds L^-T eps
    for a in range(d):
        total = rhs[a]
        for c in range(a):
            total -= S[a, c] * w[c]
        w[a] = total / S[a, a]
    for a in range(d - 1, -1, -1):
        total = w[a] + eps[a]
        for c in range(a + 1, d):
            total -= S[c, a] * out[c]
        out[a] = total / S[a, a]
    return True


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH)
def _draw_row(
    start: int,
    stop: int,
    others: np.ndarray,
    values: np.ndarray,
    mu: float,
    fixed_factors: np.ndarray,
    fixed_bias: np.ndarray,
    alpha: float,
    other_weight: np.ndarray,
    prior_mean: np.ndarray,
    prior_precision: np.ndarray,
    shift: np.ndarray,
    eps: np.ndarray,
    S: np.ndarray,
    rhs: np.ndarray,
    z: np.ndarray,
    out: np.ndarray,
    tile_z: np.ndarray,
    tile_w: np.ndarray,
    tile_y: np.ndarray,
    tile_wz: np.ndarray,
) -> bool:  # pragma: no cover - compiled
    """One row's draw into ``out`` (length k + 1); False if ``S`` is not positive definite.

    The row's prior mean is ``prior_mean + shift`` (``shift`` of length 0: none).
    """
    d = prior_mean.shape[0]
    k = d - 1
    shifted = shift.shape[0] > 0
    weighted = other_weight.shape[0] > 0
    for a in range(d):
        acc = 0.0
        for b in range(d):
            S[a, b] = prior_precision[a, b]
            m = prior_mean[b] + shift[b] if shifted else prior_mean[b]
            acc += prior_precision[a, b] * m
        rhs[a] = acc
    # the sums over the ratings, a tile at a time: the tile's features gathered feature-major, so that each entry
    # of S is a dot product over the tile's ratings (contiguous: vectorised)
    for t0 in range(start, stop, _TILE):
        n = min(stop, t0 + _TILE) - t0
        for tt in range(n):
            j = others[t0 + tt]
            tile_w[tt] = alpha * other_weight[j] if weighted else alpha
            tile_y[tt] = values[t0 + tt] - mu - fixed_bias[j]
            tile_z[0, tt] = 1.0
            for a in range(k):
                tile_z[a + 1, tt] = fixed_factors[j, a]
        # zero ratings pad the tile to a multiple of the vectorised loop's step: no scalar remainder loop runs
        padded = min(_TILE, (n + _PAD - 1) // _PAD * _PAD)
        for tt in range(n, padded):
            tile_w[tt] = 0.0
            tile_y[tt] = 0.0
            for a in range(d):
                tile_z[a, tt] = 0.0
        for a in range(d):
            acc = 0.0
            for tt in range(padded):
                wz = tile_w[tt] * tile_z[a, tt]
                tile_wz[tt] = wz
                acc += wz * tile_y[tt]
            rhs[a] += acc
            for b in range(a, d):
                acc = 0.0
                for tt in range(padded):
                    acc += tile_wz[tt] * tile_z[b, tt]
                S[a, b] += acc
    for a in range(d):  # the lower triangle from the upper, which holds the sums
        for b in range(a):
            S[a, b] = S[b, a]
    return _gaussian_draw(S, rhs, eps, z, out)


@numba.njit(cache=True, nogil=True, parallel=True)
def gibbs_half_step(
    indptr: np.ndarray,
    others: np.ndarray,
    values: np.ndarray,
    mu: float,
    fixed_factors: np.ndarray,
    fixed_bias: np.ndarray,
    alpha: float,
    row_weight: np.ndarray,
    other_weight: np.ndarray,
    prior_mean: np.ndarray,
    prior_precision: np.ndarray,
    prior_shift: np.ndarray,
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
    row_weight, other_weight : ndarray of float64, shape (n_rows,) and (n_other,), or both of length 0
        The heteroscedastic noise: rating ``(r, j)`` has precision ``alpha *
        row_weight[r] * other_weight[j]``; length 0: ``alpha`` for all.
    prior_mean : ndarray of float64, shape (k + 1,)
        Prior mean of ``[bias, factors]``.
    prior_precision : ndarray of float64, shape (k + 1, k + 1)
    prior_shift : ndarray of float64, shape (n_rows, k + 1) or (0, k + 1)
        Row ``r``'s prior mean is ``prior_mean + prior_shift[r]`` (the
        implicit model's sums of implicit factors); no rows: no shift.
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
    shifted = prior_shift.shape[0] > 0
    weighted = row_weight.shape[0] > 0
    none = np.empty(0)
    for c in numba.prange(bounds.shape[0] - 1):
        S = np.empty((d, d))
        rhs = np.empty(d)
        z = np.empty(d)
        out = np.empty(d)
        tile_z = np.empty((d, _TILE))
        tile_w = np.empty(_TILE)
        tile_y = np.empty(_TILE)
        tile_wz = np.empty(_TILE)
        for r in range(bounds[c], bounds[c + 1]):
            shift = prior_shift[r] if shifted else none
            row_alpha = alpha * row_weight[r] if weighted else alpha
            ok = _draw_row(indptr[r], indptr[r + 1], others, values, mu, fixed_factors, fixed_bias, row_alpha,
                           other_weight, prior_mean, prior_precision, shift, eps[r], S, rhs, z, out, tile_z, tile_w,
                           tile_y, tile_wz)  # fmt: skip
            failed[r] = not ok
            if ok:
                bias[r] = out[0]
                for a in range(k):
                    factors[r, a] = out[a + 1]


@numba.njit(cache=True, nogil=True)
def implicit_transform(
    precision: np.ndarray, implicit_precision: np.ndarray, G: np.ndarray, D: np.ndarray
) -> bool:  # pragma: no cover - compiled
    """``G`` and ``D`` with ``(implicit_precision + s * precision)^-1 = G^T diag(1 / (1 + s D)) G`` for every ``s >= 0``.

    With ``implicit_precision = L L^T`` (Cholesky) and ``L^-1 precision L^-T =
    V diag(D) V^T`` (symmetric eigendecomposition), ``G = V^T L^-1``; each
    column of ``V`` is signed so that its largest entry is positive, so ``G``
    is unique. ``D >= 0`` up to rounding. False if ``implicit_precision`` is
    not positive definite.
    """
    d = precision.shape[0]
    L = implicit_precision.copy()
    if not _cholesky(L):
        return False
    Linv = np.zeros((d, d))  # L^-1, lower triangular, column by column
    for c in range(d):
        Linv[c, c] = 1.0 / L[c, c]
        for r in range(c + 1, d):
            acc = 0.0
            for e in range(c, r):
                acc -= L[r, e] * Linv[e, c]
            Linv[r, c] = acc / L[r, r]
    M = Linv @ precision @ Linv.T
    M = (M + M.T) / 2.0
    values, V = np.linalg.eigh(M)
    for c in range(d):
        top = 0
        for r in range(1, d):
            if abs(V[r, c]) > abs(V[top, c]):
                top = r
        sign = 1.0 if V[top, c] >= 0.0 else -1.0
        D[c] = values[c]
        for r in range(d):
            acc = 0.0
            for e in range(r, d):
                acc += V[e, c] * Linv[e, r]
            G[c, r] = sign * acc
    return True


@numba.njit(cache=True, nogil=True)
def implicit_step(
    indptr: np.ndarray,
    members: np.ndarray,
    weight: np.ndarray,
    factors: np.ndarray,
    bias: np.ndarray,
    mean: np.ndarray,
    precision: np.ndarray,
    implicit_mean: np.ndarray,
    implicit_precision: np.ndarray,
    eps: np.ndarray,
    implicit: np.ndarray,
    shift: np.ndarray,
) -> bool:  # pragma: no cover - compiled
    """Draw every implicit row ``y_j`` in turn from its conditional given the others, in place.

    The explicit rows ``x_u = [b_u, p_u]`` of one side have the prior
    ``x_u ~ N(m + w_u * sum_{j in N(u)} y_j, Lambda^-1)`` (the implicit model:
    ``shift[u]`` holds ``w_u * sum_j y_j``), and ``y_j ~ N(m_y, Lambda_y^-1)``.
    Given the ``x_u``, the conditional of ``y_j`` is Gaussian::

        S    = Lambda_y + (sum_u w_u^2) Lambda                # u in M(j): rows whose sums hold y_j
        mean = S^-1 (Lambda_y m_y + Lambda sum_u w_u (x_u - m - shift_u + w_u y_j))

    and after each draw the shifts of ``M(j)`` are brought up to date, so the
    next row is drawn given this one (a Gibbs sweep over the implicit rows, in
    order: serial, so it does not depend on the thread count).

    Every ``S`` is ``Lambda_y + s Lambda`` for a scalar ``s``, so one
    factorisation serves them all (:func:`implicit_transform`: ``S^-1 = G^T
    diag(1 / (1 + s D)) G``): a row's draw is ``G^T (t / (1 + s D) + eps /
    sqrt(1 + s D))`` with ``t = G rhs``, two ``d x d`` products instead of a
    Cholesky factorisation each.

    Parameters
    ----------
    indptr : ndarray of int64, shape (n_implicit + 1,)
    members : ndarray of int32
        ``M(j)`` is ``members[indptr[j]:indptr[j + 1]]``.
    weight : ndarray of float64, shape (n_rows,)
        ``w_u`` (``1 / sqrt(|N(u)|)``).
    factors : ndarray of float64, shape (n_rows, k)
    bias : ndarray of float64, shape (n_rows,)
        The explicit rows ``x_u = [b_u, p_u]`` (fixed).
    mean : ndarray of float64, shape (k + 1,)
    precision : ndarray of float64, shape (k + 1, k + 1)
        ``m`` and ``Lambda`` of the explicit rows' prior.
    implicit_mean : ndarray of float64, shape (k + 1,)
    implicit_precision : ndarray of float64, shape (k + 1, k + 1)
        ``m_y`` and ``Lambda_y``.
    eps : ndarray of float64, shape (n_implicit, k + 1)
        Standard normal draws.
    implicit : ndarray of float64, shape (n_implicit, k + 1)
    shift : ndarray of float64, shape (n_rows, k + 1)
        In and out: the ``y_j`` and the shifts.

    Returns
    -------
    bool
        False if a conditional's precision was not positive definite (the
        remaining rows are left as they were).
    """
    d = mean.shape[0]
    G = np.empty((d, d))
    D = np.empty(d)
    if not implicit_transform(precision, implicit_precision, G, D):
        return False
    # t = G rhs = G Lambda_y m_y + (G Lambda) a: both constant parts computed once
    H = np.zeros((d, d))
    g0 = np.zeros(d)
    for r in range(d):
        for c in range(d):
            acc = 0.0
            acc_y = 0.0
            for e in range(d):
                acc += G[r, e] * precision[e, c]
                acc_y += G[r, e] * implicit_precision[e, c]
            H[r, c] = acc
            g0[r] += acc_y * implicit_mean[c]
    a = np.empty(d)
    t = np.empty(d)
    w = np.empty(d)
    for j in range(indptr.shape[0] - 1):
        s2 = 0.0
        for c in range(d):
            a[c] = 0.0
        for q in range(indptr[j], indptr[j + 1]):
            u = members[q]
            wu = weight[u]
            s2 += wu * wu
            a[0] += wu * (bias[u] - mean[0] - shift[u, 0] + wu * implicit[j, 0])
            for c in range(1, d):
                a[c] += wu * (factors[u, c - 1] - mean[c] - shift[u, c] + wu * implicit[j, c])
        for r in range(d):
            acc = g0[r]
            for c in range(d):
                acc += H[r, c] * a[c]
            scale = 1.0 + s2 * D[r]
            if not scale > 0.0:
                return False
            t[r] = acc / scale + eps[j, r] / np.sqrt(scale)
        for c in range(d):
            acc = 0.0
            for r in range(d):
                acc += G[r, c] * t[r]
            w[c] = acc - implicit[j, c]
            implicit[j, c] = acc
        for q in range(indptr[j], indptr[j + 1]):
            u = members[q]
            wu = weight[u]
            for c in range(d):
                shift[u, c] += wu * w[c]
    return True


@numba.njit(cache=True, nogil=True, parallel=True)
def row_squared_errors(
    indptr: np.ndarray,
    others: np.ndarray,
    values: np.ndarray,
    mu: float,
    factors: np.ndarray,
    bias: np.ndarray,
    fixed_factors: np.ndarray,
    fixed_bias: np.ndarray,
    other_weight: np.ndarray,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Per row ``r``: ``sum_j other_weight[j] * (rating - mu - b_r - b_j - x_r . f_j)^2`` over its ratings, into ``out``.

    ``other_weight`` of length 0 weighs every rating 1. Rows are independent
    (parallel over rows; each sum in rating order).
    """
    k = factors.shape[1]
    weighted = other_weight.shape[0] > 0
    for r in numba.prange(indptr.shape[0] - 1):
        acc = 0.0
        for t in range(indptr[r], indptr[r + 1]):
            j = others[t]
            pred = mu + bias[r] + fixed_bias[j]
            for a in range(k):
                pred += factors[r, a] * fixed_factors[j, a]
            e = values[t] - pred
            acc += e * e * other_weight[j] if weighted else e * e
        out[r] = acc


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
