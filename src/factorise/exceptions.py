"""Exceptions raised by factorise besides the standard ``TypeError``/``ValueError``."""

from __future__ import annotations

__all__ = ["DivergenceError"]


class DivergenceError(FloatingPointError):
    """The optimisation produced NaN or infinite values and was stopped.

    No factors are returned when this is raised. The usual cure is a smaller
    learning rate.
    """

