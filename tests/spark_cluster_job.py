"""Run on a standalone cluster (tests/test_spark_cluster.py): DSGD against the local sweep, and a retried task.

``python spark_cluster_job.py MASTER_URL WORKDIR`` prints one JSON line with
the largest differences between SparkBiasedMF's factors (a clean fit, and a
fit whose first attempt of one task fails) and BiasedMF's, and the executors
the session had.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from factorise.data import Ratings
from factorise.models import BiasedMF
from factorise.spark import SparkBiasedMF, spark_session


def main() -> None:
    master, work = sys.argv[1], Path(sys.argv[2])
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
    clean = SparkBiasedMF(**params, checkpoint_dir=str(work / "checkpoints")).fit(frame, spark=spark).to_local()
    faulty = SparkBiasedMF(**params, checkpoint_dir=str(work / "checkpoints"))
    faulty._fault = (str(work), 2, 1, 1)
    retried = faulty.fit(frame, spark=spark).to_local()
    executors = sc._jsc.sc().getExecutorMemoryStatus().size() - 1  # the driver's entry excluded
    print(json.dumps({
        "executors": executors,
        "clean_vs_local": float(np.abs(clean.user_factors_ - local.user_factors_).max()),
        "clean_vs_local_items": float(np.abs(clean.item_factors_ - local.item_factors_).max()),
        "retried_vs_clean": float(np.abs(retried.user_factors_ - clean.user_factors_).max()),
        "failed_once": (work / "failed-2-1-1").exists(),
    }))  # fmt: skip
    spark.stop()


if __name__ == "__main__":
    main()
