"""The lab's functions: quality against known truths, masking, dtypes, torch, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from factorise import (
    DivergenceError,
    reconstruction_loss,
    sgd_factorise,
    sgd_factorise_masked,
    svd_optimum,
)
from factorise.datasets import lab_mask, lab_matrix

OPTIMUM = 0.3491572639**2  # lab matrix, rank 2: the square of its third singular value


def test_lab_losses_cluster_just_above_the_optimum() -> None:
    A = lab_matrix()
    losses = np.array(
        [reconstruction_loss(A, *sgd_factorise(A, 2, random_state=s)) for s in range(100)]
    )
    assert (losses >= svd_optimum(A, 2) - 1e-12).all()  # Eckart-Young: nothing beats the SVD
    in_band = (losses >= 0.12191) & (losses <= 0.1226)
    assert in_band.mean() > 0.5, f"only {in_band.mean():.0%} of seeds in [0.12191, 0.1226]"
    assert np.median(losses) <= 0.1226


def test_lab_sgd_converges_into_the_band_with_more_epochs() -> None:
    A = lab_matrix()
    for seed in range(30):
        loss = reconstruction_loss(A, *sgd_factorise(A, 2, num_epochs=3000, random_state=seed))
        assert 0.12191 <= loss <= 0.1226, (seed, loss)


def test_svd_optimum_of_lab_matrix() -> None:
    assert svd_optimum(lab_matrix(), 2) == pytest.approx(OPTIMUM, rel=1e-6)
    assert round(svd_optimum(lab_matrix(), 2), 5) == 0.12191


def test_masked_fit_drives_observed_error_to_zero() -> None:
    A, M = lab_matrix(), lab_mask()
    errors = np.array(
        [reconstruction_loss(A, *sgd_factorise_masked(A, M, 2, random_state=s), M=M) for s in range(20)]
    )
    assert np.median(errors) < 1e-3
    for seed in range(5):
        U, V = sgd_factorise_masked(A, M, 2, num_epochs=10000, random_state=seed)
        assert reconstruction_loss(A, U, V, M=M) < 1e-5


def test_masked_values_have_no_influence() -> None:
    A, M = lab_matrix(), lab_mask()
    U1, V1 = sgd_factorise_masked(A, M, 2, num_epochs=200, random_state=3)
    B = A.copy()
    B[~M] = [1e6, np.nan]
    U2, V2 = sgd_factorise_masked(B, M, 2, num_epochs=200, random_state=3)
    np.testing.assert_array_equal(U1, U2)
    np.testing.assert_array_equal(V1, V2)
    # ... while observed values do influence it
    C = A.copy()
    C[0, 0] += 1.0
    U3, _ = sgd_factorise_masked(C, M, 2, num_epochs=200, random_state=3)
    assert not np.array_equal(U1, U3)


def test_full_mask_equals_unmasked() -> None:
    A = lab_matrix()
    U1, V1 = sgd_factorise(A, 2, num_epochs=50, random_state=1)
    U2, V2 = sgd_factorise_masked(A, np.ones((3, 3)), 2, num_epochs=50, random_state=1)
    np.testing.assert_array_equal(U1, U2)
    np.testing.assert_array_equal(V1, V2)


def test_planted_low_rank_matrix_is_recovered() -> None:
    rng = np.random.default_rng(0)
    A = rng.random((12, 3)) @ rng.random((3, 10))
    U, V = sgd_factorise(A, 3, num_epochs=4000, lr=0.02, random_state=0)
    assert reconstruction_loss(A, U, V) < 1e-6 * np.sum(A**2)


def test_planted_completion_recovers_missing_cells() -> None:
    """With enough observations a rank-2 matrix is identifiable: missing cells come back."""
    rng = np.random.default_rng(1)
    A = rng.random((15, 2)) @ rng.random((2, 12))
    M = rng.random(A.shape) < 0.7
    U, V = sgd_factorise_masked(A, M, 2, num_epochs=5000, lr=0.05, random_state=0)
    missing = ~M
    rmse = np.sqrt(np.mean((U @ V.T - A)[missing] ** 2))
    assert rmse < 1e-2 * np.sqrt(np.mean(A**2))


def test_same_seed_bit_identical_and_generator_accepted() -> None:
    A = lab_matrix()
    U1, V1 = sgd_factorise(A, 2, num_epochs=20, random_state=42)
    U2, V2 = sgd_factorise(A, 2, num_epochs=20, random_state=42)
    assert U1.tobytes() == U2.tobytes() and V1.tobytes() == V2.tobytes()
    U3, _ = sgd_factorise(A, 2, num_epochs=20, random_state=np.random.default_rng(42))
    assert U3.tobytes() == U1.tobytes()
    U4, _ = sgd_factorise(A, 2, num_epochs=20, random_state=43)
    assert not np.array_equal(U1, U4)


def test_seed_zero_is_a_seed_and_global_state_untouched() -> None:
    A = lab_matrix()
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    U0, _ = sgd_factorise(A, 2, num_epochs=5, random_state=0)
    U0b, _ = sgd_factorise(A, 2, num_epochs=5, random_state=0)
    np.testing.assert_array_equal(U0, U0b)
    np.testing.assert_array_equal(np.random.get_state()[1], before)
    Ua, _ = sgd_factorise(A, 2, num_epochs=5)
    Ub, _ = sgd_factorise(A, 2, num_epochs=5)
    assert not np.array_equal(Ua, Ub)  # None: fresh entropy each call


def test_initial_factors_are_uniform_and_zero_epochs_returns_them() -> None:
    A = np.ones((50, 40))
    U, V = sgd_factorise(A, 3, num_epochs=0, random_state=0)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(U, rng.random((50, 3)))
    np.testing.assert_array_equal(V, rng.random((40, 3)))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype: type) -> None:
    A = lab_matrix().astype(dtype)
    U, V = sgd_factorise(A, 2, num_epochs=10, random_state=0)
    assert U.dtype == dtype and V.dtype == dtype
    U, V = sgd_factorise_masked(A, lab_mask(), 2, num_epochs=10, random_state=0)
    assert U.dtype == dtype and V.dtype == dtype


@pytest.mark.parametrize("source", [np.int64, np.float16, np.uint8, bool])
def test_other_numeric_input_computes_in_float64(source: type) -> None:
    A = (lab_matrix() * 3).astype(source)
    U, V = sgd_factorise(A, 2, num_epochs=10, random_state=0)
    assert U.dtype == np.float64 and V.dtype == np.float64


def test_lists_are_accepted() -> None:
    U, V = sgd_factorise(lab_matrix().tolist(), 2, num_epochs=10, random_state=0)
    U2, V2 = sgd_factorise(lab_matrix(), 2, num_epochs=10, random_state=0)
    np.testing.assert_array_equal(U, U2)
    U3, _ = sgd_factorise_masked(lab_matrix().tolist(), lab_mask().tolist(), 2, num_epochs=10, random_state=0)
    assert isinstance(U3, np.ndarray)


def test_input_is_not_modified() -> None:
    A = lab_matrix()
    B = A.copy()
    sgd_factorise(A, 2, num_epochs=10, random_state=0)
    np.testing.assert_array_equal(A, B)


@pytest.mark.parametrize("name", ["float32", "float64", "float16", "bfloat16", "int32"])
def test_torch_in_torch_out(torch, name: str) -> None:
    dtype = getattr(torch, name)
    A = torch.tensor(lab_matrix() * (3 if name == "int32" else 1)).to(dtype)
    U, V = sgd_factorise(A, 2, num_epochs=20, random_state=0)
    assert isinstance(U, torch.Tensor) and isinstance(V, torch.Tensor)
    expected = dtype if dtype.is_floating_point else torch.float64
    assert U.dtype == expected and V.dtype == expected
    assert U.shape == (3, 2) and V.shape == (3, 2)
    U2, V2 = sgd_factorise_masked(A, torch.tensor(lab_mask()), 2, num_epochs=20, random_state=0)
    assert isinstance(U2, torch.Tensor) and U2.dtype == expected


def test_torch_matches_numpy_and_ignores_grad(torch) -> None:
    A = torch.tensor(lab_matrix(), dtype=torch.float32, requires_grad=True)
    U, V = sgd_factorise(A, 2, num_epochs=30, random_state=5)
    Un, Vn = sgd_factorise(lab_matrix().astype(np.float32), 2, num_epochs=30, random_state=5)
    np.testing.assert_array_equal(U.numpy(), Un)
    np.testing.assert_array_equal(V.numpy(), Vn)
    assert not U.requires_grad


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_divergence_raises_instead_of_returning_nan(dtype: type) -> None:
    with pytest.raises(DivergenceError, match=r"smaller learning rate"):
        sgd_factorise(lab_matrix().astype(dtype), 2, lr=10, random_state=0)
    with pytest.raises(DivergenceError, match=r"lr"):
        sgd_factorise_masked(lab_matrix().astype(dtype), lab_mask(), 2, lr=10, random_state=0)


def test_callback_sees_every_epoch() -> None:
    seen: list[tuple[int, float]] = []
    A = lab_matrix()
    U, V = sgd_factorise(A, 2, num_epochs=25, random_state=0, callback=lambda e, s: seen.append((e, s)))
    assert [e for e, _ in seen] == list(range(1, 26))
    assert all(s >= 0 for _, s in seen)
    assert seen[-1][1] < seen[0][1]  # it learns
