"""The Spark engines beside MLlib's ALS and the local BiasedMF, side by side on the 10M planted ratings.

    .venv/bin/python benchmarks/spark.py                  # 10M ratings, local[2], rank 32, 10 epochs
    .venv/bin/python benchmarks/spark.py --ratings 1000000 --rounds 1   # a quicker look

Data: :func:`factorise.datasets.synthetic.synthetic_ratings` with the 10M
part of ``benchmarks/scale.py`` (100,000 users x 10,000 items, planted rank
10, noise 0.5, seed 0; 10% held out), written once as Parquet into
``--data-dir``. Each method runs in a fresh process (its own JVM), the
methods alternate over ``--rounds`` rounds, and the table gives medians:

* ``SparkBiasedMF(rank=32, n_epochs=10)``: DSGD, n_blocks = the parallelism;
* ``SparkALS(rank=32, n_epochs=10)``: MLlib's solver with biases;
* plain MLlib ``ALS(rank=32, maxIter=10, regParam=0.1)``, checkpointing on
  (every 10 iterations, MLlib's default), ``coldStartStrategy="drop"``: its
  RMSE is over the held-out rows it scores (the rows it drops are counted);
  MLlib's BLAS is netlib's Java fallback here (no system BLAS is installed);
* the local ``BiasedMF(rank=32, n_epochs=10, n_threads=2)``.

Fit seconds are the ``fit`` call (reading the Parquet file included, the
session's start not); peak memory is the largest sum of the resident sets
of the method's process tree (driver, JVM, Python workers), sampled every
0.1 s. The Spark runs also report the shuffle bytes Spark's own metrics
counted during the fit (``docs/scaling.md`` compares them with its model).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

METHODS = ("SparkBiasedMF", "SparkALS", "MLlib ALS", "BiasedMF (local)")
MASTER = "local[2]"


# ------------------------------------------------------------------ child side
def _session(events: Path) -> Any:
    from factorise.spark import spark_session

    return spark_session(
        MASTER,
        {
            "spark.driver.memory": "6g",
            "spark.sql.shuffle.partitions": "8",
            "spark.eventLog.enabled": "true",
            "spark.eventLog.dir": str(events),
            "spark.eventLog.compress": "false",
            "spark.eventLog.rolling.enabled": "false",
        },
    )


def _shuffle_bytes(events: Path) -> dict[str, int]:
    """Shuffle bytes written and read, summed over the stages of the event log."""
    written = read = 0
    for log in events.iterdir():
        for line in log.open():
            event = json.loads(line)
            if event.get("Event") != "SparkListenerTaskEnd":
                continue
            metrics = event.get("Task Metrics") or {}
            written += (metrics.get("Shuffle Write Metrics") or {}).get("Shuffle Bytes Written", 0)
            reads = metrics.get("Shuffle Read Metrics") or {}
            read += reads.get("Remote Bytes Read", 0) + reads.get("Local Bytes Read", 0)
    return {"shuffle_written": written, "shuffle_read": read}


def run_child(method: str, train: str, test: str, rank: int, epochs: int) -> dict[str, Any]:
    """Fit one method; return its fit seconds, held-out RMSE and what it scored."""
    if method == "BiasedMF (local)":
        import numpy as np

        from factorise.data import read_ratings
        from factorise.models import BiasedMF

        train_r, test_r = read_ratings(train), read_ratings(test)
        start = time.perf_counter()
        model = BiasedMF(rank=rank, n_epochs=epochs, n_threads=2, random_state=0).fit(train_r)
        seconds = time.perf_counter() - start
        error = model.predict_ratings(test_r) - test_r.values
        return {"fit_seconds": seconds, "rmse": float(np.sqrt(np.mean(error**2))), "scored": len(test_r), "dropped": 0}
    events = Path(tempfile.mkdtemp(prefix="spark-bench-events-"))
    spark = _session(events)
    test_frame = spark.read.parquet(test)
    n_test = test_frame.count()
    if method == "MLlib ALS":
        from pyspark.ml.recommendation import ALS
        from pyspark.sql import functions as F

        from factorise.spark._dsgd import ensure_checkpoint_dir

        ensure_checkpoint_dir(spark.sparkContext, None)
        start = time.perf_counter()
        frame = spark.read.parquet(train)
        model = ALS(rank=rank, maxIter=epochs, regParam=0.1, seed=0, userCol="user", itemCol="item",
                    ratingCol="rating", coldStartStrategy="drop").fit(frame)  # fmt: skip
        seconds = time.perf_counter() - start
        scored = model.transform(test_frame)
        row = scored.agg(F.sqrt(F.avg((F.col("prediction") - F.col("rating")) ** 2)).alias("rmse"), F.count("*").alias("n")).collect()[0]
        result = {"fit_seconds": seconds, "rmse": float(row["rmse"]), "scored": int(row["n"]), "dropped": n_test - int(row["n"])}
    else:
        from factorise.spark import SparkALS, SparkBiasedMF

        cls = SparkBiasedMF if method == "SparkBiasedMF" else SparkALS
        start = time.perf_counter()
        model = cls(rank=rank, n_epochs=epochs, random_state=0).fit(train, spark=spark)
        seconds = time.perf_counter() - start
        scores = model.evaluate(test_frame)
        result = {"fit_seconds": seconds, "rmse": scores["rmse"], "scored": scores["n"], "dropped": n_test - scores["n"]}
    spark.stop()
    result.update(_shuffle_bytes(events))
    return result


# ----------------------------------------------------------------- parent side
def _tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry))
    total, stack = 0, [pid]
    while stack:
        current = stack.pop()
        stack.extend(children.get(current, []))
        try:
            with open(f"/proc/{current}/statm") as handle:
                total += int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
        except OSError:
            pass
    return total


def measure(method: str, args: argparse.Namespace, train: Path, test: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", method, "--train", str(train), "--test", str(test),
               "--rank", str(args.rank), "--epochs", str(args.epochs)]  # fmt: skip
    with tempfile.TemporaryFile("w+") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.DEVNULL)
        peak = 0
        while process.poll() is None:
            peak = max(peak, _tree_rss(process.pid))
            time.sleep(0.1)
        out.seek(0)
        text = out.read()
    if process.returncode != 0:
        raise RuntimeError(f"{method} failed (exit {process.returncode}): {text[-2000:]}")
    result = json.loads(text.strip().splitlines()[-1])
    result["peak_rss"] = peak
    return result


def write_data(directory: Path, n_ratings: int) -> tuple[Path, Path]:
    """The planted ratings of scale.py's 10M part (scaled to ``n_ratings``) as Parquet, written once."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from factorise.datasets.synthetic import synthetic_ratings

    train, test = directory / f"planted-{n_ratings}.train.parquet", directory / f"planted-{n_ratings}.test.parquet"
    if train.exists() and test.exists():
        return train, test
    directory.mkdir(parents=True, exist_ok=True)
    data = synthetic_ratings(100_000, 10_000, n_ratings, 10, 0.5, random_state=0, test_fraction=0.1)
    for part, path in ((data.train, train), (data.test, test)):
        table = pa.table({"user": part.raw_users.astype("int32"), "item": part.raw_items.astype("int32"),
                          "rating": part.values.astype("float32")})  # fmt: skip
        pq.write_table(table, f"{path}.tmp")
        os.replace(f"{path}.tmp", path)
    return train, test


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ratings", type=int, default=10_000_000)
    parser.add_argument("--rank", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of the methods")
    parser.add_argument("--data-dir", type=Path, default=Path(tempfile.gettempdir()) / "factorise-spark-bench")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--train", help=argparse.SUPPRESS)
    parser.add_argument("--test", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args.child, args.train, args.test, args.rank, args.epochs)), flush=True)
        return 0
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        parser.error(f"--methods: unknown {unknown}; choose from {', '.join(METHODS)}")
    train, test = write_data(args.data_dir, args.ratings)
    runs: dict[str, list[dict[str, Any]]] = {m: [] for m in methods}
    for round_ in range(args.rounds):
        for method in methods:
            result = measure(method, args, train, test)
            runs[method].append(result)
            print(f"round {round_ + 1} {method:18} fit {result['fit_seconds']:7.2f} s  RMSE {result['rmse']:.4f}  "
                  f"peak {result['peak_rss'] / 2**30:.2f} GiB", flush=True)  # fmt: skip
    med = {m: {k: statistics.median(r[k] for r in rs) for k in ("fit_seconds", "rmse", "peak_rss")} for m, rs in runs.items()}
    ref = med.get("MLlib ALS", {}).get("fit_seconds")
    print()
    print(f"{args.ratings:,} planted ratings (90% train), {MASTER}, rank {args.rank}, {args.epochs} epochs/iterations, "
          f"medians of {args.rounds} round(s)")  # fmt: skip
    print("| method | fit | / MLlib ALS | held-out RMSE | rows scored | peak RSS | shuffle written |")
    print("|---|---|---|---|---|---|---|")
    for method, m in med.items():
        last = runs[method][-1]
        ratio = f"{m['fit_seconds'] / ref:.2f}x" if ref else "-"
        shuffle = f"{last.get('shuffle_written', 0) / 2**20:.0f} MiB" if "shuffle_written" in last else "-"
        print(f"| {method} | {m['fit_seconds']:.1f} s | {ratio} | {m['rmse']:.4f} | "
              f"{last['scored']:,} of {last['scored'] + last['dropped']:,} | {m['peak_rss'] / 2**30:.2f} GiB | {shuffle} |")  # fmt: skip
    if "SparkBiasedMF" in med and "BiasedMF (local)" in med:
        overhead = med["SparkBiasedMF"]["fit_seconds"] / med["BiasedMF (local)"]["fit_seconds"]
        print(f"\nSparkBiasedMF / local BiasedMF (2 threads, same data): {overhead:.1f}x")
    if "SparkBiasedMF" in med and ref:
        ok = med["SparkBiasedMF"]["fit_seconds"] <= 0.25 * ref and med["SparkBiasedMF"]["rmse"] < med["MLlib ALS"]["rmse"]
        print(f"target SparkBiasedMF <= 0.25x MLlib ALS at better RMSE: {'met' if ok else 'not met'}")
    if "SparkALS" in med and "MLlib ALS" in med:
        print(f"target SparkALS RMSE < MLlib ALS RMSE: {'met' if med['SparkALS']['rmse'] < med['MLlib ALS']['rmse'] else 'not met'}")
    return 0 if all(math.isfinite(m["rmse"]) for m in med.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
