"""``--max-memory``: refuse, before the work, a read or a fit that would need more memory.

A text file's users and items are unknown until it is read, so a command
checks twice:

1. :func:`check_read_memory`, before reading: the peak of reading the file's
   (counted or estimated) ratings,
   :func:`factorise.data._estimate.estimate_read_memory`;
2. :func:`check_fit_memory`, after reading and before fitting: the model's
   :meth:`~factorise.models.RatingModel.estimate_fit_memory` for the real
   numbers of ratings, users and items (plus a validation set's, if any).

Both estimates bound the whole process's peak resident set (runtime
included) from above; ``benchmarks/memory.py`` measures them against the
peak of ``factorise fit`` for every model.
"""

from __future__ import annotations

import logging
import os
from typing import Any

__all__ = ["check_fit_memory", "check_read_memory", "human_bytes", "release_free_memory"]

logger = logging.getLogger(__name__)


def release_free_memory() -> None:
    """Hand memory that is free but still held back to the system (after reading, before fitting).

    pyarrow's pool keeps the buffers of the batches it read, and glibc's
    ``malloc`` the heap left by NumPy's mid-sized temporaries; neither is
    used again by a fit, whose arrays are large enough to be mapped anew.
    Returning them lowers the command's peak by some 40 MB on 9M ratings
    (the read's own peak is not changed). A process-wide act, so the command
    line does it, not the library; a no-op where there is no glibc.
    """
    import sys

    if "pyarrow" in sys.modules:
        sys.modules["pyarrow"].default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        import ctypes
        import ctypes.util

        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            trim = libc.malloc_trim
        except (OSError, AttributeError):  # musl and others have no malloc_trim
            return
        trim.argtypes = [ctypes.c_size_t]
        trim(0)


def human_bytes(n_bytes: float) -> str:
    """``n_bytes`` in binary units with one decimal: ``512.0 MiB``, ``2.3 GiB``."""
    value = float(n_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _check_limit(limit: object, flag: str) -> int:
    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0:
        raise ValueError(f"{flag} must be a size > 0 such as 2G or 500M; got {limit!r}")
    return limit


def check_read_memory(path: str | os.PathLike[str], limit: int | None, *, flag: str = "--max-memory") -> None:
    """Refuse, before reading, a ratings file whose reading would need more than ``limit`` bytes.

    Parameters
    ----------
    path : str or os.PathLike
        The ratings file.
    limit : int or None
        Bytes allowed (``None``: no check).
    flag : str, default "--max-memory"
        The option that gave ``limit``, for the message.

    Raises
    ------
    ValueError
        One line naming the file, the ratings, the estimate, ``flag`` and its
        value, and what to do.
    FileNotFoundError
        If ``path`` does not exist.
    """
    if limit is None:
        return
    limit = _check_limit(limit, flag)
    from factorise.data import estimate_n_ratings
    from factorise.data._estimate import estimate_read_memory

    n, exact = estimate_n_ratings(path)
    need = estimate_read_memory(n)
    about = "" if exact else "about "
    logger.info("%s: %s%d ratings; reading them takes up to %s", path, about, n, human_bytes(need))
    if need > limit:
        raise ValueError(
            f"{path}: reading {about}{n:,} ratings needs up to {human_bytes(need)}, more than "
            f"{flag} {human_bytes(limit)}; raise {flag} to at least {human_bytes(need)} or use a smaller file"
        )


def check_fit_memory(
    model: Any,
    ratings: Any,
    limit: int | None,
    *,
    flag: str = "--max-memory",
    validation: Any = None,
    source: str | os.PathLike[str] | None = None,
) -> None:
    """Refuse, after reading and before fitting, a fit that would need more than ``limit`` bytes.

    Parameters
    ----------
    model : RatingModel
        The model to fit, with its parameters set (rank, dtype, ...).
    ratings : Ratings
        The training ratings, read.
    limit : int or None
        Bytes allowed (``None``: no check).
    flag : str, default "--max-memory"
        The option that gave ``limit``, for the message.
    validation : Ratings, optional
        A validation set held beside the training ratings during the fit.
    source : str or os.PathLike, optional
        The training file, named in the message.

    Raises
    ------
    ValueError
        One line naming the model, the data's size, the estimate, ``flag``
        and its value, and what to do; or from the model's parameter checks.
    """
    if limit is None:
        return
    limit = _check_limit(limit, flag)
    from factorise.data._estimate import HELD_BYTES_PER_RATING

    n, m, i = len(ratings), int(ratings.n_users), int(ratings.n_items)
    need = int(model.estimate_fit_memory(n, m, i))
    if validation is not None:  # held beside, with an int32 user and item index per rating
        need += (HELD_BYTES_PER_RATING + 8) * len(validation)
    name = type(model).__name__
    rank = getattr(model, "rank", None)
    what = f"{name}" + (f" at rank {rank}" if rank is not None else "")
    logger.info("fitting %s to %d ratings takes up to %s", what, n, human_bytes(need))
    if need > limit:
        where = f"{source}: " if source is not None else ""
        advice = f"raise {flag} to at least {human_bytes(need)}"
        if rank is not None:
            advice += " or lower --rank"
        raise ValueError(
            f"{where}fitting {what} to {n:,} ratings ({m:,} users x {i:,} items) needs up to "
            f"{human_bytes(need)}, more than {flag} {human_bytes(limit)}; {advice}"
        )
