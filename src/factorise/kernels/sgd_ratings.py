"""One SGD sweep of biased matrix factorisation over a list of ratings, compiled with numba.

For each rating ``(u, i, r)`` in the given visiting order (Funk's SGD with
Koren's biases)::

    e     = r - (mu + bu[u] + bi[i] + P[u] . Q[i])
    bu[u] += lr_bias * (e - reg_bias * bu[u])
    bi[i] += lr_bias * (e - reg_bias * bi[i])
    P[u]  += lr * (e * Q[i] - reg * P[u])      # P[u] and Q[i] updated
    Q[i]  += lr * (e * P[u] - reg * Q[i])      # simultaneously (old P[u])

The biases have their own learning rate so that a caller can run SGD on
rescaled ratings without copying them (see :mod:`factorise.models.sgd`).
Arithmetic stays in the dtype of the factors: the caller passes ``mu`` and the
four rates already cast to it (float32 for the rating models). The returned
progress measure is the sum of the squared errors ``e`` (each taken before its
update), accumulated in float64.

The kernel is compiled with the ``reassoc`` and ``contract`` fast-math flags
only: the dot product may be summed in any order (vectorised) and ``a * b + c``
fused, which doubles the speed and changes results at the rounding level.
NaN and infinity keep their IEEE meaning, so a diverging fit is still seen.
"""

from __future__ import annotations

import numba
import numpy as np

from factorise.kernels.prefetch import DISTANCE as PREFETCH_DISTANCE
from factorise.kernels.prefetch import prefetch_row

__all__ = ["GATHER", "sgd_gathered", "sgd_ratings_epoch", "sgd_update"]

_FASTMATH = {"reassoc", "contract"}


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH, inline="always")
def sgd_update(
    r: float,
    u: int,
    i: int,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    lr: float,
    reg: float,
    lr_bias: float,
    reg_bias: float,
) -> float:  # pragma: no cover - compiled
    """Update the model with rating ``r`` of user ``u`` on item ``i``; return the error before it.

    Parameters
    ----------
    r : float
        The rating, of the factors' dtype.
    u, i : int
        User and item index.
    mu : float
        Global mean (fixed), of the factors' dtype.
    bu, bi : ndarray
        User and item biases, updated in place.
    P, Q : ndarray of shape (n_users, k) and (n_items, k)
        User and item factors, updated in place; ``k >= 1``.
    lr, reg, lr_bias, reg_bias : float
        Learning rates and regularizations, of the factors' dtype.

    Returns
    -------
    float
        ``e = r - prediction``, of the factors' dtype.
    """
    k = P.shape[1]
    dot = mu - mu  # zero in the factors' dtype; summing from 0 lets the whole loop vectorise
    for j in range(k):
        dot += P[u, j] * Q[i, j]
    e = r - (mu + bu[u] + bi[i] + dot)
    bu[u] += lr_bias * (e - reg_bias * bu[u])
    bi[i] += lr_bias * (e - reg_bias * bi[i])
    for j in range(k):
        p = P[u, j]
        q = Q[i, j]
        P[u, j] = p + lr * (e * q - reg * p)
        Q[i, j] = q + lr * (e * p - reg * q)
    return e



@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH)
def sgd_ratings_epoch(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    order: np.ndarray,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    lr: float,
    reg: float,
    lr_bias: float,
    reg_bias: float,
) -> float:  # pragma: no cover - compiled
    """One SGD sweep over the ratings in ``order``, updating the model in place.

    Parameters
    ----------
    users, items : ndarray of int32
        User and item index of each rating.
    values : ndarray
        The ratings, of the factors' dtype.
    order : ndarray of int
        Positions into ``users``/``items``/``values``, in visiting order.
    mu : float
        Global mean (fixed), of the factors' dtype.
    bu, bi : ndarray
        User and item biases, updated in place.
    P, Q : ndarray of shape (n_users, k) and (n_items, k)
        User and item factors, updated in place; ``k >= 1``.
    lr, reg : float
        Learning rate and regularization of the factors, of their dtype.
    lr_bias, reg_bias : float
        Learning rate and regularization of the biases, of the same dtype.

    Returns
    -------
    float
        Sum of squared pre-update errors over the sweep.
    """
    return sgd_gathered(
        users, items, values, order, 0, order.shape[0], mu, bu, bi, P, Q, lr, reg, lr_bias, reg_bias
    )  # fmt: skip


#: Ratings gathered at a time by :func:`sgd_gathered`.
GATHER = 2048


@numba.njit(cache=True, nogil=True, fastmath=_FASTMATH)
def sgd_gathered(
    users, items, values, order, start, stop, mu, bu, bi, P, Q, lr, reg, lr_bias, reg_bias
):  # pragma: no cover - compiled
    """SGD over the ratings ``order[start:stop]``, in that order; return the sum of squared errors.

    The ratings are first gathered, :data:`GATHER` at a time, into small
    contiguous buffers: the loads of a gather are independent of each other,
    so the processor overlaps their cache misses, where the update loop would
    wait for each in turn. While updating rating ``j`` of a buffer the loop
    asks for the factor rows of rating ``j + PREFETCH_DISTANCE``
    (:mod:`factorise.kernels.prefetch`), so that their misses overlap the
    arithmetic too. The arithmetic and its order are those of
    :func:`sgd_update` applied rating by rating.
    """
    n = max(0, min(GATHER, stop - start))
    cu = np.empty(n, dtype=users.dtype)
    ci = np.empty(n, dtype=items.dtype)
    cv = np.empty(n, dtype=values.dtype)
    sse = 0.0
    t = start
    while t < stop:
        m = min(GATHER, stop - t)
        for j in range(m):
            idx = order[t + j]
            cu[j] = users[idx]
            ci[j] = items[idx]
            cv[j] = values[idx]
        for j in range(m):
            if j + PREFETCH_DISTANCE < m:  # the rows of a later rating, while this one is updated
                prefetch_row(P, cu[j + PREFETCH_DISTANCE])
                prefetch_row(Q, ci[j + PREFETCH_DISTANCE])
            e = sgd_update(cv[j], cu[j], ci[j], mu, bu, bi, P, Q, lr, reg, lr_bias, reg_bias)
            e64 = float(e)
            sse += e64 * e64
        t += m
    return sse
