"""The engines of :func:`factorise.gd_factorise_masked`: full-batch gradient descent on the observed cells.

One epoch is the lab's, exactly::

    E = (A - U @ V.T) * M        # the error on the observed cells, 0 elsewhere
    U += lr * E @ V
    V += lr * E.T @ U            # the U just updated, the E of before

Four engines compute it, chosen by the input and ``device``:

* dense, NumPy: ``E`` as a dense m x n array (BLAS products);
* dense, torch: the same on a torch device;
* sparse, NumPy/SciPy: only the observed cells, as a fixed CSR structure
  whose values are refreshed each epoch: ``E``'s values by a sampled
  dense-dense product (each cell's ``U[r] . V[c]``, a compiled loop:
  :mod:`factorise.kernels.gd`), then two sparse-dense products; memory is
  the cells and the factors, never m x n;
* sparse, torch: the same with torch CSR tensors (cuSPARSE on a GPU).

Every engine starts from the same factors (drawn on the host) and gives the
same result to rounding.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

__all__ = ["DenseProblem", "SparseProblem", "run"]

#: Observed cells per chunk of the sampled product (bounds its temporaries at CHUNK x rank numbers).
CHUNK = 1 << 18
#: Epochs between the checks for NaN or infinite factors (each check waits for a GPU).
CHECK_EVERY = 25


class DenseProblem:
    """``A`` with 0 under the mask, and the 0/1 mask, both dense (m, n) of the compute dtype."""

    def __init__(self, values: np.ndarray, observed: np.ndarray, dtype: np.dtype) -> None:
        self.shape = values.shape
        self.weights = observed.astype(dtype)
        self.values = np.where(observed, values, 0).astype(dtype)
        self.n_observed = int(observed.sum())


class SparseProblem:
    """The observed cells, row by row: ``rows``, ``cols``, ``values`` and the CSR / transposed structure."""

    def __init__(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, int], dtype: np.dtype):
        order = np.lexsort((cols, rows))
        self.shape = shape
        self.rows = rows[order].astype(np.int64)
        self.cols = cols[order].astype(np.int64)
        self.values = values[order].astype(dtype)
        self.n_observed = int(self.rows.shape[0])
        m, n = shape
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(self.rows, minlength=m))]).astype(np.int64)
        # the transpose: cells column by column, and where each sits in the row-major order
        self.by_col = np.lexsort((self.rows, self.cols))
        self.t_indptr = np.concatenate([[0], np.cumsum(np.bincount(self.cols, minlength=n))]).astype(np.int64)
        self.t_indices = self.rows[self.by_col]


# ------------------------------------------------------------------ NumPy
def _numpy_dense(problem: DenseProblem, U: np.ndarray, V: np.ndarray, step: Any, want_sse: bool) -> float:
    E = U @ V.T
    np.subtract(problem.values, E, out=E)
    E *= problem.weights
    sse = float(np.einsum("ij,ij->", E, E)) if want_sse else math.nan
    U += step * (E @ V)
    V += step * (E.T @ U)
    return sse


def _numpy_sparse(problem: SparseProblem, U: np.ndarray, V: np.ndarray, step: Any, want_sse: bool, work: dict) -> float:
    from scipy import sparse

    from factorise.kernels.gd import sampled_residual

    if "E" not in work:  # the error's two sparse structures, built once; their values change each epoch
        m, n = problem.shape
        zeros = np.zeros(problem.n_observed, dtype=U.dtype)
        work["E"] = sparse.csr_matrix((zeros, problem.cols, problem.indptr), shape=(m, n))
        work["Et"] = sparse.csr_matrix((zeros.copy(), problem.t_indices, problem.t_indptr), shape=(n, m))
    E, Et = work["E"], work["Et"]
    err = E.data
    sampled_residual(problem.rows, problem.cols, problem.values, U, V, err)
    sse = float(err @ err) if want_sse else math.nan
    U += step * (E @ V)
    np.take(err, problem.by_col, out=Et.data)
    V += step * (Et @ U)
    return sse


# ------------------------------------------------------------------ torch
def _torch_dense(problem: dict, U: Any, V: Any, step: float, want_sse: bool) -> Any:
    E = problem["values"] - U @ V.T
    E *= problem["weights"]
    sse = (E * E).sum() if want_sse else None
    U.add_(E @ V, alpha=step)
    V.add_(E.T @ U, alpha=step)
    return sse


def _torch_sparse(problem: dict, U: Any, V: Any, step: float, want_sse: bool) -> Any:
    import torch

    rows, cols = problem["rows"], problem["cols"]
    err = problem["err"]
    for start in range(0, rows.shape[0], CHUNK):
        stop = min(start + CHUNK, rows.shape[0])
        err[start:stop] = (U[rows[start:stop]] * V[cols[start:stop]]).sum(1)
    torch.sub(problem["values"], err, out=err)
    sse = err @ err if want_sse else None
    m, n = problem["shape"]
    E = torch.sparse_csr_tensor(problem["indptr"], cols, err, size=(m, n), check_invariants=False)
    U.add_(E @ V, alpha=step)
    Et = torch.sparse_csr_tensor(
        problem["t_indptr"], problem["t_indices"], err[problem["by_col"]], size=(n, m), check_invariants=False
    )
    V.add_(Et @ U, alpha=step)
    return sse


def _to_torch(problem: DenseProblem | SparseProblem, device: Any) -> dict:
    import torch

    def t(a: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    if isinstance(problem, DenseProblem):
        return {"values": t(problem.values), "weights": t(problem.weights)}
    return {
        "shape": problem.shape,
        "rows": t(problem.rows),
        "cols": t(problem.cols),
        "values": t(problem.values),
        "indptr": t(problem.indptr),
        "by_col": t(problem.by_col),
        "t_indptr": t(problem.t_indptr),
        "t_indices": t(problem.t_indices),
        "err": torch.empty(problem.n_observed, dtype=t(problem.values).dtype, device=device),
    }


def run(
    problem: DenseProblem | SparseProblem,
    U: np.ndarray,
    V: np.ndarray,
    num_epochs: int,
    lr: float,
    device: Any,
    callback: Any,
    divergence: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """Run ``num_epochs`` epochs from ``U``, ``V`` (host arrays); return the factors as host arrays.

    ``device`` None runs NumPy/SciPy, else a ``torch.device``. ``callback(epoch, sse)`` after every
    epoch (the SSE of the observed cells before the epoch's update). ``divergence(epoch)`` returns the
    error to raise when the factors stop being finite (checked every :data:`CHECK_EVERY` epochs and at
    the end).
    """
    want_sse = callback is not None
    if device is None:
        step = U.dtype.type(lr)
        work: dict = {}
        with np.errstate(over="ignore", invalid="ignore"):  # a diverging fit is reported below, not warned
            return _numpy_loop(problem, U, V, num_epochs, step, callback, divergence, work)
    import torch

    arrays = _to_torch(problem, device)
    tU = torch.from_numpy(U).to(device)
    tV = torch.from_numpy(V).to(device)
    epoch_fn = _torch_dense if isinstance(problem, DenseProblem) else _torch_sparse
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        for epoch in range(1, num_epochs + 1):
            sse = epoch_fn(arrays, tU, tV, lr, want_sse)
            if epoch % CHECK_EVERY == 0 and not bool(torch.isfinite(tU).all() & torch.isfinite(tV).all()):
                raise divergence(epoch)
            if callback is not None:
                value = float(sse)
                if not math.isfinite(value):
                    raise divergence(epoch)
                callback(epoch, value)
        if not bool(torch.isfinite(tU).all() & torch.isfinite(tV).all()):
            raise divergence(num_epochs)
    return tU.cpu().numpy(), tV.cpu().numpy()


def _numpy_loop(problem: Any, U: np.ndarray, V: np.ndarray, num_epochs: int, step: Any, callback: Any,
                divergence: Any, work: dict) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    want_sse = callback is not None
    for epoch in range(1, num_epochs + 1):
        if isinstance(problem, DenseProblem):
            sse = _numpy_dense(problem, U, V, step, want_sse)
        else:
            sse = _numpy_sparse(problem, U, V, step, want_sse, work)
        if epoch % CHECK_EVERY == 0 and not (np.isfinite(U).all() and np.isfinite(V).all()):
            raise divergence(epoch)
        if callback is not None:
            if not math.isfinite(sse):
                raise divergence(epoch)
            callback(epoch, sse)
    if not (np.isfinite(U).all() and np.isfinite(V).all()):
        raise divergence(num_epochs)
    return U, V
