"""Peak memory and time of ``factorise.read_ratings`` on a large synthetic file.

Writes ``N`` ratings (Netflix shape by default: 480,189 users with raw ids
scattered over 1..2,649,429, 17,770 items, integer ratings 1..5, item
popularity skewed) as CSV and as Parquet into a temporary directory, a block
at a time, then reads each file in a fresh child process and reports:

* **seconds**: wall clock of ``read_ratings`` alone;
* **base MB**: the child's resident set after ``import factorise`` (before
  reading);
* **peak MB**: the child's resident-set high-water mark (``VmHWM``) after
  reading; it covers memory allocated by pyarrow, numba and NumPy, which
  ``tracemalloc`` does not see;
* **result MB**: the arrays of the returned ``Ratings`` (12 bytes per rating,
  20 with timestamps);
* **overhead MB**: peak - base - result, what reading needs beyond its result;
* whether ``Ratings.compact()`` returned the ratings themselves (no copy).

The first read of a session compiles the duplicate-finding kernel; a small
warm-up read in this process fills numba's cache first, so the children load
it as a training run would.

Usage::

    python benchmarks/read_memory.py                  # 10M ratings
    python benchmarks/read_memory.py --rows 100000000 # Netflix size (about 2 GB of CSV)
    python benchmarks/read_memory.py --rows 10000000 --users 100000 --items 10000 --timestamps
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

#: Rows generated and written at a time.
BLOCK = 1 << 20

CHILD = r"""
import json, sys, time

def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")

import warnings
import factorise

base = status("VmRSS")
path, chunk_size = sys.argv[1], int(sys.argv[2])
start = time.perf_counter()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    ratings = factorise.read_ratings(path, chunk_size=chunk_size)
seconds = time.perf_counter() - start
peak = status("VmHWM")
result = sum(a.nbytes for a in (ratings.users, ratings.items, ratings.values))
if ratings.timestamps is not None:
    result += ratings.timestamps.nbytes
print(json.dumps({
    "seconds": seconds,
    "base_mb": base,
    "peak_mb": peak,
    "result_mb": result / 2**20,
    "ratings": len(ratings),
    "users": ratings.n_users,
    "items": ratings.n_items,
    "warnings": [str(w.message) for w in caught],
    "compact_is_self": ratings.compact() is ratings,
    "after_compact_mb": status("VmRSS"),
}))
"""


def write_files(
    directory: Path, n_rows: int, n_users: int, n_items: int, timestamps: bool, seed: int
) -> dict[str, Path]:
    """Write the synthetic ratings as ``ratings.csv`` and ``ratings.parquet``; return their paths."""
    rng = np.random.default_rng(seed)
    raw_users = np.sort(rng.choice(max(n_users, 2_649_429), size=n_users, replace=False)) + 1
    names = ["user", "item", "rating"] + (["timestamp"] if timestamps else [])
    paths = {"csv": directory / "ratings.csv", "parquet": directory / "ratings.parquet"}
    schema = pa.schema(
        [("user", pa.int64()), ("item", pa.int64()), ("rating", pa.float32())]
        + ([("timestamp", pa.int64())] if timestamps else [])
    )
    with (
        pa_csv.CSVWriter(str(paths["csv"]), schema, write_options=pa_csv.WriteOptions(quoting_style="none")) as csv,
        pq.ParquetWriter(str(paths["parquet"]), schema) as parquet,
    ):
        for start in range(0, n_rows, BLOCK):
            k = min(BLOCK, n_rows - start)
            users = raw_users[rng.integers(0, n_users, size=k)]
            items = (n_items * rng.random(k) ** 2).astype(np.int64) + 1  # popular items first
            values = rng.integers(1, 6, size=k).astype(np.float32)
            columns = [pa.array(users), pa.array(items), pa.array(values)]
            if timestamps:
                columns.append(pa.array(1_000_000_000 + rng.integers(0, 10**8, size=k)))
            batch = pa.record_batch(columns, names=names)
            csv.write_batch(batch)
            parquet.write_batch(batch, row_group_size=BLOCK)
    return paths


def measure(path: Path, chunk_size: int) -> dict[str, object]:
    """Read ``path`` in a fresh interpreter; its measurements."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(path), str(chunk_size)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"reading {path} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def warm_up(directory: Path) -> None:
    """Compile (or load) the reader's numba kernels once, so the children find them cached."""
    import factorise

    small = directory / "warm.csv"
    small.write_text("user,item,rating\n1,1,1\n1,1,2\n2,1,3\n")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        factorise.read_ratings(small)
    small.unlink()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000, help="ratings to write (default 10M)")
    parser.add_argument("--users", type=int, default=480_189, help="distinct users (default: Netflix's)")
    parser.add_argument("--items", type=int, default=17_770, help="distinct items (default: Netflix's)")
    parser.add_argument("--timestamps", action="store_true", help="add a timestamp column")
    parser.add_argument("--formats", default="csv,parquet", help="comma-separated: csv, parquet")
    parser.add_argument("--chunk-size", type=int, default=None, help="read_ratings chunk_size (default: its own)")
    parser.add_argument("--dir", type=Path, default=None, help="write the files here and keep them")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    from factorise.data._reader import DEFAULT_CHUNK_SIZE

    chunk_size = args.chunk_size or DEFAULT_CHUNK_SIZE
    directory = args.dir or Path(tempfile.mkdtemp(prefix="factorise-read-memory-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        start = time.perf_counter()
        paths = write_files(directory, args.rows, args.users, args.items, args.timestamps, args.seed)
        print(
            f"wrote {args.rows:,} ratings ({args.users:,} users x {args.items:,} items"
            f"{', timestamps' if args.timestamps else ''}) in {time.perf_counter() - start:.1f} s: "
            + ", ".join(f"{p.name} {p.stat().st_size / 2**20:,.0f} MB" for p in paths.values())
        )
        warm_up(directory)
        header = (
            f"{'format':8} {'seconds':>8} {'base MB':>8} {'peak MB':>8} {'result MB':>10} {'overhead MB':>12} "
            f"{'ratings':>12}  compact() is self"
        )
        print(header)
        for fmt in args.formats.split(","):
            m = measure(paths[fmt.strip()], chunk_size)
            overhead = float(m["peak_mb"]) - float(m["base_mb"]) - float(m["result_mb"])
            print(
                f"{fmt:8} {m['seconds']:8.2f} {m['base_mb']:8.0f} {m['peak_mb']:8.0f} {m['result_mb']:10.0f} "
                f"{overhead:12.0f} {m['ratings']:12,}  {m['compact_is_self']}"
            )
            for message in m["warnings"]:  # type: ignore[union-attr]
                print(f"         warning: {message}")
    finally:
        if args.dir is None:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
