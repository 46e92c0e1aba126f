"""fit, predict, recommend and evaluate end to end, in subprocesses, on small planted data."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import DATA_DIR, IN_CI

pytestmark = pytest.mark.slow

NOISE = 0.3


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "factorise", *args], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def planted_files(directory: Path, seed: int = 0) -> tuple[Path, Path]:
    """Rank-3 ratings plus biases plus N(0, NOISE^2), string user ids; train and test files."""
    rng = np.random.default_rng(seed)
    n_users, n_items, k = 150, 100, 3
    P = rng.normal(0, 0.6, (n_users, k))
    Q = rng.normal(0, 0.6, (n_items, k))
    bu = rng.normal(0, 0.3, n_users)
    bi = rng.normal(0, 0.3, n_items)
    truth = 3.0 + bu[:, None] + bi[None, :] + P @ Q.T
    mask = rng.random((n_users, n_items)) < 0.5
    users, items = np.nonzero(mask)
    values = truth[users, items] + rng.normal(0, NOISE, users.size)
    test = rng.random(users.size) < 0.15
    train_path, test_path = directory / "train.csv", directory / "test.csv"
    for path, sel in ((train_path, ~test), (test_path, test)):
        lines = ["user,item,rating"] + [
            f"u{u},{i},{v:.4f}" for u, i, v in zip(users[sel], items[sel], values[sel])
        ]
        path.write_text("\n".join(lines) + "\n")
    return train_path, test_path


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return planted_files(tmp_path_factory.mktemp("ratings"))


def test_fit_save_predict_recommend(tmp_path: Path, data: tuple[Path, Path]) -> None:
    train, test = data
    model = tmp_path / "model.npz"
    fit = run("fit", str(train), "--algo", "baseline", "--save", str(model), "--seed", "0", "--json")
    assert fit.returncode == 0, fit.stderr
    summary = json.loads(fit.stdout)
    assert summary["algo"] == "baseline" and summary["epochs_run"] >= 1
    assert model.is_file()

    out = tmp_path / "pred.csv"
    pred = run("predict", str(model), str(test), "--out", str(out))
    assert pred.returncode == 0, pred.stderr
    lines = out.read_text().splitlines()
    assert lines[0] == "user,item,prediction"
    rows = [line.split(",") for line in lines[1:]]
    test_rows = [line.split(",") for line in test.read_text().splitlines()[1:]]
    assert [r[:2] for r in rows] == [t[:2] for t in test_rows]  # same pairs, same order
    predictions = np.array([float(r[2]) for r in rows])
    truth = np.array([float(t[2]) for t in test_rows])
    assert np.sqrt(np.mean((predictions - truth) ** 2)) < np.std(truth)  # better than the mean

    rec = run("recommend", str(model), "--user", "u3", "-n", "5", "--json")
    assert rec.returncode == 0, rec.stderr
    payload = json.loads(rec.stdout)
    assert payload["known_user"] and len(payload["items"]) == 5
    assert payload["scores"] == sorted(payload["scores"], reverse=True)
    rated = {int(t[1]) for t in (line.split(",") for line in train.read_text().splitlines()[1:]) if t[0] == "u3"}
    assert not rated & set(payload["items"])


def test_evaluate_folds_json(data: tuple[Path, Path]) -> None:
    train, _ = data
    result = run("evaluate", str(train), "--algo", "baseline", "--folds", "3", "--seed", "1", "--json")
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["n_folds"] == 3 and len(payload["folds"]) == 3
    for key in ("rmse", "mae", "precision@10", "recall@10", "ndcg@10"):
        assert key in payload["mean"]
    assert sum(f["n_test"] for f in payload["folds"]) == len(train.read_text().splitlines()) - 1


def test_evaluate_test_file_and_plot(tmp_path: Path, data: tuple[Path, Path]) -> None:
    train, test = data
    plot = tmp_path / "curves.png"
    result = run("evaluate", str(train), "--test", str(test), "--algo", "baseline", "--plot", str(plot))
    assert result.returncode == 0, result.stderr
    assert "mean RMSE" in result.stdout and "precision@10" in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (["fit", "nope.csv"], r"nope.csv"),
        (["fit", "train.csv", "--algo", "baseline", "--lr", "0.1"], r"--lr does not apply to --algo baseline"),
        (["fit", "train.csv", "--algo", "baseline", "-p", "bogus=1"], r"-p bogus=1: .* no parameter 'bogus'"),
        (["fit", "train.csv", "--save", "missing-dir/m.npz"], r"--save missing-dir/m.npz: the directory .* does not exist"),
        (["fit", "bad.csv", "--algo", "baseline"], r"bad.csv, line 3"),
        (["predict", "corrupt.npz", "train.csv", "--out", "o.csv"], r"corrupt.npz (is corrupt|is not a factorise model)"),
        (["recommend", "nope.npz", "--user", "1"], r"nope.npz: no such model file"),
        (["evaluate", "train.csv", "--folds", "1"], r"--folds: must be an integer >= 2"),
        (["evaluate", "--algo", "baseline"], r"RATINGS is required"),
        (["fit", "train.csv", "--max-memory", "1K"], r"train.csv: reading about [0-9,]+ ratings needs up to .* more than --max-memory 1.0 KiB"),
        (["fit", "train.csv", "--max-memory", "lots"], r"--max-memory: must be a size such as 2G"),
        (["fit", "train.csv", "--algo", "baseline", "--threads", "2"], r"--threads does not apply to --algo baseline"),
        (["fit", "train.csv", "--threads", "0"], r"--threads 0: `n_threads` must be .*integer.*; got 0"),
        (["fit", "train.csv", "--device", "gpu"], r"--device gpu: `device` must be None, 'cpu', 'torch-cpu', 'cuda' or 'cuda:N'; got 'gpu'"),
        (["fit", "train.csv", "--algo", "baseline", "--device", "cuda"], r"--device does not apply to --algo baseline"),
        (["fit", "train.csv", "--algo", "als", "--device", "cuda"], r"`device`='cuda' asks for CUDA, but .*(CPU build|no CUDA device)"),
        (["fit", "train.csv", "--engine", "spark", "--device", "torch-cpu"], r"--device does not apply to --engine spark"),
        (["fit", "train.csv", "--algo", "bayes", "--epochs", "3"], r"`burn_in` must be less than `n_samples` \(3\)"),
        (["fit", "train.csv", "--algo", "bayes", "--lr", "0.1"], r"--lr does not apply to --algo bayes"),
        (["fit", "train.csv", "--algo", "bayes", "-p", "implicit=maybe"], r"`implicit` must be True or False; got 'maybe'"),
    ],
)
def test_errors_are_one_line(tmp_path: Path, data: tuple[Path, Path], args: list[str], pattern: str) -> None:
    (tmp_path / "train.csv").write_text(data[0].read_text())
    (tmp_path / "bad.csv").write_text("user,item,rating\n1,2,3\n1,3,oops\n")
    (tmp_path / "corrupt.npz").write_bytes(b"PK\x03\x04 not really a zip")
    result = run(*args, cwd=tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    assert re.search(pattern, result.stderr), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "o.csv").exists()


def test_movielens_u1_through_the_cli(tmp_path: Path) -> None:
    """The default `factorise fit`, on MovieLens 100K u1: RMSE < 0.95 on u1.test."""
    directory = DATA_DIR / "ml-100k"
    if not (directory / "u1.base").is_file():
        if IN_CI:
            pytest.fail(f"MovieLens 100K is missing from {directory}; CI must provide it")
        pytest.skip(f"MovieLens 100K not found in {directory}")
    model = tmp_path / "u1.npz"
    fit = run("fit", str(directory / "u1.base"), "--save", str(model), "--seed", "0", "--quiet")
    assert fit.returncode == 0, fit.stderr
    out = tmp_path / "u1.pred.csv"
    pred = run("predict", str(model), str(directory / "u1.test"), "--out", str(out))
    assert pred.returncode == 0, pred.stderr
    predictions = np.loadtxt(out, delimiter=",", skiprows=1, usecols=2)
    truth = np.loadtxt(directory / "u1.test", usecols=2)
    rmse = float(np.sqrt(np.mean((predictions - truth) ** 2)))
    assert rmse < 0.95, rmse


def test_download_uses_the_cache(tmp_path: Path) -> None:
    """With the files already in the cache nothing is fetched; the directory is printed."""
    source = DATA_DIR / "ml-100k"
    if not (source / "u.data").is_file():
        if IN_CI:
            pytest.fail(f"MovieLens 100K is missing from {source}; CI must provide it")
        pytest.skip(f"MovieLens 100K not found in {source}")
    target = tmp_path / "ml-100k"
    target.mkdir()
    for name in ["u.data", "README"] + [f"u{i}.{p}" for i in range(1, 6) for p in ("base", "test")] + [
        f"u{x}.{p}" for x in "ab" for p in ("base", "test")
    ]:
        (target / name).write_bytes((source / name).read_bytes())
    result = run("download", "100k", "--cache-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(target)
    assert "100,000 ratings, 943 users, 1,682 items" in result.stderr


def test_threads_and_memory_limit_accepted(tmp_path: Path, data: tuple[Path, Path]) -> None:
    train, _ = data
    result = run("fit", str(train), "--algo", "als", "--threads", "1", "--max-memory", "4G", "--json", "--epochs", "2")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["params"]["n_threads"] == 1


@pytest.mark.parametrize("implicit", [False, True])
def test_fit_bayes_saves_a_model_that_predicts(tmp_path: Path, data: tuple[Path, Path], implicit: bool) -> None:
    """--algo bayes: --epochs is the number of samples; the saved model predicts its posterior mean."""
    train, test = data
    model = tmp_path / "b.npz"
    result = run("fit", str(train), "--algo", "bayes", "--epochs", "12", "-p", "burn_in=2", "--rank", "3", "--seed", "0",
                 "-p", f"implicit={str(implicit).lower()}", "--json", "--save", str(model))  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["params"]["n_samples"] == 12 and report["params"]["burn_in"] == 2
    assert report["params"]["implicit"] is implicit
    out = tmp_path / "p.csv"
    assert run("predict", str(model), str(test), "--out", str(out)).returncode == 0
    assert out.read_text().startswith("user,item,prediction")


@pytest.mark.parametrize("algo", ["sgd", "als"])
def test_fit_on_the_torch_engine(tmp_path: Path, data: tuple[Path, Path], algo: str) -> None:
    """--device torch-cpu: the torch engine fits, saves a model that predicts like any other."""
    train, test = data
    model = tmp_path / "m.npz"
    result = run("fit", str(train), "--algo", algo, "--device", "torch-cpu", "--epochs", "3", "--rank", "4", "--seed", "1",
                 "--json", "--save", str(model))  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["params"]["device"] == "torch-cpu"
    out = tmp_path / "p.csv"
    predicted = run("predict", str(model), str(test), "--out", str(out))
    assert predicted.returncode == 0, predicted.stderr
    assert out.exists()


def test_duplicate_warning_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.csv"
    path.write_text("user,item,rating\n1,1,4\n1,1,5\n2,1,3\n2,2,1\n")
    result = run("fit", str(path), "--algo", "baseline")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == (
        f"factorise: warning: {path}: 1 duplicate (user, item) rating(s); kept the last rating of each pair"
    )


def test_default_rank_is_lowered_for_small_data_but_explicit_rank_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "small.csv"
    rng = np.random.default_rng(0)
    rows = {(u, i): rng.integers(1, 6) for u, i in zip(rng.integers(0, 30, 400), rng.integers(0, 20, 400))}
    path.write_text("user,item,rating\n" + "".join(f"{u},{i},{r}\n" for (u, i), r in rows.items()))
    result = run("fit", str(path), "--json", "--seed", "0")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["params"]["rank"] == 20
    assert "the default rank 128 is more than these data allow; using rank 20" in result.stderr
    explicit = run("fit", str(path), "--rank", "25")
    assert explicit.returncode == 2 and "rank" in explicit.stderr and "25" in explicit.stderr


def test_plot_without_matplotlib_fails_before_fitting(
    tmp_path: Path, data: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import factorise.data
    from factorise.cli import main

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    read: list[object] = []
    monkeypatch.setattr(factorise.data, "read_ratings", lambda *a, **k: read.append(a))
    code = main(["fit", str(data[0]), "--algo", "baseline", "--plot", str(tmp_path / "c.png")])
    assert code == 2
    assert "plotting needs matplotlib: pip install 'factorise[plot]'" in capsys.readouterr().err
    assert read == []  # nothing was read or fitted


def test_fit_reorders_its_own_ratings_in_place_and_fits_the_library_s_model(tmp_path: Path) -> None:
    """``factorise fit`` gives its ratings to the block sweep (``block_copy="in-place"``): the same model."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import factorise
    from factorise.models import load_model

    rng = np.random.default_rng(8)
    n = 150_000  # above the block sweep's threshold at 8 blocks
    cells = rng.choice(3000 * 800, n, replace=False)
    path = tmp_path / "ratings.parquet"
    table = {"user": cells // 800, "item": cells % 800, "rating": rng.uniform(1, 5, n), "time": rng.integers(0, 9, n)}
    pq.write_table(pa.table(table), path)
    saved = tmp_path / "m.npz"
    result = run("fit", str(path), "--rank", "4", "--epochs", "2", "--seed", "5", "--threads", "2",
                 "--save", str(saved), "--json")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["params"]["block_copy"] == "in-place"
    cli = load_model(saved)
    library = factorise.BiasedMF(rank=4, n_epochs=2, random_state=5, n_threads=2)
    library.fit(factorise.read_ratings(path))
    assert library.block_copy is True
    for name in ("user_factors_", "item_factors_", "user_bias_", "item_bias_"):
        np.testing.assert_array_equal(getattr(cli, name), getattr(library, name), err_msg=name)
    assert [h["train_rmse"] for h in cli.history_] == [h["train_rmse"] for h in library.history_]
    user = cli.user_ids_.ids[0]
    assert list(cli.recommend(user, 10).items) == list(library.recommend(user, 10).items)

    explicit = run("fit", str(path), "--rank", "4", "--epochs", "1", "-p", "block_copy=true", "--json")
    assert explicit.returncode == 0, explicit.stderr
    assert json.loads(explicit.stdout)["params"]["block_copy"] is True  # the user's choice is kept
