"""The bad-input catalogue of the command line (issue 7): every row a user can hit on day one.

Each test runs ``factorise`` in-process (``cli.main``) and asserts the exit code, that stderr is
one line naming the file or flag, that no traceback is printed, and that no input or existing
output changed (the bytes of every file in the folder, before and after).
"""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from factorise.cli import main

# --------------------------------------------------------------------------- helpers


def cli(*argv: object) -> tuple[int, str, str]:
    """Run the command in-process; (exit code, stdout, stderr)."""
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:  # argparse usage errors
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_refused(
    result: tuple[int, str, str], *names: str, code: int = 2, folder: Path | None = None, before: dict | None = None
) -> str:
    """Exit ``code``, one line on stderr naming every one of ``names``, no traceback; files unchanged."""
    status, _, err = result
    assert status == code, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("factorise"), err
    for name in names:
        assert name in lines[0], (name, lines[0])
    if folder is not None and before is not None:
        assert snapshot(folder) == before, "an input or an existing output changed"
    return lines[0]


def planted(path: Path, *, seed: int = 0, n_users: int = 40, n_items: int = 30, header: bool = True) -> Path:
    """Rank-2 ratings on a 1-5 scale, integer ids, as CSV."""
    rng = np.random.default_rng(seed)
    P, Q = rng.normal(0, 0.7, (n_users, 2)), rng.normal(0, 0.7, (n_items, 2))
    users, items = np.nonzero(rng.random((n_users, n_items)) < 0.5)
    values = np.clip(3 + np.sum(P[users] * Q[items], axis=1) + rng.normal(0, 0.2, users.size), 1, 5)
    lines = (["user,item,rating"] if header else []) + [
        f"{u + 1},{i + 1},{v:.3f}" for u, i, v in zip(users, items, values)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    planted(tmp_path / "r.csv")
    planted(tmp_path / "v.csv", seed=1)
    (tmp_path / "pairs.csv").write_text("user,item\n1,1\n2,3\n999,1\n")
    (tmp_path / "M.csv").write_text("1,2,\n2,4,6\n,6,9\n")
    return tmp_path


@pytest.fixture
def model(folder: Path) -> Path:
    path = folder / "m.npz"
    code, _, err = cli("fit", folder / "r.csv", "--algo", "baseline", "--save", path, "--quiet")
    assert code == 0, err
    return path


# ------------------------------------------------------------ 1. outputs onto inputs


@pytest.mark.parametrize(
    "argv, names",
    [
        (("fit", "r.csv", "--algo", "baseline", "--save", "r.csv"), ["--save", "RATINGS", "r.csv"]),
        (("fit", "r.csv", "--algo", "baseline", "--save", "./r.csv"), ["--save", "RATINGS", "r.csv"]),
        (("fit", "r.csv", "--algo", "baseline", "--plot", "r.csv"), ["--plot", "RATINGS", "r.csv"]),
        (("fit", "r.csv", "--algo", "baseline", "--validation", "v.csv", "--save", "v.csv"), ["--save", "--validation"]),
        (("predict", "m.npz", "pairs.csv", "--out", "m.npz"), ["--out", "MODEL", "m.npz"]),
        (("predict", "m.npz", "pairs.csv", "--out", "pairs.csv"), ["--out", "PAIRS", "pairs.csv"]),
        (("complete", "M.csv", "--rank", "1", "--out", "M.csv"), ["--out", "FILE", "M.csv"]),
        (("evaluate", "r.csv", "--algo", "baseline", "--test", "v.csv", "--plot", "v.csv"), ["--plot", "--test"]),
        (("fit", "r.csv", "--algo", "baseline", "--save", "out.npz", "--plot", "out.npz"), ["--save", "--plot"]),
    ],
)
def test_an_output_that_is_an_input_is_refused_before_work(
    folder: Path, model: Path, monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...], names: list[str]
) -> None:
    monkeypatch.chdir(folder)
    before = snapshot(folder)
    result = cli(*argv)
    assert_refused(result, *names, folder=folder, before=before)
    assert result[1] == ""  # refused before any work: nothing reported


def test_compare_out_prefix_onto_its_input(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(folder)
    (folder / "A_svd_U.csv").write_text("1,2\n3,4\n5,6\n")
    before = snapshot(folder)
    assert_refused(cli("compare", "A_svd_U.csv", "--rank", "1", "--out", "A"), "--out", "FILE", folder=folder, before=before)


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_outputs_reaching_an_input_through_a_link_are_refused(folder: Path, link: str) -> None:
    alias = folder / "alias.csv"
    if link == "symlink":
        alias.symlink_to(folder / "r.csv")
    else:
        os.link(folder / "r.csv", alias)
    before = snapshot(folder)
    assert_refused(cli("fit", folder / "r.csv", "--save", alias), "--save", "RATINGS", folder=folder, before=before)


def test_overwriting_an_earlier_output_is_allowed(folder: Path, model: Path) -> None:
    old = model.read_bytes()
    code, _, err = cli("fit", folder / "r.csv", "--algo", "baseline", "-p", "regularization=7", "--save", model)
    assert code == 0, err
    assert model.read_bytes() != old


# --------------------------------------------------------------- 2. stale temp files


def test_stale_temp_files_of_killed_runs_are_removed_and_others_kept(folder: Path, model: Path) -> None:
    from factorise.io._atomic import _host

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    host = _host()
    stale = folder / f".m.npz.factorise-tmp-{host}-{dead_pid}-x1.tmp"
    live = folder / f".m.npz.factorise-tmp-{host}-{os.getpid()}-x2.tmp"
    remote = folder / f".m.npz.factorise-tmp-{host}other-{dead_pid}-x3.tmp"
    foreign = folder / ".m.npz.abcdef.tmp"  # not ours: never touched
    for path in (stale, live, remote, foreign):
        path.write_bytes(b"partial")
    code, _, err = cli("fit", folder / "r.csv", "--algo", "baseline", "--save", model, "--quiet")
    assert code == 0, err
    assert not stale.exists()
    assert live.exists() and remote.exists() and foreign.exists()
    assert socket.gethostname()  # the host part comes from here


# ------------------------------------------------------- 3. ambiguous layouts, reading flags


def six_columns(path: Path) -> Path:
    """user,item,category,review,rating,date without a header: the rating is column 4."""
    rng = np.random.default_rng(2)
    rows = []
    for u in range(1, 31):
        for i in rng.choice(np.arange(1, 21), 8, replace=False):
            rows.append(f"{u},{i},{rng.integers(1, 18)},{rng.integers(100, 999)},{rng.integers(1, 6)},2024-01-0{rng.integers(1, 9)}")
    path.write_text("\n".join(rows) + "\n")
    return path


def test_a_headerless_wide_file_is_refused_and_names_the_flag(folder: Path) -> None:
    path = six_columns(folder / "wide.csv")
    before = snapshot(folder)
    line = assert_refused(cli("fit", path, "--algo", "baseline"), "wide.csv", "--columns", folder=folder, before=before)
    first = path.read_text().splitlines()[0].split(",")
    assert all(value in line for value in first)  # the columns found, by their values
    assert "`columns`" not in line  # the CLI names its flag, not the keyword


def test_columns_flag_chooses_the_rating(folder: Path) -> None:
    path = six_columns(folder / "wide.csv")
    model = folder / "wide.npz"
    code, _, err = cli("fit", path, "--algo", "baseline", "--columns", "0,1,4", "--save", model, "--quiet")
    assert code == 0, err
    from factorise import load_model

    loaded = load_model(model)
    assert (1.0, 5.0) == loaded.rating_range_  # the ratings, not the categories (1-17)


def test_sep_and_header_flags(folder: Path) -> None:
    path = folder / "semi.txt"
    path.write_text("".join(f"{u};{i};{(u * i) % 5 + 1}\n" for u in range(1, 20) for i in range(1, 10)))
    code, out, err = cli("fit", path, "--algo", "baseline", "--sep", ";", "--no-header", "--json")
    assert code == 0, err
    assert json.loads(out)["n_ratings"] == 19 * 9
    # --header: the first line is taken as the column names (three columns: user, item, rating)
    code, out, err = cli("fit", path, "--algo", "baseline", "--sep", ";", "--header", "--json")
    assert code == 0, err
    assert json.loads(out)["n_ratings"] == 19 * 9 - 1


def test_reading_flags_apply_to_predict_pairs(folder: Path, model: Path) -> None:
    pairs = folder / "p.tsv"
    pairs.write_text("x\t1\ty\t1\nx\t2\ty\t3\n")
    out = folder / "pred.csv"
    code, _, err = cli("predict", model, pairs, "--out", out, "--columns", "1,3", "--no-header")
    assert code == 0, err
    assert out.read_text().splitlines()[0] == "user,item,prediction"
    assert [line.split(",")[:2] for line in out.read_text().splitlines()[1:]] == [["1", "1"], ["2", "3"]]


@pytest.mark.parametrize(
    "flags, names",
    [
        (("--columns", "user"), ["--columns"]),
        (("--columns", "0,1,2,3,4"), ["--columns"]),
        (("--columns", "0,1,9"), ["r.csv", "column 9"]),
        (("--columns", "userId,item,rating"), ["userId"]),
        (("--sep", ""), ["--sep"]),
    ],
)
def test_bad_reading_flags(folder: Path, flags: tuple[str, ...], names: list[str]) -> None:
    before = snapshot(folder)
    assert_refused(cli("fit", folder / "r.csv", "--algo", "baseline", *flags), *names, folder=folder, before=before)


def test_reading_flags_do_not_apply_to_movielens_splits(folder: Path) -> None:
    assert_refused(cli("evaluate", "--movielens-splits", folder, "--columns", "0,1,2"), "--columns", "--movielens-splits")


# ----------------------------------------------------------- 7. recommend shows its score


def test_recommend_shows_the_ranking_score_beside_the_clipped_prediction(folder: Path, model: Path) -> None:
    from factorise import load_model

    m = load_model(model)
    boost = np.linspace(3, 4, m.item_bias_.size).astype(m.item_bias_.dtype)
    m.item_bias_ = m.item_bias_ + boost  # many items predict above 5
    boosted = folder / "boosted.npz"
    m.save(boosted)
    code, out, err = cli("recommend", boosted, "--user", "1", "-n", "10", "--json")
    assert code == 0, err
    payload = json.loads(out)
    ranking, scores = payload["ranking_scores"], payload["scores"]
    assert ranking == sorted(ranking, reverse=True) and len(set(ranking)) == len(ranking)  # no ties
    assert all(s == min(r, 5.0) for s, r in zip(scores, ranking))  # clipped prediction beside it
    assert max(ranking) > 5.0
    code, out, err = cli("recommend", boosted, "--user", "1", "-n", "3")
    assert code == 0, err
    rows = [line.split() for line in out.splitlines()[2:5]]
    assert [float(r[2]) for r in rows] == [5.0] * 3
    assert [float(r[3]) for r in rows] == pytest.approx(ranking[:3], abs=1e-3)


# ----------------------------------------------------- 9. model files that are not models


def test_a_csv_given_as_a_model(folder: Path) -> None:
    before = snapshot(folder)
    line = assert_refused(
        cli("predict", folder / "r.csv", folder / "pairs.csv", "--out", folder / "o.csv"),
        "r.csv",
        "not a factorise model",
        folder=folder,
        before=before,
    )
    assert "allow_pickle" not in line


def test_a_model_with_an_index_out_of_range(folder: Path, model: Path) -> None:
    with np.load(model) as npz:
        arrays = dict(npz)
    arrays["rated_items"] = arrays["rated_items"] + 10_000
    bad = folder / "bad.npz"
    np.savez(bad, **arrays)
    before = snapshot(folder)
    assert_refused(cli("recommend", bad, "--user", "1"), "bad.npz", "corrupt", folder=folder, before=before)


def test_unknown_metadata_in_a_model(folder: Path, model: Path) -> None:
    with np.load(model) as npz:
        arrays = dict(npz)
    meta = json.loads(arrays["metadata"].tobytes())
    meta["params"]["shiny"] = 1
    arrays["metadata"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    bad = folder / "meta.npz"
    np.savez(bad, **arrays)
    line = assert_refused(cli("recommend", bad, "--user", "1"), "meta.npz", "shiny")
    assert "__init__" not in line


def test_a_truncated_model(folder: Path, model: Path) -> None:
    cut = folder / "cut.npz"
    cut.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    assert_refused(cli("recommend", cut, "--user", "1"), "cut.npz")


# --------------------------------------------------------- 10. one validation path


@pytest.mark.parametrize(
    "flags, names",
    [
        (("-p", "rank=abc"), ["-p rank=abc", "`rank`", "'abc'"]),
        (("--rank", "abc"), ["--rank abc", "`rank`", "'abc'"]),
        (("-p", "n_epochs=0"), ["-p n_epochs=0", "`n_epochs`"]),
        (("--epochs", "0"), ["--epochs 0", "`n_epochs`"]),
        (("--lr", "-1"), ["--lr -1", "`learning_rate`"]),
        (("-p", "learning_rate=nan"), ["-p learning_rate=nan", "`learning_rate`"]),
        (("--seed", "-3"), ["--seed -3", "`random_state`"]),
        (("-p", "nonsense=1"), ["-p nonsense=1", "nonsense"]),
    ],
)
def test_flags_and_params_share_one_validation(folder: Path, flags: tuple[str, ...], names: list[str]) -> None:
    before = snapshot(folder)
    result = cli("fit", folder / "r.csv", *flags)
    assert_refused(result, *names, folder=folder, before=before)
    assert result[1] == ""


def test_epochs_flag_and_param_give_the_same_rule(folder: Path) -> None:
    by_flag = assert_refused(cli("fit", folder / "r.csv", "--epochs", "0"))
    by_param = assert_refused(cli("fit", folder / "r.csv", "-p", "n_epochs=0"))
    assert by_flag.split(": ", 3)[-1] == by_param.split(": ", 3)[-1]  # after "factorise: error: FLAG: "


# ------------------------------------------------------------------- 11. threads


def test_absurd_thread_counts_are_refused(folder: Path) -> None:
    before = snapshot(folder)
    assert_refused(cli("fit", folder / "r.csv", "--threads", "100000", "--save", folder / "t.npz"), "--threads", "100000", folder=folder, before=before)


def test_more_threads_than_cores_warns_once(folder: Path) -> None:
    from factorise._threads import MAX_N_THREADS, available_cores

    if available_cores() >= MAX_N_THREADS:  # pragma: no cover - no such machine yet
        pytest.fail("a machine with MAX_N_THREADS cores: raise MAX_N_THREADS")
    code, _, err = cli("fit", folder / "r.csv", "--rank", "2", "--epochs", "1", "--threads", str(MAX_N_THREADS), "--quiet")
    assert code == 0, err
    warned = [line for line in err.splitlines() if "core" in line]
    assert len(warned) == 1 and warned[0].startswith("factorise: warning:"), err


# ------------------------------------------------------------- 12. data of huge scale


def test_a_dense_matrix_of_huge_scale_is_blamed_on_its_scale(folder: Path) -> None:
    path = folder / "huge.csv"
    path.write_text("1e300,2e300\n3e300,4e300\n")
    line = assert_refused(cli("compare", path, "--rank", "1", "--methods", "sgd", "--epochs", "5"), "huge.csv", code=1)
    assert "scale" in line and "1e-30" not in line


def test_ratings_of_huge_scale_are_blamed_on_their_scale(folder: Path) -> None:
    path = folder / "huge-ratings.csv"
    path.write_text("".join(f"{u},{i},{(u + i) % 5 + 1}e37\n" for u in range(1, 30) for i in range(1, 20)))
    result = cli("fit", path, "--algo", "sgd", "--rank", "4", "--epochs", "3")
    status, _, err = result
    assert status in (1, 2), err
    line = assert_refused(result, code=status)
    assert "scale" in line


# ------------------------------------------------------------ 13. user paths in errors


def test_a_full_disk_names_the_users_path(folder: Path, model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = folder / "pred.csv"
    out.write_text("previous\n")
    before = snapshot(folder)

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    line = assert_refused(cli("predict", model, folder / "pairs.csv", "--out", out), str(out), "No space left on device")
    assert ".tmp" not in line and "factorise-tmp" not in line
    assert snapshot(folder) == before  # the previous output intact, no temp file left


def test_an_unwritable_folder_is_refused_before_work(
    folder: Path, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = folder / "locked"
    locked.mkdir()
    real_access = os.access
    # the permission check as a non-root user sees it (root may write anywhere)
    monkeypatch.setattr(os, "access", lambda p, mode: False if Path(p) == locked else real_access(p, mode))
    before = snapshot(folder)
    line = assert_refused(
        cli("predict", model, folder / "pairs.csv", "--out", locked / "p.csv"), "--out", "locked",
        folder=folder, before=before,
    )
    assert "permission" in line


# -------------------------------------------------------- 14. outputs checked before work


@pytest.mark.parametrize(
    "argv",
    [
        ("compare", "M2.csv", "--rank", "1", "--out", "/nonexistent/pre"),
        ("complete", "M.csv", "--rank", "1", "--out", "/nonexistent/out.csv"),
        ("fit", "r.csv", "--save", "/nonexistent/m.npz"),
        ("fit", "r.csv", "--plot", "/nonexistent/p.png"),
        ("predict", "m.npz", "pairs.csv", "--out", "/nonexistent/p.csv"),
        ("evaluate", "r.csv", "--plot", "/nonexistent/p.png"),
        ("synth", "--users", "5", "--items", "5", "--ratings", "10", "--rank", "1", "--noise", "0", "--out", "/nonexistent/s.parquet"),
        ("fit", "r.csv", "--save", "."),
    ],
)
def test_every_output_location_is_checked_before_work(
    folder: Path, model: Path, monkeypatch: pytest.MonkeyPatch, argv: tuple[str, ...]
) -> None:
    monkeypatch.chdir(folder)
    (folder / "M2.csv").write_text("1,2\n3,4\n")
    before = snapshot(folder)
    result = cli(*argv)
    flag = next(a for a in argv if a in ("--out", "--save", "--plot"))
    assert_refused(result, flag, folder=folder, before=before)
    assert result[1] == ""


# ------------------------------------------------------------- 15. common flags


@pytest.mark.parametrize("flag", ["--quiet", "-q", "--verbose", "--json"])
@pytest.mark.parametrize("command", ["demo", "compare", "complete", "fit", "predict", "recommend", "evaluate", "download", "synth"])
def test_every_command_takes_the_common_flags(command: str, flag: str) -> None:
    code, out, err = cli(command, flag, "--help")
    assert code == 0, err
    assert "--quiet" in out and "--verbose" in out and "--json" in out


def test_quiet_silences_notes(folder: Path, model: Path) -> None:
    code, _, err = cli("recommend", model, "--user", "nobody", "--quiet")
    assert code == 0 and err == ""
    code, _, err = cli("recommend", model, "--user", "nobody")
    assert code == 0 and "not in the training data" in err


# --------------------------------------------------------------- 16. one convention


def test_complete_names_rows_and_columns_one_based(folder: Path) -> None:
    path = folder / "holes.csv"
    path.write_text("# a comment\n,,\n1,2,3\n4,5,6\n")
    code, _, err = cli("complete", path, "--rank", "1", "--out", folder / "done.csv", "--epochs", "5")
    assert code == 0, err
    assert "holes.csv, line 2 has no observed cell" in err  # the editor's line of that row


def test_json_keeps_the_raw_id_type(folder: Path, model: Path) -> None:
    code, out, err = cli("recommend", model, "--user", "1", "--json")
    assert code == 0, err
    payload = json.loads(out)
    assert payload["user"] == 1 and all(isinstance(i, int) for i in payload["items"])
    strings = folder / "s.csv"
    strings.write_text("user,item,rating\n" + "".join(f"u{u},i{i},{(u + i) % 5 + 1}\n" for u in range(9) for i in range(7)))
    smodel = folder / "s.npz"
    assert cli("fit", strings, "--algo", "baseline", "--save", smodel)[0] == 0
    payload = json.loads(cli("recommend", smodel, "--user", "u1", "--json")[1])
    assert payload["user"] == "u1" and all(isinstance(i, str) for i in payload["items"])


# --------------------------------------------------------- 19. comments in ratings files


def test_comment_lines_in_a_ratings_file_are_skipped(folder: Path) -> None:
    path = folder / "commented.csv"
    body = (folder / "r.csv").read_text().splitlines()
    path.write_text("# exported ratings\n" + "\n".join(body[:5] + ["# a note in the middle"] + body[5:]) + "\n")
    code, out, err = cli("fit", path, "--algo", "baseline", "--json")
    assert code == 0, err
    assert json.loads(out)["n_ratings"] == len(body) - 1


# ------------------------------------------------------- the catalogue that already held

BAD_RATINGS: dict[str, Callable[[Path], None]] = {
    "empty": lambda p: p.write_text(""),
    "header only": lambda p: p.write_text("user,item,rating\n"),
    "ragged": lambda p: p.write_text("user,item,rating\n1,2,3\n1,2\n"),
    "nan rating": lambda p: p.write_text("1,2,3\n2,3,nan\n"),
    "inf rating": lambda p: p.write_text("1,2,3\n2,3,inf\n"),
    "1e300 rating": lambda p: p.write_text("1,2,3\n2,3,1e300\n"),
    "text rating": lambda p: p.write_text("1,2,3\n2,3,oops\n"),
    "binary": lambda p: p.write_bytes(bytes(range(256)) * 4),
    "two columns": lambda p: p.write_text("1,2\n3,4\n"),
}


@pytest.mark.parametrize("case", sorted(BAD_RATINGS))
@pytest.mark.parametrize("command", ["fit", "evaluate"])
def test_bad_ratings_files(folder: Path, case: str, command: str) -> None:
    path = folder / "bad.csv"
    BAD_RATINGS[case](path)
    before = snapshot(folder)
    assert_refused(cli(command, path, "--algo", "baseline"), "bad.csv", folder=folder, before=before)


def test_a_bom_is_not_part_of_the_header(folder: Path) -> None:
    path = folder / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + (folder / "r.csv").read_bytes())
    code, out, err = cli("fit", path, "--algo", "baseline", "--json")
    assert code == 0, err


def test_a_missing_file(folder: Path) -> None:
    assert_refused(cli("fit", folder / "nothere.csv"), "nothere.csv")
    assert_refused(cli("recommend", folder / "nothere.npz", "--user", "1"), "nothere.npz")


def test_unknown_users_and_items_are_predicted_not_refused(folder: Path, model: Path) -> None:
    out = folder / "p.csv"
    code, stdout, err = cli("predict", model, folder / "pairs.csv", "--out", out)
    assert code == 0, err
    assert "unseen in training" in stdout
    assert len(out.read_text().splitlines()) == 4


def test_dense_matrix_inputs(folder: Path) -> None:
    for text in ("", "1,2\n3\n", "1,x\n2,3\n", "1,inf\n2,3\n"):
        path = folder / "D.csv"
        path.write_text(text)
        before = snapshot(folder)
        assert_refused(cli("compare", path, "--rank", "1"), "D.csv", folder=folder, before=before)
