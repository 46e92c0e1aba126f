"""Choose Baseline's regularization on validation splits of training data only.

Run from the repository root::

    .venv/bin/python benchmarks/tune_baseline.py [--data ../shared/data/ml-100k]

Holds out 20% of MovieLens 100K's u1.base and u2.base (never the u*.test files) and prints the
validation RMSE of Baseline at each regularization.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from factorise.data import read_ratings
from factorise.evaluation import rmse, train_test_split
from factorise.models import Baseline

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
GRID = (0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 25.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = parser.parse_args()
    print("| split | " + " | ".join(f"reg {g:g}" for g in GRID) + " |")
    print("|---" * (len(GRID) + 1) + "|")
    for name in ("u1.base", "u2.base"):
        train, valid = train_test_split(read_ratings(args.data / name), 0.2, random_state=0)
        scores = [
            rmse(valid.values, Baseline(regularization=g, n_epochs=30).fit(train).predict_ratings(valid))
            for g in GRID
        ]
        print(f"| {name} | " + " | ".join(f"{x:.4f}" for x in scores) + " |")


if __name__ == "__main__":
    main()
