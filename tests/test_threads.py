"""One n_threads setting; BLAS limited while our threads run, restored after, one warning."""

from __future__ import annotations

import warnings

import numba
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from factorise import _threads
from factorise._threads import BlasThreadsWarning, available_threads, check_n_threads, parallel_section


def blas_threads() -> int:
    return max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"), default=1)


def test_check_n_threads() -> None:
    assert check_n_threads(None) == available_threads() >= 1
    assert check_n_threads(1) == 1
    assert check_n_threads(available_threads() + 3) == available_threads() + 3  # split more ways
    with pytest.raises(ValueError, match=r"`n_threads` must be None \(all cores\) or an integer >= 1; got 0"):
        check_n_threads(0)
    with pytest.raises(TypeError, match=r"got 2.0 of type float"):
        check_n_threads(2.0)
    with pytest.raises(TypeError, match=r"got True"):
        check_n_threads(True)


def test_parallel_section_restores_numba_threads() -> None:
    before = numba.get_num_threads()
    with parallel_section(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with pytest.raises(RuntimeError), parallel_section(1):
        raise RuntimeError("boom")
    assert numba.get_num_threads() == before


def test_blas_limited_while_our_threads_run_with_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    if available_threads() < 2:
        pytest.skip("needs two cores to run two threads")
    monkeypatch.setattr(_threads, "_warned", False)
    with threadpool_limits(limits=2, user_api="blas"):
        if blas_threads() < 2:
            pytest.skip("this BLAS cannot run two threads")
        with pytest.warns(BlasThreadsWarning, match="limits it to 1"), parallel_section(2):
            assert blas_threads() == 1
        assert blas_threads() == 2  # restored
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with parallel_section(2):  # no second warning
                assert blas_threads() == 1
        with parallel_section(1):  # one thread of ours: BLAS left alone
            assert blas_threads() == 2
