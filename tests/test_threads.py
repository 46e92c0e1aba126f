"""One n_threads setting; BLAS limited while our threads run, restored after; warnings only when due."""

from __future__ import annotations

import logging
import warnings

import numba
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from factorise import _threads
from factorise._threads import (
    BLAS_THREAD_VARIABLES,
    MAX_N_THREADS,
    BlasThreadsWarning,
    ThreadsWarning,
    available_cores,
    available_threads,
    check_n_threads,
    parallel_section,
)


def blas_threads() -> int:
    return max((i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"), default=1)


def test_check_n_threads() -> None:
    assert check_n_threads(None) == available_threads() >= 1
    assert check_n_threads(1) == 1
    with pytest.raises(ValueError, match=r"`n_threads` must be None \(all cores\) or an integer with 1 <= n_threads <= 1024; got 0"):
        check_n_threads(0)
    with pytest.raises(TypeError, match=r"got 2.0 of type float"):
        check_n_threads(2.0)
    with pytest.raises(TypeError, match=r"got True"):
        check_n_threads(True)


def test_more_threads_than_the_maximum_are_refused() -> None:
    assert check_n_threads(MAX_N_THREADS, warn=False) == MAX_N_THREADS
    with pytest.raises(ValueError, match=r"`threads` must be .* <= 1024; got 100000"):
        check_n_threads(100_000, "threads")


def test_more_threads_than_cores_warn_at_the_callers_line() -> None:
    cores = available_cores()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_n_threads(cores) == cores  # no warning up to the cores
    with pytest.warns(ThreadsWarning, match=rf"`n_threads`={cores + 3} is more than the {cores} core") as caught:
        assert check_n_threads(cores + 3) == cores + 3  # allowed: split more ways
    assert caught[0].filename == __file__  # attributed to the caller, not to factorise
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_n_threads(cores + 3, warn=False) == cores + 3


def test_parallel_section_restores_numba_threads() -> None:
    before = numba.get_num_threads()
    with parallel_section(1):
        assert numba.get_num_threads() == 1
    assert numba.get_num_threads() == before
    with pytest.raises(RuntimeError), parallel_section(1):
        raise RuntimeError("boom")
    assert numba.get_num_threads() == before


def _two_blas_threads() -> None:
    if available_threads() < 2:
        pytest.skip("needs two cores to run two threads")
    if blas_threads() < 2:
        pytest.skip("this BLAS cannot run two threads")


def test_blas_limit_overriding_the_users_setting_warns_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_threads, "_warned", False)
    for variable in BLAS_THREAD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    with threadpool_limits(limits=2, user_api="blas"):
        _two_blas_threads()
        with pytest.warns(BlasThreadsWarning, match="limits it to 1.*overrides OPENBLAS_NUM_THREADS=2"):
            with parallel_section(2):
                assert blas_threads() == 1
        assert blas_threads() == 2  # restored
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with parallel_section(2):  # no second warning
                assert blas_threads() == 1
        with parallel_section(1):  # one thread of ours: BLAS left alone
            assert blas_threads() == 2


@pytest.mark.parametrize("setting", [None, "1", "junk"])
def test_blas_limit_without_a_user_setting_is_only_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, setting: str | None
) -> None:
    """A default machine: BLAS runs all cores because nobody said otherwise; limiting it is no news."""
    monkeypatch.setattr(_threads, "_warned", False)
    for variable in BLAS_THREAD_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    if setting is not None:
        monkeypatch.setenv("OMP_NUM_THREADS", setting)
    with threadpool_limits(limits=2, user_api="blas"):
        _two_blas_threads()
        with caplog.at_level(logging.DEBUG, logger="factorise._threads"), warnings.catch_warnings():
            warnings.simplefilter("error")
            with parallel_section(2):
                assert blas_threads() == 1
        assert blas_threads() == 2
    assert any("limits it to 1" in record.getMessage() for record in caplog.records)
