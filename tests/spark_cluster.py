"""A Spark standalone cluster on this machine, for tests: a master and workers bound to 127.0.0.1.

Started from the pyspark package's own launcher (``bin/spark-class
org.apache.spark.deploy.master.Master`` and ``...worker.Worker``), each a JVM of
its own; every executor is then a JVM of its own too, with its own Python
workers, so what must be shipped to executors and what lives only on the
driver show as they would on a real cluster. :func:`standalone_cluster` stops
every process it started, also when the test fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Spark master exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.3)
    raise RuntimeError(f"the Spark master did not listen on port {port} within {timeout:g} s:\n{log.read_text()[-3000:]}")


def _environment() -> dict[str, str]:
    import pyspark

    from factorise.spark._runtime import SUPPORTED_JAVA, find_java, java_version

    env = dict(os.environ)
    if "JAVA_HOME" not in env or java_version(Path(env["JAVA_HOME"]) / "bin" / "java") not in SUPPORTED_JAVA:
        env["JAVA_HOME"] = str(find_java())
    env["SPARK_HOME"] = str(Path(pyspark.__file__).parent)
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    quiet = Path(__import__("factorise.spark", fromlist=["_runtime"]).__file__).with_name("log4j2.properties")
    env["SPARK_DAEMON_JAVA_OPTS"] = f"-Dlog4j2.configurationFile=file:{quiet}"
    return env


@contextlib.contextmanager
def standalone_cluster(directory: Path, *, workers: int = 2, cores: int = 1, memory: str = "1g") -> Iterator[str]:
    """Start a master and ``workers`` workers; yield the master URL; stop them all afterwards."""
    env = _environment()
    launcher = str(Path(env["SPARK_HOME"]) / "bin" / "spark-class")
    port = _free_port()
    processes: list[subprocess.Popen[bytes]] = []
    logs = directory / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    try:
        master_log = logs / "master.log"
        with master_log.open("wb") as out:
            processes.append(subprocess.Popen(
                [launcher, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                 "--webui-port", str(_free_port())],
                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            ))  # fmt: skip
        _wait_for_port(port, processes[0], master_log)
        url = f"spark://127.0.0.1:{port}"
        for j in range(workers):
            work = directory / f"worker-{j}"
            work.mkdir(exist_ok=True)
            with (logs / f"worker-{j}.log").open("wb") as out:
                processes.append(subprocess.Popen(
                    [launcher, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1", "--cores", str(cores),
                     "--memory", memory, "--work-dir", str(work), "--webui-port", str(_free_port())],
                    stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
                ))  # fmt: skip
        yield url
    finally:
        for process in reversed(processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
