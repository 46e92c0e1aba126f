"""How the defaults of ALS and SoftImpute were chosen, and what they give on MovieLens 100K.

Run from the repository root, one stage at a time (each takes a minute or two)::

    .venv/bin/python benchmarks/tune_als_softimpute.py --stage als
    .venv/bin/python benchmarks/tune_als_softimpute.py --stage softimpute
    .venv/bin/python benchmarks/tune_als_softimpute.py --stage compare
    .venv/bin/python benchmarks/tune_als_softimpute.py --stage test

Options: ``--data DIR`` (default ``../shared/data/ml-100k``), ``--quick`` (a few
settings only, for a smoke run).

1. **Validation (training data only)**, stages ``als`` and ``softimpute``.
   Two splits: 15% of ``u1.base`` and of ``u2.base`` held out at random
   (seed 12345); each model is fitted on the other 85% with the held-out part
   as ``validation`` (no early stopping), and the validation RMSE after every
   epoch/iteration is averaged over the two splits. For each setting it prints
   the mean validation RMSE at the end, the lowest point of the mean curve and
   where it was, and the mean fit time. The ``u*.test`` files are not read.
2. **Side by side**, stage ``compare``: the defaults of ALS, SoftImpute and
   (when :mod:`factorise.models.sgd` is present) the SGD model ``BiasedMF`` on
   the same validation splits: validation RMSE and fit time (median of three
   fits after a warm-up), still without reading ``u*.test``.
3. **Test**, stage ``test``: only then the class defaults, fitted on
   ``u{i}.base`` and scored on ``u{i}.test`` for i = 1..5; RMSE per fold, the
   mean, and the fit time per fold (median of three fits after a warm-up fit
   that loads the compiled kernels). ALS is timed with one thread and with
   the default (all cores).

BLAS is pinned to one thread throughout (threadpoolctl): SoftImpute's small
QR and SVD calls are many times slower when BLAS threads compete with other
work on a small machine. The ratings are read with :func:`numpy.loadtxt`
(tab-separated user, item, rating, timestamp); MovieLens is never copied into
the repository.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from factorise.data import Ratings
from factorise.models.als import ALS
from factorise.models.softimpute import SoftImpute

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"

#: ALS settings tried (stage 1). Each exponent alpha gets its own scale of lambda:
#: the penalty is lambda * n^alpha and a row has ~50-100 ratings.
ALS_GRID: list[dict] = (
    [
        {"rank": 50, "regularization_exponent": 1.0, "regularization": lam, "bias_regularization": lb}
        for lam in (0.08, 0.12, 0.16)
        for lb in (0.02, 0.1)
    ]
    + [
        {"rank": 50, "regularization_exponent": 0.5, "regularization": lam, "bias_regularization": lb}
        for lam in (0.8, 1.2, 1.6)
        for lb in (0.2, 0.5, 1.0)
    ]
    + [
        {"rank": 50, "regularization_exponent": 0.0, "regularization": lam, "bias_regularization": lb}
        for lam in (8.0, 12.0, 16.0)
        for lb in (2.0, 5.0)
    ]
    + [
        {"rank": rank, "regularization_exponent": 0.5, "regularization": lam, "bias_regularization": 0.5}
        for rank in (10, 20, 100)
        for lam in (1.0, 1.2, 1.5)
    ]
    + [
        {"rank": 50, "regularization_exponent": 0.5, "regularization": 1.2, "bias_regularization": 0.5, "init_std": s}
        for s in (0.01, 0.5)
    ]
)
ALS_EPOCHS = 20

#: SoftImpute settings tried (stage 1).
SOFTIMPUTE_GRID: list[dict] = (
    [{"rank": 60, "shrinkage": s, "bias_regularization": 5.0} for s in (0.3, 0.35, 0.4, 0.45, 0.5)]
    + [{"rank": 60, "shrinkage": 0.4, "bias_regularization": b} for b in (1.0, 3.0, 10.0)]
    + [{"rank": r, "shrinkage": 0.4, "bias_regularization": 5.0} for r in (20, 40, 100)]
    + [{"rank": 60, "shrinkage": 0.4, "bias_regularization": 5.0, "tol": t} for t in (1e-3, 3e-4, 3e-5)]
)
SOFTIMPUTE_ITER = 300


def _read(path: Path) -> np.ndarray:
    return np.loadtxt(path, dtype=np.int64, usecols=(0, 1, 2))


def _ratings(a: np.ndarray) -> Ratings:
    return Ratings.from_raw(a[:, 0], a[:, 1], a[:, 2].astype(np.float32))


def _rmse(model: ALS | SoftImpute, a: np.ndarray) -> float:
    return float(np.sqrt(np.mean((model.predict(a[:, 0], a[:, 1]) - a[:, 2]) ** 2)))


def validation_splits(data: Path) -> list[tuple[Ratings, Ratings]]:
    """85/15 random splits of u1.base and u2.base (training data only)."""
    splits = []
    for name in ("u1.base", "u2.base"):
        a = _read(data / name)
        held = np.random.default_rng(12345).random(a.shape[0]) < 0.15
        splits.append((_ratings(a[~held]), _ratings(a[held])))
    return splits


def validation_curve(
    make: Callable[[], ALS | SoftImpute], splits: list[tuple[Ratings, Ratings]]
) -> tuple[np.ndarray, float]:
    """Mean validation RMSE per step over the splits (padded with the last value), mean fit time."""
    curves, times = [], []
    for train, held in splits:
        model = make()
        start = time.perf_counter()
        model.fit(train, validation=held)
        times.append(time.perf_counter() - start)
        curves.append([h["valid_rmse"] for h in model.history_])
    length = max(len(c) for c in curves)
    padded = np.array([c + [c[-1]] * (length - len(c)) for c in curves])
    return padded.mean(axis=0), float(np.mean(times))


def _describe(params: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items())


def stage_als(splits: list[tuple[Ratings, Ratings]], quick: bool) -> None:
    grid = ALS_GRID[:2] if quick else ALS_GRID
    epochs = 3 if quick else ALS_EPOCHS
    ALS(rank=2, n_epochs=1).fit(splits[0][0])  # load the compiled kernels
    print(f"ALS, {epochs} epochs, no early stopping; mean of {len(splits)} validation splits")
    print("| setting | valid RMSE at end | lowest (epoch) | at epoch 8 | fit s |")
    print("|---|---|---|---|---|")
    for params in grid:
        curve, seconds = validation_curve(
            lambda p=params: ALS(n_epochs=epochs, patience=None, random_state=0, **p), splits
        )
        at8 = curve[min(7, len(curve) - 1)]
        print(
            f"| {_describe(params)} | {curve[-1]:.4f} | {curve.min():.4f} ({int(curve.argmin()) + 1}) "
            f"| {at8:.4f} | {seconds:.2f} |",
            flush=True,
        )
    curve, seconds = validation_curve(lambda: ALS(patience=None, random_state=0), splits)
    print(
        f"| defaults {ALS().get_params()} | {curve[-1]:.4f} | {curve.min():.4f} "
        f"({int(curve.argmin()) + 1}) | - | {seconds:.2f} |"
    )


def stage_softimpute(splits: list[tuple[Ratings, Ratings]], quick: bool) -> None:
    grid = SOFTIMPUTE_GRID[:2] if quick else SOFTIMPUTE_GRID
    iters = 5 if quick else SOFTIMPUTE_ITER
    print(
        f"SoftImpute, at most {iters} iterations, tol 1e-4 unless given, no early stopping; "
        f"mean of {len(splits)} validation splits"
    )
    print("| setting | valid RMSE at end | lowest (iteration) | iterations | fit s |")
    print("|---|---|---|---|---|")
    for params in grid:
        p = {"tol": 1e-4, **params}
        curve, seconds = validation_curve(
            lambda p=p: SoftImpute(max_iter=iters, patience=None, random_state=0, **p), splits
        )
        print(
            f"| {_describe(params)} | {curve[-1]:.4f} | {curve.min():.4f} ({int(curve.argmin()) + 1}) "
            f"| {len(curve)} | {seconds:.2f} |",
            flush=True,
        )
    curve, seconds = validation_curve(lambda: SoftImpute(patience=None, random_state=0), splits)
    print(
        f"| defaults {SoftImpute().get_params()} | {curve[-1]:.4f} | {curve.min():.4f} "
        f"({int(curve.argmin()) + 1}) | {len(curve)} | {seconds:.2f} |"
    )


def _median_fit_seconds(make: Callable[[], object], train: Ratings) -> float:
    make().fit(train)  # type: ignore[attr-defined]  # warm-up: loads the compiled kernels
    times = []
    for _ in range(3):
        model = make()
        start = time.perf_counter()
        model.fit(train)  # type: ignore[attr-defined]
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def stage_compare(splits: list[tuple[Ratings, Ratings]]) -> None:
    contenders: list[tuple[str, Callable[[], object]]] = [
        ("ALS defaults, 1 thread", lambda: ALS(random_state=0, n_threads=1)),
        ("ALS defaults, all cores", lambda: ALS(random_state=0)),
        ("SoftImpute defaults", lambda: SoftImpute(random_state=0)),
    ]
    try:
        from factorise.models.sgd import BiasedMF
    except ImportError:
        print("(factorise.models.sgd not found: SGD left out)")
    else:
        contenders.append(("BiasedMF (SGD) defaults", lambda: BiasedMF(random_state=0)))
    print(f"Defaults on the {len(splits)} validation splits (fit on 85% of u1.base / u2.base)")
    print("| model | valid RMSE (mean) | fit s (median of 3, mean over splits) |")
    print("|---|---|---|")
    for name, make in contenders:
        rmses, seconds = [], []
        for train, held in splits:
            seconds.append(_median_fit_seconds(make, train))
            model = make()
            model.fit(train)  # type: ignore[attr-defined]
            rmses.append(float(np.sqrt(np.mean((model.predict_ratings(held) - held.values) ** 2))))  # type: ignore[attr-defined]
        print(f"| {name} | {np.mean(rmses):.4f} | {np.mean(seconds):.3f} |", flush=True)


def stage_test(data: Path, quick: bool) -> None:
    folds = (1,) if quick else (1, 2, 3, 4, 5)
    contenders: list[tuple[str, Callable[[], ALS | SoftImpute]]] = [
        ("ALS defaults, 1 thread", lambda: ALS(random_state=0, n_threads=1)),
        ("ALS defaults, all cores", lambda: ALS(random_state=0)),
        ("SoftImpute defaults", lambda: SoftImpute(random_state=0)),
    ]
    print("Defaults fitted on u{i}.base, scored on u{i}.test; fit time = median of 3 after a warm-up")
    print(f"ALS: {ALS().get_params()}")
    print(f"SoftImpute: {SoftImpute().get_params()}")
    print("| model | " + " | ".join(f"u{i}" for i in folds) + " | mean RMSE | fit s per fold |")
    print("|---|" + "---|" * len(folds) + "---|---|")
    for name, make in contenders:
        rmses, times = [], []
        for i in folds:
            train_a, test_a = _read(data / f"u{i}.base"), _read(data / f"u{i}.test")
            train = _ratings(train_a)
            times.append(_median_fit_seconds(make, train))
            model = make()
            model.fit(train)
            rmses.append(_rmse(model, test_a))
        cells = " | ".join(f"{r:.4f}" for r in rmses)
        print(f"| {name} | {cells} | {np.mean(rmses):.4f} | {np.mean(times):.3f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stage", choices=("als", "softimpute", "compare", "test"), required=True)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--quick", action="store_true", help="a few settings only (smoke run)")
    args = parser.parse_args()
    if not (args.data / "u1.base").is_file():
        parser.error(f"MovieLens 100K not found in {args.data} (need u1.base ... u5.test)")
    with threadpool_limits(limits=1):
        if args.stage == "test":
            stage_test(args.data, args.quick)
        else:
            splits = validation_splits(args.data)
            if args.stage == "als":
                stage_als(splits, args.quick)
            elif args.stage == "softimpute":
                stage_softimpute(splits, args.quick)
            else:
                stage_compare(splits)


if __name__ == "__main__":
    main()
