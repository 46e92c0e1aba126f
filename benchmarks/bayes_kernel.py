"""BayesianMF's Gibbs half-step: the compiled kernel beside its NumPy reference, per rank.

    .venv/bin/python benchmarks/bayes_kernel.py            # MovieLens 100K's shape, ranks 10, 20, 32
    .venv/bin/python benchmarks/bayes_kernel.py --quick    # tiny (the smoke test)

Planted ratings of MovieLens 100K's shape (943 users x 1682 items, 80,000 ratings,
``synthetic_ratings`` rank 10, noise 0.9, seed 0), grouped by user as the sampler groups them. One
users' half-step (:func:`factorise.kernels.bayes.gibbs_half_step`: every user's
``[b_u, p_u]`` drawn from its Gaussian conditional given the items, one thread)
is timed ``--repeats`` times after a warm-up call, and the reference
(:func:`factorise.kernels.bayes_reference.gibbs_half_step`) once. Reported: the
median milliseconds and nanoseconds per rating of the kernel, the reference's
time over the kernel's, and the largest difference of their draws (the same
normal draws go into both).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from factorise._threads import parallel_section
from factorise.datasets.synthetic import synthetic_ratings
from factorise.kernels import bayes as kernel
from factorise.kernels import bayes_reference as reference
from factorise.models._base import TrainData


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--repeats", type=int, default=15, help="timed kernel calls per rank (default 15)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1; got {args.repeats}")
    shape = (60, 80, 1500) if args.quick else (943, 1682, 80_000)
    ranks = (3, 5) if args.quick else (10, 20, 32)
    data = synthetic_ratings(*shape, rank=10, noise=0.9, random_state=0).train.compact()
    values = np.ascontiguousarray(data.values, dtype=np.float32)
    train = TrainData(
        users=np.ascontiguousarray(data.users, dtype=np.int32), items=np.ascontiguousarray(data.items, dtype=np.int32),
        values=values, n_users=data.n_users, n_items=data.n_items, global_mean=float(values.mean()), holders=(data,),
    )  # fmt: skip
    indptr, others, vals = train.by_user()  # the sampler's own grouping
    n = vals.shape[0]
    command = " ".join(["python", "benchmarks/bayes_kernel.py", *(sys.argv[1:] if argv is None else argv)])
    print(f"Command: `{command}`")
    print()
    print(f"{data.n_users} users x {data.n_items} items, {n:,} ratings; one users' half-step, one thread.")
    print()
    print("| rank | kernel ms (median) | ns / rating | reference ms | reference / kernel | max abs difference |")
    print("|---|---|---|---|---|---|")
    none = np.empty(0)
    with threadpool_limits(limits=1), parallel_section(1):
        for k in ranks:
            rng = np.random.default_rng(k)
            d = k + 1
            F, fb = rng.normal(0, 0.3, (data.n_items, k)), rng.normal(0, 0.3, data.n_items)
            A = rng.normal(size=(d, d))
            mean, precision = np.zeros(d), A @ A.T + d * np.eye(d)
            eps = rng.standard_normal((data.n_users, d))
            shift = np.empty((0, d))
            bounds = np.array([0, data.n_users])
            out = {}
            for name, module in (("kernel", kernel), ("reference", reference)):
                P, b, failed = np.zeros((data.n_users, k)), np.zeros(data.n_users), np.zeros(data.n_users, bool)
                call = (indptr, others, vals, float(values.mean()), F, fb, 1.5, none, none, mean, precision, shift, eps,
                        P, b, failed, bounds)  # fmt: skip
                times = []
                for _ in range(1 + (args.repeats if name == "kernel" else 1)):
                    start = time.perf_counter()
                    module.gibbs_half_step(*call)
                    times.append(time.perf_counter() - start)
                out[name] = (statistics.median(times[1:]), np.column_stack([b, P]))
            seconds, draws = out["kernel"]
            ref_seconds, ref_draws = out["reference"]
            diff = float(np.abs(draws - ref_draws).max())
            print(f"| {k} | {seconds * 1e3:.2f} | {seconds / n * 1e9:.0f} | {ref_seconds * 1e3:.1f} | "
                  f"{ref_seconds / seconds:.0f}x | {diff:.1e} |", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
