"""The compiled kernels against their slow references and the lab's own torch loop."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factorise.kernels import dense_sgd, reference

DTYPES = [np.float32, np.float64]
RTOL = {np.float32: 2e-4, np.float64: 1e-10}


def _problem(rng: np.random.Generator, m: int, n: int, k: int, dtype: type) -> tuple:
    A = rng.normal(size=(m, n)).astype(dtype)
    U = rng.random((m, k), dtype=dtype)
    V = rng.random((n, k), dtype=dtype)
    return A, U, V


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(25))
def test_dense_kernel_matches_reference(dtype: type, seed: int) -> None:
    rng = np.random.default_rng(seed)
    m, n = rng.integers(1, 9, size=2)
    k = int(rng.integers(1, min(m, n) + 1))
    A, U, V = _problem(rng, int(m), int(n), k, dtype)
    lr = dtype(0.05)
    U2, V2 = U.copy(), V.copy()
    for _ in range(3):
        sse_fast = dense_sgd.sgd_dense_epoch(A, U, V, lr)
        sse_ref = reference.sgd_dense_epoch(A, U2, V2, lr)
        np.testing.assert_allclose(sse_fast, sse_ref, rtol=RTOL[dtype] * 10)
    assert U.dtype == dtype and V.dtype == dtype
    np.testing.assert_allclose(U, U2, rtol=RTOL[dtype], atol=RTOL[dtype])
    np.testing.assert_allclose(V, V2, rtol=RTOL[dtype], atol=RTOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(25))
def test_masked_kernel_matches_reference(dtype: type, seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    m, n = (int(x) for x in rng.integers(1, 9, size=2))
    k = int(rng.integers(1, min(m, n) + 1))
    A, U, V = _problem(rng, m, n, k, dtype)
    M = rng.random((m, n)) < rng.uniform(0.2, 0.9)
    A[~M] = np.nan  # never read
    lr = dtype(0.05)
    U2, V2 = U.copy(), V.copy()
    for _ in range(3):
        sse_fast = dense_sgd.sgd_masked_epoch(A, M, U, V, lr)
        sse_ref = reference.sgd_masked_epoch(A, M, U2, V2, lr)
        np.testing.assert_allclose(sse_fast, sse_ref, rtol=RTOL[dtype] * 10)
    assert np.isfinite(U).all() and np.isfinite(V).all()
    np.testing.assert_allclose(U, U2, rtol=RTOL[dtype], atol=RTOL[dtype])
    np.testing.assert_allclose(V, V2, rtol=RTOL[dtype], atol=RTOL[dtype])


@settings(max_examples=60, deadline=None)
@given(
    m=st.integers(1, 6),
    n=st.integers(1, 6),
    data=st.data(),
    dtype=st.sampled_from(DTYPES),
)
def test_masked_kernel_property(m: int, n: int, data: st.DataObject, dtype: type) -> None:
    """Any shape, rank and mask (empty rows and columns included)."""
    k = data.draw(st.integers(1, min(m, n)))
    flat = data.draw(st.lists(st.booleans(), min_size=m * n, max_size=m * n))
    M = np.array(flat, dtype=bool).reshape(m, n)
    seed = data.draw(st.integers(0, 2**32 - 1))
    A, U, V = _problem(np.random.default_rng(seed), m, n, k, dtype)
    U0, V0 = U.copy(), V.copy()
    U2, V2 = U.copy(), V.copy()
    sse_fast = dense_sgd.sgd_masked_epoch(A, M, U, V, dtype(0.1))
    sse_ref = reference.sgd_masked_epoch(A, M, U2, V2, dtype(0.1))
    np.testing.assert_allclose(sse_fast, sse_ref, rtol=RTOL[dtype] * 10, atol=1e-12)
    np.testing.assert_allclose(U, U2, rtol=RTOL[dtype], atol=RTOL[dtype])
    np.testing.assert_allclose(V, V2, rtol=RTOL[dtype], atol=RTOL[dtype])
    # rows and columns with no observed cell are left exactly as they were
    np.testing.assert_array_equal(U[~M.any(axis=1)], U0[~M.any(axis=1)])
    np.testing.assert_array_equal(V[~M.any(axis=0)], V0[~M.any(axis=0)])


def test_reference_is_the_textbook_gradient_step() -> None:
    """One cell by hand: the V step uses the row of U just updated."""
    A = np.array([[2.0]])
    U = np.array([[0.5, 1.0]])
    V = np.array([[1.0, 0.25]])
    lr = 0.1
    e = 2.0 - (0.5 * 1.0 + 1.0 * 0.25)
    u_new = U[0] + lr * e * V[0]
    v_new = V[0] + lr * e * u_new
    sse = dense_sgd.sgd_dense_epoch(A, U, V, lr)
    assert sse == pytest.approx(e * e)
    np.testing.assert_allclose(U[0], u_new)
    np.testing.assert_allclose(V[0], v_new)


def test_compiled_kernel_matches_the_labs_torch_loop(torch) -> None:
    """The lab's torch code as written, from the same start, gives the same factors."""
    rng = np.random.default_rng(7)
    A, U, V = _problem(rng, 4, 5, 2, np.float32)
    At, Ut, Vt = (torch.from_numpy(x.copy()) for x in (A, U, V))
    lr = 0.01
    for _ in range(5):  # the lab's loop body, verbatim
        for r in range(4):
            for c in range(5):
                e = At[r, c] - Ut[r] @ Vt[c].t()
                Ut[r] = Ut[r] + lr * e * Vt[c]
                Vt[c] = Vt[c] + lr * e * Ut[r]
        dense_sgd.sgd_dense_epoch(A, U, V, np.float32(lr))
    np.testing.assert_allclose(U, Ut.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(V, Vt.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("seed", range(20))
def test_rating_prediction_kernels_match_reference(seed: int) -> None:
    from factorise.kernels import ratings as rk

    rng = np.random.default_rng(seed)
    n_users, n_items, k = (int(x) for x in rng.integers(1, 12, size=3))
    n = int(rng.integers(1, 60))
    users = rng.integers(-1, n_users, n).astype(np.int64)  # -1: unknown user
    items = rng.integers(-1, n_items, n).astype(np.int64)
    values = rng.uniform(1, 5, n).astype(np.float32)
    bu = rng.normal(size=n_users).astype(np.float32)
    bi = rng.normal(size=n_items).astype(np.float32)
    P = rng.normal(size=(n_users, k)).astype(np.float32)
    Q = rng.normal(size=(n_items, k)).astype(np.float32)
    mu = float(rng.uniform(2, 4))
    fast, slow = np.empty(n), np.empty(n)
    rk.predict_pairs(users, items, mu, bu, bi, P, Q, fast)
    reference.predict_pairs(users, items, mu, bu, bi, P, Q, slow)
    np.testing.assert_allclose(fast, slow, rtol=1e-5, atol=1e-5)
    # fallbacks: unknown user -> mu + b_i, unknown item -> mu + b_u, both -> mu
    for t in range(n):
        if users[t] < 0 and items[t] >= 0:
            assert fast[t] == pytest.approx(mu + bi[items[t]], abs=1e-5)
        if users[t] < 0 and items[t] < 0:
            assert fast[t] == pytest.approx(mu, abs=1e-6)
    sse = rk.sum_squared_error(users, items, values, mu, bu, bi, P, Q, 1.0, 5.0)
    assert sse == pytest.approx(reference.sum_squared_error(users, items, values, mu, bu, bi, P, Q, 1.0, 5.0), rel=1e-4)
    assert sse == pytest.approx(float(np.sum((values - np.clip(slow, 1, 5)) ** 2)), rel=1e-4)


@pytest.mark.parametrize("seed", range(15))
def test_grouping_kernel_matches_stable_sort(seed: int) -> None:
    from factorise.kernels import grouping, grouping_reference

    rng = np.random.default_rng(seed)
    n_groups = int(rng.integers(1, 30))
    keys = rng.integers(0, n_groups, int(rng.integers(0, 300))).astype(np.int32)
    others = rng.integers(0, 1000, keys.size).astype(np.int32)
    values = rng.random(keys.size).astype(np.float32)
    indptr = np.empty(n_groups + 1, dtype=np.int64)
    grouping.group_counts(keys, n_groups, indptr)
    for data in (others, values):
        out = np.empty_like(data)
        grouping.group_fill(keys, data, indptr, out, np.empty(n_groups, dtype=np.int64))
        ref_indptr, ref = grouping_reference.group(keys, data, n_groups)
        np.testing.assert_array_equal(indptr, ref_indptr)
        np.testing.assert_array_equal(out, ref)
        assert out.dtype == data.dtype


@pytest.mark.parametrize("seed", range(10))
def test_mark_used_matches_reference(seed: int) -> None:
    from factorise.kernels import grouping, grouping_reference

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 50))
    index = rng.integers(0, n, int(rng.integers(0, 80))).astype(np.int32)
    fast, slow = np.zeros(n, bool), np.zeros(n, bool)
    fast[0] = slow[0] = bool(seed % 2)  # marks already there are kept and counted
    assert grouping.mark_used(index, fast) == grouping_reference.mark_used(index, slow)
    np.testing.assert_array_equal(fast, slow)
    assert np.count_nonzero(fast) == len(set(index.tolist()) | ({0} if seed % 2 else set()))


def test_parallel_squared_error_matches_serial() -> None:
    from factorise.kernels import ratings as rk

    rng = np.random.default_rng(0)
    n, n_users, n_items, k = 5000, 50, 40, 6
    args = (
        rng.integers(-1, n_users, n),
        rng.integers(-1, n_items, n),
        rng.uniform(1, 5, n).astype(np.float32),
        3.5,
        rng.normal(size=n_users).astype(np.float32),
        rng.normal(size=n_items).astype(np.float32),
        rng.normal(size=(n_users, k)).astype(np.float32),
        rng.normal(size=(n_items, k)).astype(np.float32),
        1.0,
        5.0,
    )
    assert rk.sum_squared_error_parallel(*args) == pytest.approx(rk.sum_squared_error(*args), rel=1e-9)


@pytest.mark.parametrize("seed", range(5))
def test_sum_squared_deviation_matches_numpy(seed: int) -> None:
    from factorise.kernels import ratings as rk

    values = np.random.default_rng(seed).uniform(1, 5, 1000 + seed).astype(np.float32)
    centre = float(np.mean(values, dtype=np.float64))
    expected = float(np.sum((values.astype(np.float64) - centre) ** 2))
    assert rk.sum_squared_deviation(values, centre) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("n_chunks", [1, 2, 3, 7])
def test_chunked_grouping_is_the_stable_sort_for_any_number_of_chunks(seed: int, n_chunks: int) -> None:
    from factorise.kernels import grouping, grouping_reference

    rng = np.random.default_rng(seed)
    n_groups = int(rng.integers(1, 30))
    keys = rng.integers(0, n_groups, int(rng.integers(0, 400))).astype(np.int32)
    others = rng.integers(0, 1000, keys.size).astype(np.int32)
    indptr = np.full(n_groups + 1, -5, dtype=np.int64)
    starts = grouping.group_chunk_starts(keys, n_groups, n_chunks, indptr)
    before = starts.copy()
    out = np.empty_like(others)
    assert grouping.group_fill_chunked(keys, others, starts, out) == keys.size
    np.testing.assert_array_equal(starts, before)
    ref_indptr, ref = grouping_reference.group(keys, others, n_groups)
    np.testing.assert_array_equal(indptr, ref_indptr)
    np.testing.assert_array_equal(out, ref)


def test_rated_lists_are_the_same_on_one_and_two_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    from factorise.models import _base

    monkeypatch.setattr(_base, "_PARALLEL_GROUP_MIN", 1000)
    rng = np.random.default_rng(3)
    users = rng.integers(0, 50, 20_000).astype(np.int32)
    items = rng.integers(0, 900, 20_000).astype(np.int32)
    one = _base._rated_lists(users, items, 50, 1)
    two = _base._rated_lists(users, items, 50, 2)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a, b)
