"""Validation of user input, done once at the public boundary.

Every check raises ``TypeError`` (wrong kind of value) or ``ValueError``
(right kind, wrong value) with a message that names the parameter, the rule
and the value that broke it.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np

__all__ = [
    "check_rank",
    "check_non_negative_int",
    "check_positive_int",
    "check_positive_float",
    "check_non_negative_float",
    "check_random_state",
    "check_real_matrix",
    "check_mask",
    "check_finite_where",
    "data_scale_problem",
]


def _is_integer(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_rank(rank: object, shape: tuple[int, int], *, name: str = "rank") -> int:
    """Return ``rank`` as an ``int`` after checking ``1 <= rank <= min(shape)``.

    Parameters
    ----------
    rank : object
        The value given by the caller.
    shape : tuple of int
        Shape ``(m, n)`` of the matrix to factorise.
    name : str, optional
        Parameter name used in error messages.

    Returns
    -------
    int
        The validated rank.

    Raises
    ------
    TypeError
        If ``rank`` is not an integer.
    ValueError
        If ``rank`` is outside ``[1, min(m, n)]``.
    """
    limit = min(shape)
    rule = f"`{name}` must be an integer with 1 <= {name} <= min(m, n) = {limit}"
    if not _is_integer(rank):
        raise TypeError(f"{rule}; got {rank!r} of type {type(rank).__name__}")
    rank = int(rank)  # type: ignore[arg-type]
    if not 1 <= rank <= limit:
        raise ValueError(f"{rule}; got {rank}")
    return rank


def _check_int_at_least(value: object, name: str, low: int) -> int:
    rule = f"`{name}` must be an integer >= {low}"
    if not _is_integer(value):
        raise TypeError(f"{rule}; got {value!r} of type {type(value).__name__}")
    value = int(value)  # type: ignore[arg-type]
    if value < low:
        raise ValueError(f"{rule}; got {value}")
    return value


def check_non_negative_int(value: object, name: str) -> int:
    """Return ``value`` as an ``int`` after checking it is an integer >= 0.

    Parameters
    ----------
    value : object
        The value given by the caller.
    name : str
        Parameter name used in error messages.

    Returns
    -------
    int
        The validated value.
    """
    return _check_int_at_least(value, name, 0)


def check_positive_int(value: object, name: str) -> int:
    """Return ``value`` as an ``int`` after checking it is an integer >= 1.

    Parameters
    ----------
    value : object
        The value given by the caller.
    name : str
        Parameter name used in error messages.

    Returns
    -------
    int
        The validated value.
    """
    return _check_int_at_least(value, name, 1)


def _check_real(value: object, rule: str, ok: Callable[[float], bool]) -> float:
    """``value`` as a finite float satisfying ``ok``, or a TypeError/ValueError stating ``rule``."""
    if not isinstance(value, numbers.Real) or isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{rule}; got {value!r} of type {type(value).__name__}")
    value = float(value)
    if not (math.isfinite(value) and ok(value)):
        raise ValueError(f"{rule}; got {value!r}")
    return value


def check_positive_float(value: object, name: str) -> float:
    """Return ``value`` as a ``float`` after checking it is finite and > 0.

    Parameters
    ----------
    value : object
        The value given by the caller.
    name : str
        Parameter name used in error messages.

    Returns
    -------
    float
        The validated value.
    """
    return _check_real(value, f"`{name}` must be a finite real number > 0", lambda v: v > 0)


def check_non_negative_float(value: object, name: str) -> float:
    """Return ``value`` as a ``float`` after checking it is finite and >= 0.

    Parameters
    ----------
    value : object
        The value given by the caller.
    name : str
        Parameter name used in error messages.

    Returns
    -------
    float
        The validated value.
    """
    return _check_real(value, f"`{name}` must be a finite real number >= 0", lambda v: v >= 0)


def check_random_state(random_state: object) -> np.random.Generator:
    """Resolve ``random_state`` into a fresh :class:`numpy.random.Generator`.

    Follows Scientific Python SPEC 7: ``None`` draws fresh entropy from the
    operating system, an integer seeds a new generator, and a ``Generator`` is
    used as given (it advances). Global random state is never touched.

    Parameters
    ----------
    random_state : None, int, numpy.random.Generator, numpy.random.SeedSequence or numpy.random.BitGenerator
        The caller's seed.

    Returns
    -------
    numpy.random.Generator
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or isinstance(
        random_state, (np.random.SeedSequence, np.random.BitGenerator)
    ):
        return np.random.default_rng(random_state)
    if _is_integer(random_state):
        if int(random_state) < 0:  # type: ignore[call-overload]
            raise ValueError(
                f"`random_state` must be None, an integer >= 0 or a numpy.random.Generator; "
                f"got {random_state!r}"
            )
        return np.random.default_rng(int(random_state))  # type: ignore[call-overload]
    raise TypeError(
        "`random_state` must be None, an integer >= 0 or a numpy.random.Generator; "
        f"got {random_state!r} of type {type(random_state).__name__}"
    )


def check_real_matrix(A: np.ndarray, name: str = "A") -> None:
    """Check that ``A`` is a non-empty 2-D array of real numbers.

    Parameters
    ----------
    A : numpy.ndarray
        The array, already converted from the caller's type.
    name : str, optional
        Parameter name used in error messages.
    """
    if A.dtype.kind not in "biuf":
        raise TypeError(
            f"`{name}` must hold real numbers (bool, integer or floating dtype); "
            f"got dtype {A.dtype}"
        )
    if A.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D matrix; got {A.ndim}-D array of shape {A.shape}")
    if A.size == 0:
        raise ValueError(f"`{name}` must not be empty; got shape {A.shape}")


def check_mask(M: np.ndarray, shape: tuple[int, ...], name: str = "M") -> np.ndarray:
    """Validate a mask and return it as a C-contiguous boolean array.

    Parameters
    ----------
    M : numpy.ndarray
        The mask; a cell is observed where ``M != 0``.
    shape : tuple of int
        The shape the mask must have (that of ``A``).
    name : str, optional
        Parameter name used in error messages.

    Returns
    -------
    numpy.ndarray
        Boolean array of ``shape``, ``True`` where observed.
    """
    if M.dtype.kind not in "biuf":
        raise TypeError(
            f"`{name}` must hold real numbers or booleans (observed where {name} != 0); "
            f"got dtype {M.dtype}"
        )
    if M.shape != tuple(shape):
        raise ValueError(f"`{name}` must have the shape of A, {tuple(shape)}; got {M.shape}")
    if M.dtype.kind == "f" and not np.isfinite(M).all():
        raise ValueError(f"`{name}` must hold finite values (observed where {name} != 0); got NaN/inf")
    observed = np.ascontiguousarray(M != 0)
    if not observed.any():
        raise ValueError(f"`{name}` must mark at least one observed cell (M != 0); got none")
    return observed


def check_finite_where(A: np.ndarray, observed: np.ndarray | None, name: str = "A") -> None:
    """Check that ``A`` is finite wherever it is observed.

    Parameters
    ----------
    A : numpy.ndarray
        Floating or integer array.
    observed : numpy.ndarray or None
        Boolean mask of observed cells; ``None`` means every cell.
    name : str, optional
        Parameter name used in error messages.
    """
    if A.dtype.kind != "f":
        return
    bad = ~np.isfinite(A)
    if observed is not None:
        bad &= observed
    if bad.any():
        r, c = (int(i) for i in np.argwhere(bad)[0])
        where = "" if observed is None else " where the mask M is non-zero"
        raise ValueError(
            f"`{name}` must be finite{where}; got {float(A[r, c])!r} at row {r}, column {c} "
            f"({int(bad.sum())} non-finite cell(s) in all)"
        )


def data_scale_problem(largest: float, dtype: object, n_values: int, *, name: str = "data") -> str | None:
    """Say when data are too large for a dtype's arithmetic, or ``None`` when they are not.

    Least squares sums the squares of the data (and of errors of the same
    size): once ``n_values * largest**2`` passes the dtype's largest number,
    the sum is infinite whatever the learning rate or regularization, and the
    cure is to rescale the data. This is the rule: data whose largest
    magnitude exceeds ``sqrt(finfo(dtype).max / n_values)`` are too large.

    Parameters
    ----------
    largest : float
        Largest ``|value|`` of the data.
    dtype : numpy dtype or type
        The floating dtype of the arithmetic (or of the stored factors).
    n_values : int
        Number of values summed.
    name : str, optional
        What the data are called in the message.

    Returns
    -------
    str or None
        A sentence naming the largest value, the dtype and the advice, or
        ``None`` when the scale is not the problem.
    """
    info = np.finfo(np.dtype(dtype))  # type: ignore[call-overload]
    limit = math.sqrt(float(info.max) / max(1, int(n_values)))
    if not (largest > limit):  # NaN largest: not a scale problem
        return None
    if math.isinf(largest):
        exponent = 0
    else:
        exponent = max(0, int(math.floor(math.log10(largest))))
    return (
        f"the {name} are too large for {info.dtype} arithmetic: the largest |value| is {largest:.3g}, "
        f"and {n_values:,} squares of that size overflow {info.dtype} (largest {float(info.max):.3g}; "
        f"values must stay below about {limit:.3g}); rescale the {name} (e.g. divide them by 1e{exponent}) "
        f"-- a smaller learning rate or more regularization will not help"
    )
