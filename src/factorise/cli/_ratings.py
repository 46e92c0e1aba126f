"""Sub-commands on rating data: fit, predict, recommend, evaluate."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import logging
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from factorise.cli._common import about, add_read_options, check_paths, given_read_flags, note, read_options, reading
from factorise.cli._memory import check_fit_memory, check_read_memory, release_free_memory
from factorise.cli._progress import history_progress
from factorise.cli._spark import add_engine_options, check_engine_flags, evaluate_spark, fit_spark
from factorise.io import atomic_write

__all__ = ["ALGORITHMS", "DEFAULT_ALGORITHM", "add_commands"]

logger = logging.getLogger(__name__)

#: ``--algo`` names and the model classes they build (imported when used).
ALGORITHMS: dict[str, str] = {
    "sgd": "BiasedMF",
    "als": "ALS",
    "softimpute": "SoftImpute",
    "bayes": "BayesianMF",
    "baseline": "Baseline",
}
#: The algorithm ``factorise fit`` and ``factorise evaluate`` use by default.
DEFAULT_ALGORITHM = "sgd"



def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


# ------------------------------------------------------------------ options
def _parse_value(text: str) -> Any:
    lowered = text.strip().lower()
    if lowered in ("none", "null"):
        return None
    if lowered in ("true", "false"):
        return lowered == "true"
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def _param(text: str) -> tuple[str, str]:
    """``-p NAME=VALUE``: the name and the value's text (parsed and validated with the model's parameters)."""
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"must look like NAME=VALUE; got {text!r}")
    return name.strip(), value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1); got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a number in (0, 1); got {text!r}")
    return value


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number; got {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number; got {text!r}")
    return value


_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def _size(text: str) -> int:
    """Parse a memory size such as ``2G``, ``500M``, ``1.5GB`` or a plain number of bytes."""
    match = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"must be a size such as 2G, 500M or 1.5GB; got {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2)])


def _add_model_options(parser: argparse.ArgumentParser, types: dict[str, Any]) -> None:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--algo",
        choices=sorted(ALGORITHMS),
        default=DEFAULT_ALGORITHM,
        help=f"algorithm (default: {DEFAULT_ALGORITHM})",
    )
    # These flags are shorthands for model parameters: their values are checked by the model's own
    # validation, exactly as the same value given with -p would be.
    group.add_argument("--rank", "-k", metavar="K", help="rank of the factors (default: the model's)")
    group.add_argument("--epochs", metavar="N", help="epochs or iterations (default: the model's)")
    group.add_argument("--lr", metavar="LR", help="learning rate (sgd)")
    group.add_argument("--reg", metavar="R", help="regularization (sgd, als, baseline)")
    group.add_argument("--seed", metavar="S", help="random seed (default: fresh entropy)")
    group.add_argument("--threads", metavar="N", help="threads for the parallel kernels (default: all cores)")
    group.add_argument(
        "--device",
        metavar="DEVICE",
        help="sgd, als: cpu (numba, default), torch-cpu, cuda or cuda:N (the torch engine)",
    )
    group.add_argument(
        "--max-memory",
        type=_size,
        metavar="SIZE",
        help="refuse, before reading, data whose fit would need more memory than SIZE (e.g. 2G, 500M)",
    )
    group.add_argument(
        "--param",
        "-p",
        type=_param,
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set any model parameter, e.g. -p init_std=0.05 (repeatable)",
    )


def build_model(args: argparse.Namespace, cls: type | None = None) -> Any:
    """The model that ``--algo`` and the model options describe, its parameters validated.

    The model flags (``--rank``, ``--epochs``, ...) and ``-p NAME=VALUE`` take one path: the text is
    parsed the same way and checked by the model's own parameter validation, and an error names the
    flag as the user typed it (``--epochs 0: `n_epochs` must be ...``).
    """
    if cls is None:
        import factorise.models as models

        cls = getattr(models, ALGORITHMS[args.algo])
    model = cls()
    names = model.get_params()
    settings: dict[str, Any] = {}
    given: dict[str, str] = {}  # parameter -> how the user gave it, for messages
    flags = {
        "--rank": ("rank", args.rank),
        "--epochs": (getattr(cls, "_steps_param", "n_epochs"), args.epochs),
        "--lr": ("learning_rate", args.lr),
        "--reg": ("regularization", args.reg),
        "--seed": ("random_state", args.seed),
        "--threads": ("n_threads", args.threads),
        "--device": ("device", getattr(args, "device", None)),
    }
    for flag, (name, text) in flags.items():
        if text is None:
            continue
        if name not in names:
            raise ValueError(f"{flag} does not apply to --algo {args.algo} (its parameters: {', '.join(names)})")
        settings[name] = _parse_value(text)
        given[name] = f"{flag} {text}"
    for name, text in args.param:
        if name not in names:
            raise ValueError(
                f"-p {name}={text}: --algo {args.algo} has no parameter {name!r} (its parameters: {', '.join(names)})"
            )
        settings[name] = _parse_value(text)
        given[name] = f"-p {name}={text}"
    if "block_copy" in names and "block_copy" not in settings and getattr(args, "command", None) == "fit":
        # the command's ratings are its own: the fit may reorder them instead of copying them
        settings["block_copy"] = "in-place"
    model.set_params(**settings)
    try:
        model.validate_params()
    except (TypeError, ValueError) as exc:
        named = re.search(r"`(\w+)`", str(exc))
        where = given.get(named.group(1)) if named else None
        if where is None:
            raise
        raise type(exc)(f"{where}: {exc}") from None
    return model


def fit_default_rank(model: Any, ratings: Any, args: argparse.Namespace) -> None:
    """Lower a *default* rank that the data cannot carry (an explicit --rank is kept, and checked)."""
    params = model.get_params()
    if args.rank is not None or "rank" not in params or not ratings.n_users:
        return
    limit = min(len(np.unique(ratings.users)), len(np.unique(ratings.items)))
    if params["rank"] > limit:
        note(args, f"the default rank {params['rank']} is more than these data allow; using rank {limit}")
        model.set_params(rank=limit)


def _read(args: argparse.Namespace, path: str, *, pairs: bool = False) -> Any:
    """Read a ratings (or pairs) file with the command's reading options; errors name the CLI flags."""
    from factorise.data import read_pairs, read_ratings

    with reading():
        return (read_pairs if pairs else read_ratings)(path, **read_options(args))


# ---------------------------------------------------------------------- fit
def fit(args: argparse.Namespace) -> None:
    """``factorise fit RATINGS``: fit a model, report, save, plot."""
    from factorise.evaluation import train_test_split

    check_engine_flags(args)
    if args.engine == "spark":
        return fit_spark(args)

    check_paths(
        [("--save", args.save), ("--plot", args.plot)],
        [("RATINGS", args.ratings), ("--validation", args.validation)],
    )
    if args.plot:
        from factorise.plot import require_matplotlib

        require_matplotlib()
    model = build_model(args)
    check_read_memory(args.ratings, args.max_memory)
    ratings = _read(args, args.ratings)
    validation = None
    train = ratings
    if args.validation:
        validation = _read(args, args.validation)
    elif args.validation_fraction:
        train, validation = train_test_split(ratings, args.validation_fraction, random_state=model.get_params()["random_state"])
    del ratings  # after a split, the parts are all that is needed
    if train.timestamps is not None:  # no model reads them: 8 bytes a rating less from here on
        train = dataclasses.replace(train, timestamps=None)
    release_free_memory()
    fit_default_rank(model, train, args)
    check_fit_memory(model, train, args.max_memory, validation=validation, source=args.ratings)
    steps = model.get_params()[type(model)._steps_param]
    with history_progress(steps, quiet=args.quiet, description=args.algo, n_ratings=len(train)) as cb, about(
        args.ratings
    ):
        start = time.perf_counter()
        model.fit(train, validation=validation, callback=cb)
        seconds = time.perf_counter() - start
    if args.save:
        model.save(args.save)
    if args.plot:
        from factorise.plot import plot_learning_curves

        plot_learning_curves(
            model.history_, args.plot, title=f"factorise fit --algo {args.algo}: {Path(args.ratings).name}"
        )
    last = model.history_[-1] if model.history_ else {}
    summary = {
        "ratings": str(args.ratings),
        "n_ratings": len(train),
        "n_users": len(model.user_ids_),
        "n_items": len(model.item_ids_),
        "algo": args.algo,
        "params": {k: v for k, v in model.get_params().items() if not isinstance(v, np.random.Generator)},
        "epochs_run": model.n_epochs_,
        "train_rmse": last.get("train_rmse"),
        "validation_rmse": last.get("valid_rmse"),
        "best_validation_rmse": min((h["valid_rmse"] for h in model.history_ if "valid_rmse" in h), default=None),
        "fit_seconds": seconds,
        "saved": args.save,
        "plot": args.plot,
    }
    if args.json:
        _out(json.dumps(summary, indent=2))
        return
    _out(
        f"fitted {type(model).__name__} (--algo {args.algo}) on {summary['n_ratings']:,} ratings, "
        f"{summary['n_users']:,} users, {summary['n_items']:,} items in {seconds:.2f} s"
    )
    _out("  " + ", ".join(f"{k}={v}" for k, v in summary["params"].items()))
    _out(f"  epochs run: {model.n_epochs_}")
    if summary["train_rmse"] is not None:
        _out(f"  train RMSE: {summary['train_rmse']:.4f}")
    if summary["best_validation_rmse"] is not None:
        _out(
            f"  validation RMSE: {summary['validation_rmse']:.4f} at the last epoch, "
            f"best {summary['best_validation_rmse']:.4f}"
        )
    if args.save:
        _out(f"  model saved to {args.save}")
    else:
        _out("  (model not saved: add --save MODEL)")
    if args.plot:
        _out(f"  learning curves drawn in {args.plot}")


# ------------------------------------------------------------------ predict
def predict(args: argparse.Namespace) -> None:
    """``factorise predict MODEL PAIRS --out OUT``."""
    from factorise.models import load_model

    check_paths([("--out", args.out)], [("MODEL", args.model), ("PAIRS", args.pairs)])
    model = load_model(args.model)
    users, items = _read(args, args.pairs, pairs=True)
    predictions = model.predict(users, items)
    known_users = model.user_ids_.index(users) >= 0
    known_items = model.item_ids_.index(items) >= 0
    with atomic_write(args.out) as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("user", "item", "prediction"))
        writer.writerows(zip(users.tolist(), items.tolist(), predictions.tolist()))
    cold = int((~(known_users & known_items)).sum())
    if args.json:
        _out(
            json.dumps(
                {"model": str(args.model), "pairs": str(args.pairs), "out": str(args.out),
                 "n_predictions": int(len(predictions)), "n_cold": cold},
                indent=2,
            )
        )
        return
    _out(f"wrote {len(predictions):,} predictions to {args.out}")
    if cold:
        _out(
            f"  {cold:,} pair(s) with a user or item unseen in training: predicted from the global "
            "mean plus the known biases"
        )


# ---------------------------------------------------------------- recommend
def _json_id(ids: Any, index: int, text: str) -> Any:
    """A raw id as JSON gives it: the model's own id (an int for integer ids), else the text typed."""
    if index >= 0:
        return ids.raw(np.array([index]))[0].item()
    if not ids.is_string and re.fullmatch(r"[+-]?[0-9]+", text.strip()):
        return int(text)
    return text


def recommend(args: argparse.Namespace) -> None:
    """``factorise recommend MODEL --user U [-n 10]``."""
    from factorise.models import load_model

    model = load_model(args.model)
    index = int(model.user_ids_.index([args.user])[0])
    known = index >= 0
    recs = model.recommend(args.user, args.n, exclude_rated=not args.include_rated)
    ranking = recs.ranking_scores
    low, high = model.rating_range_
    if args.json:
        _out(
            json.dumps(
                {
                    "user": _json_id(model.user_ids_, index, args.user),
                    "known_user": known,
                    "rating_range": [low, high],
                    "items": recs.items.tolist(),
                    "scores": recs.scores.tolist(),
                    "ranking_scores": np.asarray(ranking).tolist(),
                },
                indent=2,
            )
        )
        return
    if not known:
        note(args, f"user {args.user!r} is not in the training data: items ranked by item bias alone")
    _out(f"top {len(recs.items)} items for user {args.user}:")
    _out(f"{'rank':>4}  {'item':<20}{'predicted':>10}{'score':>10}")
    for rank, (item, predicted, score) in enumerate(zip(recs.items, recs.scores, ranking), start=1):
        _out(f"{rank:>4}  {str(item):<20}{predicted:>10.3f}{score:>10.3f}")
    if np.any(np.asarray(ranking) != recs.scores):
        _out(
            f"(ranked by score, the model's unclipped prediction; 'predicted' is clipped to the training "
            f"range [{low:g}, {high:g}])"
        )


# ----------------------------------------------------------------- evaluate
def evaluate(args: argparse.Namespace) -> None:
    """``factorise evaluate RATINGS (--folds K | --test TEST | --movielens-splits DIR)``."""
    from factorise.evaluation import KFold, cross_validate, movielens_folds

    check_engine_flags(args)
    if args.engine == "spark":
        return evaluate_spark(args)

    inputs = [("RATINGS", args.ratings), ("--test", args.test)]
    if args.movielens_splits and Path(args.movielens_splits).is_dir():
        inputs += [("--movielens-splits", f) for f in sorted(Path(args.movielens_splits).iterdir())]
    check_paths([("--plot", args.plot)], inputs)
    if args.movielens_splits and given_read_flags(args):
        raise ValueError(
            f"{', '.join(given_read_flags(args))} do(es) not apply to --movielens-splits (its files have a "
            "known layout)"
        )
    if args.plot:
        from factorise.plot import require_matplotlib

        require_matplotlib()
    model = build_model(args)
    k = args.k
    metrics = ("rmse", "mae", f"precision@{k}", f"recall@{k}", f"ndcg@{k}")
    if args.movielens_splits:
        if args.ratings is not None:
            raise ValueError("give either RATINGS or --movielens-splits DIR, not both")
        cv: Any = movielens_folds(args.movielens_splits)
        data = None
        source = str(args.movielens_splits)
    elif args.ratings is None:
        raise ValueError("RATINGS is required unless --movielens-splits DIR is given")
    elif args.test:
        check_read_memory(args.ratings, args.max_memory)
        cv = [(_read(args, args.ratings), _read(args, args.test))]
        fit_default_rank(model, cv[0][0], args)
        check_fit_memory(model, cv[0][0], args.max_memory, validation=cv[0][1], source=args.ratings)
        data = None
        source = f"{args.ratings} / {args.test}"
    else:
        check_read_memory(args.ratings, args.max_memory)
        data = _read(args, args.ratings)
        fit_default_rank(model, data, args)
        # each fold's fit holds the whole data beside its training part: count the data twice
        check_fit_memory(model, data, args.max_memory, validation=data, source=args.ratings)
        cv = KFold(args.folds, shuffle=True, random_state=model.get_params().get("random_state"))
        source = str(args.ratings)
    n_folds = len(cv) if isinstance(cv, list) or hasattr(cv, "__len__") else args.folds
    steps = model.get_params()[type(model)._steps_param]
    with history_progress(
        n_folds * steps, quiet=args.quiet, description=f"{args.algo} x{n_folds} folds"
    ) as cb, about(source):
        result = cross_validate(
            model,
            data,
            cv=cv,
            metrics=metrics,
            threshold=args.threshold,
            monitor_test=bool(args.plot),
            fit_callback=lambda fold, step, record: cb(step, record),
        )
    if args.plot:
        from factorise.plot import plot_learning_curves

        plot_learning_curves(
            {f"fold {j}": h for j, h in enumerate(result.histories, start=1)},
            args.plot,
            title=f"factorise evaluate --algo {args.algo}",
            validation_label="test",
        )
    if args.json:
        payload = result.to_dict()
        payload["source"] = source
        payload["algo"] = args.algo
        _out(json.dumps(payload, indent=2))
        return
    _out(f"{type(model).__name__} (--algo {args.algo}) on {source}: {result.n_folds} fold(s)")
    _out(str(result))
    mean = result.mean
    _out()
    _out(
        f"mean RMSE {mean['rmse']:.4f}, MAE {mean['mae']:.4f}, precision@{k} {mean[f'precision@{k}']:.4f}, "
        f"NDCG@{k} {mean[f'ndcg@{k}']:.4f}"
    )
    _out(
        f"(ranking: each user's top {k} among the items they did not rate in training; relevant = "
        f"a test rating >= {args.threshold:g})"
    )
    if args.plot:
        _out(f"learning curves (train and test RMSE per epoch) drawn in {args.plot}")


# ----------------------------------------------------------------- download
def download(args: argparse.Namespace) -> None:
    """``factorise download NAME``: fetch a MovieLens archive into the cache; print its directory."""
    from factorise.datasets import load_movielens

    try:
        data = load_movielens(args.name, cache_dir=args.cache_dir)
    except ConnectionError as exc:
        reason = str(exc).split(";")[0]
        raise ConnectionError(
            f"{reason}; without a connection, download the archive on another machine, unzip it, and "
            "pass its folder to the commands (e.g. factorise evaluate --movielens-splits ml-100k)"
        ) from None
    ratings = data.ratings
    if args.json:
        _out(
            json.dumps(
                {"name": args.name, "path": str(data.path), "n_ratings": len(ratings), "n_users": ratings.n_users,
                 "n_items": ratings.n_items, "splits": list(data.splits)},
                indent=2,
            )
        )
        return
    note(
        args,
        f"MovieLens {args.name}: {len(ratings):,} ratings, {ratings.n_users:,} users, "
        f"{ratings.n_items:,} items; splits: {', '.join(data.splits) or 'none'}",
    )
    _out(str(data.path))


def add_commands(sub: Any, types: dict[str, Any]) -> None:
    """Register fit, predict, recommend and evaluate on the sub-parser collection ``sub``."""
    p = sub.add_parser(
        "fit",
        help="fit a rating model and save it",
        description="Fit a rating model (biased MF by SGD, ALS, SoftImpute or the bias baseline) to a "
        "ratings file (user, item, rating[, timestamp]: CSV, TSV, '::', whitespace or Parquet).",
    )
    p.add_argument("ratings", metavar="RATINGS", help="ratings file")
    _add_model_options(p, types)
    v = p.add_mutually_exclusive_group()
    v.add_argument("--validation", metavar="FILE", help="held-out ratings: early stopping and validation RMSE")
    v.add_argument(
        "--validation-fraction",
        type=_fraction,
        metavar="F",
        help="hold out this fraction of RATINGS for validation (early stopping)",
    )
    p.add_argument("--save", metavar="MODEL", help="save the fitted model here (.npz)")
    p.add_argument("--plot", metavar="FILE.png", help="draw learning curves (train/validation RMSE per epoch)")
    add_engine_options(p)
    add_read_options(p)
    p.set_defaults(run=fit)

    p = sub.add_parser(
        "predict",
        help="predict ratings for (user, item) pairs",
        description="Predict ratings for the (user, item) pairs of PAIRS (any ratings file; extra "
        "columns ignored) and write CSV with the header user,item,prediction.",
    )
    p.add_argument("model", metavar="MODEL", help="a model saved by `factorise fit --save`")
    p.add_argument("pairs", metavar="PAIRS", help="file of user, item pairs")
    p.add_argument("--out", required=True, metavar="OUT", help="output CSV")
    add_read_options(p, what="pairs")
    p.set_defaults(run=predict)

    p = sub.add_parser(
        "recommend",
        help="top-n items for a user",
        description="The items with the highest predicted rating for a user, excluding those they rated.",
    )
    p.add_argument("model", metavar="MODEL", help="a model saved by `factorise fit --save`")
    p.add_argument("--user", required=True, help="raw user id")
    p.add_argument("-n", type=types["int1"], default=10, help="number of items (default: 10)")
    p.add_argument("--include-rated", action="store_true", help="also rank items the user rated")
    p.set_defaults(run=recommend)

    p = sub.add_parser(
        "evaluate",
        help="cross-validate a model: RMSE, MAE, precision/recall/NDCG@k",
        description="Evaluate a model by k-fold cross-validation, on a given test file, or on MovieLens "
        "100K's predefined u1-u5 splits; prints a per-fold table and the means.",
    )
    p.add_argument("ratings", metavar="RATINGS", nargs="?", help="ratings file (training data with --test)")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--folds", type=types["int2"], default=5, help="number of random folds (default: 5)")
    how.add_argument("--test", metavar="TEST", help="fit on RATINGS, evaluate on TEST")
    how.add_argument("--movielens-splits", metavar="DIR", help="MovieLens 100K directory: folds u1-u5")
    _add_model_options(p, types)
    p.add_argument("-K", "--top", dest="k", type=types["int1"], default=10, help="k of the ranking metrics (default: 10)")
    p.add_argument(
        "--threshold", type=_finite, default=4.0, help="a test rating >= this is relevant (default: 4)"
    )
    p.add_argument("--plot", metavar="FILE.png", help="draw each fold's train and test RMSE per epoch")
    add_engine_options(p)
    add_read_options(p)
    p.set_defaults(run=evaluate)

    p = sub.add_parser(
        "download",
        help="fetch a MovieLens data set into the cache and print its directory",
        description="Download the official GroupLens MovieLens archive once (verified by SHA-256) into "
        "the cache directory (--cache-dir, else $FACTORISE_DATA, else the user cache directory) and "
        "print the directory holding the files. MovieLens may not be redistributed: see its README.",
    )
    p.add_argument("name", choices=["100k", "1m", "latest-small"], help="which data set")
    p.add_argument("--cache-dir", metavar="DIR", help="cache directory")
    p.set_defaults(run=download)
