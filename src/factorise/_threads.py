"""One ``n_threads`` setting for everything, and no BLAS oversubscription.

:func:`check_n_threads` validates the setting; :func:`parallel_section` is
the context every parallel kernel runs in: it sets numba's thread count, and
while our own threads run it limits BLAS to one thread (threadpoolctl), since
BLAS threads beside ours can slow both down many times over. Whatever it
changes it restores on exit. The first time it has to limit a multi-threaded
BLAS it says so once, with a :class:`BlasThreadsWarning`.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import numbers
import warnings
from collections.abc import Iterator
from typing import Any

import numba
import numpy as np

__all__ = ["BlasThreadsWarning", "available_threads", "check_n_threads", "parallel_section"]

logger = logging.getLogger(__name__)

_warned = False


class BlasThreadsWarning(UserWarning):
    """BLAS would have run several threads beside factorise's own; it was limited to one."""


def available_threads() -> int:
    """The most threads numba can run (``NUMBA_NUM_THREADS``; all cores by default)."""
    return int(numba.config.NUMBA_NUM_THREADS)


def check_n_threads(n_threads: object, name: str = "n_threads") -> int:
    """Resolve ``n_threads``: ``None`` means all cores; otherwise an integer >= 1.

    More threads than cores is allowed (the work is split that many ways, and
    runs on at most :func:`available_threads` threads at once).

    Parameters
    ----------
    n_threads : int or None
        The caller's value.
    name : str, optional
        Parameter name used in error messages.

    Returns
    -------
    int
        Threads to use, >= 1.
    """
    if n_threads is None:
        return available_threads()
    rule = f"`{name}` must be None (all cores) or an integer >= 1"
    if not isinstance(n_threads, numbers.Integral) or isinstance(n_threads, (bool, np.bool_)):
        raise TypeError(f"{rule}; got {n_threads!r} of type {type(n_threads).__name__}")
    if int(n_threads) < 1:
        raise ValueError(f"{rule}; got {n_threads}")
    return int(n_threads)


@functools.lru_cache(maxsize=1)
def _controller() -> Any:
    """One threadpoolctl controller per process (building one scans every loaded library)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _blas_threads() -> int:
    counts = [info.get("num_threads", 1) for info in _controller().info() if info.get("user_api") == "blas"]
    return max(counts, default=1)


@contextlib.contextmanager
def parallel_section(n_threads: int) -> Iterator[None]:
    """Run numba kernels on ``n_threads`` threads with BLAS limited to one.

    Parameters
    ----------
    n_threads : int
        Threads for numba's parallel kernels (already checked); at most
        :func:`available_threads` run at once.
    """
    global _warned
    previous = numba.get_num_threads()
    limiter = contextlib.nullcontext()
    if n_threads > 1:
        blas = _blas_threads()
        if blas > 1:
            if not _warned:
                _warned = True
                warnings.warn(
                    f"BLAS was set to {blas} threads; factorise limits it to 1 while its own "
                    f"{n_threads} threads run (set n_threads=1 to leave BLAS alone)",
                    BlasThreadsWarning,
                    stacklevel=3,
                )
            limiter = _controller().limit(limits=1, user_api="blas")
    numba.set_num_threads(min(n_threads, available_threads()))
    try:
        with limiter:
            yield
    finally:
        numba.set_num_threads(previous)
