"""How BiasedMF's defaults were chosen, and what they give on MovieLens 100K.

Run from the repository root::

    .venv/bin/python benchmarks/tune_sgd.py [--data ../shared/data/ml-100k] [--quick] [--no-test]

1. **Validation (training data only).** Four splits: 10% of ``u1.base`` and of
   ``u2.base`` held out at random, two seeds each; the model is fitted on the
   other 90% (72k ratings). For the defaults and for variations of one
   parameter at a time it prints the mean validation RMSE after the last epoch
   (the defaults run a fixed number of epochs), the epoch at which the mean
   validation curve was lowest and its value, and the fit time. The
   ``u*.test`` files are not read in this stage.
2. **Robustness.** The defaults on half the training ratings, and on the
   ratings rescaled to 2..10 (RMSE divided by 2 so it compares), beside
   the best of a few nearby settings on the same data.
3. **Test.** Only then: the defaults fitted on ``u{i}.base`` and scored on
   ``u{i}.test`` for i = 1..5; RMSE per fold, their mean, and the fit time per
   fold (median of three fits, after one warm-up fit that loads the compiled
   kernels; it includes the train RMSE the fit loop records every epoch).
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

import numpy as np

from factorise.data import Ratings
from factorise.models.sgd import BiasedMF

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"

#: One-parameter-at-a-time variations around the defaults (stage 1).
VARIATIONS: list[dict] = [
    {},
    {"rank": 16},
    {"rank": 32},
    {"rank": 128},
    {"rank": 256},
    {"n_epochs": 15},
    {"n_epochs": 30},
    {"n_epochs": 50},
    {"learning_rate": 0.055},
    {"learning_rate": 0.095},
    {"regularization": 0.05},
    {"regularization": 0.09},
    {"learning_rate_decay": 0.85},
    {"learning_rate_decay": 0.9},
    {"learning_rate_decay": 1.0},
    {"init_std": 0.003},
    {"init_std": 0.03},
    {"init_std": 0.1},
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


def validation_splits(data: Path, frac: float = 0.1) -> list[tuple[np.ndarray, np.ndarray]]:
    splits = []
    for name, seeds in (("u1.base", (0, 1)), ("u2.base", (2, 3))):
        rows = load(data / name)
        for seed in seeds:
            held = np.random.default_rng(seed).random(rows.shape[0]) < frac
            splits.append((rows[~held], rows[held]))
    return splits


def evaluate(params: dict, splits: list, scale: float = 1.0) -> tuple[float, int, float, float]:
    """Mean final validation RMSE, best epoch and RMSE of the mean curve, mean fit seconds."""
    finals, curves, seconds = [], [], []
    for train, valid in splits:
        model = BiasedMF(random_state=0, **params)
        train_r, valid_r = to_ratings(train, scale), to_ratings(valid, scale)
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
    print("| fold | test RMSE | fit s (median of 3) | LibMF k=100 RMSE | LibMF fit s | LibMF s / ours |")
    print("|---|---|---|---|---|---|")
    repeats = 1 if args.quick else 3
    rows = []
    for fold in range(1, 6):
        train, test = load(args.data / f"u{fold}.base"), load(args.data / f"u{fold}.test")
        train_r = to_ratings(train)
        fold_times = []
        for _ in range(repeats):
            start = time.perf_counter()
            model = BiasedMF(random_state=fold).fit(train_r)
            fold_times.append(time.perf_counter() - start)
        ours = (rmse(model, test), float(np.median(fold_times)))
        theirs = _libmf_fold(libmf, train, test, repeats) if libmf is not None else (math.nan, math.nan)
        rows.append(ours + theirs)
        print(f"| u{fold} | {_cells(ours + theirs)} |", flush=True)
    print(f"| mean | {_cells(tuple(np.mean(rows, axis=0)))} |")


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
