"""The torch engine on a GPU beside the numba engine on the same machine's CPU cores, in one run.

    python3 benchmarks/gpu.py                      # what benchmarks/gpu_check.sh runs on a GPU machine
    python3 benchmarks/gpu.py --quick --device torch-cpu   # a small look, anywhere

For each data set (the 10M planted ratings of ``benchmarks/scale.py`` and,
unless ``--quick``, the Netflix shape: 480,189 x 17,770, 100M ratings; 10%
held out) it fits, alternating the engines, ``ALS(rank=32)`` and
``BiasedMF(rank=32)`` for ``--epochs`` epochs with ``device=None`` (numba, all
cores) and ``device=--device``, and prints seconds per epoch (the fit's
median epoch: the first includes compiling), the ratio, and the held-out
RMSE of each. Then ``gd_factorise_masked`` at rank 5 with the lab's step on
the lab's shape (1000 x 10000 at MovieLens density) and on one 100 times
larger (10,000 x 100,000), with a sparse mask, on NumPy/SciPy and on the
device: seconds per epoch and the SSE on the observed cells.

A run that would take too long is cut short: a torch SGD epoch is timed on
the 10M data first, and when it took more than ``--max-epoch-seconds`` the
Netflix-shape SGD row on the device is reported as skipped with that figure
(the torch SGD updates waves of ratings sharing no user and no item; their
number is about the largest count of ratings of one item, so very popular
items make many small waves).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import numpy as np


def _epoch_seconds(model: Any, train: Any) -> tuple[float, float]:
    """Fit; return (median seconds per epoch, total seconds)."""
    marks: list[float] = []
    start = time.perf_counter()
    model.fit(train, callback=lambda epoch, record: marks.append(time.perf_counter()))
    total = time.perf_counter() - start
    epochs = np.diff([start, *marks])
    return float(statistics.median(epochs[1:] if epochs.shape[0] > 1 else epochs)), total


def _rmse(model: Any, test: Any) -> float:
    error = model.predict(test.raw_users, test.raw_items) - test.values
    return float(np.sqrt(np.mean(error**2)))


def rating_rows(name: str, data: Any, device: str, epochs: int, max_epoch: float, skip_sgd: bool) -> float | None:
    from factorise import ALS, BiasedMF

    print(f"\n{name}: {len(data.train):,} training ratings, {len(data.test):,} held out; rank 32, {epochs} epochs\n")
    print("| model | engine | s/epoch | / numba | held-out RMSE |")
    print("|---|---|---|---|---|")
    sgd_epoch = None
    for cls, params in ((ALS, {"rank": 32, "n_epochs": epochs, "patience": None}), (BiasedMF, {"rank": 32, "n_epochs": epochs})):
        base = None
        for engine in (None, device):
            if engine == device and cls is BiasedMF and skip_sgd:
                print(f"| {cls.__name__} | {device} | skipped: {max_epoch:.0f}+ s an epoch on the 10M data | | |")
                continue
            model = cls(**params, random_state=0, device=engine)
            seconds, _ = _epoch_seconds(model, data.train)
            ratio = "1.00x" if base is None else f"{seconds / base:.3f}x"
            base = seconds if base is None else base
            print(f"| {cls.__name__} | {engine or 'numba (CPU)'} | {seconds:.3f} | {ratio} | {_rmse(model, data.test):.4f} |",
                  flush=True)  # fmt: skip
            if engine == device and cls is BiasedMF:
                sgd_epoch = seconds
    return sgd_epoch


def gd_rows(device: str, quick: bool) -> None:
    from scipy import sparse

    from factorise import gd_factorise_masked

    shapes = [(1000, 10_000)] if quick else [(1000, 10_000), (10_000, 100_000)]
    print("\ngd_factorise_masked, rank 5, lr 1e-5, sparse mask at MovieLens density (6.3%)\n")
    print("| shape | observed | engine | s/epoch | SSE on observed cells |")
    print("|---|---|---|---|---|")
    for m, n in shapes:
        rng = np.random.default_rng(0)
        nnz = int(m * n * 0.063)
        rows, cols = rng.integers(0, m, nnz), rng.integers(0, n, nnz)
        P, Q = rng.random((m, 5)), rng.random((n, 5))
        values = 2.88 * np.einsum("ij,ij->i", P[rows], Q[cols]) + rng.normal(0, 0.5, nnz)
        A = sparse.csr_matrix((values, (rows, cols)), shape=(m, n))
        M = sparse.csr_matrix((np.ones(nnz), (rows, cols)), shape=(m, n))
        epochs = 20 if m * n > 10**8 else 100
        for engine in ("cpu", device):
            sse: list[float] = []
            start = time.perf_counter()
            gd_factorise_masked(A, M, 5, epochs, 1e-5, random_state=0, device=engine, callback=lambda e, s: sse.append(s))
            seconds = (time.perf_counter() - start) / epochs
            print(f"| {m} x {n} | {M.nnz:,} | {engine} | {seconds:.4f} | {sse[-1]:.6g} |", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda", help="the torch device (default: cuda)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="1M planted ratings and the lab's shape only")
    parser.add_argument("--ratings", type=int, help="planted ratings of the first data set (default: 10M; 1M with --quick)")
    parser.add_argument("--max-epoch-seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    from factorise.datasets.synthetic import synthetic_ratings

    import torch

    if args.device.startswith("cuda") and torch.cuda.is_available():
        print(f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}")
    n = args.ratings or (1_000_000 if args.quick else 10_000_000)
    data = synthetic_ratings(100_000, 10_000, n, 10, 0.5, random_state=0, test_fraction=0.1)
    sgd_epoch = rating_rows(f"planted {n:,}", data, args.device, args.epochs, args.max_epoch_seconds, False)
    del data
    if not args.quick:
        netflix = synthetic_ratings(480_189, 17_770, 100_480_507, 10, 0.5, random_state=0, test_fraction=0.1)
        skip = sgd_epoch is not None and sgd_epoch > args.max_epoch_seconds
        rating_rows("Netflix shape", netflix, args.device, 2, args.max_epoch_seconds, skip)
        del netflix
    gd_rows(args.device, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
