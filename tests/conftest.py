"""Shared fixtures: BLAS pinned to one thread, optional engines that must not skip in CI."""

from __future__ import annotations

import importlib
import os
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
