"""Experiments that compare factorisation methods against the SVD optimum.

:func:`compare_methods` fits one dense matrix with every method the package
has and reports each loss beside the Eckart-Young optimum;
:func:`lab_experiment` runs the lab exercise (factorise, compare with the
SVD, complete a masked matrix) and is what ``factorise demo`` prints.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from factorise._validation import check_non_negative_int, check_random_state
from factorise.datasets import lab_mask, lab_matrix
from factorise.lab import gd_factorise_masked, sgd_factorise, sgd_factorise_masked
from factorise.svd import reconstruction_loss, singular_values, svd_optimum, truncated_svd

__all__ = [
    "DEFAULT_METHODS",
    "METHODS",
    "MethodResult",
    "compare_methods",
    "LabExperiment",
    "lab_experiment",
    "optimum_ratio",
]

#: Methods that :func:`compare_methods` knows: the SVD, the lab's SGD and its full-batch gradient descent.
METHODS: tuple[str, ...] = ("svd", "sgd", "gd")
#: The methods compared when none are named.
DEFAULT_METHODS: tuple[str, ...] = ("svd", "sgd")

Progress = Callable[[int, float], Any]


@dataclass
class MethodResult:
    """One method's fit of a dense matrix.

    Attributes
    ----------
    method : str
        Name of the method (one of :data:`METHODS`).
    U, V : numpy.ndarray
        Factors with ``U @ V.T`` the rank-k approximation.
    loss : float
        ``||A - U V^T||_F^2``.
    seconds : float
        Wall-clock fit time.
    """

    method: str
    U: np.ndarray
    V: np.ndarray
    loss: float
    seconds: float


def optimum_ratio(loss: float, optimum: float) -> float | None:
    """``loss / optimum``, or ``None`` when the optimum is zero (A has rank <= k)."""
    return loss / optimum if optimum > 0 else None


def _fit_svd(A: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray]:
    U, s, Vt = truncated_svd(A, rank)
    return U * s, Vt.T


def compare_methods(
    A: np.ndarray,
    rank: int,
    *,
    methods: Sequence[str] = DEFAULT_METHODS,
    num_epochs: int = 1000,
    lr: float = 0.01,
    gd_lr: float = 1e-5,
    random_state: int | np.random.Generator | None = None,
    callback: Progress | None = None,
) -> tuple[list[MethodResult], float]:
    """Fit ``A`` at ``rank`` with each method and measure loss and time.

    Parameters
    ----------
    A : numpy.ndarray of shape (m, n)
        A finite dense matrix.
    rank : int
        Target rank.
    methods : sequence of str, default :data:`DEFAULT_METHODS`
        Which of :data:`METHODS` to run, in this order.
    num_epochs, lr : int, float
        Passed to :func:`factorise.sgd_factorise` (``num_epochs`` also to the gradient descent).
    gd_lr : float, default 1e-5
        The step of :func:`factorise.gd_factorise_masked` (every cell observed).
    random_state : None, int or numpy.random.Generator
        Seed of the SGD start.
    callback : callable, optional
        Passed to the SGD fit, ``callback(epoch, sse)``.

    Returns
    -------
    results : list of MethodResult
        One per method, in the order given.
    optimum : float
        The Eckart-Young optimum ``svd_optimum(A, rank)``.
    """
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"`methods` must be a non-empty subset of {list(METHODS)}; got {list(methods)}")
    optimum = svd_optimum(A, rank)
    results = []
    for method in methods:
        start = time.perf_counter()
        if method == "svd":
            U, V = _fit_svd(A, rank)
        elif method == "gd":
            U, V = gd_factorise_masked(
                A, np.ones(A.shape, dtype=bool), rank, num_epochs, gd_lr, random_state=random_state, callback=callback
            )
        else:
            U, V = sgd_factorise(
                A, rank, num_epochs, lr, random_state=random_state, callback=callback
            )
        seconds = time.perf_counter() - start
        results.append(MethodResult(method, U, V, reconstruction_loss(A, U, V), seconds))
    return results, optimum


@dataclass
class LabExperiment:
    """The lab exercise's results (see :func:`lab_experiment`).

    Attributes
    ----------
    A, M : numpy.ndarray
        The lab matrix and its observation mask.
    rank, num_epochs, lr, seeds
        Settings; ``seeds`` are the integer seeds of the restarts.
    singular_values : numpy.ndarray
        All singular values of ``A``.
    svd_optimum : float
        ``sum_{i > rank} sigma_i^2``.
    sgd_losses : numpy.ndarray
        ``||A - U V^T||_F^2`` of each restart of :func:`sgd_factorise`.
    observed_errors, full_errors : numpy.ndarray
        For each restart of :func:`sgd_factorise_masked`: the squared error over
        observed cells, and ``||A - A_hat||_F`` over the whole matrix.
    completions : numpy.ndarray of shape (restarts, m, n)
        Each restart's completed matrix ``U V^T``.
    """

    A: np.ndarray
    M: np.ndarray
    rank: int
    num_epochs: int
    lr: float
    seeds: list[int]
    singular_values: np.ndarray
    svd_optimum: float
    sgd_losses: np.ndarray
    observed_errors: np.ndarray
    full_errors: np.ndarray
    completions: np.ndarray
    degrees_of_freedom: int = field(init=False)

    def __post_init__(self) -> None:
        m, n = self.A.shape
        self.degrees_of_freedom = self.rank * (m + n - self.rank)

    @property
    def best_sgd(self) -> int:
        """Index of the restart with the lowest SGD loss."""
        return int(np.argmin(self.sgd_losses))

    @property
    def best_completion(self) -> int:
        """Index of the restart with the lowest observed-entry error."""
        return int(np.argmin(self.observed_errors))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary."""
        missing = np.argwhere(~self.M)
        best = self.best_completion
        return {
            "matrix": self.A.tolist(),
            "mask": self.M.astype(int).tolist(),
            "rank": self.rank,
            "num_epochs": self.num_epochs,
            "lr": self.lr,
            "seeds": self.seeds,
            "singular_values": self.singular_values.tolist(),
            "svd_optimum": self.svd_optimum,
            "sgd_losses": self.sgd_losses.tolist(),
            "sgd_best_loss": float(self.sgd_losses[self.best_sgd]),
            "sgd_median_loss": float(np.median(self.sgd_losses)),
            "sgd_best_ratio": optimum_ratio(float(self.sgd_losses[self.best_sgd]), self.svd_optimum),
            "completion": self.completions[best].tolist(),
            "completion_seed": self.seeds[best],
            "observed_error": float(self.observed_errors[best]),
            "full_error": float(self.full_errors[best]),
            "missing_cells": [
                {
                    "row": int(r),
                    "column": int(c),
                    "true": float(self.A[r, c]),
                    "predicted": float(self.completions[best, r, c]),
                    "range_over_restarts": [
                        float(self.completions[:, r, c].min()),
                        float(self.completions[:, r, c].max()),
                    ],
                }
                for r, c in missing
            ],
            "degrees_of_freedom": self.degrees_of_freedom,
            "observed_cells": int(self.M.sum()),
        }


def lab_experiment(
    *,
    rank: int = 2,
    num_epochs: int = 1000,
    lr: float = 0.01,
    restarts: int = 10,
    random_state: int | np.random.Generator | None = 0,
    callback: Progress | None = None,
) -> LabExperiment:
    """Run the lab exercise on its 3x3 matrix.

    Fits the matrix with :func:`factorise.sgd_factorise` from ``restarts``
    random starts and compares the losses with the SVD optimum; then completes
    it from the lab's mask (7 of 9 cells) with
    :func:`factorise.sgd_factorise_masked` from the same starts.

    Parameters
    ----------
    rank : int, default 2
    num_epochs : int, default 1000
    lr : float, default 0.01
    restarts : int, default 10
        Number of random starts (SGD on this problem is non-convex: a few
        starts stop short of the optimum after 1000 epochs).
    random_state : None, int or numpy.random.Generator, default 0
        Seeds the restarts' seeds.
    callback : callable, optional
        ``callback(epoch, sse)`` after every epoch of every fit.

    Returns
    -------
    LabExperiment
    """
    restarts = check_non_negative_int(restarts, "restarts")
    if restarts < 1:
        raise ValueError(f"`restarts` must be an integer >= 1; got {restarts}")
    rng = check_random_state(random_state)
    seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=restarts)]
    A, M = lab_matrix(), lab_mask()
    losses, observed, full, completions = [], [], [], []
    for seed in seeds:
        U, V = sgd_factorise(A, rank, num_epochs, lr, random_state=seed, callback=callback)
        losses.append(reconstruction_loss(A, U, V))
        U, V = sgd_factorise_masked(A, M, rank, num_epochs, lr, random_state=seed, callback=callback)
        completions.append(U @ V.T)
        observed.append(reconstruction_loss(A, U, V, M))
        full.append(float(np.linalg.norm(A - U @ V.T)))
    return LabExperiment(
        A=A,
        M=M,
        rank=rank,
        num_epochs=num_epochs,
        lr=lr,
        seeds=seeds,
        singular_values=singular_values(A),
        svd_optimum=svd_optimum(A, rank),
        sgd_losses=np.array(losses),
        observed_errors=np.array(observed),
        full_errors=np.array(full),
        completions=np.array(completions),
    )
