"""Conversion between the caller's array type and the NumPy arrays we compute on.

Inputs may be NumPy arrays, array-likes (nested lists, pandas frames) or torch
tensors. torch is never imported here: a tensor can only reach us if the
caller already imported it, so we look it up in ``sys.modules``.

dtype rule: float32 input computes in float32, everything else in float64.
Results go back in the caller's type: NumPy in, NumPy out (float32 or float64);
a torch tensor in, torch tensors out, on the input's device, with the input's
dtype when that is floating (float64 otherwise).

Sparse input (a torch sparse COO/CSR/CSC tensor, a scipy.sparse matrix) is
either refused with a hint (where a dense matrix is required) or densified
(``sparse="dense"``: where the entries not stored are clearly zero, as in a
mask). A tensor whose values cannot be read (on the ``meta`` device, say) is
a TypeError naming the parameter and the device.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

__all__ = ["to_numpy", "compute_dtype", "is_torch_tensor", "torch_sparse_cells"]

OutputFn = Callable[[np.ndarray], Any]
SparseRule = Literal["refuse", "dense"]


def is_torch_tensor(x: object) -> bool:
    """Return whether ``x`` is a ``torch.Tensor`` (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _is_scipy_sparse(x: object) -> bool:
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and bool(sparse.issparse(x))


def compute_dtype(a: np.ndarray) -> np.dtype:
    """The dtype we compute in for input ``a``: float32 stays float32, else float64."""
    return np.dtype(np.float32) if a.dtype == np.float32 else np.dtype(np.float64)


def _identity(x: np.ndarray) -> np.ndarray:
    return x


def to_numpy(x: object, name: str, *, sparse: SparseRule = "refuse") -> tuple[np.ndarray, OutputFn]:
    """Convert ``x`` to a NumPy array and return a function converting results back.

    Parameters
    ----------
    x : array_like or torch.Tensor
        The caller's input.
    name : str
        Parameter name used in error messages.
    sparse : {"refuse", "dense"}
        What to do with a sparse ``x`` (a torch sparse tensor or a
        scipy.sparse matrix): refuse it with a TypeError that says how to
        make it dense, or make it dense (entries not stored are 0; of
        duplicate stored entries the last counts). Use ``"dense"`` only
        where a missing entry clearly means 0, as in a mask.

    Returns
    -------
    array : numpy.ndarray
        ``x`` as NumPy (a view where possible; never written to).
    output : callable
        Converts a result array to the caller's type.

    Raises
    ------
    TypeError
        If ``x`` is sparse and ``sparse="refuse"``, holds complex numbers,
        or is a tensor whose values cannot be read (the ``meta`` device).
    ValueError
        If ``x`` is not rectangular.
    """
    if is_torch_tensor(x):
        return _torch_to_numpy(x, name, sparse)
    if _is_scipy_sparse(x):
        if sparse == "refuse":
            raise TypeError(
                f"`{name}` must be a dense matrix; got a scipy.sparse {type(x).__name__}; pass "
                f"{name}.toarray() (entries not stored become 0)"
            )
        coo = x.tocoo()  # type: ignore[attr-defined]
        return _densify(np.asarray(coo.row), np.asarray(coo.col), np.asarray(coo.data), coo.shape), _identity
    try:
        array = np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"`{name}` must be a rectangular 2-D array of numbers; "
            f"could not convert {type(x).__name__}: {exc}"
        ) from None
    return array, _identity


def _densify(rows: np.ndarray, cols: np.ndarray, values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A dense array of ``shape``: 0 where nothing is stored; the last value where a cell is stored twice."""
    dense = np.zeros(shape, dtype=values.dtype)
    if rows.shape[0]:
        linear = rows.astype(np.int64) * int(shape[1]) + cols.astype(np.int64)
        _, last_reversed = np.unique(linear[::-1], return_index=True)
        keep = linear.shape[0] - 1 - last_reversed
        dense[rows[keep], cols[keep]] = values[keep]
    return dense


def _check_readable(x: Any, name: str) -> None:
    """A TypeError for a tensor whose values cannot be read (the meta device has none)."""
    if x.is_meta or x.device.type == "meta":
        raise TypeError(
            f"`{name}` is a torch tensor on the meta device, which holds no values; "
            "create it on a real device ('cpu' or 'cuda')"
        )


def torch_sparse_cells(x: Any, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, int]]:
    """The stored entries of a 2-D torch sparse tensor: (rows, cols, values, shape), in stored order.

    COO tensors are not coalesced first (coalescing sums duplicate
    entries); CSR and CSC tensors give their entries row by row (column by
    column). Other sparse layouts (blocked) are refused with a hint.

    Raises
    ------
    TypeError
        For a blocked layout, a meta tensor, or values that cannot be read.
    ValueError
        If the tensor is not 2-D or has dense dimensions.
    """
    import torch  # already imported by the caller

    _check_readable(x, name)
    if x.dim() != 2:
        raise ValueError(f"`{name}` must be a 2-D sparse tensor; got {x.dim()}-D of shape {tuple(x.shape)}")
    layout = x.layout
    try:
        t = x.detach()
        if layout == torch.sparse_coo:
            if t.dense_dim() != 0:
                raise ValueError(f"`{name}` must be a sparse matrix of numbers; got {t.dense_dim()} dense dimension(s)")
            indices = (t.indices() if t.is_coalesced() else t._indices()).cpu().numpy()
            rows, cols = indices[0], indices[1]
            values = (t.values() if t.is_coalesced() else t._values()).cpu()
        elif layout in (torch.sparse_csr, torch.sparse_csc):
            compressed = (t.crow_indices() if layout == torch.sparse_csr else t.ccol_indices()).cpu().numpy()
            plain = (t.col_indices() if layout == torch.sparse_csr else t.row_indices()).cpu().numpy()
            outer = np.repeat(np.arange(compressed.shape[0] - 1), np.diff(compressed))
            rows, cols = (outer, plain) if layout == torch.sparse_csr else (plain, outer)
            values = t.values().cpu()
        else:
            raise TypeError(
                f"`{name}` is a torch tensor of layout {layout}; pass {name}.to_sparse_coo() or {name}.to_dense()"
            )
        if values.is_complex():
            raise TypeError(f"`{name}` must hold real numbers; got torch dtype {values.dtype}")
        if values.dtype not in (torch.float32, torch.float64, torch.bool):
            values = values.to(torch.float64)
        array = values.numpy()
    except (RuntimeError, NotImplementedError) as exc:
        raise TypeError(f"`{name}`: cannot read the torch tensor on device {x.device} ({layout}): {exc}") from None
    return rows.astype(np.int64), cols.astype(np.int64), array, (int(x.shape[0]), int(x.shape[1]))


def _torch_to_numpy(x: Any, name: str, sparse: SparseRule) -> tuple[np.ndarray, OutputFn]:
    import torch  # already imported by the caller

    _check_readable(x, name)
    device = x.device
    if x.layout != torch.strided:
        if sparse == "refuse":
            raise TypeError(
                f"`{name}` must be a dense matrix; got a sparse torch tensor ({x.layout}) on {device}; pass "
                f"{name}.to_dense() (entries not stored become 0)"
            )
        rows, cols, values, shape = torch_sparse_cells(x, name)
        dense = _densify(rows, cols, values, shape)
        out_dtype = x.dtype if x.dtype.is_floating_point else torch.float64

        def sparse_output(result: np.ndarray) -> Any:
            return torch.from_numpy(np.ascontiguousarray(result)).to(device=device, dtype=out_dtype)

        return dense, sparse_output
    if x.is_complex():
        raise TypeError(f"`{name}` must hold real numbers; got torch dtype {x.dtype}")
    dtype = x.dtype
    t = x.detach()
    try:
        if dtype in (torch.float32, torch.float64):
            array = t.cpu().numpy()
        else:
            array = t.to("cpu", torch.float64).numpy()
    except (RuntimeError, NotImplementedError, TypeError) as exc:
        raise TypeError(f"`{name}`: cannot read the torch tensor on device {device} ({dtype}): {exc}") from None
    out_dtype = dtype if dtype.is_floating_point else torch.float64

    def output(result: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(result)).to(device=device, dtype=out_dtype)

    return array, output
