"""Run on a standalone cluster (tests/test_spark_cluster.py): DSGD against the local sweep, and a retried task.

``python spark_cluster_job.py MASTER_URL WORKDIR`` prints one JSON line with
the largest differences between SparkBiasedMF's factors (a clean fit, and a
fit whose first attempt of one task fails) and BiasedMF's, and the executors
the session had. ``python spark_cluster_job.py MASTER_URL WORKDIR memory``
fits, with a driver of 1 GiB that may not receive more than 64 MiB of results,
ratings whose Spark rows take more than 1 GiB (each carries a 400-byte
comment the model does not read), written by the executors.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from factorise.data import Ratings
from factorise.models import BiasedMF
from factorise.spark import SparkBiasedMF, spark_session


ROWS = 3_000_000
COMMENT = 400


def memory(master: str, work: Path) -> None:
    spark = spark_session(
        master,
        {
            "spark.driver.memory": "1g",
            "spark.driver.maxResultSize": "64m",
            "spark.executor.memory": "900m",
            "spark.executor.cores": "1",
            "spark.sql.shuffle.partitions": "4",
            "spark.default.parallelism": "2",
        },
    )
    path = str(work / "wide.parquet")
    spark.range(0, ROWS, numPartitions=4).selectExpr(
        "cast(id % 50000 as bigint) as user",  # distinct (user, item) pairs: 50,000 users x 60 items
        "cast(id div 50000 as bigint) as item",
        "cast(1 + (id * 31) % 5 as double) as rating",
        f"concat(cast(id as string), repeat('x', {COMMENT})) as comment",
    ).write.parquet(path)
    frame = spark.read.parquet(path)
    model = SparkBiasedMF(rank=2, n_epochs=1, random_state=0, checkpoint_dir=str(work / "checkpoints"))
    model.fit(frame, spark=spark)
    print(json.dumps({
        "n_ratings": model.n_ratings_,
        "row_bytes": model.n_ratings_ * (3 * 8 + COMMENT),
        "driver_memory": spark.sparkContext.getConf().get("spark.driver.memory"),
        "train_rmse": model.history_[-1]["train_rmse"],
    }))  # fmt: skip
    spark.stop()


def _executors(sc: object) -> int:
    return sc._jsc.sc().getExecutorMemoryStatus().size() - 1  # type: ignore[attr-defined]  # less the driver's entry


def main() -> None:
    master, work = sys.argv[1], Path(sys.argv[2])
    if len(sys.argv) > 3 and sys.argv[3] == "memory":
        memory(master, work)
        return
    spark = spark_session(
        master,
        {
            "spark.executor.memory": "512m",
            "spark.executor.cores": "1",
            "spark.task.maxFailures": "3",
            "spark.sql.shuffle.partitions": "4",
            "spark.default.parallelism": "2",
        },
    )
    sc = spark.sparkContext
    rng = np.random.default_rng(7)
    key = rng.choice(220 * 170, 9000, replace=False)
    u, i = key // 170, key % 170
    r = np.clip(np.round(3.4 + rng.normal(0, 1, u.shape[0])), 1, 5).astype(np.float32)
    rows = list(zip((u + 1).tolist(), (i + 1).tolist(), r.astype(float).tolist(), strict=True))
    frame = spark.createDataFrame(sc.parallelize(rows, 3), "user long, item long, rating double")
    params = {"rank": 5, "n_epochs": 3, "random_state": 5, "n_blocks": 2}
    local = BiasedMF(**params, n_threads=1).fit(Ratings.from_raw(u + 1, i + 1, r))
    deadline = time.monotonic() + 120
    while _executors(sc) < 2 and time.monotonic() < deadline:  # both workers' executors, before the fits
        time.sleep(0.5)
    # the clean fit a stage a round (blocks moved by shuffles), the faulty one as barrier stages
    clean = SparkBiasedMF(**params, barrier=False, checkpoint_dir=str(work / "checkpoints")).fit(frame, spark=spark)
    faulty = SparkBiasedMF(**params, barrier=True, checkpoint_dir=str(work / "checkpoints"))
    faulty._fault = (str(work), 2, 1, 1)
    retried = faulty.fit(frame, spark=spark).to_local()
    modes = [clean.barrier_, faulty.barrier_]
    clean = clean.to_local()
    executors = _executors(sc)
    print(json.dumps({
        "executors": executors,
        "clean_vs_local": float(np.abs(clean.user_factors_ - local.user_factors_).max()),
        "clean_vs_local_items": float(np.abs(clean.item_factors_ - local.item_factors_).max()),
        "retried_vs_clean": float(np.abs(retried.user_factors_ - clean.user_factors_).max()),
        "failed_once": (work / "failed-2-1-1").exists(),
        "barrier": modes,
    }))  # fmt: skip
    spark.stop()


if __name__ == "__main__":
    main()
