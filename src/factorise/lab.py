"""The lab's factorisation: per-entry SGD on ||A - U V^T||_F^2, plain and masked, and full-batch GD.

These functions keep the lab's names and signatures (``num_epochs``,
``lr``) because users call them by those names. The SGD loop runs compiled
(:mod:`factorise.kernels.dense_sgd`); the gradient descent of the lab's
part 4 runs vectorised, in NumPy/SciPy or in torch on a GPU
(:mod:`factorise._gd`).
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

__all__ = ["gd_factorise_masked", "sgd_factorise", "sgd_factorise_masked"]

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


def gd_factorise_masked(
    A: Any,
    M: Any,
    rank: int,
    num_epochs: int = 1000,
    lr: float = 1e-5,
    *,
    random_state: int | np.random.Generator | None = None,
    device: str | None = None,
    callback: Callback | None = None,
) -> tuple[Any, Any]:
    """Matrix completion by full-batch gradient descent: the lab's part 4, vectorised for the GPU.

    ``U`` (m x rank) and ``V`` (n x rank) start from U(0, 1) (drawn on the
    host, so every engine starts alike for a seed); each epoch computes
    the error on the observed cells ``E = (A - U @ V.T) * M``, then
    ``U += lr * E @ V`` and ``V += lr * E.T @ U`` with the ``U`` just
    updated, exactly as the lab writes it. A cell is observed where
    ``M != 0`` (the mask is 0/1: its non-zero values do not weight); values
    of ``A`` elsewhere have no influence and may be NaN.

    A sparse mask (a scipy.sparse matrix or a torch sparse tensor) computes
    only on its stored non-zero cells: the error is a sampled product at
    those cells and the updates are sparse-dense products, so memory is
    the observed cells and the factors, never an m x n matrix. ``A`` may
    then be dense (read at those cells) or sparse (its entries not stored
    count as 0).

    Parameters
    ----------
    A : array_like, scipy.sparse matrix or torch.Tensor of shape (m, n)
        The partially observed matrix; finite where observed.
    M : array_like, scipy.sparse matrix or torch.Tensor of shape (m, n)
        Observation mask, observed where ``M != 0``; at least one cell.
    rank : int
        Number of columns of the factors, ``1 <= rank <= min(m, n)``.
    num_epochs : int, default 1000
        Number of full-batch steps (0 returns the initial factors).
    lr : float, default 1e-5
        Step size, finite and > 0. The gradient sums over a row's observed
        cells, so a good step shrinks as rows and columns hold more cells
        (the lab's 1e-5 is for its 1000 x 10000 ratings matrix).
    random_state : None, int or numpy.random.Generator, optional
        Seed of the initial factors.
    device : {None, "cpu", "torch-cpu", "cuda", "cuda:N"}, optional
        Where to compute: None runs NumPy/SciPy for NumPy input and torch
        on the tensor's device for torch input; "cpu" NumPy/SciPy;
        "torch-cpu" torch on the CPU; "cuda[:N]" torch on that GPU.
    callback : callable, optional
        ``callback(epoch, sse)`` after every epoch, ``sse`` the squared
        error summed over the observed cells before the epoch's update
        (on a GPU each call waits for the device).

    Returns
    -------
    U, V : same type as ``A``
        Factors of shapes (m, rank) and (n, rank): NumPy arrays (float32
        for float32 input, else float64) for NumPy or SciPy input; for
        torch input, tensors of the input's floating dtype on its device.

    Raises
    ------
    TypeError, ValueError
        On invalid input (the message names the parameter and the rule).
    ImportError
        A torch device was asked for and torch is not installed.
    DivergenceError
        If the factors become NaN or infinite: a smaller ``lr``.

    Examples
    --------
    >>> import numpy as np
    >>> from factorise import gd_factorise_masked
    >>> rng = np.random.default_rng(0)
    >>> A = rng.random((30, 4)) @ rng.random((4, 20))
    >>> M = rng.random(A.shape) < 0.6
    >>> U, V = gd_factorise_masked(A, M, rank=4, num_epochs=3000, lr=0.01, random_state=0)
    >>> bool(np.abs((U @ V.T - A)[M]).max() < 0.05)
    True
    """
    from factorise import _gd
    from factorise._torch import check_device, torch_device

    spec = check_device(device)
    rank_value, num_epochs, lr = rank, check_non_negative_int(num_epochs, "num_epochs"), check_positive_float(lr, "lr")
    rng = check_random_state(random_state)
    problem, output, tensor_device, dtype = _gd_problem(A, M)
    rank = check_rank(rank_value, problem.shape)
    if spec is not None:
        compute = torch_device(spec)
    elif tensor_device is not None and device is None:
        compute = tensor_device
    else:
        compute = None
    m, n = problem.shape
    U = rng.random((m, rank), dtype=dtype)
    V = rng.random((n, rank), dtype=dtype)

    def divergence(epoch: int) -> DivergenceError:
        return DivergenceError(
            f"gradient descent diverged by epoch {epoch}: the factors became NaN or infinite with `lr`={lr!r}; "
            f"try a smaller step (for example lr={lr / 10:g}): the gradient sums over each row's "
            f"{problem.n_observed / m:.3g} observed cells on average"
        )

    U, V = _gd.run(problem, U, V, num_epochs, lr, compute, callback, divergence)
    logger.debug("GD finished %d epochs at rank %d on a %dx%d matrix (%s)", num_epochs, rank, m, n, compute or "numpy")
    return output(U), output(V)


def _gd_problem(A: Any, M: Any) -> tuple[Any, Any, Any, np.dtype]:
    """The observed cells of ``A`` under ``M``, checked: (problem, output converter, tensor device, dtype)."""
    from factorise import _gd
    from factorise._arrays import _is_scipy_sparse, is_torch_tensor, torch_sparse_cells

    tensor_device = None
    for x in (A, M):
        if is_torch_tensor(x):
            tensor_device = x.device
            break
    a_sparse = _is_scipy_sparse(A) or (is_torch_tensor(A) and A.layout != _strided())
    m_sparse = _is_scipy_sparse(M) or (is_torch_tensor(M) and M.layout != _strided())
    if not m_sparse:
        array, output = to_numpy(A, "A", sparse="dense")
        check_real_matrix(array, "A")
        mask, _ = to_numpy(M, "M", sparse="dense")
        observed = check_mask(mask, array.shape, "M")
        check_finite_where(array, observed, "A")
        dtype = compute_dtype(array)
        return _gd.DenseProblem(array, observed, dtype), output, tensor_device, dtype
    if is_torch_tensor(M):
        rows, cols, flags, shape = torch_sparse_cells(M, "M")
    else:
        coo = M.tocoo()
        rows, cols, flags, shape = np.asarray(coo.row), np.asarray(coo.col), np.asarray(coo.data), coo.shape
    flags = np.asarray(flags)
    if flags.dtype.kind not in "biuf":
        raise TypeError(f"`M` must hold real numbers or booleans (observed where M != 0); got dtype {flags.dtype}")
    if flags.dtype.kind == "f" and not np.isfinite(flags).all():
        raise ValueError("`M` must hold finite values (observed where M != 0); got NaN/inf")
    keep = flags != 0
    rows, cols = rows[keep].astype(np.int64), cols[keep].astype(np.int64)
    if rows.shape[0]:  # a cell stored twice is one observation
        linear = np.unique(rows * int(shape[1]) + cols)
        rows, cols = linear // int(shape[1]), linear % int(shape[1])
    if a_sparse:
        if is_torch_tensor(A):
            a_rows, a_cols, a_values, a_shape = torch_sparse_cells(A, "A")
            output = _tensor_output(A)
        else:
            coo = A.tocoo()
            a_rows, a_cols, a_values, a_shape = np.asarray(coo.row), np.asarray(coo.col), np.asarray(coo.data), coo.shape
            output = _identity_output
        a_values = np.asarray(a_values)
        if tuple(a_shape) != tuple(shape):
            raise ValueError(f"`M` must have the shape of A, {tuple(a_shape)}; got {tuple(shape)}")
        if a_values.dtype.kind not in "biuf":
            raise TypeError(f"`A` must hold real numbers (bool, integer or floating dtype); got dtype {a_values.dtype}")
        dtype = np.dtype(np.float32) if a_values.dtype == np.float32 else np.dtype(np.float64)
        values = _lookup(a_rows, a_cols, a_values, rows, cols, int(shape[1]))
    else:
        array, output = to_numpy(A, "A")
        check_real_matrix(array, "A")
        if array.shape != tuple(shape):
            raise ValueError(f"`M` must have the shape of A, {array.shape}; got {tuple(shape)}")
        dtype = compute_dtype(array)
        values = array[rows, cols]
    if rows.shape[0] == 0:
        raise ValueError("`M` must mark at least one observed cell (M != 0); got none")
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        bad = int(np.flatnonzero(~np.isfinite(values))[0])
        raise ValueError(
            f"`A` must be finite where the mask M is non-zero; got {float(values[bad])!r} at row {int(rows[bad])}, "
            f"column {int(cols[bad])} ({int((~np.isfinite(values)).sum())} non-finite cell(s) in all)"
        )
    problem = _gd.SparseProblem(rows, cols, values, (int(shape[0]), int(shape[1])), dtype)
    return problem, output, tensor_device, dtype


def _strided() -> Any:
    import torch  # only called for a tensor: torch is imported

    return torch.strided


def _identity_output(x: np.ndarray) -> np.ndarray:
    return x


def _tensor_output(A: Any) -> Any:
    import torch

    dtype = A.dtype if A.dtype.is_floating_point else torch.float64
    device = A.device

    def output(result: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(result)).to(device=device, dtype=dtype)

    return output


def _lookup(
    a_rows: np.ndarray, a_cols: np.ndarray, a_values: np.ndarray, rows: np.ndarray, cols: np.ndarray, width: int
) -> np.ndarray:
    """Values of a sparse matrix at cells (rows, cols): 0 where not stored, the last where stored twice."""
    keys = a_rows.astype(np.int64) * width + a_cols.astype(np.int64)
    order = np.argsort(keys, kind="stable")
    keys, ordered = keys[order], a_values[order]
    last = np.ones(keys.shape[0], dtype=bool)
    last[:-1] = keys[1:] != keys[:-1]  # of repeated keys, the last stored
    keys, ordered = keys[last], ordered[last]
    wanted = rows * width + cols
    at = np.minimum(np.searchsorted(keys, wanted), max(keys.shape[0] - 1, 0))
    found = keys[at] == wanted if keys.shape[0] else np.zeros(wanted.shape[0], dtype=bool)
    out = np.zeros(wanted.shape[0], dtype=a_values.dtype if a_values.dtype.kind == "f" else np.float64)
    out[found] = ordered[at[found]]
    return out
