"""Shared fixtures: BLAS pinned to one thread, optional engines that must not skip in CI."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest
from threadpoolctl import threadpool_limits

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(autouse=True, scope="session")
def _one_blas_thread() -> Iterator[None]:
    """Two BLAS threads beside a busy thread can be many times slower: pin to one."""
    with threadpool_limits(limits=1):
        yield


def require_module(name: str, install: str) -> ModuleType:
    """Import an optional engine; skip without it, but fail in CI."""
    try:
        return importlib.import_module(name)
    except ImportError:
        message = f"{name} is not installed ({install})"
        if IN_CI:
            pytest.fail(f"{message}; CI must install every optional engine")
        pytest.skip(message)


@pytest.fixture(scope="session")
def torch() -> ModuleType:
    """The torch module (the `torch` extra)."""
    return require_module("torch", "pip install -e '.[torch]'")


BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str) -> ModuleType:
    """Import ``benchmarks/NAME.py`` once (the folder on sys.path, for its own imports)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def spark() -> Iterator[object]:
    """One local SparkSession for the whole run: 2 threads, 3 attempts a task, UI off, 4 shuffle partitions."""
    require_module("pyspark", "pip install -e '.[spark]'")
    from factorise.spark import spark_session

    session = spark_session(
        "local[2,3]",
        {"spark.sql.shuffle.partitions": "4", "spark.default.parallelism": "2", "spark.driver.memory": "2g"},
    )
    yield session
    session.stop()
