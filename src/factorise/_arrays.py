"""Conversion between the caller's array type and the NumPy arrays we compute on.

Inputs may be NumPy arrays, array-likes (nested lists, pandas frames) or torch
tensors. torch is never imported here: a tensor can only reach us if the
caller already imported it, so we look it up in ``sys.modules``.

dtype rule: float32 input computes in float32, everything else in float64.
Results go back in the caller's type: NumPy in, NumPy out (float32 or float64);
a torch tensor in, torch tensors out, on the input's device, with the input's
dtype when that is floating (float64 otherwise).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["to_numpy", "compute_dtype", "is_torch_tensor"]

OutputFn = Callable[[np.ndarray], Any]


def is_torch_tensor(x: object) -> bool:
    """Return whether ``x`` is a ``torch.Tensor`` (without importing torch)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def compute_dtype(a: np.ndarray) -> np.dtype:
    """The dtype we compute in for input ``a``: float32 stays float32, else float64."""
    return np.dtype(np.float32) if a.dtype == np.float32 else np.dtype(np.float64)


def _identity(x: np.ndarray) -> np.ndarray:
    return x


def to_numpy(x: object, name: str) -> tuple[np.ndarray, OutputFn]:
    """Convert ``x`` to a NumPy array and return a function converting results back.

    Parameters
    ----------
    x : array_like or torch.Tensor
        The caller's input.
    name : str
        Parameter name used in error messages.

    Returns
    -------
    array : numpy.ndarray
        ``x`` as NumPy (a view where possible; never written to).
    output : callable
        Converts a result array to the caller's type.
    """
    if is_torch_tensor(x):
        return _torch_to_numpy(x, name)
    try:
        array = np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"`{name}` must be a rectangular 2-D array of numbers; "
            f"could not convert {type(x).__name__}: {exc}"
        ) from None
    return array, _identity


def _torch_to_numpy(x: Any, name: str) -> tuple[np.ndarray, OutputFn]:
    import torch  # already imported by the caller

    if x.is_complex():
        raise TypeError(f"`{name}` must hold real numbers; got torch dtype {x.dtype}")
    device, dtype = x.device, x.dtype
    t = x.detach()
    if dtype in (torch.float32, torch.float64):
        array = t.cpu().numpy()
    else:
        array = t.to("cpu", torch.float64).numpy()
    out_dtype = dtype if dtype.is_floating_point else torch.float64

    def output(result: np.ndarray) -> Any:
        return torch.from_numpy(np.ascontiguousarray(result)).to(device=device, dtype=out_dtype)

    return array, output
