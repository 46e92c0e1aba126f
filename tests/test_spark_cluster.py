"""The Spark engine on a real standalone cluster: a master and two workers on 127.0.0.1, each executor its own JVM.

``local[2]`` runs the driver and executors in one JVM, which hides what must
be shipped to executors; here the equivalence with the shared-memory sweep
and the retry of a failed task are checked again where nothing is shared.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_module
from spark_cluster import standalone_cluster

HERE = Path(__file__).resolve().parent


@pytest.mark.slow
def test_dsgd_and_a_retried_task_on_a_standalone_cluster(tmp_path: Path) -> None:
    require_module("pyspark", "pip install -e '.[spark]'")
    with standalone_cluster(tmp_path / "cluster", workers=2, cores=1, memory="1g") as master:
        result = subprocess.run(
            [sys.executable, str(HERE / "spark_cluster_job.py"), master, str(tmp_path)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-5000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["executors"] == 2  # two executor JVMs, one per worker
    assert report["clean_vs_local"] < 1e-5 and report["clean_vs_local_items"] < 1e-5, report
    assert report["failed_once"], report
    assert report["retried_vs_clean"] == 0.0, report
    assert report["barrier"] == [False, True], report  # a stage a round, then barrier stages
    assert not _spark_daemons(), "the cluster's processes must be stopped"


def _spark_daemons() -> list[str]:
    """Command lines of running Spark master or worker JVMs (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if "org.apache.spark.deploy.master.Master" in command or "org.apache.spark.deploy.worker.Worker" in command:
                found.append(command)
    return found


@pytest.mark.slow
def test_nothing_is_collected_to_a_small_driver(tmp_path: Path) -> None:
    """A 1 GiB driver allowed 64 MiB of results fits ratings whose Spark rows take more than 1 GiB."""
    require_module("pyspark", "pip install -e '.[spark]'")
    with standalone_cluster(tmp_path / "cluster", workers=2, cores=1, memory="1g") as master:
        result = subprocess.run(
            [sys.executable, str(HERE / "spark_cluster_job.py"), master, str(tmp_path), "memory"],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
    assert result.returncode == 0, result.stderr[-5000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["driver_memory"] == "1g"
    assert report["row_bytes"] > 2**30, report  # the rows would not fit the driver
    assert report["n_ratings"] > 2_000_000 and report["train_rmse"] > 0, report
