"""Rating-prediction errors: RMSE and MAE."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from factorise.data import Ratings

__all__ = ["rmse", "mae"]


def _check_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both arguments as 1-D float64 arrays of one non-zero length, finite."""
    arrays = []
    for name, value in (("y_true", y_true), ("y_pred", y_pred)):
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"`{name}` must hold real numbers; got dtype {array.dtype}")
        if array.ndim != 1:
            raise ValueError(f"`{name}` must be 1-D; got {array.ndim}-D array of shape {array.shape}")
        array = array.astype(np.float64, copy=False)
        bad = ~np.isfinite(array)
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            raise ValueError(
                f"`{name}` must be finite; got {float(array[first])!r} at position {first} "
                f"({int(bad.sum())} non-finite value(s) in all)"
            )
        arrays.append(array)
    true, pred = arrays
    if true.shape[0] != pred.shape[0]:
        raise ValueError(
            f"`y_true` and `y_pred` must have one length; got {true.shape[0]} and {pred.shape[0]}"
        )
    if true.shape[0] == 0:
        raise ValueError("`y_true` and `y_pred` must not be empty; got 0 values")
    return true, pred


def _values(y: Any) -> Any:
    return y.values if isinstance(y, Ratings) else y


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root mean squared error ``sqrt(mean((y_true - y_pred)^2))``, in float64.

    Parameters
    ----------
    y_true : array_like or Ratings
        True ratings (a :class:`~factorise.data.Ratings` gives its values).
    y_pred : array_like
        Predictions, one per true rating.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the lengths differ, the arrays are empty or not 1-D, or a value is
        NaN or infinite.
    TypeError
        If a value is not a real number.

    Examples
    --------
    >>> rmse([1, 2, 3], [1, 2, 5])  # sqrt(4 / 3)
    1.1547005383792515
    """
    true, pred = _check_pair(_values(y_true), y_pred)
    diff = true - pred
    return math.sqrt(float(diff @ diff) / diff.shape[0])


def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error ``mean(|y_true - y_pred|)``, in float64.

    Parameters
    ----------
    y_true : array_like or Ratings
        True ratings (a :class:`~factorise.data.Ratings` gives its values).
    y_pred : array_like
        Predictions, one per true rating.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        If the lengths differ, the arrays are empty or not 1-D, or a value is
        NaN or infinite.
    TypeError
        If a value is not a real number.

    Examples
    --------
    >>> mae([1, 2, 3], [1, 2, 5])  # 2 / 3
    0.6666666666666666
    """
    true, pred = _check_pair(_values(y_true), y_pred)
    return float(np.mean(np.abs(true - pred)))
