"""Counter-based random numbers for the compiled kernels: SplitMix64.

SplitMix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number
generators", OOPSLA 2014; the constants of Vigna's ``splitmix64.c``) advances a
64-bit state by a fixed odd constant and mixes it with :func:`mix64`, a
bijection of 64-bit words. A kernel that needs random numbers takes a ``uint64``
seed (drawn on the host from the caller's ``numpy.random.Generator``) and keeps
its own stream: no global random state, and a stream per block or per user can
be derived by mixing an index into the seed, so results do not depend on how
many threads run. :mod:`factorise.kernels.rng_reference` is the same on Python
integers, for the tests.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["GOLDEN", "mix64", "splitmix64", "uniform"]

#: The increment of the state (2**64 / golden ratio, odd).
GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_TWO_M53 = 1.0 / 9007199254740992.0


@numba.njit(cache=True, nogil=True)
def mix64(z: np.uint64) -> np.uint64:  # pragma: no cover - compiled
    """The SplitMix64 output function (a bijection of 64-bit words)."""
    z = (z ^ (z >> _S30)) * _MIX1
    z = (z ^ (z >> _S27)) * _MIX2
    return z ^ (z >> _S31)


@numba.njit(cache=True, nogil=True)
def splitmix64(state: np.uint64) -> tuple[np.uint64, np.uint64]:  # pragma: no cover - compiled
    """One SplitMix64 step: ``(new_state, output)``, the output a uniform 64-bit word."""
    state = state + GOLDEN
    return state, mix64(state)


@numba.njit(cache=True, nogil=True)
def uniform(state: np.uint64) -> tuple[np.uint64, float]:  # pragma: no cover - compiled
    """One SplitMix64 step: ``(new_state, x)`` with ``x`` a uniform double in [0, 1) (53 bits)."""
    state = state + GOLDEN
    return state, (mix64(state) >> _S11) * _TWO_M53
