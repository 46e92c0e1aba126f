"""``factorise fit/evaluate --engine spark``: the command line on the Spark engine.

Most runs are in-process (the session-scoped ``spark`` fixture is the active
session the command then uses); one runs the command as a user does, in a
fresh process with its own JVM.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_bad_input_cli import assert_refused, cli, snapshot

from factorise.data import Ratings
from factorise.models import BiasedMF, load_model


def write_ratings(path: Path, seed: int = 0, n: int = 9000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    key = rng.choice(200 * 150, n, replace=False)
    u, i = key // 150 + 1, key % 150 + 1
    r = np.clip(np.round(3.5 + rng.normal(0, 1, n)), 1, 5)
    path.write_text("".join(f"{a}\t{b}\t{int(c)}\t0\n" for a, b, c in zip(u, i, r, strict=True)))
    return u, i, r.astype(np.float32)


def test_fit_on_spark_saves_the_local_model_of_the_same_fit(spark: object, tmp_path: Path) -> None:
    u, i, r = write_ratings(tmp_path / "train.data")
    code, out, err = cli(
        "fit", tmp_path / "train.data", "--engine", "spark", "--master", "local[2]", "--rank", "4", "--epochs", "2",
        "--seed", "3", "-p", "n_blocks=2", "--save", tmp_path / "m.npz", "--json",
    )  # fmt: skip
    assert code == 0, err
    summary = json.loads(out)
    assert summary["engine"] == "spark" and summary["n_ratings"] == 9000 and summary["epochs_run"] == 2
    saved = load_model(tmp_path / "m.npz")
    local = BiasedMF(rank=4, n_epochs=2, random_state=3, n_blocks=2, n_threads=1).fit(Ratings.from_raw(u, i, r))
    np.testing.assert_allclose(saved.user_factors_, local.user_factors_, rtol=1e-5, atol=1e-6)
    code, out, err = cli("recommend", tmp_path / "m.npz", "--user", "1", "-n", "3")
    assert code == 0, err


def test_evaluate_on_spark_reports_each_fold(spark: object, tmp_path: Path) -> None:
    write_ratings(tmp_path / "train.data", seed=1)
    write_ratings(tmp_path / "test.data", seed=2, n=500)
    code, out, err = cli(
        "evaluate", tmp_path / "train.data", "--test", tmp_path / "test.data", "--engine", "spark", "--algo", "als",
        "--rank", "3", "--epochs", "3", "--seed", "1", "--json",
    )  # fmt: skip
    assert code == 0, err
    payload = json.loads(out)
    assert payload["engine"] == "spark" and len(payload["folds"]) == 1
    assert payload["folds"][0]["n_test"] == 500 and 0.5 < payload["mean"]["rmse"] < 2.0


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (["--engine", "spark", "--algo", "softimpute"], ["--engine spark", "--algo softimpute"]),
        (["--master", "local[2]"], ["--master", "--engine spark"]),
        (["--spark-conf", "a=b"], ["--spark-conf", "--engine spark"]),
        (["--engine", "spark", "--threads", "2"], ["--threads"]),
        (["--engine", "spark", "--max-memory", "1G"], ["--max-memory", "--engine spark"]),
        (["--engine", "spark", "--validation-fraction", "0.1"], ["--validation-fraction", "--engine spark"]),
        (["--engine", "spark", "--sep", "tab"], ["--sep", "--engine spark"]),
        (["--engine", "spark", "--columns", "0,1,2"], ["--columns", "must name the user, item and rating columns"]),
        (["--engine", "spark", "--epochs", "0"], ["--epochs 0", "n_epochs"]),
        (["--engine", "spark", "-p", "checkpoint_interval=0"], ["checkpoint_interval=0", "`checkpoint_interval`"]),
        (["--engine", "spark", "--master", "spark://127.0.0.1:9"], ["spark://127.0.0.1:9", "cannot reach"]),
    ],
)  # fmt: skip
def test_bad_spark_flags_get_one_line(tmp_path: Path, extra: list[str], names: list[str]) -> None:
    write_ratings(tmp_path / "train.data", n=300)
    before = snapshot(tmp_path)
    assert_refused(cli("fit", tmp_path / "train.data", *extra), *names, folder=tmp_path, before=before)


def test_spark_conf_must_be_key_value(tmp_path: Path) -> None:
    write_ratings(tmp_path / "train.data", n=300)
    code, _, err = cli("fit", tmp_path / "train.data", "--engine", "spark", "--spark-conf", "nokey")
    assert code == 2 and "--spark-conf" in err and "KEY=VALUE" in err


def test_evaluate_on_spark_needs_a_test_file(tmp_path: Path) -> None:
    write_ratings(tmp_path / "train.data", n=300)
    assert_refused(cli("evaluate", tmp_path / "train.data", "--engine", "spark"), "--test", "--engine spark")


@pytest.mark.slow
def test_the_command_starts_its_own_spark(tmp_path: Path) -> None:
    """As a user runs it: a fresh process, its own JVM on local[2], quiet stderr, a Spark model directory."""
    write_ratings(tmp_path / "train.data", n=4000)
    result = subprocess.run(
        [sys.executable, "-m", "factorise", "fit", str(tmp_path / "train.data"), "--engine", "spark",
         "--master", "local[2]", "--spark-conf", "spark.sql.shuffle.partitions=2", "--rank", "3", "--epochs", "2",
         "--save", str(tmp_path / "model")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "fitted SparkBiasedMF" in result.stdout
    noise = [line for line in result.stderr.splitlines() if line.strip() and "incubator modules" not in line]
    assert not noise, result.stderr  # Spark's own start-up chatter is off
    assert (tmp_path / "model" / "metadata.json").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]
