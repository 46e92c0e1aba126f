"""``factorise synth``: write planted low-rank rating data with a Netflix-like shape."""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from factorise.cli._common import check_paths

__all__ = ["add_command", "synth"]


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _test_fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1); got {text!r}") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in [0, 1); got {text!r}")
    return value


def _one_or_two(text: str) -> float | tuple[float, float]:
    """``A`` (users and items) or ``A,B`` (users, items): finite numbers >= 0."""
    parts = text.split(",")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        numbers = []
    if len(parts) not in (1, 2) or len(numbers) != len(parts) or not all(math.isfinite(x) and x >= 0 for x in numbers):
        raise argparse.ArgumentTypeError(
            f"must be a number >= 0, or two separated by a comma (users,items); got {text!r}"
        )
    return numbers[0] if len(numbers) == 1 else (numbers[0], numbers[1])


def synth(args: argparse.Namespace) -> None:
    """Generate the data, write the training and held-out files, print a summary."""
    from factorise.datasets.synthetic import (
        _file_format,
        held_out_path,
        synthetic_ratings,
        write_ratings,
    )

    out = Path(args.out)
    test_path = held_out_path(out) if args.test_fraction > 0 else None
    check_paths([("--out", out), ("--out (held-out file)", test_path)], [])
    _file_format(out, args.format)  # a clash of --format and the suffix fails before the work
    if args.ratings > args.users * args.items:
        raise ValueError(
            f"--ratings must be <= --users * --items = {args.users * args.items:,} (each (user, item) pair is rated "
            f"at most once); got {args.ratings:,}"
        )
    options = {
        name: getattr(args, name)
        for name in ("popularity_exponent", "popularity_offset", "mean")
        if getattr(args, name) is not None
    }
    started = time.perf_counter()
    data = synthetic_ratings(
        args.users,
        args.items,
        args.ratings,
        args.rank,
        args.noise,
        random_state=args.seed,
        test_fraction=args.test_fraction,
        **options,
    )
    generated = time.perf_counter() - started
    write_ratings(data.train, out, format=args.format)
    if data.test is not None and test_path is not None:
        write_ratings(data.test, test_path, format=args.format)
    written = time.perf_counter() - started - generated
    summary: dict[str, Any] = data.summary()
    summary.update(
        train_path=str(out),
        test_path=None if test_path is None else str(test_path),
        seed=args.seed,
        generate_seconds=generated,
        write_seconds=written,
    )
    if args.json:
        _out(json.dumps(summary, indent=2))
        return
    held = (
        f" and {summary['n_test']:,} held-out ratings to {test_path}"
        if test_path is not None
        else " (no held-out ratings: --test-fraction 0)"
    )
    floor = (
        f"; the true matrix scores RMSE {summary['test_truth_rmse']:.4f} on the held-out ratings (a sample "
        "estimate of that floor)"
        if summary["test_truth_rmse"] is not None
        else ""
    )
    _out(
        f"Wrote {summary['n_train']:,} training ratings to {out}{held}: planted rank-{args.rank} ratings "
        f"(mean {data.mean:g} + user and item biases + factors + Gaussian noise of std {args.noise:g}; continuous, "
        f"not rounded or clipped) for {args.users:,} users x {args.items:,} items, seed {args.seed}. "
        f"{summary['users_with_ratings']:,} users and {summary['items_with_ratings']:,} items have at least one "
        f"rating; the heaviest user has {summary['max_user_ratings']:,} ratings and the heaviest item "
        f"{summary['max_item_ratings']:,}. The best achievable RMSE (the noise level): {args.noise:g}{floor}. "
        f"Generated in {generated:.1f} s, written in {written:.1f} s."
    )
    _out(f"train: {out}")
    if test_path is not None:
        _out(f"test:  {test_path}")


def add_command(sub: Any, types: dict[str, Any]) -> None:
    """Register ``synth`` on the sub-parser collection ``sub``."""
    p = sub.add_parser(
        "synth",
        help="write planted low-rank ratings with a Netflix-like shape (known best RMSE)",
        description="Write synthetic ratings mean + biases + rank-K factors + N(0, S^2) noise on distinct "
        "(user, item) pairs drawn with power-law popularity (a few heavy users and blockbuster items, a long "
        "tail). The best achievable RMSE on held-out ratings is the noise level S. The training ratings go to "
        "FILE and the held-out ones to FILE with '.test' before its suffix (ratings.parquet -> "
        "ratings.test.parquet); columns user,item,rating, readable by every rating command.",
    )
    p.add_argument(
        "--users",
        type=types["int1"],
        required=True,
        metavar="N",
        help="number of users",
    )
    p.add_argument(
        "--items",
        type=types["int1"],
        required=True,
        metavar="M",
        help="number of items",
    )
    p.add_argument(
        "--ratings",
        type=types["int1"],
        required=True,
        metavar="R",
        help="number of distinct ratings (train + test)",
    )
    p.add_argument(
        "--rank",
        "-k",
        type=types["int1"],
        required=True,
        metavar="K",
        help="rank of the planted factors",
    )
    p.add_argument(
        "--noise",
        type=types["nonneg"],
        required=True,
        metavar="S",
        help="noise std: the best achievable RMSE",
    )
    p.add_argument("--seed", type=types["int0"], default=0, help="random seed (default: 0)")
    p.add_argument(
        "--out",
        required=True,
        metavar="FILE",
        help="training ratings file (.parquet or .csv)",
    )
    p.add_argument(
        "--test-fraction",
        type=_test_fraction,
        default=0.1,
        metavar="F",
        help="fraction of the ratings held out (default: 0.1; 0 for none)",
    )
    p.add_argument(
        "--format",
        choices=["parquet", "csv"],
        help="file format (default: from the suffix of FILE; Parquet unless it is .csv or .txt)",
    )
    p.add_argument(
        "--popularity-exponent",
        type=_one_or_two,
        metavar="A[,B]",
        help="power-law exponent of user (A) and item (B) popularity; one value for both (default: 0.7,1.5)",
    )
    p.add_argument(
        "--popularity-offset",
        type=_one_or_two,
        metavar="C[,D]",
        help="flattens the head of the power law over the first C*n ranks; one value for both (default: 0,0.006)",
    )
    p.add_argument("--mean", type=float, help="global mean rating (default: 3.5)")
    p.set_defaults(run=synth)
