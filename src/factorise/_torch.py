"""Devices for the torch engine: the ``device=`` strings users pass, checked, and torch imported lazily.

``device`` is one of

* ``None`` or ``"cpu"``: the CPU engine (numba kernels, NumPy/BLAS), no torch;
* ``"torch-cpu"``: the torch engine on the CPU (the same code that runs on a GPU);
* ``"cuda"`` or ``"cuda:N"``: the torch engine on a CUDA device.

The string is checked without importing torch (so a typo is a clear error
even where torch is not installed); a torch device is asked for only when
the fit starts, and then a missing torch or a missing CUDA device is one
clear error that says what is missing.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["DEVICE_RULE", "check_device", "torch_device", "import_torch"]

DEVICE_RULE = "None, 'cpu', 'torch-cpu', 'cuda' or 'cuda:N'"


def _named(name: str) -> str:
    """A parameter in backquotes (`` `device` ``), a command-line flag as it is (``--device``)."""
    return name if name.startswith("-") else "`" + name + "`"
_CUDA = re.compile(r"cuda(?::(\d+))?")


def check_device(device: object, name: str = "device") -> str | None:
    """``device`` normalised: None for the CPU engine, ``"cpu"`` for torch on the CPU, ``"cuda[:N]"``.

    Raises
    ------
    TypeError, ValueError
        ``device`` is not a string of the documented forms (the message names ``name``).
    """
    if device is None:
        return None
    if not isinstance(device, str):
        raise TypeError(f"{_named(name)} must be {DEVICE_RULE}; got {device!r}")
    text = device.strip().lower()
    if text == "cpu":
        return None
    if text == "torch-cpu":
        return "cpu"
    if _CUDA.fullmatch(text):
        return text
    raise ValueError(f"{_named(name)} must be {DEVICE_RULE}; got {device!r}")


def import_torch(what: str = "the torch engine") -> Any:
    """``torch``, or an ImportError that says which command installs it."""
    try:
        import torch
    except ImportError:
        raise ImportError(
            f"{what} needs torch, which is not installed; pip install 'factorise[torch]' (a CPU build), "
            "or a CUDA build of torch from pytorch.org for a GPU"
        ) from None
    return torch


def torch_device(spec: str, name: str = "device") -> Any:
    """The ``torch.device`` of a checked spec (:func:`check_device`), after checking it exists.

    Raises
    ------
    ImportError
        torch is not installed.
    ValueError
        CUDA was asked for and this torch has no CUDA (a CPU build, or no
        GPU or driver), or the device index is not there.
    """
    torch = import_torch(f"{_named(name)}={spec!r}")
    if spec == "cpu":
        return torch.device("cpu")
    match = _CUDA.fullmatch(spec)
    if match is None:  # pragma: no cover - check_device lets only these through
        raise ValueError(f"{_named(name)} must be {DEVICE_RULE}; got {spec!r}")
    if torch.version.cuda is None:
        raise ValueError(
            f"{_named(name)}={spec!r} asks for CUDA, but the installed torch {torch.__version__} is a CPU build; "
            "install a CUDA build of torch (pytorch.org), or pass device='torch-cpu' or None"
        )
    if not torch.cuda.is_available():
        raise ValueError(
            f"{_named(name)}={spec!r} asks for CUDA, but torch {torch.__version__} (CUDA {torch.version.cuda}) finds "
            "no CUDA device (no GPU, or no driver); pass device='torch-cpu' or None"
        )
    index = int(match.group(1) or 0)
    count = torch.cuda.device_count()
    if index >= count:
        raise ValueError(f"{_named(name)}={spec!r}: this machine has {count} CUDA device(s), numbered 0 to {count - 1}")
    return torch.device("cuda", index)


def free_bytes(device: Any) -> int | None:
    """Free memory of a CUDA device in bytes (None on the CPU, where the OS decides)."""
    if device.type != "cuda":
        return None
    import torch

    free, _ = torch.cuda.mem_get_info(device)
    return int(free)


def check_device_memory(device: Any, need: int, what: str) -> None:
    """Refuse, before any work, a fit whose device memory (``need`` bytes) exceeds the device's free memory.

    On the CPU the operating system's limits apply (see ``--max-memory`` in the CLI); nothing is checked here.
    """
    free = free_bytes(device)
    if free is not None and need > free:
        raise MemoryError(
            f"{what} needs about {need / 2**30:.1f} GiB on {device}, which has {free / 2**30:.1f} GiB free; "
            "use fewer ratings or a smaller rank, another device, or device=None (the CPU)"
        )
