"""The software prefetch of the SGD kernels: a hint that compiles, runs on any row shape, and changes nothing."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from factorise.kernels import prefetch
from factorise.kernels.prefetch import prefetch_row


@numba.njit(cache=False)
def _prefetch_every_row(array: np.ndarray) -> int:
    for row in range(array.shape[0]):
        prefetch_row(array, row)
    return array.shape[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32])
@pytest.mark.parametrize("k", [1, 5, 15, 16, 17, 32, 100])
def test_prefetch_row_runs_on_every_row_and_changes_nothing(dtype: type, k: int) -> None:
    rng = np.random.default_rng(k)
    array = (rng.normal(size=(37, k)) * 100).astype(dtype)
    before = array.copy()
    assert _prefetch_every_row(array) == 37
    np.testing.assert_array_equal(array, before)


def test_prefetch_is_issued_one_line_apart() -> None:
    """The hint asks for one address per 64-byte line of the row: the compiled code holds the instruction."""
    array = np.zeros((4, 32), np.float32)

    @numba.njit(cache=False)
    def one(a: np.ndarray) -> None:
        prefetch_row(a, 2)

    one(array)
    assembly = next(iter(one.inspect_asm().values()))
    assert "prefetch" in assembly
    assert prefetch.CACHE_LINE == 64 and prefetch.DISTANCE >= 1


def test_prefetch_rejects_what_is_not_a_matrix() -> None:
    @numba.njit(cache=False)
    def vector(a: np.ndarray) -> None:
        prefetch._prefetch(a, 0, 0)

    with pytest.raises(numba.core.errors.TypingError):
        vector(np.zeros(4))
