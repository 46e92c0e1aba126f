"""One ``n_threads`` setting for everything, and no BLAS oversubscription.

:func:`check_n_threads` validates the setting (at most :data:`MAX_N_THREADS`,
with a :class:`~factorise.exceptions.ThreadsWarning` past the cores this
process may run on); :func:`parallel_section` is the context every parallel
kernel runs in: it sets numba's thread count, and while our own threads run it
limits BLAS to one thread (threadpoolctl), since BLAS threads beside ours can
slow both down many times over. Whatever it changes it restores on exit.

Limiting BLAS is part of how factorise runs, not news, so it is logged at
debug level, except when it overrides a setting the user made: a BLAS thread
variable (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``,
``BLIS_NUM_THREADS``, ``VECLIB_MAXIMUM_THREADS``) set to more than 1 in the
environment. Then a :class:`~factorise.exceptions.BlasThreadsWarning` says so,
once per process. (A ``threadpoolctl`` limit above 1 made in code cannot be
told apart from the library's own default, so it is logged, not warned
about.)
"""

from __future__ import annotations

import contextlib
import functools
import logging
import numbers
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numba
import numpy as np

from factorise.exceptions import BlasThreadsWarning, ThreadsWarning

__all__ = [
    "BLAS_THREAD_VARIABLES",
    "MAX_N_THREADS",
    "BlasThreadsWarning",
    "ThreadsWarning",
    "available_cores",
    "available_threads",
    "check_n_threads",
    "parallel_section",
    "user_stacklevel",
]

logger = logging.getLogger(__name__)

#: Largest ``n_threads`` accepted. The biggest single machines today run 768 hardware threads
#: (two 192-core CPUs with SMT); 1024 leaves room and equals the most SGD blocks per side
#: (:data:`factorise.models._blocks.MAX_N_BLOCKS`), which must be at least ``n_threads``. A larger
#: value is a typo, not a machine, and would be stored in the saved model.
MAX_N_THREADS = 1024

#: Environment variables through which a user sets BLAS's thread count.
BLAS_THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
)

_warned = False
_PACKAGE_DIR = str(Path(__file__).resolve().parent)


def available_threads() -> int:
    """The most threads numba can run (``NUMBA_NUM_THREADS``; all cores by default)."""
    return int(numba.config.NUMBA_NUM_THREADS)


def available_cores() -> int:
    """Cores this process may run on (``os.sched_getaffinity`` where present, else ``os.cpu_count``)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def user_stacklevel() -> int:
    """The ``stacklevel`` that attributes a warning to the first frame outside factorise.

    So a warning raised deep in a fit points at the user's line (and the
    default filter shows it once per such line).
    """
    frame = sys._getframe(1)
    level = 1
    while frame is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(_PACKAGE_DIR):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def check_n_threads(n_threads: object, name: str = "n_threads", *, warn: bool = True) -> int:
    """Resolve ``n_threads``: ``None`` means all cores; otherwise an integer in ``[1, MAX_N_THREADS]``.

    More threads than the cores this process may run on
    (:func:`available_cores`) is allowed -- the work is split that many ways,
    and runs on at most :func:`available_threads` threads at once -- but warned
    about with a :class:`~factorise.exceptions.ThreadsWarning`, since it
    usually means a value meant for another machine.

    Parameters
    ----------
    n_threads : int or None
        The caller's value.
    name : str, optional
        Parameter name used in error messages.
    warn : bool, default True
        Warn when ``n_threads`` exceeds the cores (``False`` for a model
        loaded from a file, whose count was chosen on another machine).

    Returns
    -------
    int
        Threads to use, >= 1.

    Raises
    ------
    TypeError
        If ``n_threads`` is neither ``None`` nor an integer.
    ValueError
        If it is below 1 or above :data:`MAX_N_THREADS`.
    """
    if n_threads is None:
        return available_threads()
    rule = f"`{name}` must be None (all cores) or an integer with 1 <= {name} <= {MAX_N_THREADS}"
    if not isinstance(n_threads, numbers.Integral) or isinstance(n_threads, (bool, np.bool_)):
        raise TypeError(f"{rule}; got {n_threads!r} of type {type(n_threads).__name__}")
    value = int(n_threads)
    if not 1 <= value <= MAX_N_THREADS:
        raise ValueError(f"{rule}; got {value}")
    cores = available_cores()
    if warn and value > cores:
        warnings.warn(
            f"`{name}`={value} is more than the {cores} core(s) this process may run on; the work is "
            f"split {value} ways but runs on at most {min(cores, available_threads())} threads at once "
            f"(pass {name}=None to use all cores)",
            ThreadsWarning,
            stacklevel=user_stacklevel(),
        )
    return value


@functools.lru_cache(maxsize=1)
def _controller() -> Any:
    """One threadpoolctl controller per process (building one scans every loaded library)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def _blas_threads() -> int:
    counts = [info.get("num_threads", 1) for info in _controller().info() if info.get("user_api") == "blas"]
    return max(counts, default=1)


def _user_blas_setting() -> tuple[str, int] | None:
    """The first BLAS thread variable of the environment set to an integer > 1, if any."""
    for variable in BLAS_THREAD_VARIABLES:
        text = os.environ.get(variable, "").strip().split(",")[0]
        try:
            value = int(text)
        except ValueError:
            continue
        if value > 1:
            return variable, value
    return None


@contextlib.contextmanager
def parallel_section(n_threads: int) -> Iterator[None]:
    """Run numba kernels on ``n_threads`` threads with BLAS limited to one.

    BLAS is limited only when ``n_threads > 1`` and BLAS would run more than
    one thread. That is logged at debug level, unless a BLAS thread variable
    of the environment (:data:`BLAS_THREAD_VARIABLES`) asks for more than one
    thread: overriding the user's own setting is warned about once per
    process, with a :class:`~factorise.exceptions.BlasThreadsWarning`.

    Parameters
    ----------
    n_threads : int
        Threads for numba's parallel kernels (already checked); at most
        :func:`available_threads` run at once.
    """
    global _warned
    previous = numba.get_num_threads()
    limiter: contextlib.AbstractContextManager[Any] = contextlib.nullcontext()
    if n_threads > 1:
        blas = _blas_threads()
        if blas > 1:
            setting = _user_blas_setting()
            message = (
                f"BLAS was set to {blas} threads; factorise limits it to 1 while its own "
                f"{n_threads} threads run (set n_threads=1 to leave BLAS alone)"
            )
            if setting is not None and not _warned:
                _warned = True
                warnings.warn(
                    f"{message}; this overrides {setting[0]}={setting[1]}",
                    BlasThreadsWarning,
                    stacklevel=user_stacklevel(),
                )
            else:
                logger.debug(message)
            limiter = _controller().limit(limits=1, user_api="blas")
    numba.set_num_threads(min(n_threads, available_threads()))
    try:
        with limiter:
            yield
    finally:
        numba.set_num_threads(previous)
