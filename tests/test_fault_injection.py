"""Fault injection: kill ``fit --save`` and ``predict --out`` at random points (issue 7).

Each run starts the real command in a subprocess and kills it with SIGKILL either at a random
moment of the whole run or just after its temporary output file appears (a random few
milliseconds into the write). Every time, the file already at the target must be intact and
loadable; the temporary files that SIGKILL leaves behind are removed by the next run. SIGINT
and SIGTERM during a write unwind cleanly: exit status, one line, no temporary file.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from factorise import load_model
from factorise.io._atomic import temp_file_pattern

pytestmark = pytest.mark.slow

ROUNDS_FIT = 24
ROUNDS_PREDICT = 12


def command(*args: object) -> list[str]:
    return [sys.executable, "-m", "factorise", *map(str, args)]


def temp_files(target: Path) -> list[str]:
    pattern = temp_file_pattern(target)
    return [n for n in os.listdir(target.parent) if pattern.match(n)]


def interrupt(argv: list[str], target: Path, *, at: float | None, after_temp: float, sig: int) -> int:
    """Run ``argv``; send ``sig`` ``at`` seconds in, or (``at`` None) ``after_temp`` s after the temp file appears."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    start = time.monotonic()
    while proc.poll() is None and time.monotonic() - start < 120:
        if at is not None and time.monotonic() - start >= at:
            break
        if at is None and temp_files(target):
            time.sleep(after_temp)
            break
        time.sleep(0.0005)
    if proc.poll() is None:
        proc.send_signal(sig)
    proc.wait(timeout=120)
    return proc.returncode


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40,000 users with 3 ratings each: at rank 64 the model file is about 11 MB."""
    folder = tmp_path_factory.mktemp("faults")
    rng = np.random.default_rng(0)
    n_users, n_items = 40_000, 500
    users = np.repeat(np.arange(n_users), 3)
    items = (users * 7 + np.tile([0, 13, 26], n_users)) % n_items  # three distinct items per user
    values = rng.integers(1, 6, users.size)
    lines = "".join(f"{u},{i},{v}\n" for u, i, v in zip(users, items, values))
    (folder / "r.csv").write_text("user,item,rating\n" + lines)
    pairs = rng.integers(0, n_users, 300_000), rng.integers(0, n_items, 300_000)
    (folder / "pairs.csv").write_text("user,item\n" + "".join(f"{u},{i}\n" for u, i in zip(*pairs)))
    return folder


def fit_argv(folder: Path, target: Path) -> list[str]:
    return command("fit", folder / "r.csv", "--rank", "64", "--epochs", "1", "--seed", "0", "--threads", "1",
                   "--save", target, "--quiet")


def test_sigkill_during_fit_save_leaves_the_previous_model_intact(data: Path) -> None:
    target = data / "m.npz"
    started = time.monotonic()
    done = subprocess.run(fit_argv(data, target), capture_output=True, text=True, timeout=300)
    duration = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    previous = target.read_bytes()
    rng = np.random.default_rng(1)
    hit_write = 0
    for round_ in range(ROUNDS_FIT):
        at = float(rng.uniform(0.2, 1.1) * duration) if round_ % 2 else None
        after = 0.0 if round_ % 4 == 0 else float(rng.uniform(0, 0.05))  # some the moment the write starts
        interrupt(fit_argv(data, target), target, at=at, after_temp=after, sig=signal.SIGKILL)
        hit_write += bool(temp_files(target))
        now = target.read_bytes()
        assert now == previous or len(now) > 0  # the old file, or a complete new one (renamed in place)
        model = load_model(target)  # loadable every time
        assert model.user_factors_.shape == (40_000, 64)
        previous = now
    assert hit_write > 0  # some kills landed mid-write and left a temporary file behind
    done = subprocess.run(fit_argv(data, target), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert temp_files(target) == []  # the next run cleared what SIGKILL left


def test_sigkill_during_predict_out_leaves_the_previous_output_intact(data: Path) -> None:
    model = data / "pm.npz"
    subprocess.run(fit_argv(data, model), check=True, capture_output=True, timeout=300)
    out = data / "pred.csv"
    argv = command("predict", model, data / "pairs.csv", "--out", out, "--quiet")
    started = time.monotonic()
    assert subprocess.run(argv, capture_output=True, timeout=300).returncode == 0
    duration = time.monotonic() - started
    previous = out.read_bytes()
    rng = np.random.default_rng(2)
    for round_ in range(ROUNDS_PREDICT):
        at = float(rng.uniform(0.2, 1.1) * duration) if round_ % 2 else None
        interrupt(argv, out, at=at, after_temp=float(rng.uniform(0, 0.2)), sig=signal.SIGKILL)
        assert out.read_bytes() == previous  # the same pairs: a complete new file has the same bytes
    assert subprocess.run(argv, capture_output=True, timeout=300).returncode == 0
    assert temp_files(out) == []


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 128 + signal.SIGTERM)])
def test_sigint_and_sigterm_during_save_unwind_cleanly(data: Path, sig: int, status: int) -> None:
    target = data / "s.npz"
    for _attempt in range(5):  # the signal must land during the write; retry the rare miss
        target.write_bytes(b"previous contents")
        proc = subprocess.Popen(fit_argv(data, target), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        start = time.monotonic()
        while proc.poll() is None and not temp_files(target) and time.monotonic() - start < 120:
            time.sleep(0.0005)
        if proc.poll() is None:
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            break
    assert proc.returncode == status, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert target.read_bytes() == b"previous contents"
    assert temp_files(target) == []
