"""The bias-only baseline ``mu + b_u + b_i``: the yardstick every model must beat.

The model predicts ``r_ui ~ mu + b_u + b_i`` with ``mu`` the mean training
rating (fixed) and ``b_u``, ``b_i`` user and item biases that minimise the
regularised squared error over the observed ratings

.. code-block:: text

    J(b) = sum_(u,i) (r_ui - mu - b_u - b_i)^2 + lambda_u sum_u b_u^2 + lambda_i sum_i b_i^2

by alternating exact minimisation (block coordinate descent, Koren 2010,
"Factor in the neighbors", section 2.1). Each step first solves for every
item bias with the user biases held fixed, then for every user bias with the
new item biases held fixed:

.. code-block:: text

    b_i = sum_{u in R(i)} (r_ui - mu - b_u) / (lambda_i + |R(i)|)
    b_u = sum_{i in R(u)} (r_ui - mu - b_i) / (lambda_u + |R(u)|)

Both half-steps are the exact minimisers of ``J`` over their block, so ``J``
never increases, and with ``lambda_u, lambda_i > 0`` it converges to the
unique minimiser. The biases start at zero, so the fit is deterministic.

A model that cannot beat this one on held-out ratings (RMSE) or on ranking
has learnt nothing beyond popularity and user generosity. Its factors have
rank 0 (``user_factors_`` has shape ``(n_users, 0)``), so it shares
:class:`~factorise.models.RatingModel`'s predict, recommend and save/load.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from factorise._validation import check_non_negative_float
from factorise.models._base import RatingModel, TrainData

__all__ = ["Baseline"]


def bias_step(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    mu: float,
    user_bias: np.ndarray,
    n_items: int,
    item_regularization: float,
) -> np.ndarray:
    """Exact minimiser of the regularised squared error over the item biases.

    Solves ``b_i = sum_{u in R(i)} (r_ui - mu - b_u) / (lambda_i + |R(i)|)``
    for every item at once, with the user biases held fixed. Swap the roles of
    users and items for the user step.

    Parameters
    ----------
    users, items : numpy.ndarray of int
        Indices of the ratings (``items`` in ``[0, n_items)``).
    values : numpy.ndarray
        The ratings.
    mu : float
        Global mean.
    user_bias : numpy.ndarray
        Fixed user biases, indexed by ``users``.
    n_items : int
        Number of items (length of the result).
    item_regularization : float
        ``lambda_i >= 0``. With 0, every item needs at least one rating.

    Returns
    -------
    numpy.ndarray of float64
        The new item biases; 0 for items with no rating.
    """
    residual = values.astype(np.float64) - mu - user_bias[users].astype(np.float64)
    sums = np.bincount(items, weights=residual, minlength=n_items)
    counts = np.bincount(items, minlength=n_items).astype(np.float64)
    denominator = item_regularization + counts
    out = np.zeros(n_items, dtype=np.float64)
    np.divide(sums, denominator, out=out, where=denominator > 0)
    return out


class Baseline(RatingModel):
    """Bias-only rating model ``mu + b_u + b_i`` fitted by alternating least squares.

    See the module docstring for the objective and the update rules.

    Parameters
    ----------
    n_epochs : int, default 30
        Alternating steps (each: all item biases, then all user biases), >= 1.
        Convergence is geometric but slows as ``lambda`` shrinks (the shift
        ``b_u + c, b_i - c`` is held only by the penalty): on MovieLens 100K
        the objective settles to 6 digits in about 30 steps at ``lambda = 5``
        and needs over 100 at ``lambda = 1``.
    regularization : float, default 2.0
        ``lambda`` for both biases, >= 0. It acts like ``lambda`` pseudo-ratings
        at the global mean: a user or item with few ratings is pulled towards
        ``mu``. Chosen on validation splits of training data only (20% of
        MovieLens 100K's u1.base and u2.base held out): of 0.5, 1, 2, 5, 10,
        15 and 25, 2 gave the lowest validation RMSE on both (5 was within
        0.0006). ``benchmarks/tune_baseline.py`` repeats the search.
    user_regularization, item_regularization : float or None, default None
        Separate ``lambda_u`` and ``lambda_i`` (>= 0); ``None`` uses
        ``regularization``.
    patience : int or None, default None
        With a ``validation`` set given to :meth:`fit`, stop when the
        validation RMSE has not improved for ``patience`` steps and restore
        the best step's model. ``None`` disables early stopping.
    random_state : None, int or numpy.random.Generator, default None
        Accepted for a uniform interface; the fit uses no randomness.

    Attributes
    ----------
    global_mean_ : float
        Mean training rating ``mu``.
    user_bias_, item_bias_ : numpy.ndarray of float32
        ``b_u`` and ``b_i``.
    user_factors_, item_factors_ : numpy.ndarray of float32, shape (n, 0)
        Empty (rank 0).
    history_ : list of dict
        Per step: ``epoch``, ``train_rmse``, ``valid_rmse`` (with a validation
        set) and ``objective`` (``J`` divided by the number of ratings).
    n_epochs_ : int
        Steps run.

    Examples
    --------
    >>> from factorise.models.baseline import Baseline
    >>> model = Baseline(regularization=5.0).fit(train)  # doctest: +SKIP
    >>> model.predict([1, 2], [10, 20])  # doctest: +SKIP
    """

    _param_names: ClassVar[tuple[str, ...]] = (
        "n_epochs",
        "regularization",
        "user_regularization",
        "item_regularization",
        "patience",
        "random_state",
    )

    def __init__(
        self,
        *,
        n_epochs: int = 30,
        regularization: float = 2.0,
        user_regularization: float | None = None,
        item_regularization: float | None = None,
        patience: int | None = None,
        random_state: Any = None,
    ) -> None:
        self.n_epochs = n_epochs
        self.regularization = regularization
        self.user_regularization = user_regularization
        self.item_regularization = item_regularization
        self.patience = patience
        self.random_state = random_state

    def _lambdas(self) -> tuple[float, float]:
        """``(lambda_u, lambda_i)`` after validation."""
        default = check_non_negative_float(self.regularization, "regularization")
        lam_u = default
        if self.user_regularization is not None:
            lam_u = check_non_negative_float(self.user_regularization, "user_regularization")
        lam_i = default
        if self.item_regularization is not None:
            lam_i = check_non_negative_float(self.item_regularization, "item_regularization")
        return lam_u, lam_i

    # ------------------------------------------------------------------ hooks
    def _validate_params(self) -> None:
        self._lambdas()

    def _fit_memory(self, n_ratings: int, n_users: int, n_items: int) -> int:
        # per rating: up to five float64 temporaries of the residual r - mu - b_u - b_i; per row
        # the float64 and float32 biases, counts and sums
        return 40 * n_ratings + 64 * (n_users + n_items)

    def _initialize(self, data: TrainData, rng: np.random.Generator) -> None:
        self.user_bias_ = np.zeros(data.n_users, dtype=np.float32)
        self.item_bias_ = np.zeros(data.n_items, dtype=np.float32)
        self.user_factors_ = np.zeros((data.n_users, 0), dtype=np.float32)
        self.item_factors_ = np.zeros((data.n_items, 0), dtype=np.float32)
        self._objective = math.nan

    def _step(self, data: TrainData, step: int, rng: np.random.Generator) -> bool:
        lam_u, lam_i = self._lambdas()
        mu = data.global_mean
        bu = self.user_bias_.astype(np.float64)
        bi = bias_step(data.users, data.items, data.values, mu, bu, data.n_items, lam_i)
        bu = bias_step(data.items, data.users, data.values, mu, bi, data.n_users, lam_u)
        residual = data.values.astype(np.float64) - mu - bu[data.users] - bi[data.items]
        objective = float(residual @ residual) + lam_u * float(bu @ bu) + lam_i * float(bi @ bi)
        self._objective = objective / data.values.shape[0]
        self.user_bias_ = bu.astype(np.float32)
        self.item_bias_ = bi.astype(np.float32)
        return False

    def _extra_history(self) -> dict[str, float]:
        return {"objective": self._objective}
