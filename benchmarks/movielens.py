"""MovieLens 100K: factorise's rating models beside Surprise and LibMF, quality and speed in one run.

Run from the repository root (``pip install -e '.[bench]'`` brings the competitors)::

    .venv/bin/python benchmarks/movielens.py                     # all five folds
    .venv/bin/python benchmarks/movielens.py --readme README.md  # and rewrite the README's table
    .venv/bin/python benchmarks/movielens.py --quick             # u1 only, fewer methods

For each split ``i`` of ``--folds`` (default 1..5) every method trains on
``u{i}.base`` and predicts ``u{i}.test`` of the MovieLens 100K directory
``--data``. The table gives, per method: RMSE and MAE (the mean over folds of
each fold's value), the fit time per fold (median over folds), its ratio to
LibMF's (its own ``mf_train`` built as LibMF's Makefile builds it, see
``--libmf-build``; the Python binding's where that cannot be built), and the
peak resident memory. Each method runs in its own fresh
process, one untimed warm-up fit first (it compiles or loads the numba
kernels), BLAS pinned to one thread; see ``benchmarks/competitors.py`` for
exactly what is timed and measured and for the competitors' settings.

A competitor whose library is not installed is reported as not run (and
the script still succeeds), unless ``--require-competitors`` is given: then
the script exits with status 1. A method that fails also gives status 1
after the table, and the README is then left as it was. Bad input (a
missing data file, a README without the markers) gives status 2.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import logging
import math
import os
import platform
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

# the benchmarks folder is not a package: competitors.py is imported from beside this file
from competitors import (
    BENCH_INSTALL,
    LIBMF_PARAMS,
    Fold,
    MethodRun,
    MethodSpec,
    competitor_specs,
    libmf_native_job,
    read_movielens_fold,
    run_isolated,
)
from libmf_native import BUILDS, DEFAULT_CACHE, LibMFSourceUnavailable, build_libmf_driver, fetch_libmf_source

logger = logging.getLogger("movielens")

#: The "factorise default" row: the model class and keyword arguments that
#: ``factorise fit`` uses when given no options. Keep this equal to the CLI's default.
FACTORISE_DEFAULT_MODEL: tuple[str, dict[str, Any]] = ("BiasedMF", {})

#: Other factorise models (skipped by ``--quick``): a class name with its constructor defaults, or a class name and
#: the keyword arguments that differ from them.
FACTORISE_OTHER_MODELS: tuple[str | tuple[str, dict[str, Any]], ...] = (
    "BiasedMF", "ALS", "SoftImpute", "Baseline", "BayesianMF", ("BayesianMF", {"rank": 10, "n_samples": 200}),
    ("BayesianMF", {"implicit": True}),
)  # fmt: skip

README_START = "<!-- movielens-benchmark:start -->"
README_END = "<!-- movielens-benchmark:end -->"

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"


class FactoriseJob:
    """A factorise rating model on one fold (building the ``Ratings`` is not timed).

    Parameters
    ----------
    fold : Fold
    params : dict
        ``{"model": class name in factorise.models, "kwargs": constructor keyword arguments}``.
    """

    def __init__(self, fold: Fold, params: dict[str, Any]) -> None:
        import factorise.models
        from factorise.data import Ratings

        self.fold = fold
        self.train = Ratings.from_raw(fold.train_users, fold.train_items, fold.train_ratings)
        self.model = getattr(factorise.models, params["model"])(**params["kwargs"])

    def fit(self) -> None:
        """``model.fit(ratings)``."""
        self.model.fit(self.train)

    def predict(self) -> np.ndarray:
        """``model.predict(users, items)`` on the raw ids of the test pairs."""
        return np.asarray(self.model.predict(self.fold.test_users, self.fold.test_items), dtype=np.float64)


def factorise_job(fold: Fold, params: dict[str, Any]) -> FactoriseJob:
    """A :class:`FactoriseJob` (the factory :func:`competitors.run_isolated` calls in its child)."""
    return FactoriseJob(fold, params)


def _call(name: str, kwargs: dict[str, Any]) -> str:
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in kwargs.items())})"


def factorise_rows(*, quick: bool) -> list[MethodSpec | MethodRun]:
    """factorise's rows in table order: a spec to run, or a run that cannot happen (no such model class)."""
    import factorise.models

    default_name, default_kwargs = FACTORISE_DEFAULT_MODEL
    rows = [(f"factorise default: {_call(default_name, default_kwargs)}", default_name, default_kwargs)]
    if not quick:
        others = [(entry, {}) if isinstance(entry, str) else entry for entry in FACTORISE_OTHER_MODELS]
        others = [(name, kwargs) for name, kwargs in others if (name, kwargs) != (default_name, default_kwargs)]
        rows += [(f"factorise {_call(name, kwargs)}", name, kwargs) for name, kwargs in others]
    out: list[MethodSpec | MethodRun] = []
    for position, (label, name, kwargs) in enumerate(rows):
        if not hasattr(factorise.models, name):
            out.append(MethodRun(label, error=f"unavailable: factorise.models has no {name}"))
            continue
        settings = "what `factorise fit` does by default" if position == 0 else "constructor defaults"
        if position and kwargs:
            settings = f"constructor defaults but {_call(name, kwargs).partition('(')[2].rstrip(')')}"
        out.append(MethodSpec(label, factorise_job, {"model": name, "kwargs": kwargs}, settings))
    return out


def native_libmf_row(build: str, cache: Path, directory: Path) -> MethodSpec | MethodRun:
    """LibMF's own ``mf_train`` through ``benchmarks/libmf_driver.cpp``, built into ``directory``.

    ``build`` as in ``benchmarks/scale.py``: ``"makefile"`` compiles LibMF's
    source (downloaded once into ``cache``) with its Makefile's flags (SSE,
    OpenMP, ``-march=native``), ``"binding"`` links the installed binding's
    library (no download; no SIMD, no OpenMP). The settings are the binding
    row's (:data:`competitors.LIBMF_PARAMS`: ``k``, iterations and threads
    passed, the rest ``mf_get_default_param()``'s equal values). A missing g++,
    binding or source distribution makes the row unavailable, not failed.
    """
    label = BUILDS[build]
    params = {"k": LIBMF_PARAMS["k"], "iters": LIBMF_PARAMS["nr_iters"], "threads": LIBMF_PARAMS["nr_threads"]}
    try:
        source = fetch_libmf_source(cache) if build == "makefile" else None
        binary = build_libmf_driver(directory, build, source=source)
    except (FileNotFoundError, LibMFSourceUnavailable) as exc:
        return MethodRun(label, error=f"unavailable: {exc}")
    settings = (
        f"our driver `benchmarks/libmf_driver.cpp` calling `mf_train`: k={params['k']}, "
        f"{params['iters']} iterations, {params['threads']} thread, and `mf_get_default_param()`'s L2 0.1 on P and "
        "Q, no L1, eta=0.1 (the binding row's settings); the time and peak are the driver's own measurement of "
        "the `mf_train` call; predictions clipped to the rating range"
    )
    return MethodSpec(label, libmf_native_job, {**params, "binary": str(binary)}, settings, is_reference=True)


# ------------------------------------------------------------------------ report
def fold_metrics(run: MethodRun, folds: Sequence[Fold]) -> tuple[float, float]:
    """Mean over folds of each fold's RMSE and MAE."""
    rmse, mae = per_fold_metrics(run, folds)
    return float(np.mean(rmse)), float(np.mean(mae))


def per_fold_metrics(run: MethodRun, folds: Sequence[Fold]) -> tuple[list[float], list[float]]:
    """Each fold's RMSE and MAE, in fold order."""
    rmse, mae = [], []
    for predictions, fold in zip(run.predictions, folds, strict=True):
        if predictions.shape != fold.test_ratings.shape:
            raise ValueError(
                f"{run.label}: {predictions.shape[0]} predictions for {fold.test_ratings.shape[0]} test ratings"
            )
        if not np.isfinite(predictions).all():
            raise ValueError(f"{run.label}: non-finite predictions on {fold.name}")
        error = predictions - fold.test_ratings
        rmse.append(float(np.sqrt(np.mean(error**2))))
        mae.append(float(np.mean(np.abs(error))))
    return rmse, mae


def _mib(n_bytes: int | None, digits: int = 0) -> str:
    return "–" if n_bytes is None else f"{n_bytes / 2**20:.{digits}f}"


def render_table(runs: Sequence[MethodRun], specs: dict[str, MethodSpec], folds: Sequence[Fold]) -> str:
    """The markdown table, its legend and the notes on methods that did not run."""
    reference = next((r for r in runs if specs.get(r.label, None) and specs[r.label].is_reference), None)
    reference_seconds = reference.median_fit_seconds if reference is not None and reference.error is None else math.nan
    reference_label = reference.label if reference is not None else "LibMF"
    if "mf_train" in reference_label:
        reference_label = "mf_train"
    elif "binding" in reference_label:
        reference_label = "LibMF binding"
    columns = ["method", "RMSE", "MAE", "fit s/fold (median)", f"fit time / {reference_label}"]
    per_fold = f"RMSE of {', '.join(f.name for f in folds)}"
    header = "| " + " | ".join([*columns, "peak RSS, MiB (fit's increase)", per_fold]) + " |"
    lines = [header, "|---|---|---|---|---|---|---|"]
    notes = []
    for run in runs:
        if run.error is not None:
            lines.append(f"| {run.label} | – | – | – | – | – | – |")
            notes.append(f"- {run.label}: not run ({run.error})")
            continue
        rmse, mae = fold_metrics(run, folds)
        each = " / ".join(f"{value:.4f}" for value in per_fold_metrics(run, folds)[0])
        seconds = run.median_fit_seconds
        ratio = f"{seconds / reference_seconds:.2f}" if math.isfinite(reference_seconds) else "n/a"
        memory = _mib(run.peak_rss_bytes)
        if run.fit_increase_bytes is not None:
            memory += f" (+{_mib(run.fit_increase_bytes, 1)})"
        lines.append(f"| {run.label} | {rmse:.4f} | {mae:.4f} | {seconds:.3f} | {ratio} | {memory} | {each} |")
    fold_names = ", ".join(f.name for f in folds)
    legend = [
        "",
        (
            f"MovieLens 100K, train on `uN.base`, test on `uN.test` for N in {fold_names}; RMSE and MAE are means "
            "over the folds. Fit time: the fit call only, median over the folds, after an untimed warm-up fit, "
            "BLAS on one thread, each method in its own process. Peak RSS: that process's high-water mark during "
            "a fit (interpreter, libraries, data and model), and in brackets its growth during the fit (a lower "
            "bound: memory the allocator already held is reused without growth)."
        ),
        "",
    ]
    for label, spec in specs.items():
        legend.append(f"- {label}: {spec.settings}")
    legend += ["", f"Versions: {_versions()}."]
    if notes:
        legend += ["", "Not run:", *notes]
    return "\n".join(lines + legend)


def _versions() -> str:
    parts = [f"Python {platform.python_version()}"]
    for dist in ("factorise", "numpy", "numba", "scikit-surprise", "libmf", "myfm"):
        try:
            parts.append(f"{dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            parts.append(f"{dist} not installed")
    parts.append(f"{os.cpu_count()} CPUs")
    return ", ".join(parts)


def replace_between_markers(text: str, block: str, *, source: str = "README") -> str:
    """``text`` with everything between the benchmark markers replaced by ``block``.

    Raises
    ------
    ValueError
        If the markers are missing, repeated, or in the wrong order.
    """
    starts, ends = text.count(README_START), text.count(README_END)
    if starts != 1 or ends != 1:
        raise ValueError(
            f"{source}: must contain each of {README_START} and {README_END} exactly once; "
            f"found {starts} and {ends}"
        )
    head, rest = text.split(README_START)
    if README_END not in rest:
        raise ValueError(f"{source}: {README_END} comes before {README_START}")
    _, tail = rest.split(README_END)
    return f"{head}{README_START}\n{block.strip()}\n{README_END}{tail}"


def rewrite_readme(path: Path, block: str) -> None:
    """Put ``block`` between the markers of the file at ``path``, atomically."""
    from factorise.io import atomic_write

    text = path.read_text(encoding="utf-8")
    new_text = replace_between_markers(text, block, source=str(path))
    with atomic_write(path, "w") as handle:
        handle.write(new_text)


# -------------------------------------------------------------------------- main
def _parse_folds(text: str) -> list[str]:
    names = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit():
            raise argparse.ArgumentTypeError(f"--folds must be comma-separated split numbers like 1,2,3; got {text!r}")
        names.append(f"u{part}")
    return names


def _positive_seconds(text: str) -> float:
    """``--method-timeout``'s value: a number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0; got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help=f"MovieLens 100K directory (default {DEFAULT_DATA})"
    )
    parser.add_argument("--folds", type=_parse_folds, default=None, help="splits to run (default 1,2,3,4,5)")
    parser.add_argument("--quick", action="store_true", help="u1 only; factorise's default and the fast competitors")
    parser.add_argument("--no-svdpp", action="store_true", help="leave out Surprise's SVD++ (about 15 s a fold)")
    parser.add_argument(
        "--myfm-implicit", action="store_true", help="add myFM with implicit features (about 190 s a fold)"
    )
    parser.add_argument("--readme", type=Path, help="rewrite the table between the benchmark markers of this file")
    parser.add_argument(
        "--require-competitors", action="store_true", help="exit with status 1 if a competitor is not installed"
    )
    parser.add_argument(
        "--libmf-build",
        choices=(*BUILDS, "none"),
        default="makefile",
        help="LibMF's own mf_train row: 'makefile' (its source from PyPI, LibMF's Makefile flags; the default), "
        "'binding' (the installed binding's library: no download, no SIMD, no OpenMP) or 'none' (no such row)",
    )
    parser.add_argument(
        "--method-timeout",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="kill a method's child process after this long and run it once more (default: no limit)",
    )
    parser.add_argument(
        "--libmf-cache",
        type=Path,
        default=DEFAULT_CACHE,
        help=f"where LibMF's source distribution is downloaded once and reused (default {DEFAULT_CACHE})",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)

    names = args.folds or (["u1"] if args.quick else [f"u{i}" for i in range(1, 6)])
    fold_list = ",".join(name[1:] for name in names)
    try:
        if args.readme is not None:
            replace_between_markers(args.readme.read_text(encoding="utf-8"), "", source=str(args.readme))
        folds = [read_movielens_fold(args.data, name) for name in names]
    except (OSError, ValueError) as exc:
        print(f"movielens.py: error: {exc}", file=sys.stderr)
        return 2

    rows = factorise_rows(quick=args.quick)
    rows += competitor_specs(svd_tuned=not args.quick, svdpp=not (args.quick or args.no_svdpp),
                             myfm_implicit=args.myfm_implicit)  # fmt: skip
    build_folder = tempfile.TemporaryDirectory(prefix="movielens-libmf-")
    if args.libmf_build != "none":
        native = native_libmf_row(args.libmf_build, args.libmf_cache, Path(build_folder.name))
        if isinstance(native, MethodSpec):  # the reference of the time ratios is then this build, not the binding
            rows = [replace(r, is_reference=False) if isinstance(r, MethodSpec) else r for r in rows]
        rows.append(native)
    specs = {row.label: row for row in rows if isinstance(row, MethodSpec)}
    runs: list[MethodRun] = []
    for row in rows:
        if isinstance(row, MethodRun):
            logger.warning("%s: %s", row.label, row.error)
            runs.append(row)
            continue
        logger.info("running %s on %s", row.label, ", ".join(names))
        run = run_isolated(row, folds, timeout=args.method_timeout)
        if run.error is not None and run.error.startswith("timed out"):
            # a hung child (seen once from the LibMF binding, not reproduced) gets one fresh try
            logger.warning("%s: %s; running it once more in a fresh process", row.label, run.error)
            run = run_isolated(row, folds, timeout=args.method_timeout)
        if run.error is not None:
            logger.warning("%s: %s", row.label, run.error)
        runs.append(run)

    table = render_table(runs, specs, folds)
    print(table)
    failed = [r.label for r in runs if r.error is not None and not r.error.startswith("unavailable")]
    absent = [r.label for r in runs if r.error is not None and r.label in specs and specs[r.label].module]
    if failed:
        logger.error("failed: %s%s", ", ".join(failed), "; the README was not rewritten" if args.readme else "")
        return 1
    if args.require_competitors and absent:
        logger.error("--require-competitors: %s not installed (%s)", ", ".join(absent), BENCH_INSTALL)
        return 1
    if args.readme is not None:
        flags = [("--quick", args.quick), ("--no-svdpp", args.no_svdpp), (f"--folds {fold_list}", args.folds)]
        command = " ".join(["python benchmarks/movielens.py"] + [flag for flag, given in flags if given])
        rewrite_readme(args.readme, f"{table}\n\nMeasured with `{command}`.")
        logger.info("rewrote the table in %s", args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
