"""Speed and scale on one machine: the SGD kernel against C, BiasedMF against LibMF at 10M ratings, 100M ratings.

Run from the repository root (``pip install -e '.[bench]'`` brings LibMF; the
kernel comparison needs gcc)::

    .venv/bin/python benchmarks/scale.py                  # kernel vs C, then 10M ratings
    .venv/bin/python benchmarks/scale.py --only kernel    # one part: kernel, 10m or netflix
    .venv/bin/python benchmarks/scale.py --netflix        # also the 100M-rating (Netflix-shaped) run
    .venv/bin/python benchmarks/scale.py --quick          # tiny sizes (the smoke test)

Every table is printed in markdown under the command that produced it.
Absolute numbers depend on the machine; the ratios measured side by side in
one run are what to compare.

**1. Kernel vs C** (``--only kernel``; see ``benchmarks/kernel_vs_c.py``).
The compiled serial kernel :func:`factorise.kernels.sgd_ratings.sgd_ratings_epoch`
and ``benchmarks/sgd_loop.c`` (the same update as a plain C loop, built here by
gcc with ``-O3 -march=native``, once as is and once with the reassociation the
kernel is allowed) sweep the same planted ratings (4M; 100,000 users x 10,000
items) in the same random order from the same start,
at ranks 10 and 32, float32, one thread. Reported: updates (ratings visited)
per second, the kernel's time over each C build's (target: within 1.25x of the
faster C build) and agreement after one sweep (max |difference| of biases and
factors relative to the largest factor). A disagreement makes the script fail.

All data come from :func:`factorise.datasets.synthetic.synthetic_ratings`
(planted rank 10, Gaussian noise of standard deviation 0.5, seed 0, the
library's defaults otherwise: mean 3.5, user and item biases, Netflix-like
power-law popularity); its noise floor (the planted matrix's own held-out
RMSE) is printed beside the models'.

**2. 10M ratings** (``--only 10m``). 100,000 users x 10,000 items, 10% held
out at random. ``BiasedMF(rank=32, n_epochs=10,
n_threads=2)`` and LibMF (``libmf`` 0.9.2) at rank 32, 10 iterations, 2
threads fit the other 90%, and both again on 1 thread, so that serial is
compared with serial; the held-out RMSE, fit seconds (and their ratio to
LibMF's on as many threads) and peak resident memory are given for each,
each method in its own fresh process (see
``benchmarks/competitors.py``: one untimed warm-up fit, then the timed fit;
peak RSS is ``VmHWM`` reset just before the fit). If ``BiasedMF`` has no
``n_threads`` yet, the table says the parallel engine is unavailable and
shows factorise's serial fit only.

How the settings map. Both libraries run SGD in units of the ratings'
standard deviation ``sigma``. BiasedMF's ``learning_rate`` and
``regularization`` are in those units (in rating units its step is
``learning_rate / sigma`` and its penalty ``regularization * sigma`` per
visit, the same ``reg * |p_u|^2`` per-visit penalty LibMF uses); LibMF divides
the ratings by ``sigma`` and its ``lambda_p2``/``lambda_q2`` by ``sigma``, so
its lambdas are in rating units. So LibMF gets ``eta = learning_rate``,
``lambda_p2 = lambda_q2 = regularization * sigma`` (``sigma`` of the training
ratings), no L1 penalty. The step sizes still differ in kind: BiasedMF decays
its rate geometrically per epoch (``learning_rate_decay``) and fits biases;
LibMF scales ``eta`` per row and column by AdaGrad and has no biases (with
rank 32 its factors can absorb the planted mean and biases, which add at most
3 to the planted rank 10, but it has to learn them through the factors).

**3. 100M ratings** (``--netflix``; not run by default or in the tests).
480,189 users x 17,770 items, 100,480,507 planted ratings (the Netflix
prize's shape), ``BiasedMF`` for 2 epochs in this process: seconds per epoch
and peak RSS. It needs several GB of memory (about 1.2 GB for the ratings
alone); check ``free -g`` first.

Exit status: 0 on success; 1 if the kernel and C disagree, a method fails,
or gcc is missing for the kernel part; 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import inspect
import math
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

# beside this file (the benchmarks folder is not a package)
from competitors import (
    Fold,
    LibMFJob,
    MethodSpec,
    is_installed,
    run_isolated,
)
from kernel_vs_c import (
    AGREEMENT_TOLERANCE,
    C_VARIANTS,
    KernelResult,
    compare_kernels,
    compile_c_loop,
    gcc_version,
    kernel_problem,
    load_c_loop,
)

#: The numba kernel's time may be at most this many times the faster C build's.
KERNEL_TARGET_RATIO = 1.25

SEED = 0


@dataclass(frozen=True)
class Sizes:
    """Problem sizes of one run (full or ``--quick``)."""

    kernel_users: int
    kernel_items: int
    kernel_ratings: int
    kernel_ranks: tuple[int, ...]
    kernel_repeats: int
    users: int
    items: int
    ratings: int
    epochs: int
    netflix_users: int
    netflix_items: int
    netflix_ratings: int
    netflix_epochs: int


FULL = Sizes(
    kernel_users=100_000,
    kernel_items=10_000,
    kernel_ratings=4_000_000,
    kernel_ranks=(10, 32),
    kernel_repeats=3,
    users=100_000,
    items=10_000,
    ratings=10_000_000,
    epochs=10,
    netflix_users=480_189,
    netflix_items=17_770,
    netflix_ratings=100_480_507,
    netflix_epochs=2,
)

QUICK = Sizes(
    kernel_users=4_000,
    kernel_items=1_000,
    kernel_ratings=200_000,
    kernel_ranks=(10, 32),
    kernel_repeats=2,
    users=3_000,
    items=800,
    ratings=120_000,
    epochs=5,
    netflix_users=20_000,
    netflix_items=2_000,
    netflix_ratings=1_000_000,
    netflix_epochs=3,
)

#: Planted data: rank of the true matrix, noise standard deviation, held-out fraction.
PLANTED_RANK = 10
NOISE = 0.5
TEST_FRACTION = 0.1
MODEL_RANK = 32


# --------------------------------------------------------------------------- data
def planted(n_users: int, n_items: int, n_ratings: int, *, test_fraction: float = 0.0) -> Any:
    """Planted ratings from :func:`factorise.datasets.synthetic.synthetic_ratings` (its defaults otherwise).

    Rank :data:`PLANTED_RANK`, Gaussian noise of standard deviation
    :data:`NOISE`, seed :data:`SEED`; the library's Netflix-like popularity,
    mean 3.5 and user and item biases.
    """
    from factorise.datasets.synthetic import synthetic_ratings

    return synthetic_ratings(
        n_users, n_items, n_ratings, PLANTED_RANK, NOISE, random_state=SEED, test_fraction=test_fraction
    )


def as_fold(data: Any) -> Fold:
    """The training and held-out ratings of a ``SyntheticRatings`` as a :class:`Fold` (raw ids = indices)."""
    train, test = data.train, data.test
    return Fold(
        "planted",
        np.asarray(train.raw_users),
        np.asarray(train.raw_items),
        np.asarray(train.values, dtype=np.float64),
        np.asarray(test.raw_users),
        np.asarray(test.raw_items),
        np.asarray(test.values, dtype=np.float64),
    )


# ----------------------------------------------------------------------- helpers
def _gib(n_bytes: int | None) -> str:
    return "n/a" if n_bytes is None else f"{n_bytes / 2**30:.2f} GiB"


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _status_bytes(key: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (``VmRSS``, ``VmHWM``) in bytes; ``None`` off Linux."""
    try:
        with open("/proc/self/status", encoding="ascii") as handle:
            for line in handle:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset ``VmHWM`` to the current RSS (Linux >= 4.0); whether it could be."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as handle:
            handle.write("5")
    except OSError:
        return False
    return True


def _has_n_threads() -> bool:
    from factorise.models.sgd import BiasedMF

    return "n_threads" in inspect.signature(BiasedMF).parameters


def _print_header(command: str) -> None:
    print(f"Command: `{command}`")
    print()
    print(
        f"Machine: {_cpu_name()}, {os.cpu_count()} logical CPUs; Python {platform.python_version()}, "
        f"numpy {np.__version__}, numba {_version('numba')}, factorise {_version('factorise')}, "
        f"libmf {_version('libmf')}, gcc: {gcc_version() or 'not found'}"
    )
    print()


# ----------------------------------------------------------------- part 1: kernel
def run_kernel_part(sizes: Sizes, command: str) -> bool:
    """Print the kernel-vs-C table; return whether every agreement check passed."""
    print(f"## 1. Compiled SGD kernel vs a plain C loop (`{command}`)")
    print()
    if gcc_version() is None:
        print("gcc not found: the C loop cannot be built (install gcc). Kernel comparison not run.")
        print()
        return False
    data = planted(sizes.kernel_users, sizes.kernel_items, sizes.kernel_ratings)
    users, items, values = data.train.users, data.train.items, data.train.values
    n_users, n_items = data.train.n_users, data.train.n_items
    del data
    results: list[KernelResult] = []
    with tempfile.TemporaryDirectory(prefix="factorise-sgd-loop-") as tmp:
        loops = {
            label: load_c_loop(compile_c_loop(Path(tmp), flags, name=f"sgd_loop_{n}"))
            for n, (label, flags) in enumerate(C_VARIANTS.items())
        }
        for rank in sizes.kernel_ranks:
            problem = kernel_problem(users, items, values, n_users, n_items, rank)
            results.append(compare_kernels(problem, loops, repeats=sizes.kernel_repeats))
    labels = list(C_VARIANTS)
    print(
        f"{sizes.kernel_ratings:,} planted ratings, {sizes.kernel_users:,} users x {sizes.kernel_items:,} items "
        f"(`synthetic_ratings`, planted rank {PLANTED_RANK}), one sweep in a random order from the same start, "
        f"float32, one thread; best of {sizes.kernel_repeats} timed sweeps. Rates and initial factors as "
        "BiasedMF's first epoch."
    )
    print()
    head = ["rank", "numba kernel (updates/s)"]
    head += [f"{label} (updates/s)" for label in labels]
    head += [f"numba time / {label}" for label in labels]
    head += [f"agreement vs {label}" for label in labels]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in results:
        cells = [str(r.rank), f"{r.updates_per_second('numba') / 1e6:.1f}M"]
        cells += [f"{r.updates_per_second(label) / 1e6:.1f}M" for label in labels]
        cells += [f"{r.best('numba') / r.best(label):.2f}x" for label in labels]
        cells += [f"{r.relative_diff(label):.1e}" for label in labels]
        print("| " + " | ".join(cells) + " |")
    print()
    ok = all(r.agrees for r in results)
    worst = max(r.best("numba") / min(r.best(label) for label in labels) for r in results)
    print(
        "Agreement: max |difference| of biases and factors after one sweep, relative to the largest factor "
        f"(tolerance {AGREEMENT_TOLERANCE:g}; sums of squared errors within 1e-4 relative)."
    )
    print(f"agreement check: {'passed' if ok else 'FAILED (the C loop and the kernel differ: see sgd_loop.c)'}")
    verdict = "met" if worst <= KERNEL_TARGET_RATIO else "not met"
    print(
        f"kernel speed target (numba time <= {KERNEL_TARGET_RATIO}x the faster C build's, every rank): "
        f"{verdict} (worst {worst:.2f}x)"
    )
    print()
    sys.stdout.flush()
    return ok


# ------------------------------------------------------------------ part 2: 10M
class BiasedMFJob:
    """``factorise.models.BiasedMF(**params)`` on one fold (building the ``Ratings`` is not timed)."""

    def __init__(self, fold: Fold, params: dict[str, Any]) -> None:
        from factorise.data import Ratings
        from factorise.models.sgd import BiasedMF

        self.fold = fold
        self.ratings = Ratings.from_raw(fold.train_users, fold.train_items, fold.train_ratings)
        self.model = BiasedMF(**params)

    def fit(self) -> None:
        """``model.fit(ratings)``."""
        self.model.fit(self.ratings)

    def predict(self) -> np.ndarray:
        """``model.predict`` on the test pairs (clipped to the training range by the model)."""
        return np.asarray(self.model.predict(self.fold.test_users, self.fold.test_items), dtype=np.float64)


def biasedmf_job(fold: Fold, params: dict[str, Any]) -> BiasedMFJob:
    """BiasedMF with ``params`` on ``fold``."""
    return BiasedMFJob(fold, params)


def libmf_job(fold: Fold, params: dict[str, Any]) -> LibMFJob:
    """LibMF with ``params`` on ``fold`` (``benchmarks/competitors.py``)."""
    return LibMFJob(fold, params)


def libmf_params(fold: Fold, biasedmf_params: dict[str, Any], rank: int, epochs: int, threads: int) -> dict[str, Any]:
    """LibMF settings matching BiasedMF's (see the module docstring for the mapping)."""
    sigma = float(np.std(fold.train_ratings))
    reg = float(biasedmf_params["regularization"]) * sigma
    return {
        "fun": 0,  # P_L2_MFR: squared loss
        "k": rank,
        "nr_threads": threads,
        "nr_bins": max(26, 2 * threads + 1),
        "nr_iters": epochs,
        "lambda_p1": 0.0,
        "lambda_q1": 0.0,
        "lambda_p2": reg,
        "lambda_q2": reg,
        "eta": float(biasedmf_params["learning_rate"]),
        "do_nmf": False,
        "quiet": True,
        "copy_data": True,
    }


def run_10m_part(sizes: Sizes, command: str, threads: int) -> bool:
    """Print the BiasedMF-vs-LibMF table; return whether every method ran."""
    from factorise.models.sgd import BiasedMF

    print(f"## 2. {sizes.ratings:,} ratings: BiasedMF vs LibMF (`{command}`)")
    print()
    start = time.perf_counter()
    data = planted(sizes.users, sizes.items, sizes.ratings, test_fraction=TEST_FRACTION)
    made = time.perf_counter() - start
    fold, floor = as_fold(data), data.test_truth_rmse
    del data
    n_train = fold.train_ratings.shape[0]
    sigma = float(np.std(fold.train_ratings))
    defaults = BiasedMF().get_params()
    base = {"rank": MODEL_RANK, "n_epochs": sizes.epochs, "random_state": SEED}
    parallel = _has_n_threads()
    counts = sorted({threads, 1}, reverse=True)
    rows: list[tuple[MethodSpec, int]] = []  # (method, threads it runs)
    for n in counts if parallel else [1]:
        rows.append(
            (
                MethodSpec(
                    f"factorise BiasedMF, {n} thread{'s' if n > 1 else ''}",
                    biasedmf_job,
                    {**base, "n_threads": n} if parallel else base,
                    f"`BiasedMF(rank={MODEL_RANK}, n_epochs={sizes.epochs}"
                    + (f", n_threads={n})`" if parallel else ")`: the serial kernel")
                    + ", other settings default",
                ),
                n,
            )
        )
    for n in counts:
        lib = libmf_params(fold, defaults, MODEL_RANK, sizes.epochs, n)
        rows.append(
            (
                MethodSpec(
                    f"LibMF, {n} thread{'s' if n > 1 else ''}",
                    libmf_job,
                    lib,
                    f"k={MODEL_RANK}, nr_iters={sizes.epochs}, nr_threads={n}, eta={lib['eta']:g}, "
                    f"lambda_p2=lambda_q2={lib['lambda_p2']:.4g}, no L1",
                    "libmf",
                    "pip install -e '.[bench]', or pip install libmf",
                    is_reference=True,
                ),
                n,
            )
        )
    runs = [run_isolated(spec, [fold]) for spec, _ in rows]
    libmf_seconds = {
        n: run.fit_seconds[0] for (spec, n), run in zip(rows, runs) if spec.is_reference and run.error is None
    }

    print(
        f"Data: `synthetic_ratings({sizes.users}, {sizes.items}, {sizes.ratings}, rank={PLANTED_RANK}, "
        f"noise={NOISE}, test_fraction={TEST_FRACTION}, random_state={SEED})` (made in {made:.1f} s; the library's "
        f"defaults otherwise: mean 3.5, user and item biases, Netflix-like popularity): {n_train:,} training "
        f"ratings, {fold.test_ratings.shape[0]:,} held out at random. Training ratings' sd sigma = {sigma:.4f}. "
        f"The planted matrix itself scores RMSE {floor:.4f} on the held-out ratings (the noise floor)."
    )
    if not parallel:
        print()
        print(
            "Parallel engine unavailable: this BiasedMF has no `n_threads` parameter yet, so factorise ran its "
            f"serial kernel only (1 thread); LibMF ran with {' and '.join(map(str, counts))} thread(s)."
        )
    print()
    print(
        "| method | held-out RMSE | fit seconds | vs LibMF, same threads | ratings x epochs / s | peak RSS "
        "| fit increase |"
    )
    print("|---|---|---|---|---|---|---|")
    ok = True
    for (spec, n), run in zip(rows, runs):
        if run.error is not None:
            print(f"| {spec.label} | {run.error} | | | | | |")
            ok = ok and run.error.startswith("unavailable")
            continue
        predictions = run.predictions[0]
        rmse = float(np.sqrt(np.mean((predictions - fold.test_ratings) ** 2)))
        seconds = run.fit_seconds[0]
        ratio = f"{seconds / libmf_seconds[n]:.2f}x" if n in libmf_seconds else "n/a"
        rate = n_train * sizes.epochs / seconds
        print(
            f"| {spec.label} | {rmse:.4f} | {seconds:.2f} | {ratio} | {rate / 1e6:.1f}M | "
            f"{_gib(run.peak_rss_bytes)} | {_gib(run.fit_increase_bytes)} |"
        )
    print()
    print("Settings:")
    for spec, _ in rows:
        print(f"- {spec.label}: {spec.settings}")
    print(
        f"- BiasedMF defaults used: learning_rate={defaults['learning_rate']}, "
        f"regularization={defaults['regularization']} (units of sigma), "
        f"learning_rate_decay={defaults['learning_rate_decay']}, bias_learning_rate={defaults['bias_learning_rate']}; "
        f"LibMF gets eta = learning_rate and lambda = regularization * sigma (its lambdas are in rating units)."
    )
    print(
        "- Fit seconds: one timed fit after an untimed warm-up on up to 300,000 of the ratings (every kernel loaded), each method in its own process; "
        "BiasedMF's fit includes its per-epoch training RMSE, LibMF's its copy of the data. Peak RSS: the "
        "process's VmHWM at the end of the fit (reset just before it); fit increase: that minus the RSS "
        "before the fit."
    )
    print()
    sys.stdout.flush()
    return ok


# -------------------------------------------------------------- part 3: netflix
def run_netflix_part(sizes: Sizes, command: str, threads: int) -> bool:
    """Train BiasedMF on Netflix-shaped planted ratings in this process; print seconds per epoch and peak RSS."""
    from factorise.models.sgd import BiasedMF

    print(f"## 3. {sizes.netflix_ratings:,} ratings, {sizes.netflix_users:,} x {sizes.netflix_items:,} (`{command}`)")
    print()
    start = time.perf_counter()
    ratings = planted(sizes.netflix_users, sizes.netflix_items, sizes.netflix_ratings).train
    made = time.perf_counter() - start
    generation_peak = _status_bytes("VmHWM")
    parallel = _has_n_threads()
    params: dict[str, Any] = {"rank": MODEL_RANK, "n_epochs": sizes.netflix_epochs, "random_state": SEED}
    if parallel:
        params["n_threads"] = threads
    # warm-up: load the compiled kernels
    small = ratings.subset(np.arange(0, len(ratings), max(1, len(ratings) // 300_000)))
    BiasedMF(**{**params, "n_epochs": 1}).fit(small)
    del small

    stamps: list[float] = []
    rmse: list[float] = []

    def callback(step: int, record: dict[str, float]) -> None:
        stamps.append(time.perf_counter())
        rmse.append(record["train_rmse"])

    can_reset = _reset_peak_rss()
    before = _status_bytes("VmRSS")
    start = time.perf_counter()
    BiasedMF(**params).fit(ratings, callback=callback)
    total = time.perf_counter() - start
    peak = _status_bytes("VmHWM") if can_reset else None
    epochs = np.diff([start, *stamps])
    steady = statistics.median(epochs[1:]) if len(epochs) > 1 else math.nan
    setting = f"n_threads={threads}" if parallel else "serial kernel (no n_threads parameter yet)"
    print(
        f"Data: `synthetic_ratings({sizes.netflix_users}, {sizes.netflix_items}, {sizes.netflix_ratings}, "
        f"rank={PLANTED_RANK}, noise={NOISE}, random_state={SEED})`, all for training, made in {made:.0f} s "
        f"(process peak RSS while making them: {_gib(generation_peak)}). "
        f"Model: `BiasedMF(rank={MODEL_RANK}, n_epochs={sizes.netflix_epochs})`, {setting}."
    )
    print()
    print(
        "| ratings | fit seconds | first epoch (incl. setup) | seconds per later epoch | ratings / s (later epochs) "
        "| train RMSE per epoch | RSS before fit | peak RSS during fit |"
    )
    print("|---|---|---|---|---|---|---|---|")
    rate = f"{sizes.netflix_ratings / steady / 1e6:.1f}M" if math.isfinite(steady) else "n/a"
    print(
        f"| {sizes.netflix_ratings:,} | {total:.1f} | {epochs[0]:.1f} | {steady:.1f} | {rate} | "
        f"{', '.join(f'{x:.4f}' for x in rmse)} | {_gib(before)} | {_gib(peak)} |"
    )
    print()
    print("An epoch's seconds include its training-RMSE pass and the shuffle of the visiting order.")
    print()
    sys.stdout.flush()
    return True


# -------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; see the module docstring."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="scale.py", description="Speed and scale on one machine (see the module docstring)."
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes (a smoke test)")
    parser.add_argument("--only", choices=("kernel", "10m", "netflix"), help="run one part only")
    parser.add_argument("--netflix", action="store_true", help="also run the 100M-rating part (several GB)")
    parser.add_argument("--threads", type=int, default=2, help="threads for BiasedMF and LibMF (default 2)")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be >= 1; got {args.threads}")
    sizes = QUICK if args.quick else FULL
    parts = [args.only] if args.only else ["kernel", "10m", *(["netflix"] if args.netflix else [])]
    command = shlex.join(["python", "benchmarks/scale.py", *argv])
    _print_header(command)
    if not is_installed("libmf") and "10m" in parts:
        print("LibMF is not installed (pip install -e '.[bench]'): its row is reported as not run.")
        print()
    ok = True
    if "kernel" in parts:
        ok = run_kernel_part(sizes, command) and ok
    if "10m" in parts:
        ok = run_10m_part(sizes, command, args.threads) and ok
    if "netflix" in parts:
        ok = run_netflix_part(sizes, command, args.threads) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
