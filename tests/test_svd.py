"""The truncated SVD and the Eckart-Young identity, against planted singular values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from factorise import reconstruction_loss, sgd_factorise, singular_values, svd_optimum, truncated_svd


def planted(rng: np.random.Generator, m: int, n: int, s: np.ndarray) -> np.ndarray:
    """A matrix with exactly the singular values ``s`` (random orthonormal bases)."""
    Q1, _ = np.linalg.qr(rng.normal(size=(m, len(s))))
    Q2, _ = np.linalg.qr(rng.normal(size=(n, len(s))))
    return (Q1 * s) @ Q2.T


@settings(max_examples=40, deadline=None)
@given(m=st.integers(1, 9), n=st.integers(1, 9), seed=st.integers(0, 2**32 - 1))
def test_eckart_young_identity_on_planted_spectra(m: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = min(m, n)
    s = np.sort(rng.uniform(0.1, 10, size=p))[::-1]
    A = planted(rng, m, n, s)
    for k in range(1, p + 1):
        assert svd_optimum(A, k) == pytest.approx(np.sum(s[k:] ** 2), rel=1e-8, abs=1e-10)
        U, sk, Vt = truncated_svd(A, k)
        np.testing.assert_allclose(sk, s[:k], rtol=1e-8)
        loss = reconstruction_loss(A, U * sk, Vt.T)
        assert loss == pytest.approx(np.sum(s[k:] ** 2), rel=1e-6, abs=1e-9)


def test_no_rank_k_factorisation_beats_the_optimum() -> None:
    rng = np.random.default_rng(3)
    A = rng.normal(size=(8, 6))
    opt = svd_optimum(A, 2)
    for seed in range(10):
        U, V = rng.normal(size=(8, 2)), rng.normal(size=(6, 2))
        assert reconstruction_loss(A, U, V) >= opt
    U, V = sgd_factorise(A, 2, num_epochs=3000, lr=0.01, random_state=0)
    assert opt <= reconstruction_loss(A, U, V) <= opt * 1.05


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_truncated_svd_convention(dtype: type) -> None:
    rng = np.random.default_rng(0)
    A = rng.normal(size=(7, 5)).astype(dtype)
    U, s, Vt = truncated_svd(A, 3)
    assert U.shape == (7, 3) and s.shape == (3,) and Vt.shape == (3, 5)
    assert U.dtype == dtype and s.dtype == dtype and Vt.dtype == dtype
    assert np.all(np.diff(s) <= 0)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(U.T @ U, np.eye(3), atol=tol)
    np.testing.assert_allclose(Vt @ Vt.T, np.eye(3), atol=tol)
    pivots = U[np.argmax(np.abs(U), axis=0), np.arange(3)]
    assert np.all(pivots > 0)
    # the sign convention makes the result independent of the input's sign
    U2, _, Vt2 = truncated_svd(-A, 3)
    np.testing.assert_allclose(U2, U, atol=tol)
    np.testing.assert_allclose(Vt2, -Vt, atol=tol)


def test_singular_values_of_planted_rank_deficient_matrix() -> None:
    rng = np.random.default_rng(5)
    A = planted(rng, 6, 5, np.array([4.0, 2.0]))
    s = singular_values(A)
    np.testing.assert_allclose(s, [4, 2, 0, 0, 0], atol=1e-12)
    assert svd_optimum(A, 2) == pytest.approx(0, abs=1e-20)


def test_reconstruction_loss_with_mask() -> None:
    A = np.array([[1.0, np.nan], [3.0, 4.0]])
    U = np.array([[1.0], [2.0]])
    V = np.array([[1.0], [1.5]])
    M = np.array([[1, 0], [1, 1]])
    # residuals: 1-1=0, 3-2=1, 4-3=1
    assert reconstruction_loss(A, U, V, M) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="`A` must be finite"):
        reconstruction_loss(A, U, V)


def test_reconstruction_loss_checks_shapes() -> None:
    with pytest.raises(ValueError, match=r"`U` and `V` must have shapes"):
        reconstruction_loss(np.ones((3, 3)), np.ones((3, 2)), np.ones((3, 1)))


def test_torch_through_svd(torch) -> None:
    A = torch.tensor(np.random.default_rng(0).normal(size=(5, 4)), dtype=torch.float32)
    U, s, Vt = truncated_svd(A, 2)
    assert all(isinstance(x, torch.Tensor) and x.dtype == torch.float32 for x in (U, s, Vt))
    assert svd_optimum(A, 2) == pytest.approx(float(np.sum(np.linalg.svd(A.numpy())[1][2:] ** 2)), rel=1e-5)
