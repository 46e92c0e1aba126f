"""Memory estimates beside measured peaks: is ``--max-memory`` an upper bound?

For every model (``--algo sgd, als, softimpute, baseline``) on three sizes of
planted ratings (``factorise synth``; 100k, 1M and 3M ratings by default),
runs ``factorise fit FILE --algo A`` in a fresh child process and measures
its peak resident set (the child's own ``VmHWM`` from ``/proc/self/status``,
read as it exits: it covers memory allocated by pyarrow, numba and NumPy
alike; unlike ``ru_maxrss`` it does not count the parent's pages the child
held between fork and exec). Beside it, the
two estimates the command line checks against ``--max-memory``:

* **read est**: :func:`factorise.data._estimate.estimate_read_memory` of the
  file's rating count (:func:`~factorise.data.estimate_n_ratings`), checked
  before reading;
* **fit est**: the model's
  :meth:`~factorise.models.RatingModel.estimate_fit_memory` for the file's
  real counts of ratings, users and items, checked after reading and before
  fitting.

**fit/peak** is the fit estimate alone over the peak. The process's peak is bounded by the
larger of the two estimates (a command accepted under ``--max-memory`` passed both); **ratio** is
``max(read est, fit est) / peak`` and must be >= 1 everywhere: the script
exits with status 1 if not. The models run with their default parameters
(the command line's), for ``--epochs`` epochs (peak memory is reached in the
first; default 2).

Usage::

    python benchmarks/memory.py                       # 100k, 1M, 3M ratings; a few minutes
    python benchmarks/memory.py --sizes 100000 --algos sgd,als
    python benchmarks/memory.py --sizes 1000000 --format csv --threads 2
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from factorise.cli import build_parser
from factorise.cli._ratings import ALGORITHMS, build_model
from factorise.data import estimate_n_ratings, read_ratings
from factorise.data._estimate import estimate_read_memory

#: Users and items of each size: about the shapes of MovieLens 100K, 1M and a larger service.
SHAPES = {100_000: (2_000, 1_500), 1_000_000: (10_000, 4_000), 3_000_000: (30_000, 10_000)}
_MIB = 1 << 20


#: ``python -m factorise ARGS`` that writes its peak resident set to the file named by
#: ``FACTORISE_PEAK_FILE`` as it exits.
MEASURED = r"""
import atexit, os, runpy, sys

def report():
    with open("/proc/self/status") as status:
        peak = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
    with open(os.environ["FACTORISE_PEAK_FILE"], "w") as out:
        out.write(str(peak))

atexit.register(report)
sys.argv = ["factorise", *sys.argv[1:]]
runpy.run_module("factorise", run_name="__main__", alter_sys=True)
"""


def factorise_command() -> list[str]:
    """The command line that runs ``factorise`` with this interpreter."""
    return [sys.executable, "-m", "factorise"]


def shape(n_ratings: int) -> tuple[int, int]:
    """Users and items for ``n_ratings`` (the table above, else a MovieLens-like density)."""
    if n_ratings in SHAPES:
        return SHAPES[n_ratings]
    users = max(50, int(math.sqrt(n_ratings) * 17))
    return users, max(50, int(users * 0.4))


def make_data(directory: Path, n_ratings: int, file_format: str) -> Path:
    """Planted ratings of ``n_ratings`` (training part), written by ``factorise synth``."""
    users, items = shape(n_ratings)
    path = directory / f"r{n_ratings}.{file_format}"
    total = int(n_ratings / 0.9) + 1  # synth holds 10% out
    subprocess.run(
        [*factorise_command(), "synth", "--users", str(users), "--items", str(items), "--ratings", str(total),
         "--rank", "10", "--noise", "0.5", "--seed", "0", "--out", str(path)],
        check=True, stdout=subprocess.DEVNULL,
    )
    return path


def peak_rss(arguments: list[str], directory: Path) -> tuple[int, float, int, str]:
    """Run ``factorise ARGUMENTS``; its peak resident set in bytes, wall seconds, exit status, stderr's tail."""
    peak_file = directory / "peak"
    peak_file.unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", MEASURED, *arguments],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False,
        env={**os.environ, "FACTORISE_PEAK_FILE": str(peak_file)},
    )
    seconds = time.perf_counter() - start
    peak = int(peak_file.read_text()) if peak_file.is_file() else 0
    return peak, seconds, done.returncode, done.stderr[-500:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000,3000000", help="training ratings per data set")
    parser.add_argument("--algos", default=",".join(ALGORITHMS), help="algorithms (default: all)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs or iterations per fit (default: 2)")
    parser.add_argument("--threads", type=int, help="--threads for each fit (default: all cores)")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="file format")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    algos = args.algos.split(",")

    directory = Path(tempfile.mkdtemp(prefix="factorise-memory-"))
    failures = 0
    try:
        print(f"{'ratings':>9} {'users':>7} {'items':>7} {'algo':>10} {'read est':>9} {'fit est':>9} "
              f"{'peak':>9} {'fit/peak':>8} {'ratio':>6} {'seconds':>7}   (MiB)")
        for n in sizes:
            path = make_data(directory, n, args.format)
            n_estimated, _ = estimate_n_ratings(path)
            read_estimate = estimate_read_memory(n_estimated)
            ratings = read_ratings(path)
            counts = (len(ratings), ratings.n_users, ratings.n_items)
            del ratings
            for algo in algos:
                command = ["fit", str(path), "--algo", algo, "--epochs", str(args.epochs), "--seed", "0", "--quiet"]
                if args.threads is not None:
                    command += ["--threads", str(args.threads)]
                # the model exactly as the command builds it (its parameters, block_copy="in-place" for sgd)
                model = build_model(build_parser().parse_args(command))
                fit_estimate = model.estimate_fit_memory(*counts)
                peak, seconds, status, tail = peak_rss(command, directory)
                if status != 0:
                    print(f"{counts[0]:>9} {algo:>10}: factorise fit failed ({status}): {tail}")
                    failures += 1
                    continue
                ratio = max(read_estimate, fit_estimate) / peak
                failures += ratio < 1
                print(f"{counts[0]:>9} {counts[1]:>7} {counts[2]:>7} {algo:>10} {read_estimate / _MIB:>9.0f} "
                      f"{fit_estimate / _MIB:>9.0f} {peak / _MIB:>9.0f} {fit_estimate / peak:>8.2f} {ratio:>6.2f} "
                      f"{seconds:>7.1f}"
                      + ("   ESTIMATE BELOW PEAK" if ratio < 1 else ""), flush=True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    if failures:
        print(f"{failures} run(s) failed or peaked above the estimate", file=sys.stderr)
        return 1
    print("every estimate >= the measured peak")
    return 0


if __name__ == "__main__":
    sys.exit(main())
