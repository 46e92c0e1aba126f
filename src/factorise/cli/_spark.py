"""``--engine spark`` for ``factorise fit`` and ``factorise evaluate``: the fit runs on a Spark cluster.

``--algo sgd`` becomes :class:`factorise.spark.SparkBiasedMF` and ``--algo
als`` :class:`factorise.spark.SparkALS`, with the same model flags; Spark
reads RATINGS itself (a path or any Hadoop URI: Parquet, CSV with a header,
TSV/MovieLens ``.data``), so the local reading flags do not apply, except
``--columns`` with three column names. ``--save MODEL.npz`` collects the
fitted model into the local format (``factorise predict`` and ``recommend``
read it); any other ``--save`` path is a Spark model directory (Parquet,
written by the cluster).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["add_engine_options", "check_engine_flags", "evaluate_spark", "fit_spark"]

#: The Spark model of each ``--algo`` it runs.
SPARK_ALGORITHMS = {"sgd": "SparkBiasedMF", "als": "SparkALS"}


def _conf(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"must be KEY=VALUE (a Spark setting); got {text!r}")
    return key.strip(), value


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    """``--engine``, ``--master`` and ``--spark-conf``."""
    group = parser.add_argument_group("engine")
    group.add_argument(
        "--engine", choices=["local", "spark"], default="local", help="where the fit runs (default: local)"
    )
    group.add_argument(
        "--master",
        metavar="URL",
        help="Spark master with --engine spark: local[N], spark://HOST:PORT, yarn, ... (default: local[*])",
    )
    group.add_argument(
        "--spark-conf",
        type=_conf,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a Spark setting with --engine spark, e.g. --spark-conf spark.executor.memory=4g (repeatable)",
    )


def check_engine_flags(args: argparse.Namespace) -> None:
    """Refuse Spark flags without ``--engine spark``."""
    if args.engine != "spark":
        for flag, given in (("--master", args.master), ("--spark-conf", args.spark_conf)):
            if given:
                raise ValueError(f"{flag} applies to --engine spark only; add --engine spark or drop {flag}")


def _is_uri(path: str | None) -> bool:
    return path is not None and "://" in path and not path.startswith("file://")


def _columns(args: argparse.Namespace) -> dict[str, str]:
    """``--columns U,I,R`` as column names (Spark reads by name)."""
    if args.columns is None:
        return {}
    names = list(args.columns)
    if len(names) < 3 or any(isinstance(n, int) or re.fullmatch(r"\d+", str(n)) for n in names[:3]):
        raise ValueError(
            f"--columns with --engine spark must name the user, item and rating columns of the header "
            f"(e.g. --columns userId,movieId,rating); got {','.join(map(str, names))}"
        )
    return {"user_col": str(names[0]), "item_col": str(names[1]), "rating_col": str(names[2])}


def _refuse(args: argparse.Namespace, flags: list[tuple[str, object]]) -> None:
    for flag, value in flags:
        if value:
            raise ValueError(f"{flag} does not apply to --engine spark")


def _model(args: argparse.Namespace) -> Any:
    from factorise.cli._ratings import build_model

    name = SPARK_ALGORITHMS.get(args.algo)
    if name is None:
        raise ValueError(
            f"--engine spark runs --algo {' or '.join(SPARK_ALGORITHMS)} (SparkBiasedMF, SparkALS); got --algo {args.algo}"
        )
    import factorise.spark as engine

    model = build_model(args, cls=getattr(engine, name))
    if _columns(args):
        model.set_params(**_columns(args))
        model.validate_params()
    return model


def _session(args: argparse.Namespace) -> Any:
    from factorise.spark import spark_session

    return spark_session(args.master or "local[*]", dict(args.spark_conf))


def fit_spark(args: argparse.Namespace) -> None:
    """``factorise fit RATINGS --engine spark``."""
    from factorise.cli._common import check_paths
    from factorise.cli._progress import history_progress

    _refuse(
        args,
        [
            ("--validation-fraction", args.validation_fraction),
            ("--max-memory", args.max_memory),
            ("--device", getattr(args, "device", None)),
            ("--sep", args.sep),
            ("--header/--no-header", args.header is not None),
            ("--format", args.format),
        ],
    )
    outputs = [("--plot", args.plot)]
    if args.save and not _is_uri(args.save):
        outputs.append(("--save", args.save))
    inputs = [(flag, p) for flag, p in (("RATINGS", args.ratings), ("--validation", args.validation)) if not _is_uri(p)]
    check_paths(outputs, inputs)
    if args.plot:
        from factorise.plot import require_matplotlib

        require_matplotlib()
    model = _model(args)
    spark = _session(args)
    steps = model.get_params()["n_epochs"]
    with history_progress(steps, quiet=args.quiet, description=f"{args.algo} on Spark") as callback:
        start = time.perf_counter()
        model.fit(args.ratings, validation=args.validation, callback=callback, spark=spark)
        seconds = time.perf_counter() - start
    if args.save:
        if str(args.save).endswith(".npz"):
            model.to_local().save(args.save)
        else:
            model.save(args.save)
    if args.plot:
        from factorise.plot import plot_learning_curves

        plot_learning_curves(model.history_, args.plot, title=f"factorise fit --engine spark --algo {args.algo}")
    last = model.history_[-1]
    summary = {
        "ratings": str(args.ratings),
        "engine": "spark",
        "master": spark.sparkContext.master,
        "n_ratings": model.n_ratings_,
        "algo": args.algo,
        "params": {k: v for k, v in model.get_params().items()},
        "epochs_run": model.n_epochs_,
        "train_rmse": last.get("train_rmse"),
        "validation_rmse": last.get("valid_rmse"),
        "fit_seconds": seconds,
        "saved": args.save,
    }
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
        return
    out = sys.stdout.write
    out(
        f"fitted {type(model).__name__} (--algo {args.algo}, --engine spark on {summary['master']}) on "
        f"{summary['n_ratings']:,} ratings in {seconds:.2f} s\n"
    )
    out(f"  epochs run: {model.n_epochs_}\n")
    out(f"  train RMSE: {summary['train_rmse']:.4f}\n")
    if summary["validation_rmse"] is not None:
        out(f"  validation RMSE: {summary['validation_rmse']:.4f} at the last epoch\n")
    out(f"  model saved to {args.save}\n" if args.save else "  (model not saved: add --save MODEL)\n")


def evaluate_spark(args: argparse.Namespace) -> None:
    """``factorise evaluate RATINGS --test TEST --engine spark`` (or ``--movielens-splits DIR``)."""
    from factorise.cli._common import check_paths

    _refuse(
        args,
        [
            ("--max-memory", args.max_memory),
            ("--device", getattr(args, "device", None)),
            ("--plot", args.plot),
            ("--sep", args.sep),
            ("--header/--no-header", args.header is not None),
            ("--format", args.format),
        ],
    )
    if args.movielens_splits:
        if args.ratings is not None:
            raise ValueError("give either RATINGS or --movielens-splits DIR, not both")
        folder = Path(args.movielens_splits)
        folds = [(str(folder / f"u{j}.base"), str(folder / f"u{j}.test")) for j in range(1, 6)]
    elif args.test is None or args.ratings is None:
        raise ValueError("--engine spark evaluates RATINGS --test TEST or --movielens-splits DIR (no random folds)")
    else:
        folds = [(args.ratings, args.test)]
    check_paths([], [(label, p) for fold in folds for label, p in zip(("RATINGS", "--test"), fold) if not _is_uri(p)])
    prototype = _model(args)
    spark = _session(args)
    rows = []
    for j, (train, test) in enumerate(folds, start=1):
        model = type(prototype)(**prototype.get_params())
        model.fit(train, spark=spark)
        from factorise.spark import _prepare

        columns = _prepare.Columns(model.user_col, model.item_col, model.rating_col)
        scores = model.evaluate(_prepare.read_frame(spark, test, columns, name="--test"))
        rows.append({"fold": j, "rmse": scores["rmse"], "mae": scores["mae"], "n_test": scores["n"]})
    mean = {key: sum(r[key] for r in rows) / len(rows) for key in ("rmse", "mae")}
    if args.json:
        sys.stdout.write(json.dumps({"engine": "spark", "algo": args.algo, "folds": rows, "mean": mean}, indent=2) + "\n")
        return
    out = sys.stdout.write
    out(f"{type(prototype).__name__} (--algo {args.algo}, --engine spark): {len(rows)} fold(s)\n")
    out("fold   RMSE     MAE      test ratings\n")
    for r in rows:
        out(f"{r['fold']:<6} {r['rmse']:.4f}   {r['mae']:.4f}   {r['n_test']:,}\n")
    out(f"\nmean RMSE {mean['rmse']:.4f}, MAE {mean['mae']:.4f} (ranking metrics: run without --engine spark)\n")
