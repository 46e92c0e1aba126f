"""How BiasedMF's defaults were chosen, and what they give on MovieLens 100K.

Run from the repository root::

    .venv/bin/python benchmarks/tune_sgd.py [--data ../shared/data/ml-100k] [--quick] [--no-test] [--seeds 3]

1. **Validation (training data only).** Four splits: 10% of ``u1.base`` and of
   ``u2.base`` held out at random, two seeds each; the model is fitted on the
   other 90% (72k ratings). For the defaults and for variations of one
   parameter at a time it prints the mean validation RMSE after the last epoch
   (the defaults run a fixed number of epochs), the epoch at which the mean
   validation curve was lowest and its value, and the fit time. The
   ``u*.test`` files are not read in this stage.

   1b. **Alternatives not adopted**, on the same splits: penalties scaled by
   the rating counts (per-visit penalty ``reg * (n / mean n) ** -exponent``
   for users and items), biases started from their exact ridge solution
   (:func:`factorise.models.baseline.bias_step`, alternated to convergence)
   instead of zero, and a ``1 / (1 + c (t - 1))`` learning-rate schedule.
   They run through a variant of the model defined here (its own copy of the
   kernel with per-user and per-item penalties); none beat the defaults.

   1c. **Confirmation** on three other splits (10% of ``u3.base``,
   ``u4.base``, ``u5.base`` held out) with three seeds each: the defaults
   beside the previous ones (rank 64, 20 epochs).
2. **Robustness.** The defaults on half the training ratings, and on the
   ratings rescaled to 2..10 (RMSE divided by 2 so it compares), beside
   the best of a few nearby settings on the same data.
3. **Test.** Only then: the defaults fitted on ``u{i}.base`` and scored on
   ``u{i}.test`` for i = 1..5 with ``--seeds`` seeds (``random_state = fold +
   10 * s``, s = 0, 1, ...); RMSE per fold (mean over seeds), the mean of the
   five folds for every seed, and the fit time per fold (median of the
   seeds' fits, at least three, after one warm-up fit that loads the
   compiled kernels; it includes the train RMSE the fit loop records every
   epoch).
   Beside it, when the ``libmf`` binding is installed, LibMF with the settings
   of ``benchmarks/competitors.py`` (k=100, 20 iterations, one thread) on the
   same folds in the same run, and the ratio of the fit times.

The ratings are read with :func:`numpy.loadtxt` (tab-separated user, item,
rating, timestamp). MovieLens is never copied into the repository.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import time
import warnings
from pathlib import Path
from typing import Any

import numba
import numpy as np

from factorise.data import Ratings
from factorise.models.baseline import bias_step
from factorise.models.sgd import BiasedMF

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"

#: One-parameter-at-a-time variations around the defaults (stage 1).
VARIATIONS: list[dict] = [
    {},
    {"rank": 64, "n_epochs": 20},  # the previous defaults
    {"rank": 32},
    {"rank": 64},
    {"rank": 96},
    {"rank": 256},
    {"n_epochs": 12},
    {"n_epochs": 20},
    {"n_epochs": 24},
    {"n_epochs": 30},
    {"regularization": 0.085, "n_epochs": 24},  # larger rank, stronger penalty, more epochs
    {"learning_rate": 0.055},
    {"learning_rate": 0.095},
    {"regularization": 0.05},
    {"regularization": 0.09},
    {"learning_rate_decay": 0.85},
    {"learning_rate_decay": 0.9},
    {"learning_rate_decay": 1.0},
    {"init_std": 0.003},
    {"init_std": 0.007},
    {"init_std": 0.014},
    {"init_std": 0.03},
    {"bias_learning_rate": 0.0075},
    {"bias_learning_rate": 0.03},
    {"bias_learning_rate": 0.075},
    {"bias_regularization": 0.0},
    {"bias_regularization": 0.05},
    # the classic setting (the values of Surprise's SVD defaults, run through this model:
    # constant rate, large start)
    {
        "rank": 100,
        "n_epochs": 20,
        "learning_rate": 0.005,
        "regularization": 0.02,
        "bias_learning_rate": 0.005,
        "learning_rate_decay": 1.0,
        "init_std": 0.1,
    },
]
QUICK_VARIATIONS = VARIATIONS[:3]

#: Changes to the method tried and not adopted (stage 1b), run through :class:`_Variant`.
ALTERNATIVES: list[dict] = [
    {"frequency_exponent": (0.5, 0.5)},
    {"frequency_exponent": (0.5, 0.5), "regularization": 0.1},
    {"frequency_exponent": (0.0, 0.5), "regularization": 0.1},
    {"frequency_exponent": (0.25, 0.25), "regularization": 0.1},
    {"frequency_exponent": (-0.25, 0.0)},
    {"frequency_exponent": (0.0, -0.25)},
    {"bias_init": "ridge", "bias_init_regularization": 2.0},
    {"bias_init": "ridge", "bias_init_regularization": 10.0},
    {"bias_init": "ridge", "bias_init_regularization": 25.0},
    {"bias_init": "ridge", "bias_init_regularization": 10.0, "bias_learning_rate": 0.003},
    {"schedule": "inverse", "inverse_rate": 0.3},
    {"schedule": "inverse", "inverse_rate": 0.5, "learning_rate": 0.1},
    {"schedule": "inverse", "inverse_rate": 0.2, "learning_rate": 0.06},
]

#: Compared on the confirmation splits (stage 1c).
CONFIRM: list[dict] = [{}, {"rank": 64, "n_epochs": 20}, {"rank": 96, "n_epochs": 16}]

#: Nearby settings tried on the robustness data (stage 2).
NEARBY: list[dict] = [
    {},
    {"learning_rate": 0.055},
    {"learning_rate": 0.095},
    {"regularization": 0.05},
    {"regularization": 0.09},
    {"learning_rate_decay": 0.85},
    {"learning_rate_decay": 0.9},
    {"bias_learning_rate": 0.0075},
    {"bias_learning_rate": 0.03},
]


def load(path: Path) -> np.ndarray:
    """Rows ``(user, item, rating)`` of a MovieLens ``u*.base``/``u*.test`` file."""
    return np.loadtxt(path, dtype=np.int64, usecols=(0, 1, 2))


def to_ratings(rows: np.ndarray, scale: float = 1.0) -> Ratings:
    return Ratings.from_raw(rows[:, 0], rows[:, 1], rows[:, 2] * scale)


def rmse(model: BiasedMF, rows: np.ndarray, scale: float = 1.0) -> float:
    pred = model.predict(rows[:, 0], rows[:, 1])
    return float(np.sqrt(np.mean((pred - rows[:, 2] * scale) ** 2))) / scale


def validation_splits(
    data: Path, frac: float = 0.1, files: tuple = (("u1.base", (0, 1)), ("u2.base", (2, 3)))
) -> list[tuple[np.ndarray, np.ndarray]]:
    splits = []
    for name, seeds in files:
        rows = load(data / name)
        for seed in seeds:
            held = np.random.default_rng(seed).random(rows.shape[0]) < frac
            splits.append((rows[~held], rows[held]))
    return splits


def evaluate(
    params: dict, splits: list, scale: float = 1.0, seeds: tuple = (0,), model_class: type = BiasedMF
) -> tuple[float, int, float, float]:
    """Mean final validation RMSE, best epoch and RMSE of the mean curve, mean fit seconds."""
    finals, curves, seconds = [], [], []
    for train, valid in splits:
        train_r, valid_r = to_ratings(train, scale), to_ratings(valid, scale)
        for seed in seeds:
            model = model_class(random_state=seed, **params)
            start = time.perf_counter()
            model.fit(train_r, validation=valid_r)
            seconds.append(time.perf_counter() - start)
            finals.append(rmse(model, valid, scale))
            curves.append([h["valid_rmse"] / scale for h in model.history_])
    curve = np.mean(curves, axis=0)
    best = int(np.argmin(curve))
    return float(np.mean(finals)), best + 1, float(curve[best]), float(np.mean(seconds))


def describe(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "defaults"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true", help="a few settings only (smoke test)")
    parser.add_argument("--no-test", action="store_true", help="stop before stage 3 (the u*.test files)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the test stage (default: 3)")
    args = parser.parse_args()
    defaults = BiasedMF().get_params()
    print("BiasedMF defaults:", describe({k: v for k, v in defaults.items() if k != "random_state"}))

    splits = validation_splits(args.data)
    BiasedMF(rank=2, n_epochs=1).fit(to_ratings(splits[0][0]))  # load the compiled kernels
    print("\n## 1. validation: 10% of u1.base / u2.base held out (2 seeds each), 72k training ratings\n")
    print("| setting | valid RMSE after last epoch | best epoch of mean curve | its RMSE | fit s (with valid RMSE) |")
    print("|---|---|---|---|---|")
    for params in QUICK_VARIATIONS if args.quick else VARIATIONS:
        final, best_epoch, best, seconds = evaluate(params, splits)
        print(f"| {describe(params)} | {final:.4f} | {best_epoch} | {best:.4f} | {seconds:.3f} |", flush=True)

    if not args.quick:
        print("\n## 1b. alternatives not adopted (same splits; changes on top of the defaults)\n")
        print("| change | valid RMSE after last epoch | best epoch of mean curve | its RMSE | fit s |")
        print("|---|---|---|---|---|")
        for params in [{}, *ALTERNATIVES]:
            final, best_epoch, best, seconds = evaluate(params, splits, model_class=_Variant)
            print(f"| {describe(params)} | {final:.4f} | {best_epoch} | {best:.4f} | {seconds:.3f} |", flush=True)

        files = (("u3.base", (10,)), ("u4.base", (11,)), ("u5.base", (12,)))
        print("\n## 1c. confirmation: 10% of u3.base / u4.base / u5.base held out, 3 seeds each\n")
        print("| setting | valid RMSE after last epoch | best epoch of mean curve | its RMSE | fit s |")
        print("|---|---|---|---|---|")
        other = validation_splits(args.data, files=files)
        for params in CONFIRM:
            final, best_epoch, best, seconds = evaluate(params, other, seeds=(0, 1, 2))
            print(f"| {describe(params)} | {final:.4f} | {best_epoch} | {best:.4f} | {seconds:.3f} |", flush=True)

        print("\n## 2. robustness: the defaults beside nearby settings on other data\n")
        rng = np.random.default_rng(7)
        half = [(t[rng.random(t.shape[0]) < 0.5], v) for t, v in splits]
        print("| data | setting | valid RMSE after last epoch | best epoch | its RMSE |")
        print("|---|---|---|---|---|")
        for label, data_splits, scale in (
            ("half the ratings (36k)", half, 1.0),
            ("ratings x2 (2..10), RMSE / 2", splits, 2.0),
        ):
            for params in NEARBY:
                final, best_epoch, best, _ = evaluate(params, data_splits, scale)
                print(f"| {label} | {describe(params)} | {final:.4f} | {best_epoch} | {best:.4f} |", flush=True)

    if args.no_test:
        return
    print("\n## 3. test: defaults fitted on u{i}.base, scored on u{i}.test\n")
    libmf = _import_libmf()
    if libmf is None:
        print("(LibMF not installed: `pip install libmf` adds it beside; its columns show -)\n")
    n_seeds = max(1, args.seeds)
    print(f"| fold | test RMSE (mean of {n_seeds} seeds) | fit s (median) | LibMF k=100 RMSE | LibMF fit s | LibMF s / ours |")
    print("|---|---|---|---|---|---|")
    repeats = 1 if args.quick else 3
    rows, by_seed = [], np.zeros((n_seeds, 5))
    for fold in range(1, 6):
        train, test = load(args.data / f"u{fold}.base"), load(args.data / f"u{fold}.test")
        train_r = to_ratings(train)
        fold_times = []
        for s in range(max(n_seeds, repeats)):
            start = time.perf_counter()
            model = BiasedMF(random_state=fold + 10 * (s % n_seeds)).fit(train_r)
            fold_times.append(time.perf_counter() - start)
            if s < n_seeds:
                by_seed[s, fold - 1] = rmse(model, test)
        ours = (float(by_seed[:, fold - 1].mean()), float(np.median(fold_times)))
        theirs = _libmf_fold(libmf, train, test, repeats) if libmf is not None else (math.nan, math.nan)
        rows.append(ours + theirs)
        print(f"| u{fold} | {_cells(ours + theirs)} |", flush=True)
    print(f"| mean | {_cells(tuple(np.mean(rows, axis=0)))} |")
    means = by_seed.mean(axis=1)
    print("\nmean test RMSE over u1-u5 per seed: " + ", ".join(f"s={s}: {m:.4f}" for s, m in enumerate(means)))
    print(f"over seeds: mean {means.mean():.4f}, worst {means.max():.4f}")


@numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
def _variant_epoch(
    users: np.ndarray,
    items: np.ndarray,
    values: np.ndarray,
    order: np.ndarray,
    mu: float,
    bu: np.ndarray,
    bi: np.ndarray,
    P: np.ndarray,
    Q: np.ndarray,
    lr: float,
    reg_user: np.ndarray,
    reg_item: np.ndarray,
    lr_bias: float,
    reg_bias: float,
) -> float:  # pragma: no cover - compiled
    """The model's sweep with one factor penalty per user and per item (stage 1b only)."""
    k = P.shape[1]
    sse = 0.0
    for t in range(order.shape[0]):
        idx = order[t]
        u = users[idx]
        i = items[idx]
        dot = P[u, 0] * Q[i, 0]
        for j in range(1, k):
            dot += P[u, j] * Q[i, j]
        e = values[idx] - (mu + bu[u] + bi[i] + dot)
        sse += float(e) * float(e)
        bu[u] += lr_bias * (e - reg_bias * bu[u])
        bi[i] += lr_bias * (e - reg_bias * bi[i])
        a = reg_user[u]
        b = reg_item[i]
        for j in range(k):
            p = P[u, j]
            q = Q[i, j]
            P[u, j] = p + lr * (e * q - a * p)
            Q[i, j] = q + lr * (e * p - b * q)
    return sse


class _Variant(BiasedMF):
    """BiasedMF with the changes of stage 1b (frequency-scaled penalties, ridge bias start, 1/t rate).

    ``frequency_exponent = (a_u, a_i)``: the per-visit factor penalty of user
    ``u`` is ``regularization * (n_u / mean n) ** -a_u`` (items alike); (0, 0)
    is the model's. ``bias_init = "ridge"``: the biases start from the exact
    minimiser of the ridge bias objective with ``bias_init_regularization``
    pseudo-ratings. ``schedule = "inverse"``: ``lr_t = learning_rate / (1 +
    inverse_rate * (t - 1))`` (the biases alike) instead of the geometric decay.
    """

    def __init__(
        self,
        *,
        frequency_exponent: tuple[float, float] = (0.0, 0.0),
        bias_init: str = "zero",
        bias_init_regularization: float = 2.0,
        schedule: str = "geometric",
        inverse_rate: float = 0.3,
        **params: Any,
    ) -> None:
        super().__init__(**params)
        self.frequency_exponent = frequency_exponent
        self.bias_init = bias_init
        self.bias_init_regularization = bias_init_regularization
        self.schedule = schedule
        self.inverse_rate = inverse_rate

    def _initialize(self, data: Any, rng: np.random.Generator) -> None:
        super()._initialize(data, rng)
        reg = float(self.regularization) * self._sigma
        for name, index, n, exponent in (
            ("_reg_user", data.users, data.n_users, self.frequency_exponent[0]),
            ("_reg_item", data.items, data.n_items, self.frequency_exponent[1]),
        ):
            counts = np.maximum(np.bincount(index, minlength=n), 1).astype(np.float64)
            setattr(self, name, (reg * (counts / counts.mean()) ** -exponent).astype(np.float32))
        if self.bias_init == "ridge":
            user_bias = np.zeros(data.n_users)
            lam = float(self.bias_init_regularization)
            for _ in range(30):
                item_bias = bias_step(data.users, data.items, data.values, data.global_mean, user_bias, data.n_items, lam)
                user_bias = bias_step(data.items, data.users, data.values, data.global_mean, item_bias, data.n_users, lam)
            self.user_bias_, self.item_bias_ = user_bias.astype(np.float32), item_bias.astype(np.float32)

    def _step(self, data: Any, step: int, rng: np.random.Generator) -> bool:
        if self.schedule == "inverse":
            decay = 1.0 / (1.0 + float(self.inverse_rate) * (step - 1))
        else:
            decay = float(self.learning_rate_decay) ** (step - 1)
        f32 = np.float32
        _variant_epoch(
            data.users,
            data.items,
            data.values,
            rng.permutation(data.values.shape[0]),
            f32(data.global_mean),
            self.user_bias_,
            self.item_bias_,
            self.user_factors_,
            self.item_factors_,
            f32(float(self.learning_rate) * decay / self._sigma),
            self._reg_user,
            self._reg_item,
            f32(float(self.bias_learning_rate) * decay),
            f32(self.bias_regularization),
        )
        return False


def _cells(row: tuple[float, ...]) -> str:
    ours_rmse, ours_s, libmf_rmse, libmf_s = row
    if math.isnan(libmf_s):
        return f"{ours_rmse:.4f} | {ours_s:.3f} | - | - | -"
    return f"{ours_rmse:.4f} | {ours_s:.3f} | {libmf_rmse:.4f} | {libmf_s:.3f} | {libmf_s / ours_s:.2f}"


def _import_libmf() -> Any:
    """LibMF's Python binding, or None (it prints its library path on import: silenced)."""
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", SyntaxWarning)
            from libmf import mf
    except ImportError:
        return None
    return mf


def _libmf_fold(mf: Any, train: np.ndarray, test: np.ndarray, repeats: int) -> tuple[float, float]:
    """LibMF with the settings of benchmarks/competitors.py (k=100, 20 iterations, one thread)."""
    from competitors import LIBMF_PARAMS  # beside this script

    users, u = np.unique(train[:, 0], return_inverse=True)
    items, i = np.unique(train[:, 1], return_inverse=True)
    triples = np.ascontiguousarray(np.column_stack([u, i, train[:, 2]]), dtype=np.float32)
    seconds = []
    for _ in range(repeats):
        model = mf.MF(**LIBMF_PARAMS)
        start = time.perf_counter()
        model.fit(triples)
        seconds.append(time.perf_counter() - start)

    def index(ids: np.ndarray, raw: np.ndarray) -> np.ndarray:
        pos = np.minimum(np.searchsorted(ids, raw), len(ids) - 1)
        return np.where(ids[pos] == raw, pos, -1)

    # the binding reads the pairs column by column: Fortran order
    pairs = np.asfortranarray(np.column_stack([index(users, test[:, 0]), index(items, test[:, 1])]), dtype=np.float32)
    pred = np.clip(np.asarray(model.predict(pairs), dtype=np.float64), train[:, 2].min(), train[:, 2].max())
    return float(np.sqrt(np.mean((pred - test[:, 2]) ** 2))), float(np.median(seconds))


if __name__ == "__main__":
    main()
