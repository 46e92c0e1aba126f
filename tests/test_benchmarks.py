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


@pytest.mark.slow
def test_gd_lab_benchmark_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gd_lab.py"), "--quick"], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if line.startswith("| GD")]
    assert len(rows) == 4  # NumPy and SciPy, torch dense and sparse
    assert all(float(row.split("|")[6]) < 1e-6 for row in rows[1:])  # every engine gave the dense NumPy factors


@pytest.mark.slow
def test_gpu_benchmark_runs_on_the_torch_cpu_engine(torch) -> None:  # type: ignore[no-untyped-def]
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "gpu.py"), "--quick", "--ratings", "60000", "--epochs", "2", "--device", "torch-cpu"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("| ALS |") == 2 and result.stdout.count("| BiasedMF |") == 2
    assert result.stdout.count("| 1000 x 10000 |") == 2


@pytest.mark.slow
def test_reader_vs_commit_benchmark_runs() -> None:
    root = BENCHMARKS.parent
    if not (root / ".git").exists():
        pytest.skip("not a git checkout: the benchmark compares against a commit")
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "reader_vs_commit.py"), "--base", "HEAD", "--rows", "3000", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    summary = [line for line in result.stdout.splitlines() if "new/old" in line]
    assert [line.split()[0] for line in summary] == ["csv", "parquet"]
    reads = [line for line in result.stdout.splitlines() if line.startswith("round 1")]
    assert len(reads) == 4
    counts = {(line.split()[2], line.split()[3]): line.split(", ")[-1] for line in reads}  # (tree, format:)
    assert counts[("old", "csv:")] == counts[("new", "csv:")] == counts[("old", "parquet:")]  # same ratings
    listed = subprocess.run(["git", "-C", str(root), "worktree", "list"], capture_output=True, text=True)
    assert listed.stdout.count("\n") == 1  # the temporary worktree is gone


@pytest.mark.slow
def test_block_order_benchmark_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "block_order.py"), "--ratings", "200000", "--threads", "1", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    medians = [line for line in result.stdout.splitlines() if " median " in line]
    assert [line.split(" median ")[0].strip() for line in medians] == ["shuffled each epoch", "fixed user order"]
    errors = [float(line.split("RMSE ")[1].split(",")[0]) for line in medians]
    assert all(0.4 < e < 1.5 for e in errors)  # planted noise 0.5: both orders learn something
    assert errors[0] != errors[1]  # the two runs really differ in order


@pytest.mark.slow
def test_bayes_kernel_benchmark_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCHMARKS / "bayes_kernel.py"), "--quick", "--repeats", "2"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    rows = [line.split("|")[1:-1] for line in result.stdout.splitlines() if line.startswith(("| 3 |", "| 5 |"))]
    assert len(rows) == 2, result.stdout
    assert all(float(row[5]) < 1e-9 for row in rows)  # the kernel drew what its reference draws
