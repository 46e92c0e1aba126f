"""The command line end to end, in subprocesses."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from factorise.datasets import lab_matrix

pytestmark = pytest.mark.slow


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "factorise", *args], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def test_console_script_is_installed() -> None:
    script = Path(sys.executable).with_name("factorise")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("factorise ")


def test_demo_report() -> None:
    result = run("demo")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "0.12191" in out  # the SVD optimum
    assert "5.3339, 0.6959, 0.3492" in out
    assert "3.3359*" in out and "0.5301*" in out  # missing cells marked
    assert "8 degrees of freedom" in out and "7 cells are observed" in out
    assert "Traceback" not in result.stderr


def test_demo_json_is_consistent() -> None:
    result = run("demo", "--json", "--seed", "3", "--restarts", "4")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["svd_optimum"] == pytest.approx(0.3491572639**2, rel=1e-6)
    assert len(data["sgd_losses"]) == 4
    assert min(data["sgd_losses"]) >= data["svd_optimum"]
    assert data["sgd_best_ratio"] == pytest.approx(min(data["sgd_losses"]) / data["svd_optimum"])
    completion = np.array(data["completion"])
    mask = np.array(data["mask"], dtype=bool)
    assert np.sum((completion - lab_matrix())[mask] ** 2) == pytest.approx(data["observed_error"])
    assert data["observed_error"] < 1e-2
    assert [(c["row"], c["column"]) for c in data["missing_cells"]] == [(1, 0), (2, 1)]
    assert data["degrees_of_freedom"] == 8 and data["observed_cells"] == 7
    again = json.loads(run("demo", "--json", "--seed", "3", "--restarts", "4").stdout)
    assert again == data  # same seed, same report


def test_compare_table_and_factors(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    A = rng.random((8, 6))
    path = tmp_path / "a.csv"
    np.savetxt(path, A, delimiter=",")
    result = run("compare", str(path), "--rank", "2", "--seed", "0", "--json", "--out", str(tmp_path / "f"))
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    optimum = float(np.sum(np.linalg.svd(A, compute_uv=False)[2:] ** 2))
    assert data["svd_optimum"] == pytest.approx(optimum, rel=1e-9)
    by_method = {r["method"]: r for r in data["results"]}
    assert by_method["svd"]["ratio_to_optimum"] == pytest.approx(1.0, rel=1e-9)
    assert 1.0 <= by_method["sgd"]["ratio_to_optimum"] < 1.1
    for method in ("svd", "sgd"):
        U = np.loadtxt(tmp_path / f"f_{method}_U.csv", delimiter=",")
        V = np.loadtxt(tmp_path / f"f_{method}_V.csv", delimiter=",")
        assert np.sum((A - U @ V.T) ** 2) == pytest.approx(by_method[method]["loss"], rel=1e-6)
    table = run("compare", str(path), "--rank", "2", "--methods", "svd")
    assert table.returncode == 0 and "ratio to optimum" in table.stdout and "svd" in table.stdout


def test_compare_runs_the_lab_gradient_descent_when_asked(tmp_path: Path) -> None:
    """--methods svd,gd: the full-batch GD reaches the SVD optimum on a small matrix with a fitting step."""
    rng = np.random.default_rng(5)
    A = rng.random((12, 2)) @ rng.random((2, 9)) + 0.01 * rng.random((12, 9))
    path = tmp_path / "a.csv"
    np.savetxt(path, A, delimiter=",")
    result = run("compare", str(path), "--rank", "2", "--seed", "0", "--json", "--methods", "svd,gd",
                 "--gd-lr", "0.02", "--epochs", "4000", "--out", str(tmp_path / "f"))  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    by_method = {r["method"]: r for r in data["results"]}
    assert set(by_method) == {"svd", "gd"}
    assert 1.0 - 1e-9 <= by_method["gd"]["ratio_to_optimum"] < 1.05
    U = np.loadtxt(tmp_path / "f_gd_U.csv", delimiter=",")
    V = np.loadtxt(tmp_path / "f_gd_V.csv", delimiter=",")
    assert np.sum((A - U @ V.T) ** 2) == pytest.approx(by_method["gd"]["loss"], rel=1e-6)


def test_complete_by_gradient_descent(tmp_path: Path) -> None:
    """complete --method gd fills the missing cells of a planted rank-2 matrix as SGD does."""
    rng = np.random.default_rng(2)
    A = rng.random((10, 2)) @ rng.random((2, 8))
    M = rng.random(A.shape) < 0.75
    lines = [",".join(f"{v:.12g}" if m else "" for v, m in zip(row, mrow)) for row, mrow in zip(A, M)]
    src = tmp_path / "in.csv"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.csv"
    result = run("complete", str(src), "--rank", "2", "--out", str(out), "--method", "gd", "--epochs", "20000",
                 "--lr", "0.05", "--seed", "1", "--device", "torch-cpu")  # fmt: skip
    assert result.returncode == 0, result.stderr
    completed = np.loadtxt(out, delimiter=",")
    assert np.sqrt(np.mean((completed - A)[~M] ** 2)) < 0.02


def test_compare_reads_tsv_and_npy(tmp_path: Path) -> None:
    A = lab_matrix()
    np.save(tmp_path / "a.npy", A)
    np.savetxt(tmp_path / "a.tsv", A, delimiter="\t")
    for name in ("a.npy", "a.tsv"):
        result = run("compare", str(tmp_path / name), "--rank", "2", "--methods", "svd", "--json")
        assert json.loads(result.stdout)["svd_optimum"] == pytest.approx(0.12191, abs=1e-5)


def test_complete_fills_missing_cells(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    A = rng.random((10, 2)) @ rng.random((2, 8))
    M = rng.random(A.shape) < 0.75
    lines = [",".join(f"{v:.12g}" if m else "" for v, m in zip(row, mrow)) for row, mrow in zip(A, M)]
    src = tmp_path / "in.csv"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out.csv"
    result = run("complete", str(src), "--rank", "2", "--out", str(out), "--epochs", "5000", "--lr", "0.05", "--seed", "1")
    assert result.returncode == 0, result.stderr
    completed = np.loadtxt(out, delimiter=",")
    assert completed.shape == A.shape and np.isfinite(completed).all()
    assert np.sqrt(np.mean((completed - A)[~M] ** 2)) < 0.01
    assert "RMSE on the observed cells" in result.stdout


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["compare", "missing.csv", "--rank", "2"], r"missing.csv: no such file"),
        (["compare", "ragged.csv", "--rank", "2"], r"ragged.csv, line 2: ragged rows"),
        (["compare", "word.csv", "--rank", "2"], r"word.csv, line 3, column 1: non-numeric cell 'abc'"),
        (["compare", "holes.csv", "--rank", "1"], r"holes.csv, line 1, column 2: missing cell"),
        (["compare", "ok.csv", "--rank", "5"], r"`rank` must be an integer with 1 <= rank <= min\(m, n\) = 2; got 5"),
        (["complete", "ragged.csv", "--rank", "1", "--out", "o.csv"], r"ragged.csv, line 2"),
        (["compare", "ok.csv", "--rank", "1", "--methods", "svd,magic"], r"--methods must be"),
        (["compare", "ok.csv", "--rank", "0"], r"--rank/-k: must be an integer >= 1; got 0"),
        (["demo", "--lr", "-1"], r"--lr: must be a finite number > 0"),
        (["compare", "ok.csv", "--rank", "1", "--gd-lr", "0"], r"--gd-lr: must be a finite number > 0"),
        (["complete", "holes.csv", "--rank", "1", "--out", "o.csv", "--method", "als"], r"--method: invalid choice: 'als'"),
        (["complete", "holes.csv", "--rank", "1", "--out", "o.csv", "--device", "cuda"],
         r"--device applies to --method gd; got --device cuda with --method sgd"),
        (["complete", "holes.csv", "--rank", "1", "--out", "o.csv", "--method", "gd", "--device", "gpu"],
         r"--device must be None, 'cpu', 'torch-cpu', 'cuda' or 'cuda:N'; got 'gpu'"),
        (["complete", "holes.csv", "--rank", "1", "--out", "o.csv", "--method", "gd", "--device", "cuda:0"],
         r"--device='cuda:0' asks for CUDA, but .*(CPU build|no CUDA device)"),
        (["demo", "--epochs", "x"], r"--epochs: must be an integer >= 0; got 'x'"),
    ],
)
def test_errors_are_one_line_exit_2(tmp_path: Path, args: list[str], pattern: str) -> None:
    (tmp_path / "ragged.csv").write_text("1,2\n3\n")
    (tmp_path / "word.csv").write_text("1\n2\nabc\n")
    (tmp_path / "holes.csv").write_text("1,,3\n4,5,6\n")
    (tmp_path / "ok.csv").write_text("1,2\n3,4\n")
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert re.search(pattern, result.stderr), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "o.csv").exists()


def test_divergence_is_reported_and_no_file_written(tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text("1,2,\n3,,4\n5,6,7\n")
    result = run("complete", str(src), "--rank", "2", "--out", str(tmp_path / "o.csv"), "--lr", "10")
    assert result.returncode == 1
    assert "smaller learning rate" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "o.csv").exists()
