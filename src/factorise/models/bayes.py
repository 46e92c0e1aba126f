r"""Bayesian matrix factorisation with biases, sampled by blocked Gibbs sampling.

The model (Salakhutdinov and Mnih, ICML 2008, "Bayesian probabilistic
matrix factorization using Markov chain Monte Carlo", with biases as in
Rendle's libFM MCMC):

.. math::

    r_{ui} \sim N(\mu + b_u + b_i + p_u^T q_i,\ \alpha^{-1})

    b_u \sim N(m_b, \lambda_b^{-1}), \quad p_u \sim N(m_P, \Lambda_P^{-1})
    \quad \text{(items alike, with their own hyperparameters)}

    (m_b, \lambda_b) \sim \text{Normal-Gamma}, \quad (m_P, \Lambda_P) \sim
    \text{Normal-Wishart}, \quad \alpha \sim \text{Gamma}(a_0, b_0)

with ``mu`` the mean training rating (fixed). By default (``noise="user-item"``)
the noise precision of rating ``(u, i)`` is ``alpha * tau_u * kappa_i``, each
user's and item's scale ``~ Gamma(2, 2)`` (Lakshminarayanan, Bouchard and
Archambeau, AISTATS 2011, "Robust Bayesian matrix factorisation"): the
ratings of a user who rates erratically weigh less in the items' draws.
``noise="shared"`` is the textbook model, one ``alpha``. Each sweep draws every user's
``[b_u, p_u]`` from its Gaussian conditional given the items (in parallel
over users: :func:`factorise.kernels.bayes.gibbs_half_step`), then every
item's given the users, then each side's hyperparameters, the noise
scales and the noise precision from their conjugate conditionals. Predictions average the
samples after ``burn_in``: the mean of ``mu + b_u + b_i + p_u . q_i`` over the
kept samples, then clipped to the training range. There is no learning rate
and little to tune: the hyperpriors are the weak standard ones (Normal-
Wishart with ``beta_0 = prior_strength``, ``W_0 = I``, ``nu_0 = rank``; Normal-
Gamma and the noise's Gamma with shape and rate 1).

**Implicit information** (``implicit=True``; SVD++ and its "flipped" form,
Koren 2008; Rendle, Zhang and Koren 2019 sample it in a Bayesian FM): each
user's row is ``x_u = x'_u + |N(u)|^-1/2 sum_{j in N(u)} y_j``, with ``N(u)`` the
items the user rated *in the training data* and ``y_j`` an implicit row
``[w_j, y_j]`` of each item, and each item's row alike sums implicit rows
``z_v`` of the users who rated it. The sampler works in the centred form:
``x_u`` is drawn as before, its prior mean shifted by the implicit sum (the
prior of ``x'_u`` moved), and then every ``y_j`` in turn from its Gaussian
conditional, a regression of the rows that hold it on it
(:func:`factorise.kernels.bayes.implicit_step`: ``O(ratings * k)`` a
half-sweep, against the ``O(ratings * k^2)`` of the rows' draws). The
implicit rows have their own Normal-Wishart / Normal-Gamma hyperparameters.
A user with few ratings then gets the factors that users who rated the same
items have. Predictions are ``mu + b_u + b_i + p_u . q_i`` of the drawn rows,
as in the plain model, so the fitted state is the same.

**Fitted state.** The average of ``p_u . q_i`` over ``S`` samples is the dot
product of the samples laid side by side, so the fitted factors are the
kept samples concatenated, each sample's block ``[p_u, b_u - mean b_u, 1]``
(items ``[q_i, 1, b_i - mean b_i]``) scaled by ``1/sqrt(S)``, and the biases are
the samples' means: every rating model's ``predict``, ``recommend``, ``save``
and ``load`` then give the posterior mean prediction exactly.
``predict(..., return_std=True)`` recovers each sample's prediction from its
block and gives their spread.
"""

from __future__ import annotations

import logging
import math
from typing import Any, ClassVar

import numpy as np

from factorise._threads import parallel_section
from factorise._validation import check_non_negative_int, check_positive_float, check_rank
from factorise.kernels import ratings as rk
from factorise.kernels.bayes import gibbs_half_step, implicit_step, row_squared_errors, squared_error
from factorise.models._base import RatingModel, TrainData
from factorise.models.als import balanced_bounds

__all__ = ["BayesianMF"]

logger = logging.getLogger(__name__)

#: Fixed chunks of the squared-error sum: the sum does not depend on the thread count.
_SSE_CHUNKS = 64
#: Ratings from which the sweeps run on ``n_threads`` threads; below, a half-sweep takes a few milliseconds
#: and the threads' start-up and spinning between kernels cost more than they save (MovieLens 100K: 1.6
#: times slower on two threads than on one, measured here). The samples are the same either way.
PARALLEL_MIN_RATINGS = 2_000_000
#: Shape and rate of the Gamma prior of each user's and item's noise scale (``noise="user-item"``): mean 1, and a
#: spread that lets a user's noise be several times another's (shapes 1, 2 and 5 validated within 0.0007 of each
#: other on MovieLens 100K; 2 the best).
NOISE_SCALE_SHAPE = 2.0
NOISES = ("user-item", "shared")


def _wishart(df: float, scale: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A draw of Wishart(df, scale) by Bartlett's decomposition: ``L A A^T L^T`` with ``scale = L L^T``.

    ``A`` is lower triangular, ``A_ii = sqrt(chi2(df - i))`` and ``A_ij ~ N(0, 1)`` below the
    diagonal; its mean is ``df * scale``.
    """
    k = scale.shape[0]
    L = np.linalg.cholesky(scale)
    A = np.tril(rng.standard_normal((k, k)), -1)
    A[np.diag_indices(k)] = np.sqrt(rng.chisquare(df - np.arange(k)))
    LA = L @ A
    return LA @ LA.T


class BayesianMF(RatingModel):
    """Biased matrix factorisation by Gibbs sampling (BPMF with biases): no learning rate to tune.

    Parameters
    ----------
    rank : int, default 20
        Number of latent factors ``k``; ``1 <= rank <= min(n_users, n_items)``.
    n_samples : int, default 400
        Gibbs sweeps (>= 1); each is one sample of every parameter. The
        samples are correlated: 400 validated 0.0011 better than 200 (and
        600 only 0.0002 better than 400) on MovieLens 100K; each costs the
        same time.
    burn_in : int, default 5
        Sweeps discarded before the averaging starts; ``0 <= burn_in <
        n_samples``. Predictions average the last ``n_samples - burn_in``.
    prior_strength : float, default 2.0
        ``beta_0`` (> 0) of the Normal-Wishart and Normal-Gamma hyperpriors:
        how many rows' worth of weight the prior mean 0 has.
    noise_shape, noise_rate : float, default 1.0
        Shape and rate (> 0) of the Gamma prior of the noise precision.
    init_std : float, default 0.1
        Standard deviation (> 0) of the normal initial factors.
    implicit : bool, default False
        Also sum implicit rows of the items each user rated and of the users
        who rated each item (SVD++ and its flipped form; see the module
        docstring), from the training ratings only. About 1.3 times the
        plain fit's time.
    noise : {"user-item", "shared"}, default "user-item"
        ``"user-item"``: rating ``(u, i)`` has noise precision ``alpha * tau_u
        * kappa_i``, each user's and item's scale with a Gamma(2, 2) prior
        (mean 1), drawn every sweep: ratings of erratic users (and of items
        rated erratically) weigh less (Lakshminarayanan, Bouchard and
        Archambeau, AISTATS 2011). ``"shared"``: one precision ``alpha`` for
        all ratings, the textbook BPMF.
    random_state : None, int or numpy.random.Generator
        Seed of the chain: the same seed gives the same samples whatever
        ``n_threads``.
    n_threads : int or None, default None
        Threads of the half-sweeps (rows are drawn in parallel), from
        :data:`PARALLEL_MIN_RATINGS` ratings on; smaller data run on one.

    Attributes
    ----------
    user_factors_, item_factors_ : numpy.ndarray of float32, shape (n, (rank + 2) * n_kept)
        The kept samples side by side (see the module docstring).
    user_bias_, item_bias_ : numpy.ndarray of float32
        Posterior means of the biases.
    noise_std_ : float
        The noise level the model infers: the square root of the posterior
        mean of the noise variance (``1 / alpha``, or ``1 / (alpha tau_u
        kappa_i)``) averaged over the training ratings. With few ratings per
        user or item the scales are uncertain and this mean is a little above
        the shared model's (9% on planted data with 30 ratings a user).
    history_ : list of dict
        Per sample: ``train_rmse`` and ``valid_rmse`` of the running average of
        the kept samples (of the current sample during burn-in) and
        ``noise_precision`` (``alpha``).
    """

    _param_names: ClassVar[tuple[str, ...]] = (
        "rank",
        "n_samples",
        "burn_in",
        "prior_strength",
        "noise_shape",
        "noise_rate",
        "init_std",
        "implicit",
        "noise",
        "random_state",
        "n_threads",
    )
    _steps_param: ClassVar[str] = "n_samples"

    def __init__(
        self,
        *,
        rank: int = 20,
        n_samples: int = 400,
        burn_in: int = 5,
        prior_strength: float = 2.0,
        noise_shape: float = 1.0,
        noise_rate: float = 1.0,
        init_std: float = 0.1,
        implicit: bool = False,
        noise: str = "user-item",
        random_state: Any = None,
        n_threads: int | None = None,
    ) -> None:
        self.rank = rank
        self.n_samples = n_samples
        self.burn_in = burn_in
        self.prior_strength = prior_strength
        self.noise_shape = noise_shape
        self.noise_rate = noise_rate
        self.init_std = init_std
        self.implicit = implicit
        self.noise = noise
        self.random_state = random_state
        self.n_threads = n_threads

    # ------------------------------------------------------------------ hooks
    def _validate_params(self) -> None:
        burn_in = check_non_negative_int(self.burn_in, "burn_in")
        if burn_in >= int(self.n_samples):
            raise ValueError(
                f"`burn_in` must be less than `n_samples` ({self.n_samples}), so that some samples are kept; "
                f"got {self.burn_in}"
            )
        for name in ("prior_strength", "noise_shape", "noise_rate", "init_std"):
            check_positive_float(getattr(self, name), name)
        if not isinstance(self.implicit, (bool, np.bool_)):
            raise ValueError(f"`implicit` must be True or False; got {self.implicit!r} of type {type(self.implicit).__name__}")
        if not (isinstance(self.noise, str) and self.noise in NOISES):
            raise ValueError(f"`noise` must be one of {', '.join(map(repr, NOISES))}; got {self.noise!r}")

    def _check_params(self, data: TrainData) -> None:
        self._rank = check_rank(self.rank, (data.n_users, data.n_items))

    def _factor_columns(self) -> int:
        return (int(self.rank) + 2) * (int(self.n_samples) - int(self.burn_in))

    def _fit_memory(self, n_ratings: int, n_users: int, n_items: int) -> int:
        # per rating: the CSR and CSC copies (int32 index, float32 value) and their grouping scratch; per row:
        # the float64 state and draws, and the kept samples (float32, rank + 2 a sample, twice at the end)
        # and the compilation of the sampler's kernels on a first run (LLVM): 43 MiB measured on a cold cache
        kept = int(self.n_samples) - int(self.burn_in)
        per_row = 8 * 4 * (int(self.rank) + 2) + 2 * 4 * (int(self.rank) + 2) * kept
        if self.implicit:  # each row's implicit factors, its shift and their draws (float64)
            per_row += 8 * 3 * (int(self.rank) + 1)
        if self.noise == "user-item":  # each row's noise scale and squared error
            per_row += 16
        return 64 * 2**20 + 32 * n_ratings + per_row * (n_users + n_items)

    def _divergence_advice(self) -> str:
        return "try a larger `prior_strength` or a smaller rank"

    def _initialize(self, data: TrainData, rng: np.random.Generator) -> None:
        k = self._rank
        std = float(self.init_std)
        self._P = rng.standard_normal((data.n_users, k)) * std
        self._Q = rng.standard_normal((data.n_items, k)) * std
        self._bu = np.zeros(data.n_users)
        self._bi = np.zeros(data.n_items)
        variance = float(np.var(data.values.astype(np.float64))) if data.values.shape[0] > 1 else 1.0
        self._alpha = 1.0 / max(variance, 1e-12)
        chunks = 4 * self._threads  # balanced by the work of their rows (ALS's systems are the same size)
        self._bounds = (balanced_bounds(data.by_user()[0], k, chunks), balanced_bounds(data.by_item()[0], k, chunks))
        # the implicit model: Y[0] the items' implicit rows (in the users' sums), Y[1] the users' (in the items');
        # shift[side] the sums w_r * sum y, weight[side] = 1 / sqrt(count); no rows where implicit is off
        none = np.empty((0, k + 1))
        self._Y, self._shift, self._weight = (none, none), (none, none), (np.empty(0), np.empty(0))
        if self.implicit:
            counts = (np.diff(data.by_user()[0]), np.diff(data.by_item()[0]))
            self._Y = (np.zeros((data.n_items, k + 1)), np.zeros((data.n_users, k + 1)))
            self._shift = (np.zeros((data.n_users, k + 1)), np.zeros((data.n_items, k + 1)))
            self._weight = tuple(1.0 / np.sqrt(np.maximum(c, 1)).astype(np.float64) for c in counts)  # type: ignore[assignment]
        # the noise's user and item scales tau_u, kappa_i (noise="user-item"); no rows for one shared precision
        self._scales = (np.empty(0), np.empty(0))
        if self.noise == "user-item":
            self._scales = (np.ones(data.n_users), np.ones(data.n_items))
        self._kept: list[tuple[np.ndarray, ...]] = []
        self._variances: list[float] = []  # per kept sample: the noise variance, averaged over the training ratings
        self._sums: dict[int, np.ndarray] = {}  # running sums of the kept samples' predictions, per evaluated set
        self._counts: dict[int, int] = {}
        self._n_kept = 0
        # placeholders until _finish: the base class reads these names for the fit's bookkeeping
        self.user_bias_, self.item_bias_ = self._bu, self._bi
        self.user_factors_, self.item_factors_ = self._P, self._Q

    def _step(self, data: TrainData, step: int, rng: np.random.Generator) -> bool:
        # one parallel section for the whole sweep: BLAS (the hyperparameters' small matrices) stays on one
        # thread beside numba's, rather than spinning up its own between the kernels
        threads = self._threads if data.values.shape[0] >= PARALLEL_MIN_RATINGS else 1
        with parallel_section(threads):
            self._sweep(data, step, rng)
        return False

    def _sweep(self, data: TrainData, step: int, rng: np.random.Generator) -> None:
        k = self._rank
        mu = data.global_mean
        for users in (True, False):
            indptr, others, values = data.by_user() if users else data.by_item()
            rows = self._P if users else self._Q
            bias = self._bu if users else self._bi
            side = 0 if users else 1
            shift = self._shift[side]
            if shift.shape[0]:  # the prior is on x - shift: the rows' own parts p_u, beside the implicit sums
                mean, precision = self._hyper(rows - shift[:, 1:], bias - shift[:, 0], rng)
            else:
                mean, precision = self._hyper(rows, bias, rng)
            eps = rng.standard_normal((rows.shape[0], k + 1))
            failed = np.zeros(rows.shape[0], dtype=bool)
            fixed_f, fixed_b = (self._Q, self._bi) if users else (self._P, self._bu)
            row_w, other_w = (self._scales[side], self._scales[1 - side])
            gibbs_half_step(indptr, others, values, mu, fixed_f, fixed_b, self._alpha, row_w, other_w, mean, precision,
                            shift, eps, rows, bias, failed, self._bounds[side])  # fmt: skip
            if failed.any():
                raise self._divergence(data, step, "a conditional's precision matrix stopped being positive definite")
            if shift.shape[0]:
                Y = self._Y[side]
                y_mean, y_precision = self._hyper(Y[:, 1:], Y[:, 0], rng)
                # the implicit rows of the users' sums are the items (the members of item j: its raters), and
                # the other way round
                m_indptr, members, _ = data.by_item() if users else data.by_user()
                eps = rng.standard_normal(Y.shape)
                if not implicit_step(m_indptr, members, self._weight[side], rows, bias, mean, precision, y_mean,
                                     y_precision, eps, Y, shift):  # fmt: skip
                    raise self._divergence(data, step, "an implicit conditional's precision stopped being positive "
                                           "definite")  # fmt: skip
        if self._scales[0].shape[0]:
            sse = self._draw_scales(data, rng)
        else:
            sse = squared_error(data.users, data.items, data.values, mu, self._bu, self._bi, self._P, self._Q,
                                _SSE_CHUNKS)  # fmt: skip
        if not math.isfinite(sse):
            raise self._divergence(data, step, "the biases or factors became NaN or infinite")
        n = data.values.shape[0]
        self._alpha = float(rng.gamma(float(self.noise_shape) + n / 2, 1.0 / (float(self.noise_rate) + sse / 2)))
        if step > int(self.burn_in):
            self._kept.append((self._P.astype(np.float32), self._bu.astype(np.float32),
                               self._Q.astype(np.float32), self._bi.astype(np.float32)))  # fmt: skip
            variance = 1.0 / self._alpha
            if self._scales[0].shape[0]:
                tau, kappa = self._scales
                variance *= float(np.mean(1.0 / (tau[data.users] * kappa[data.items])))
            self._variances.append(variance)
            self._n_kept += 1

    def _draw_scales(self, data: TrainData, rng: np.random.Generator) -> float:
        """Draw the users' then the items' noise scales; return the scaled squared error (for ``alpha``)."""
        a = NOISE_SCALE_SHAPE
        mu = data.global_mean
        out = []
        for users in (True, False):
            indptr, others, values = data.by_user() if users else data.by_item()
            side = 0 if users else 1
            rows, bias, fixed_f, fixed_b = ((self._P, self._bu, self._Q, self._bi) if users
                                            else (self._Q, self._bi, self._P, self._bu))  # fmt: skip
            sums = np.empty(rows.shape[0])
            row_squared_errors(indptr, others, values, mu, rows, bias, fixed_f, fixed_b, self._scales[1 - side], sums)
            counts = np.diff(indptr)
            self._scales[side][:] = rng.gamma(a + counts / 2, 1.0 / (a + self._alpha * sums / 2))
            out.append(sums)
        return float(self._scales[1] @ out[1])

    def _hyper(self, rows: np.ndarray, bias: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw one side's hyperparameters given its rows; return the prior mean and precision of ``[b, p]``."""
        n, k = rows.shape
        beta0 = float(self.prior_strength)
        # factors: Normal-Wishart(mu0 = 0, beta0, W0 = I, nu0 = k)
        mean = rows.mean(axis=0) if n else np.zeros(k)
        centred = rows - mean
        scatter = centred.T @ centred
        beta = beta0 + n
        W_inv = np.eye(k) + scatter + (beta0 * n / beta) * np.outer(mean, mean)
        W = np.linalg.inv(W_inv)
        W = (W + W.T) / 2
        Lam = _wishart(k + n, W, rng)
        m_p = rng.multivariate_normal(n * mean / beta, np.linalg.inv(beta * Lam))
        # biases: Normal-Gamma(mu0 = 0, beta0, a0 = 1, b0 = 1)
        b_mean = float(bias.mean()) if n else 0.0
        shape = 1.0 + n / 2
        rate = 1.0 + 0.5 * float(((bias - b_mean) ** 2).sum()) + beta0 * n * b_mean**2 / (2 * beta)
        lam_b = float(rng.gamma(shape, 1.0 / rate))
        m_b = float(rng.normal(n * b_mean / beta, 1.0 / math.sqrt(beta * lam_b)))
        prior_mean = np.concatenate([[m_b], m_p])
        precision = np.zeros((k + 1, k + 1))
        precision[0, 0] = lam_b
        precision[1:, 1:] = Lam
        return prior_mean, precision

    def _rmse(self, users: np.ndarray, items: np.ndarray, values: np.ndarray) -> float:
        """RMSE of the running average of the kept samples (of the current sample before any is kept)."""
        if values.shape[0] == 0:
            return math.nan
        current = np.empty(values.shape[0], dtype=np.float64)
        rk.predict_pairs(users, items, self.global_mean_, self._bu, self._bi, self._P, self._Q, current)
        if self._n_kept:  # each set is evaluated once a sweep, so its count is the number of kept samples
            key = id(values)
            total = self._sums.setdefault(key, np.zeros_like(current))
            total += current
            self._counts[key] = self._counts.get(key, 0) + 1
            current = total / self._counts[key]
        error = np.clip(current, *self.rating_range_) - values
        return math.sqrt(float(error @ error) / values.shape[0])

    def _extra_history(self) -> dict[str, float]:
        return {"noise_precision": self._alpha}

    def _finish(self) -> None:
        kept = getattr(self, "_kept", None)
        if not kept:
            return
        S = len(kept)
        scale = np.float32(1.0 / math.sqrt(S))
        bu = np.mean([s[1] for s in kept], axis=0, dtype=np.float64).astype(np.float32)
        bi = np.mean([s[3] for s in kept], axis=0, dtype=np.float64).astype(np.float32)
        k = self._rank
        n_users, n_items = bu.shape[0], bi.shape[0]
        P = np.empty((n_users, S * (k + 2)), dtype=np.float32)
        Q = np.empty((n_items, S * (k + 2)), dtype=np.float32)
        for s, (ps, bus, qs, bis) in enumerate(kept):
            at = s * (k + 2)
            P[:, at : at + k] = ps * scale
            P[:, at + k] = (bus - bu) * scale
            P[:, at + k + 1] = scale
            Q[:, at : at + k] = qs * scale
            Q[:, at + k] = scale
            Q[:, at + k + 1] = (bis - bi) * scale
        self.user_factors_, self.item_factors_ = P, Q
        self.user_bias_, self.item_bias_ = bu, bi
        self.noise_std_ = math.sqrt(float(np.mean(self._variances)))
        self._kept, self._sums, self._counts = [], {}, {}
        self._P = self._Q = self._bu = self._bi = None  # type: ignore[assignment]
        self._Y = self._shift = self._scales = None  # type: ignore[assignment]

    # ---------------------------------------------------------------- predict
    def predict(self, users: Any, items: Any, *, return_std: bool = False) -> Any:
        """Posterior mean predictions for pairs of raw ids; with ``return_std``, also their posterior spread.

        Parameters
        ----------
        users, items : array_like
            Raw ids, one pair per position.
        return_std : bool, default False
            Also return the standard deviation, over the kept samples, of each
            pair's (unclipped) predicted mean rating: the model's uncertainty
            about the mean, not the rating noise (whose level is ``noise_std_``;
            add the two variances for the spread of a new rating).

        Returns
        -------
        numpy.ndarray, or (numpy.ndarray, numpy.ndarray)
        """
        mean = super().predict(users, items)
        if not return_std:
            return mean
        u = np.atleast_1d(self.user_ids_.index(users))
        i = np.atleast_1d(self.item_ids_.index(items))
        k = int(self.rank)
        S = self.user_factors_.shape[1] // (k + 2)
        std = np.zeros(u.shape[0])
        known = (u >= 0) & (i >= 0)
        where = np.flatnonzero(known)
        for start in range(0, where.shape[0], 4096):
            rows = where[start : start + 4096]
            Pu = self.user_factors_[u[rows]].reshape(rows.shape[0], S, k + 2).astype(np.float64)
            Qi = self.item_factors_[i[rows]].reshape(rows.shape[0], S, k + 2).astype(np.float64)
            per_sample = (Pu * Qi).sum(axis=2) * S  # each sample's p.q + bias deviations
            std[rows] = per_sample.std(axis=1)
        return mean, std
