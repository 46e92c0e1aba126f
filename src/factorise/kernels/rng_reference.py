"""Slow, obvious reference of :mod:`factorise.kernels.rng`: SplitMix64 on Python integers."""

from __future__ import annotations

__all__ = ["SplitMix64", "mix64", "splitmix64"]

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_TWO_M53 = 1.0 / 9007199254740992.0


def mix64(z: int) -> int:
    """Reference for :func:`factorise.kernels.rng.mix64`."""
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return z ^ (z >> 31)


def splitmix64(state: int) -> tuple[int, int]:
    """Reference for :func:`factorise.kernels.rng.splitmix64`: ``(new_state, output)``."""
    state = (state + _GOLDEN) & _MASK64
    return state, mix64(state)


class SplitMix64:
    """A SplitMix64 stream on Python integers."""

    def __init__(self, state: int) -> None:
        self.state = state & _MASK64

    def next_int(self) -> int:
        """The next 64-bit output."""
        self.state, z = splitmix64(self.state)
        return z

    def uniform(self) -> float:
        """The next uniform double in [0, 1), as :func:`factorise.kernels.rng.uniform` draws it."""
        return (self.next_int() >> 11) * _TWO_M53
