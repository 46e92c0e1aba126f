"""The ratings reader of this checkout beside the one of an earlier commit, on the same files.

Writes the files of ``read_memory.py`` once (10M ratings, Netflix's users and items, CSV and
Parquet), checks the earlier commit out into a temporary git worktree, and reads each file in a
fresh interpreter with either tree first on ``PYTHONPATH``, alternating the two, after one untimed
read each (numba's compile cache). Prints each read and the medians, the ratio new/old and the
peak memory of both: a change to the reader that costs speed or memory shows here.

Usage::

    python benchmarks/reader_vs_commit.py --base 6fb6b75 [--rows 10000000] [--rounds 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import read_memory  # noqa: E402 - the files and the measuring child of the memory benchmark

ROOT = Path(__file__).resolve().parents[1]
#: Bytes of text per block, the same for both trees (the reader's default).
CHUNK_SIZE = 1 << 22


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the earlier commit (any git revision)")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--rounds", type=int, default=4, help="timed reads per tree and format (default 4)")
    args = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="factorise-reader-ab-"))
    old = scratch / "base"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old), args.base], check=True)
    try:
        paths = read_memory.write_files(scratch, args.rows, 480_189, 17_770, False, 0)
        trees = {"old": old / "src", "new": ROOT / "src"}
        results: dict[tuple[str, str], list[dict[str, object]]] = {}
        for round_ in range(args.rounds + 1):  # round 0 fills each tree's compile cache, untimed
            for name, src in trees.items():
                os.environ["PYTHONPATH"] = str(src)
                for fmt, path in paths.items():
                    m = read_memory.measure(path, CHUNK_SIZE)
                    if round_ == 0:
                        continue
                    results.setdefault((name, fmt), []).append(m)
                    print(f"round {round_} {name} {fmt}: {m['seconds']:.2f} s, peak {m['peak_mb']:.0f} MB, "
                          f"{m['ratings']:,} ratings", flush=True)
        print(f"\nbase {args.base} (old) against this checkout (new); medians of {args.rounds} alternated reads")
        for fmt in paths:
            t_old = statistics.median(float(m["seconds"]) for m in results[("old", fmt)])
            t_new = statistics.median(float(m["seconds"]) for m in results[("new", fmt)])
            p_old = max(float(m["peak_mb"]) for m in results[("old", fmt)])
            p_new = max(float(m["peak_mb"]) for m in results[("new", fmt)])
            print(f"{fmt:8} old {t_old:.2f} s, new {t_new:.2f} s, new/old {t_new / t_old:.2f}x; "
                  f"peak old {p_old:.0f} MB, new {p_new:.0f} MB")
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False)
        subprocess.run(["rm", "-rf", str(scratch)], check=False)


if __name__ == "__main__":
    main()
