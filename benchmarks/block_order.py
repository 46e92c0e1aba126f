"""Order inside the SGD blocks: today's per-epoch shuffle beside a fixed user order (an experiment).

LibMF's "partial random method" (Zhuang, Chin, Juan and Lin, RecSys 2013) keeps the ratings of
each block in one fixed order -- by user, the users in a random permutation -- and randomises only
the block schedule, so that consecutive updates share the user's row. factorise shuffles every
block every epoch. This script fits ``BiasedMF`` (rank 32, 10 epochs, the defaults otherwise) on
the 10M planted ratings of the scale benchmark both ways, alternating, in one process after a
warm-up, and prints each fit's time and held-out RMSE, the medians and the ratio. The fixed order
is obtained without changing the library: the training ratings are sorted by a random permutation
of the users (``make_grid`` groups them stably, so every block is in that order) and the
per-epoch shuffle is skipped. It is a measurement for the speed work of issue 8, not a feature.

Usage::

    python benchmarks/block_order.py [--ratings 10000000] [--threads 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np

import factorise.models._blocks as blocks
from factorise import BiasedMF
from factorise.datasets.synthetic import synthetic_ratings
from factorise.evaluation import rmse
from factorise.kernels.sgd_blocks import sgd_blocks_epoch


def _unshuffled(users: Any, items: Any, values: Any, index: Any, block_ptr: Any, rounds: Any, seeds: Any, *rest: Any) -> float:
    """The fused shuffle-and-sweep kernel, without the shuffle."""
    return sgd_blocks_epoch(users, items, values, index, block_ptr, rounds, *rest)


def _reordering(kind: str, seed: int) -> Any:
    """The sweep with the blocks' order redrawn on the host each epoch (numpy; accuracy only, slow).

    ``kind`` "runs": the runs of one user's ratings in a block visited in a fresh random order, each
    run in its fixed order; "within": the runs in place, the ratings of each run shuffled.
    """
    rng = np.random.default_rng(seed)

    def sweep(users: Any, items: Any, values: Any, index: Any, block_ptr: Any, rounds: Any, seeds: Any, *rest: Any) -> float:
        n_blocks = block_ptr.shape[0] - 1
        block_of = np.repeat(np.arange(n_blocks), np.diff(block_ptr))
        u = users[block_ptr[block_of] + index.astype(np.int64)]  # index: offsets within each block
        starts = np.ones(index.shape[0], dtype=bool)
        starts[1:] = (u[1:] != u[:-1]) | (block_of[1:] != block_of[:-1])
        run = np.cumsum(starts) - 1
        if kind == "runs":
            order = np.lexsort((np.arange(index.shape[0]), rng.random(run[-1] + 1)[run], block_of))
        else:
            order = np.lexsort((rng.random(index.shape[0]), run))
        index[:] = index[order]
        return sgd_blocks_epoch(users, items, values, index, block_ptr, rounds, *rest)

    return sweep


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratings", type=int, default=10_000_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--accuracy-variants",
        action="store_true",
        help="also fit, once, with the user runs reshuffled each epoch and with the ratings shuffled within "
        "each run (reordered in numpy on the host: their times mean nothing, their RMSE does)",
    )
    args = parser.parse_args(argv)

    data = synthetic_ratings(
        100_000, 10_000, args.ratings, 10, 0.5, random_state=0, test_fraction=0.1
    )  # the data of `factorise synth --users 100000 --items 10000 ... --rank 10 --noise 0.5 --seed 0`
    train, test = data.train, data.test
    permutation = np.random.default_rng(1).permutation(train.n_users)
    by_user = train.subset(np.argsort(permutation[train.users], kind="stable"))
    shuffled_fuse = blocks.shuffle_sgd_blocks_epoch

    def fit(mode: str) -> tuple[float, float]:
        blocks.shuffle_sgd_blocks_epoch = _unshuffled if mode == "fixed user order" else shuffled_fuse
        try:
            model = BiasedMF(rank=32, n_epochs=10, random_state=0, n_threads=args.threads)
            start = time.perf_counter()
            model.fit(by_user if mode == "fixed user order" else train)
            seconds = time.perf_counter() - start
        finally:
            blocks.shuffle_sgd_blocks_epoch = shuffled_fuse
        return seconds, rmse(test.values, model.predict_ratings(test))

    BiasedMF(rank=8, n_epochs=1, n_threads=args.threads).fit(train.subset(np.arange(min(len(train), 300_000))))
    modes = ("shuffled each epoch", "fixed user order")
    results: dict[str, list[tuple[float, float]]] = {m: [] for m in modes}
    for round_ in range(args.rounds):
        for mode in modes:
            seconds, error = fit(mode)
            results[mode].append((seconds, error))
            print(f"round {round_ + 1} {mode:20} fit {seconds:6.2f} s  held-out RMSE {error:.6f}", flush=True)
    if args.accuracy_variants:
        for kind, label in (("runs", "user runs reshuffled each epoch"), ("within", "ratings shuffled within user runs")):
            blocks.shuffle_sgd_blocks_epoch = _reordering(kind, seed=5)
            try:
                model = BiasedMF(rank=32, n_epochs=10, random_state=0, n_threads=args.threads).fit(by_user)
            finally:
                blocks.shuffle_sgd_blocks_epoch = shuffled_fuse
            print(f"accuracy only: {label}: held-out RMSE {rmse(test.values, model.predict_ratings(test)):.4f}")
    base = statistics.median(s for s, _ in results[modes[0]])
    for mode in modes:
        median = statistics.median(s for s, _ in results[mode])
        print(f"{mode:20} median {median:6.2f} s ({median / base:.2f}x), RMSE {results[mode][0][1]:.6f}, "
              f"{len(train):,} ratings, rank 32, 10 epochs, {args.threads} thread(s)")


if __name__ == "__main__":
    main()
