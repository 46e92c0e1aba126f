"""gd_factorise_masked, the lab's part 4: full-batch gradient descent against a plain loop, on every engine."""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy import sparse

from factorise import DivergenceError, gd_factorise_masked

#: The torch device of the engine tests: the CPU here and in CI; benchmarks/gpu_check.sh sets "cuda".
DEVICE = os.environ.get("FACTORISE_TEST_DEVICE", "torch-cpu")

def reference(A: np.ndarray, M: np.ndarray, rank: int, epochs: int, lr: float, seed: int) -> tuple[np.ndarray, ...]:
    """The lab's loop written out cell by cell: E from the old U and V, then U, then V with the new U."""
    rng = np.random.default_rng(seed)
    m, n = A.shape
    U, V = rng.random((m, rank)), rng.random((n, rank))
    sse = []
    for _ in range(epochs):
        E = np.zeros((m, n))
        for r in range(m):
            for c in range(n):
                if M[r, c]:
                    E[r, c] = A[r, c] - sum(U[r, k] * V[c, k] for k in range(rank))
        sse.append(float((E**2).sum()))
        newU = U.copy()
        for r in range(m):
            for k in range(rank):
                newU[r, k] += lr * sum(E[r, c] * V[c, k] for c in range(n))
        newV = V.copy()
        for c in range(n):
            for k in range(rank):
                newV[c, k] += lr * sum(E[r, c] * newU[r, k] for r in range(m))
        U, V = newU, newV
    return U, V, np.array(sse)


def small(seed: int = 0, m: int = 7, n: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    A = rng.random((m, 2)) @ rng.random((2, n)) * 3
    M = rng.random((m, n)) < 0.6
    A[~M] = np.nan  # values under the mask may be NaN
    return A, M


def test_numpy_dense_and_sparse_match_the_plain_loop() -> None:
    A, M = small()
    U0, V0, sse0 = reference(A, M, 2, 15, 0.02, seed=4)
    for mask in (M, M.astype(float) * 3.0, sparse.csr_matrix(M), sparse.coo_matrix(M)):
        seen: list[float] = []
        U, V = gd_factorise_masked(A, mask, 2, 15, 0.02, random_state=4, callback=lambda e, s: seen.append(s))
        np.testing.assert_allclose(U, U0, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(V, V0, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(seen, sse0, rtol=1e-12)


def test_the_v_update_uses_the_new_u() -> None:
    """One step by hand: V moves along E^T U_new, which is not E^T U_old."""
    A, M = small(1)
    rng = np.random.default_rng(9)
    U0, V0 = rng.random((7, 2)), rng.random((5, 2))
    E = np.where(M, np.nan_to_num(A) - U0 @ V0.T, 0.0)
    U1 = U0 + 0.05 * E @ V0
    new, old = V0 + 0.05 * E.T @ U1, V0 + 0.05 * E.T @ U0
    assert np.abs(new - old).max() > 1e-3  # the two readings differ here
    U, V = gd_factorise_masked(A, M, 2, 1, 0.05, random_state=9)
    np.testing.assert_allclose(U, U1, rtol=1e-13)
    np.testing.assert_allclose(V, new, rtol=1e-13)


def test_values_under_the_mask_have_no_influence() -> None:
    A, M = small(2)
    U1, V1 = gd_factorise_masked(A, M, 2, 30, 0.02, random_state=1)
    B = np.where(M, A, 1e6)
    U2, V2 = gd_factorise_masked(B, M, 2, 30, 0.02, random_state=1)
    np.testing.assert_array_equal(U1, U2)
    np.testing.assert_array_equal(V1, V2)


@pytest.mark.parametrize("layout", ["dense", "coo", "csr"])
def test_torch_engines_match_numpy(torch, layout: str) -> None:  # type: ignore[no-untyped-def]
    A, M = small(3, 12, 9)
    U0, V0 = gd_factorise_masked(A, M, 3, 40, 0.02, random_state=2)
    tm = torch.tensor(M)
    mask = {"dense": tm, "coo": tm.to_sparse(), "csr": tm.to_sparse_csr()}[layout]
    U, V = gd_factorise_masked(torch.tensor(A), mask, 3, 40, 0.02, random_state=2)
    assert isinstance(U, torch.Tensor) and U.dtype == torch.float64 and U.device.type == "cpu"
    np.testing.assert_allclose(U.numpy(), U0, rtol=1e-10)
    np.testing.assert_allclose(V.numpy(), V0, rtol=1e-10)
    # NumPy input on the torch engine: NumPy out, the same factors
    U2, V2 = gd_factorise_masked(A, sparse.csr_matrix(M) if layout != "dense" else M, 3, 40, 0.02, random_state=2,
                                 device=DEVICE)  # fmt: skip
    assert isinstance(U2, np.ndarray)
    np.testing.assert_allclose(U2, U0, rtol=1e-10)


def test_float32_stays_float32_on_every_engine(torch) -> None:  # type: ignore[no-untyped-def]
    A, M = small(4, 10, 8)
    A32 = A.astype(np.float32)
    U, V = gd_factorise_masked(A32, M, 2, 20, 0.02, random_state=0)
    assert U.dtype == np.float32 and V.dtype == np.float32
    Us, _ = gd_factorise_masked(A32, sparse.csr_matrix(M), 2, 20, 0.02, random_state=0)
    Ut, _ = gd_factorise_masked(torch.tensor(A32), torch.tensor(M).to_sparse(), 2, 20, 0.02, random_state=0)
    assert Us.dtype == np.float32 and Ut.dtype == torch.float32
    np.testing.assert_allclose(Us, U, rtol=1e-5)
    np.testing.assert_allclose(Ut.numpy(), U, rtol=1e-5)
    Ui, _ = gd_factorise_masked(np.nan_to_num(A).round().astype(int), M, 2, 5, 0.02, random_state=0)
    assert Ui.dtype == np.float64
    Uh, _ = gd_factorise_masked(torch.tensor(A32).half(), torch.tensor(M), 2, 5, 0.02, random_state=0)
    assert Uh.dtype == torch.float16  # the input's floating dtype, computed in float64


def test_a_sparse_a_and_mask_pair() -> None:
    """A sparse A: entries not stored count as 0 where M observes them; a mask's explicit zeros are not observed."""
    A, M = small(5)
    dense_A = np.where(M, A, 0.0)
    dense_A[0, :] = 0.0  # observed zeros: not stored in the sparse A
    M2 = M.copy()
    M2[0, :] = True
    stored = sparse.csr_matrix(dense_A)
    mask = sparse.coo_matrix(M2.astype(float))
    mask.data[:2] = 0.0  # explicit zeros in the mask: not observed
    observed = M2.copy()
    observed[mask.row[:2], mask.col[:2]] = False
    U0, V0 = gd_factorise_masked(dense_A, observed, 2, 20, 0.02, random_state=3)
    U, V = gd_factorise_masked(stored, mask, 2, 20, 0.02, random_state=3)
    np.testing.assert_allclose(U, U0, rtol=1e-12)
    np.testing.assert_allclose(V, V0, rtol=1e-12)


def test_a_sparse_mask_never_builds_the_dense_matrix() -> None:
    """200,000 x 100,000 with 3,000 observed cells: a dense error matrix would need 160 GB."""
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, 200_000, 3000), rng.integers(0, 100_000, 3000)
    mask = sparse.coo_matrix((np.ones(3000), (rows, cols)), shape=(200_000, 100_000))
    values = sparse.coo_matrix((rng.random(3000), (rows, cols)), shape=(200_000, 100_000))
    U, V = gd_factorise_masked(values, mask, 3, 5, 0.01, random_state=0)
    assert U.shape == (200_000, 3) and V.shape == (100_000, 3)
    assert np.isfinite(U).all() and np.isfinite(V).all()


def test_planted_low_rank_is_recovered_on_held_out_cells() -> None:
    """Rank 3 planted, 40% observed: the held-out error of the completion is near zero."""
    rng = np.random.default_rng(1)
    A = rng.random((60, 3)) @ rng.random((3, 80))
    M = rng.random(A.shape) < 0.4
    U, V = gd_factorise_masked(A, sparse.csr_matrix(M), 3, 6000, 0.01, random_state=0)
    held = ~M
    rmse = float(np.sqrt(np.mean((U @ V.T - A)[held] ** 2)))
    assert rmse < 0.02 * float(A.std()) * 10, rmse


def test_divergence_is_an_error_without_factors() -> None:
    A, M = small(6)
    with pytest.raises(DivergenceError, match=r"gradient descent diverged by epoch \d+.*`lr`=10.0.*lr=1"):
        gd_factorise_masked(A, M, 2, 200, 10.0, random_state=0)
    with pytest.raises(DivergenceError, match="diverged"):
        gd_factorise_masked(A, sparse.csr_matrix(M), 2, 200, 10.0, random_state=0)


def test_zero_epochs_give_the_initial_factors() -> None:
    A, M = small(7)
    U, V = gd_factorise_masked(A, M, 2, 0, random_state=5)
    rng = np.random.default_rng(5)
    np.testing.assert_array_equal(U, rng.random((7, 2)))
    np.testing.assert_array_equal(V, rng.random((5, 2)))


@pytest.mark.parametrize(
    ("call", "error", "pattern"),
    [
        (lambda A, M: gd_factorise_masked(A, M, 0), ValueError, r"`rank` must be an integer with 1 <= rank"),
        (lambda A, M: gd_factorise_masked(A, M, 2, -1), ValueError, r"`num_epochs`"),
        (lambda A, M: gd_factorise_masked(A, M, 2, 5, 0.0), ValueError, r"`lr`"),
        (lambda A, M: gd_factorise_masked(A, M, 2, 5, float("nan")), ValueError, r"`lr`"),
        (lambda A, M: gd_factorise_masked(A, M, 2, device="gpu"), ValueError,
         r"`device` must be None, 'cpu', 'torch-cpu', 'cuda' or 'cuda:N'; got 'gpu'"),
        (lambda A, M: gd_factorise_masked(A, M, 2, device=0), TypeError, r"`device` must be .*; got 0"),
        (lambda A, M: gd_factorise_masked(A, M[:, :3], 2), ValueError, r"`M` must have the shape of A, \(7, 5\); got \(7, 3\)"),
        (lambda A, M: gd_factorise_masked(A, sparse.csr_matrix(M[:, :3]), 2), ValueError,
         r"`M` must have the shape of A, \(7, 5\); got \(7, 3\)"),
        (lambda A, M: gd_factorise_masked(A, np.zeros_like(M), 2), ValueError, r"at least one observed cell"),
        (lambda A, M: gd_factorise_masked(A, sparse.csr_matrix(np.zeros(M.shape)), 2), ValueError,
         r"at least one observed cell"),
        (lambda A, M: gd_factorise_masked(np.where(M, np.nan, 0), M, 2), ValueError,
         r"`A` must be finite where the mask M is non-zero; got nan"),
        (lambda A, M: gd_factorise_masked(np.where(M, np.inf, 0), sparse.csr_matrix(M), 2), ValueError,
         r"`A` must be finite where the mask M is non-zero; got inf at row"),
        (lambda A, M: gd_factorise_masked(A, np.where(M, np.nan, 0), 2), ValueError, r"`M` must hold finite values"),
        (lambda A, M: gd_factorise_masked(np.array([["a"] * 5] * 7), M, 2), TypeError, r"`A` must hold real numbers"),
    ],
)  # fmt: skip
def test_bad_input_is_named(call, error: type, pattern: str) -> None:  # type: ignore[no-untyped-def]
    A, M = small()
    with pytest.raises(error, match=pattern):
        call(A, M)


def test_cuda_on_a_machine_without_it_says_what_is_missing(torch) -> None:  # type: ignore[no-untyped-def]
    A, M = small()
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the error cannot happen")  # never in CI, which has no GPU
    with pytest.raises(ValueError, match=r"`device`='cuda:1' asks for CUDA, but .*torch 2\.\d+.*(CPU build|no CUDA device)"):
        gd_factorise_masked(A, M, 2, device="cuda:1")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_sampled_residual_kernel_matches_its_reference(dtype: type) -> None:
    from factorise.kernels.gd import sampled_residual, sampled_residual_reference

    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, 40, 500), rng.integers(0, 30, 500)
    values = rng.random(500).astype(dtype)
    U, V = rng.random((40, 7)).astype(dtype), rng.random((30, 7)).astype(dtype)
    fast, slow = np.empty(500, dtype), np.empty(500, dtype)
    sampled_residual(rows, cols, values, U, V, fast)
    sampled_residual_reference(rows, cols, values, U, V, slow)
    np.testing.assert_allclose(fast, slow, rtol=1e-5 if dtype == np.float32 else 1e-12)
