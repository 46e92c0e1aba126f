"""Exceptions and warnings raised by factorise besides the standard ``TypeError``/``ValueError``."""

from __future__ import annotations

__all__ = ["BlasThreadsWarning", "DivergenceError", "ThreadsWarning"]


class DivergenceError(FloatingPointError):
    """The optimisation produced NaN or infinite values and was stopped.

    No factors are returned when this is raised. The usual cure is a smaller
    learning rate; when the data themselves are too large for the compute
    dtype's arithmetic (ratings of 1e38 in float32, say), the message says so
    and advises rescaling the data instead.
    """


class ThreadsWarning(UserWarning):
    """More threads were asked for than this process has cores; they will take turns."""


class BlasThreadsWarning(UserWarning):
    """The user's own BLAS thread setting was overridden: BLAS ran one thread beside factorise's."""
