"""Fuzzing the command line (issue 7): random files and random flags never crash it.

Whatever the input -- random bytes, near-valid rating lines, random flag values -- ``factorise``
answers with exit 0, 1 (diverged) or 2 (bad input, one line on stderr), never a traceback or
an internal error (exit 70), within a bounded time per case; and it never changes its inputs.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from factorise import BiasedMF
from factorise.cli import main

FUZZ = settings(
    max_examples=60,
    deadline=10_000,  # ms per case: a hang fails the test
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)


def cli(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse usage errors: exit 2 with a usage line
            code = int(exc.code or 0)
    return code, err.getvalue()


def check(code: int, err: str) -> None:
    assert code in (0, 1, 2), (code, err)
    assert "Traceback" not in err and "internal error" not in err, err
    if code != 0:
        errors = [line for line in err.splitlines() if "error" in line]
        assert len(errors) == 1, err


_FIELD = st.one_of(
    st.integers(-5, 50).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "user", "item", "rating", "nan", "1e308", "-0", "18446744073709551616", '"', "#", " "]),
    st.text(alphabet="abc019,;\t :|#\"'", max_size=6),
)
_LINE = st.lists(_FIELD, min_size=0, max_size=7).flatmap(
    lambda fields: st.sampled_from([",", "\t", "::", " ", ";"]).map(lambda sep: sep.join(fields))
)
_TEXT = st.lists(_LINE, max_size=25).map(lambda lines: ("\n".join(lines) + "\n").encode())
_VALID = [f"{u},{i},{(u * 3 + i) % 5 + 1}" for u in range(8) for i in range(6)]
_NEAR_VALID = st.tuples(st.integers(0, len(_VALID)), _LINE, st.sampled_from(["", "user,item,rating\n", "\ufeff"])).map(
    lambda t: (t[2] + "\n".join(_VALID[: t[0]] + [t[1]] + _VALID[t[0] :]) + "\n").encode()
)  # valid ratings with one random line put in
_CONTENT = st.one_of(st.binary(max_size=400), _TEXT, _NEAR_VALID)


@FUZZ
@given(content=_CONTENT, suffix=st.sampled_from([".csv", ".tsv", ".txt", ".dat", ".parquet", ".gz", ""]),
       command=st.sampled_from(["fit", "evaluate", "compare", "complete"]))
def test_random_files_never_crash_the_readers_of_each_command(content: bytes, suffix: str, command: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"input{suffix}"
        path.write_bytes(content)
        argv = {
            "fit": ["fit", str(path), "--algo", "baseline", "--quiet"],
            "evaluate": ["evaluate", str(path), "--algo", "baseline", "--folds", "2", "--quiet"],
            "compare": ["compare", str(path), "--rank", "1", "--epochs", "3", "--quiet"],
            "complete": ["complete", str(path), "--rank", "1", "--epochs", "3", "--out", str(Path(tmp) / "o.csv")],
        }[command]
        check(*cli(argv))
        assert path.read_bytes() == content


@FUZZ
@given(content=_CONTENT)
def test_random_model_and_pairs_files(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        junk = folder / "junk.npz"
        junk.write_bytes(content)
        pairs = folder / "pairs.csv"
        pairs.write_bytes(content)
        model = folder / "m.npz"
        users, items = np.meshgrid(np.arange(6), np.arange(5))
        BiasedMF(rank=2, n_epochs=2, random_state=0).fit(
            (users.ravel(), items.ravel(), (users.ravel() + items.ravel()) % 5 + 1.0)
        ).save(model)
        check(*cli(["predict", str(junk), str(pairs), "--out", str(folder / "o.csv")]))
        check(*cli(["recommend", str(junk), "--user", "1"]))
        check(*cli(["predict", str(model), str(pairs), "--out", str(folder / "o.csv")]))
        assert junk.read_bytes() == content and pairs.read_bytes() == content


_VALUE = st.one_of(
    st.integers(-3, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", "abc", "none", "true", "1e400", "0", "-0.0", "0x10", "2G", "1.5", "user,item", "0,1,2"]),
)
_FLAG = st.sampled_from(
    ["--rank", "--epochs", "--lr", "--reg", "--seed", "--threads", "--max-memory", "--columns", "--sep",
     "--validation-fraction", "--algo"]
)
_PARAM = st.sampled_from(
    ["rank", "n_epochs", "learning_rate", "regularization", "init_std", "patience", "n_threads", "dtype",
     "learning_rate_decay", "shrinkage", "max_iter", "tol", "bogus"]
)


@FUZZ
@given(flags=st.lists(st.tuples(_FLAG, _VALUE), max_size=3), params=st.lists(st.tuples(_PARAM, _VALUE), max_size=3),
       algo=st.sampled_from(["sgd", "als", "softimpute", "baseline"]))
def test_random_flag_values_never_crash_fit(flags: list[tuple[str, str]], params: list[tuple[str, str]], algo: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "r.csv"
        path.write_text("".join(f"{u},{i},{(u * i) % 5 + 1}\n" for u in range(12) for i in range(9)))
        argv = ["fit", str(path), "--algo", algo, "--quiet", "--epochs", "2"]
        for flag, value in flags:
            argv += [flag, value] if not (flag == "--algo") else []
        for name, value in params:
            argv += ["-p", f"{name}={value}"]
        check(*cli(argv))

