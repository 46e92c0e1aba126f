"""The benchmark scripts still run (a smoke test: no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.slow
def test_seed_kernel_benchmark_runs(torch) -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "seed_kernel.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| 20x15 ")]
    assert len(rows) == 1
    # the three implementations agreed after one epoch from the same start
    agreement = rows[0].split("|")[8]
    assert all(float(x) < 1e-5 for x in agreement.split(","))
