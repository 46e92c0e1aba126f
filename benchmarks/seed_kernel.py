"""The compiled SGD kernel against the lab's torch loop and the plain-Python reference.

Run from the repository root (after installing the test extra, which brings torch)::

    .venv/bin/python benchmarks/seed_kernel.py

Every implementation runs in this one process on the same matrices, from the same
initial factors, in float32, on one thread. The script prints updates per second
(one update = one matrix cell visited in one epoch) and the ratio to the lab's torch
loop, and checks quality beside speed: after one epoch from the same start the three
implementations must agree (max |difference| of the factors), and the compiled
kernel's loss after its timed epochs is given as a ratio to the SVD optimum.
Absolute numbers vary from machine to machine; the ratios are what to compare.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from factorise import reconstruction_loss, svd_optimum
from factorise.kernels import dense_sgd, reference


def lab_torch_epoch(A: torch.Tensor, U: torch.Tensor, V: torch.Tensor, lr: float) -> None:
    """One epoch of the lab's loop, exactly as the lab writes it."""
    m, n = A.shape
    for r in range(m):
        for c in range(n):
            e = A[r, c] - U[r] @ V[c].t()
            U[r] = U[r] + lr * e * V[c]
            V[c] = V[c] + lr * e * U[r]


def timed(run: Callable[[], object], repeats: int) -> float:
    """Median wall-clock seconds of ``run`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench(m: int, n: int, rank: int, *, slow_epochs: int, repeats: int, min_seconds: float) -> dict:
    rng = np.random.default_rng(0)
    A = (rng.random((m, rank)) @ rng.random((rank, n)) + 0.1 * rng.normal(size=(m, n))).astype(np.float32)
    A /= np.sqrt(rank)
    U0 = rng.random((m, rank), dtype=np.float32)
    V0 = rng.random((n, rank), dtype=np.float32)
    lr = 0.01
    lr32 = np.float32(lr)
    cells = m * n

    # agreement after one epoch from the same start
    Ut, Vt = torch.from_numpy(U0.copy()), torch.from_numpy(V0.copy())
    lab_torch_epoch(torch.from_numpy(A), Ut, Vt, lr)
    Ur, Vr = U0.copy(), V0.copy()
    reference.sgd_dense_epoch(A, Ur, Vr, lr32)
    Uc, Vc = U0.copy(), V0.copy()
    dense_sgd.sgd_dense_epoch(A, Uc, Vc, lr32)
    diff_torch = max(np.abs(Uc - Ut.numpy()).max(), np.abs(Vc - Vt.numpy()).max())
    diff_ref = max(np.abs(Uc - Ur).max(), np.abs(Vc - Vr).max())

    def torch_run() -> None:
        U, V = torch.from_numpy(U0.copy()), torch.from_numpy(V0.copy())
        At = torch.from_numpy(A)
        for _ in range(slow_epochs):
            lab_torch_epoch(At, U, V, lr)

    def reference_run() -> None:
        U, V = U0.copy(), V0.copy()
        for _ in range(slow_epochs):
            reference.sgd_dense_epoch(A, U, V, lr32)

    # enough compiled epochs to run for about min_seconds
    start = time.perf_counter()
    probe_epochs = 0
    U, V = U0.copy(), V0.copy()
    while time.perf_counter() - start < 0.05:
        dense_sgd.sgd_dense_epoch(A, U, V, lr32)
        probe_epochs += 1
    per_epoch = (time.perf_counter() - start) / probe_epochs
    fast_epochs = max(1, int(min_seconds / per_epoch))
    final: dict[str, float] = {}

    def compiled_run() -> None:
        U, V = U0.copy(), V0.copy()
        for _ in range(fast_epochs):
            dense_sgd.sgd_dense_epoch(A, U, V, lr32)
        final["loss"] = reconstruction_loss(A, U, V)

    t_torch = timed(torch_run, repeats) / (slow_epochs * cells)
    t_ref = timed(reference_run, repeats) / (slow_epochs * cells)
    t_fast = timed(compiled_run, repeats) / (fast_epochs * cells)
    return {
        "shape": f"{m}x{n}",
        "rank": rank,
        "torch": 1 / t_torch,
        "reference": 1 / t_ref,
        "compiled": 1 / t_fast,
        "fast_epochs": fast_epochs,
        "diff_torch": float(diff_torch),
        "diff_ref": float(diff_ref),
        "loss_ratio": final["loss"] / svd_optimum(A, rank),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, for a smoke test")
    args = parser.parse_args()
    if args.quick:
        sizes = [(20, 15, 2)]
        opts = {"slow_epochs": 1, "repeats": 1, "min_seconds": 0.01}
    else:
        sizes = [(100, 100, 2), (100, 100, 10), (200, 100, 32)]
        opts = {"slow_epochs": 1, "repeats": 3, "min_seconds": 0.5}
    torch.set_num_threads(1)
    dense_sgd.sgd_dense_epoch(  # compile outside the timings
        np.ones((2, 2), np.float32), np.ones((2, 1), np.float32), np.ones((2, 1), np.float32), np.float32(0.01)
    )
    rows = []
    with threadpool_limits(limits=1):
        for m, n, k in sizes:
            rows.append(bench(m, n, k, **opts))
    print("| matrix | rank | lab torch loop (updates/s) | plain-Python reference | compiled kernel "
          "| compiled / torch | compiled / reference | max diff vs torch, vs reference (1 epoch) "
          "| compiled loss / SVD optimum |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['shape']} | {r['rank']} | {r['torch']:,.0f} | {r['reference']:,.0f} | "
            f"{r['compiled']:,.0f} | {r['compiled'] / r['torch']:,.0f}x | "
            f"{r['compiled'] / r['reference']:,.0f}x | {r['diff_torch']:.1e}, {r['diff_ref']:.1e} | "
            f"{r['loss_ratio']:.4f} after {r['fast_epochs']} epochs |"
        )


if __name__ == "__main__":
    main()
