"""BayesianMF's defaults, chosen on validation splits of MovieLens 100K training files only (never ``u*.test``).

    .venv/bin/python benchmarks/tune_bayes.py [--data ../shared/data/ml-100k] [--folds u1,u2] [--seeds 0,1]
    .venv/bin/python benchmarks/tune_bayes.py --grid "{'rank': [20], 'implicit': [False, True]}"

For each training file ``uN.base`` of ``--folds``, 10% of its ratings (a seeded
random split) are held out; every setting of the grid fits the other 90% once
per chain seed of ``--seeds`` and is scored on them. The table gives the
validation RMSE per fold (the mean over the seeds), the mean over folds and
seeds, the spread of the seeds' means (a chain's own noise: settings closer
than it are a tie), and the median fit seconds (one thread).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

from factorise import BayesianMF
from factorise.data import read_ratings
from factorise.evaluation import train_test_split

GRID = {"rank": [10, 20, 32], "noise": ["shared", "user-item"], "implicit": [False]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/ml-100k")
    parser.add_argument("--folds", default="u1,u2")
    parser.add_argument("--seeds", default="0,1", help="chain seeds, comma-separated (default 0,1)")
    parser.add_argument("--grid", help="a Python dict of lists overriding the grid, e.g. \"{'rank': [10, 16]}\"")
    args = parser.parse_args(argv)
    grid = {**GRID, **(eval(args.grid) if args.grid else {})}  # noqa: S307 - a developer's own command line
    folds = args.folds.split(",")
    seeds = [int(seed) for seed in args.seeds.split(",")]
    splits = {f: train_test_split(read_ratings(args.data / f"{f}.base"), 0.1, random_state=0) for f in folds}
    print(f"Command: `python benchmarks/tune_bayes.py {' '.join(sys.argv[1:] if argv is None else argv)}`".rstrip())
    print()
    print("| " + " | ".join(grid) + " | " + " | ".join(folds) + " | mean | seeds' spread | s/fit |")
    print("|" + "---|" * (len(grid) + len(folds) + 3))
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values, strict=True))
        scores = np.empty((len(seeds), len(folds)))
        seconds = []
        for s, seed in enumerate(seeds):
            for f, fold in enumerate(folds):
                train, valid = splits[fold]
                start = time.perf_counter()
                model = BayesianMF(**params, random_state=seed, n_threads=1).fit(train)
                seconds.append(time.perf_counter() - start)
                error = model.predict(valid.raw_users, valid.raw_items) - valid.values
                scores[s, f] = float(np.sqrt(np.mean(error**2)))
        per_seed = scores.mean(axis=1)
        print("| " + " | ".join(map(str, values)) + " | " + " | ".join(f"{x:.4f}" for x in scores.mean(axis=0))
              + f" | {scores.mean():.4f} | {per_seed.max() - per_seed.min():.4f} | {np.median(seconds):.1f} |",
              flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
