"""The lab's factorisation: per-entry SGD on ||A - U V^T||_F^2, plain and masked.

These two functions keep the lab's names and signatures
(``num_epochs``, ``lr``) because users call them by those names. The loop
itself runs compiled (:mod:`factorise.kernels.dense_sgd`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from typing import Any

import numpy as np

from factorise import kernels
from factorise._arrays import compute_dtype, to_numpy
from factorise._validation import (
    check_finite_where,
    check_mask,
    check_non_negative_int,
    check_positive_float,
    check_random_state,
    check_rank,
    check_real_matrix,
    data_scale_problem,
)
from factorise.exceptions import DivergenceError

__all__ = ["sgd_factorise", "sgd_factorise_masked"]

logger = logging.getLogger(__name__)

Callback = Callable[[int, float], Any]


def sgd_factorise(
    A: Any,
    rank: int,
    num_epochs: int = 1000,
    lr: float = 0.01,
    *,
    random_state: int | np.random.Generator | None = None,
    callback: Callback | None = None,
) -> tuple[Any, Any]:
    """Factorise ``A ~= U @ V.T`` by per-entry stochastic gradient descent.

    The lab's algorithm, exactly: ``U`` (m x rank) and ``V`` (n x rank) start
    from U(0, 1); each epoch visits every row ``r`` and, within it, every
    column ``c``, and sets ``e = A[r, c] - U[r] @ V[c]``,
    ``U[r] += lr * e * V[c]``, then ``V[c] += lr * e * U[r]`` with the row
    of ``U`` just updated.

    Parameters
    ----------
    A : array_like or torch.Tensor of shape (m, n)
        The matrix to factorise. Must be finite.
    rank : int
        Number of columns of the factors, ``1 <= rank <= min(m, n)``.
    num_epochs : int, default 1000
        Number of sweeps over the matrix (0 returns the initial factors).
    lr : float, default 0.01
        Learning rate, finite and > 0.
    random_state : None, int or numpy.random.Generator, optional
        Seed of the initial factors; the same seed gives bit-identical factors.
    callback : callable, optional
        Called after every epoch as ``callback(epoch, sse)`` where ``epoch``
        counts from 1 and ``sse`` is the sum of squared errors seen during
        that epoch (each taken before its update).

    Returns
    -------
    U : same type as ``A``, shape (m, rank)
    V : same type as ``A``, shape (n, rank)
        float32 when ``A`` is float32, otherwise float64; torch tensors keep
        the input's floating dtype and device.

    Raises
    ------
    TypeError, ValueError
        On invalid input (the message names the parameter and the rule).
    DivergenceError
        If the factors become NaN or infinite: try a smaller ``lr``, or, when
        the message says the values of ``A`` are too large for the dtype's
        arithmetic (their squares overflow), rescale ``A``. No factors are
        returned.

    Examples
    --------
    >>> import numpy as np
    >>> from factorise import sgd_factorise, reconstruction_loss
    >>> A = np.array([[0.3374, 0.6005, 0.1735],
    ...               [3.3359, 0.0492, 1.8374],
    ...               [2.9407, 0.5301, 2.2620]])
    >>> U, V = sgd_factorise(A, rank=2, num_epochs=3000, random_state=0)
    >>> round(reconstruction_loss(A, U, V), 4)   # the SVD optimum is 0.12191
    0.1219
    """
    return _fit(A, None, rank, num_epochs, lr, random_state, callback)


def sgd_factorise_masked(
    A: Any,
    M: Any,
    rank: int,
    num_epochs: int = 1000,
    lr: float = 0.01,
    *,
    random_state: int | np.random.Generator | None = None,
    callback: Callback | None = None,
) -> tuple[Any, Any]:
    """Matrix completion: the lab's SGD, updating only where ``M != 0``.

    Identical to :func:`sgd_factorise` except that cells with ``M == 0`` are
    skipped. Values of ``A`` under the mask have no influence at all and may
    be NaN.

    Parameters
    ----------
    A : array_like or torch.Tensor of shape (m, n)
        The partially observed matrix; must be finite where ``M != 0``.
    M : array_like or torch.Tensor of shape (m, n)
        Observation mask: a cell is observed where ``M != 0``. At least one
        cell must be observed.
    rank : int
        Number of columns of the factors, ``1 <= rank <= min(m, n)``.
    num_epochs : int, default 1000
        Number of sweeps over the observed cells.
    lr : float, default 0.01
        Learning rate, finite and > 0.
    random_state : None, int or numpy.random.Generator, optional
        Seed of the initial factors.
    callback : callable, optional
        ``callback(epoch, sse)`` after every epoch, ``sse`` summed over the
        observed cells.

    Returns
    -------
    U, V : same type as ``A``
        Factors of shapes (m, rank) and (n, rank); ``U @ V.T`` is the
        completed matrix.

    Raises
    ------
    TypeError, ValueError
        On invalid input.
    DivergenceError
        If the factors become NaN or infinite: a smaller ``lr``, or rescaled
        data when the message says the observed values are too large.
    """
    return _fit(A, M, rank, num_epochs, lr, random_state, callback)


def _fit(
    A: Any,
    M: Any,
    rank: object,
    num_epochs: object,
    lr: object,
    random_state: object,
    callback: Callback | None,
) -> tuple[Any, Any]:
    array, output = to_numpy(A, "A")
    check_real_matrix(array, "A")
    observed = None
    if M is not None:
        mask, _ = to_numpy(M, "M", sparse="dense")  # a sparse mask: observed where stored and != 0
        observed = check_mask(mask, array.shape, "M")
    check_finite_where(array, observed, "A")
    rank = check_rank(rank, array.shape)
    num_epochs = check_non_negative_int(num_epochs, "num_epochs")
    lr = check_positive_float(lr, "lr")
    rng = check_random_state(random_state)

    dtype = compute_dtype(array)
    m, n = array.shape
    U = rng.random((m, rank), dtype=dtype)
    V = rng.random((n, rank), dtype=dtype)
    work = np.ascontiguousarray(array, dtype=dtype)
    step = dtype.type(lr)

    for epoch in range(1, num_epochs + 1):
        if observed is None:
            sse = kernels.sgd_dense_epoch(work, U, V, step)
        else:
            sse = kernels.sgd_masked_epoch(work, observed, U, V, step)
        if not math.isfinite(sse):
            raise _divergence(epoch, lr, work, observed)
        if callback is not None:
            callback(epoch, sse)
    if not (np.isfinite(U).all() and np.isfinite(V).all()):
        raise _divergence(num_epochs, lr, work, observed)
    logger.debug("SGD finished %d epochs at rank %d on a %dx%d matrix", num_epochs, rank, m, n)
    return output(U), output(V)


def _divergence(epoch: int, lr: float, work: np.ndarray, observed: np.ndarray | None) -> DivergenceError:
    """The error for a fit gone non-finite: the data's scale when it is the cause, else the rate."""
    cells = work if observed is None else work[observed]
    largest = float(np.max(np.abs(cells))) if cells.size else 0.0
    scale = data_scale_problem(largest, work.dtype, cells.size, name="values of `A`")
    if scale is not None:
        return DivergenceError(f"SGD diverged at epoch {epoch}: the factors became NaN or infinite; {scale}")
    return DivergenceError(
        f"SGD diverged at epoch {epoch}: the factors became NaN or infinite with "
        f"`lr`={lr!r}; try a smaller learning rate (for example lr={lr / 10:g})"
    )
