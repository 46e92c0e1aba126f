"""Every bad input gets a TypeError/ValueError naming the parameter, the rule and the value."""

from __future__ import annotations

import numpy as np
import pytest

from factorise import sgd_factorise, sgd_factorise_masked, svd_optimum, truncated_svd
from factorise.datasets import lab_mask, lab_matrix

A = lab_matrix()


@pytest.mark.parametrize(
    ("rank", "error", "pattern"),
    [
        (2.0, TypeError, r"`rank` must be an integer with 1 <= rank <= min\(m, n\) = 3; got 2.0"),
        ("2", TypeError, r"`rank` must be an integer.*got '2'"),
        (True, TypeError, r"`rank` must be an integer.*got True"),
        (None, TypeError, r"`rank` must be an integer.*got None"),
        (0, ValueError, r"`rank` must be an integer with 1 <= rank <= min\(m, n\) = 3; got 0"),
        (-1, ValueError, r"got -1"),
        (4, ValueError, r"min\(m, n\) = 3; got 4"),
    ],
)
def test_bad_rank(rank: object, error: type, pattern: str) -> None:
    for call in (
        lambda: sgd_factorise(A, rank),
        lambda: sgd_factorise_masked(A, lab_mask(), rank),
        lambda: truncated_svd(A, rank),
        lambda: svd_optimum(A, rank),
    ):
        with pytest.raises(error, match=pattern):
            call()


def test_numpy_integer_rank_is_fine() -> None:
    sgd_factorise(A, np.int64(2), num_epochs=1, random_state=0)


@pytest.mark.parametrize(
    ("matrix", "error", "pattern"),
    [
        (np.ones(3), ValueError, r"`A` must be a 2-D matrix; got 1-D array of shape \(3,\)"),
        (np.ones((2, 2, 2)), ValueError, r"`A` must be a 2-D matrix; got 3-D"),
        (np.ones((0, 3)), ValueError, r"`A` must not be empty; got shape \(0, 3\)"),
        (np.array([["a", "b"], ["c", "d"]]), TypeError, r"`A` must hold real numbers.*got dtype <U1"),
        (np.ones((2, 2), dtype=complex), TypeError, r"`A` must hold real numbers.*complex128"),
        ([[1, 2], [3]], ValueError, r"`A` must be a rectangular 2-D array"),
        ([[1, None], [3, 4]], TypeError, r"`A` must hold real numbers.*object"),
        (np.array([[1.0, np.nan], [1, 2]]), ValueError, r"`A` must be finite; got nan at row 0, column 1"),
        (np.array([[1.0, 2], [np.inf, 2]]), ValueError, r"`A` must be finite; got inf at row 1, column 0"),
    ],
)
def test_bad_matrix(matrix: object, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        sgd_factorise(matrix, 1)


def test_nan_outside_the_mask_is_an_error_inside_is_fine() -> None:
    B = A.copy()
    B[1, 0] = np.nan  # masked out: fine
    sgd_factorise_masked(B, lab_mask(), 2, num_epochs=1, random_state=0)
    B[0, 0] = np.nan  # observed: error
    with pytest.raises(ValueError, match=r"`A` must be finite where the mask M is non-zero; got nan at row 0, column 0"):
        sgd_factorise_masked(B, lab_mask(), 2)


@pytest.mark.parametrize(
    ("mask", "error", "pattern"),
    [
        (np.ones((3, 2)), ValueError, r"`M` must have the shape of A, \(3, 3\); got \(3, 2\)"),
        (np.zeros((3, 3)), ValueError, r"`M` must mark at least one observed cell \(M != 0\); got none"),
        (np.full((3, 3), np.nan), ValueError, r"`M` must hold finite values"),
        (np.full((3, 3), "x"), TypeError, r"`M` must hold real numbers or booleans"),
    ],
)
def test_bad_mask(mask: object, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        sgd_factorise_masked(A, mask, 2)


@pytest.mark.parametrize(
    ("epochs", "error", "pattern"),
    [
        (-1, ValueError, r"`num_epochs` must be an integer >= 0; got -1"),
        (10.0, TypeError, r"`num_epochs` must be an integer >= 0; got 10.0"),
        ("10", TypeError, r"`num_epochs` must be an integer >= 0; got '10'"),
    ],
)
def test_bad_num_epochs(epochs: object, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        sgd_factorise(A, 2, num_epochs=epochs)


@pytest.mark.parametrize(
    ("lr", "error", "pattern"),
    [
        (0, ValueError, r"`lr` must be a finite real number > 0; got 0.0"),
        (-0.1, ValueError, r"got -0.1"),
        (float("nan"), ValueError, r"got nan"),
        (float("inf"), ValueError, r"got inf"),
        ("0.1", TypeError, r"`lr` must be a finite real number > 0; got '0.1'"),
        (None, TypeError, r"got None"),
    ],
)
def test_bad_lr(lr: object, error: type, pattern: str) -> None:
    with pytest.raises(error, match=pattern):
        sgd_factorise_masked(A, lab_mask(), 2, lr=lr)


@pytest.mark.parametrize(
    ("state", "error"),
    [(1.5, TypeError), ("seed", TypeError), (-1, ValueError), (np.random.RandomState(0), TypeError)],
)
def test_bad_random_state(state: object, error: type) -> None:
    with pytest.raises(error, match=r"`random_state` must be None, an integer >= 0 or a numpy.random.Generator"):
        sgd_factorise(A, 2, random_state=state)
