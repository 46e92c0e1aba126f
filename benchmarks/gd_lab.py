"""The lab's part 4, reproduced: ``gd_factorise_masked`` at rank 5 with its defaults, dense and sparse masks.

    .venv/bin/python benchmarks/gd_lab.py                 # the lab's shape, and MovieLens 100K if present
    .venv/bin/python benchmarks/gd_lab.py --quick         # a 100 x 1000 planted matrix, 200 epochs

The lab runs ``gd_factorise_masked(A, M, 5)`` (1000 epochs, lr 1e-5) on a
1000-movie x 10000-user Netflix subset and reports the sum of squared errors
on the observed cells. Its data file is not available, so this reproduces it
on:

* a planted matrix of the same shape: movie and user factors of rank 5 drawn
  U(0, 1), scaled so that ratings average about 3.6, plus N(0, 0.5) noise,
  observed at the density of MovieLens 100K (6.3% of the cells), 10% of the
  observed cells held out;
* MovieLens 100K as the lab's dense-with-mask matrix (movies x users), fitted
  on ``u1.base`` and scored on ``u1.test`` (read from ``--data`` when
  present).

Each engine runs from the same seed, one after the other in this process:
the dense NumPy engine (an m x n error matrix each epoch), the sparse one
(only the observed cells; SciPy), and the torch engines on the CPU (dense
and sparse) when torch is installed; the table gives seconds, the SSE on the
observed training cells (the lab's figure), the RMSE on them and on the
held-out cells, and the largest difference of each engine's factors from
the dense NumPy engine's. The lab's per-cell SGD (``sgd_factorise_masked``,
lr 0.01, 50 epochs: its 1000 would be 1000 sweeps of per-cell updates) is
given beside it for scale.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from scipy import sparse
from threadpoolctl import threadpool_limits

from factorise import gd_factorise_masked, sgd_factorise_masked

MOVIELENS_DENSITY = 100_000 / (943 * 1682)


def planted(m: int, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values, training mask, held-out mask) of a planted rank-5 ratings-like matrix."""
    rng = np.random.default_rng(seed)
    P, Q = rng.random((m, 5)), rng.random((n, 5))
    A = 3.6 / 1.25 * (P @ Q.T) + rng.normal(0, 0.5, (m, n))
    observed = rng.random((m, n)) < MOVIELENS_DENSITY
    held = observed & (rng.random((m, n)) < 0.1)
    return A, observed & ~held, held


def movielens(data: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """MovieLens 100K u1 as movies x users: (values with NaN elsewhere, training mask, test mask)."""
    base, test = data / "u1.base", data / "u1.test"
    if not (base.exists() and test.exists()):
        return None
    A = np.full((1682, 943), np.nan)
    train = np.zeros(A.shape, dtype=bool)
    held = np.zeros(A.shape, dtype=bool)
    for path, mask in ((base, train), (test, held)):
        table = np.loadtxt(path, dtype=np.int64)
        users, items, ratings = table[:, 0] - 1, table[:, 1] - 1, table[:, 2]
        A[items, users] = ratings
        mask[items, users] = True
    return A, train, held


def engines() -> list[tuple[str, Any]]:
    """(name, how to call gd_factorise_masked on (A, train mask)) for each engine present."""
    out: list[tuple[str, Any]] = [
        ("GD, dense mask, NumPy", lambda A, M, **kw: gd_factorise_masked(A, M, 5, **kw)),
        ("GD, sparse mask, SciPy", lambda A, M, **kw: gd_factorise_masked(A, sparse.csr_matrix(M), 5, **kw)),
    ]
    try:
        import torch  # noqa: F401
    except ImportError:
        return out
    out += [
        ("GD, dense mask, torch CPU", lambda A, M, **kw: gd_factorise_masked(A, M, 5, device="torch-cpu", **kw)),
        ("GD, sparse mask, torch CPU",
         lambda A, M, **kw: gd_factorise_masked(A, sparse.csr_matrix(M), 5, device="torch-cpu", **kw)),
    ]  # fmt: skip
    return out


def report(title: str, A: np.ndarray, train: np.ndarray, held: np.ndarray, epochs: int, sgd_epochs: int) -> None:
    print(f"\n{title}: {A.shape[0]} x {A.shape[1]}, {int(train.sum())} training cells "
          f"({train.mean():.2%}), {int(held.sum())} held out; rank 5, {epochs} epochs, lr 1e-5\n")  # fmt: skip
    print("| engine | seconds | SSE, observed cells | RMSE, observed | RMSE, held out | max diff vs dense NumPy |")
    print("|---|---|---|---|---|---|")
    values = np.where(train | held, A, np.nan)
    reference = None
    for name, call in engines():
        start = time.perf_counter()
        U, V = call(values, train, num_epochs=epochs, lr=1e-5, random_state=0)
        seconds = time.perf_counter() - start
        _row(name, seconds, U, V, values, train, held, reference)
        if reference is None:
            reference = (U, V)
    start = time.perf_counter()
    U, V = sgd_factorise_masked(values, train, 5, sgd_epochs, 0.01, random_state=0)
    _row(f"SGD (lab part 3), lr 0.01, {sgd_epochs} epochs", time.perf_counter() - start, U, V, values, train, held, None)


def _row(name: str, seconds: float, U: np.ndarray, V: np.ndarray, A: np.ndarray, train: np.ndarray,
         held: np.ndarray, reference: tuple[np.ndarray, np.ndarray] | None) -> None:  # fmt: skip
    fit = U @ V.T
    sse = float(np.sum((fit - A)[train] ** 2))
    rmse_train = math.sqrt(sse / train.sum())
    rmse_held = float(np.sqrt(np.mean((fit - A)[held] ** 2)))
    diff = "-" if reference is None else f"{max(np.abs(U - reference[0]).max(), np.abs(V - reference[1]).max()):.1e}"
    print(f"| {name} | {seconds:.2f} | {sse:.6g} | {rmse_train:.4f} | {rmse_held:.4f} | {diff} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a 100 x 1000 planted matrix, 200 epochs")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/ml-100k")
    args = parser.parse_args(argv)
    with threadpool_limits(1):  # one BLAS thread: the engines compared on equal terms
        if args.quick:
            report("planted (quick)", *planted(100, 1000), epochs=200, sgd_epochs=10)
            return 0
        report("planted, the lab's shape", *planted(1000, 10000), epochs=1000, sgd_epochs=50)
        ml = movielens(args.data)
        if ml is None:
            print(f"\nMovieLens 100K not found in {args.data}: its rows are left out", file=sys.stderr)
        else:
            report("MovieLens 100K u1, movies x users", *ml, epochs=1000, sgd_epochs=50)
    return 0


if __name__ == "__main__":
    sys.exit(main())
