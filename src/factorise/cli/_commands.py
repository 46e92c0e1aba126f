"""The work of each sub-command: read input, call the library, print a report."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import numpy as np

from factorise.cli._common import about, check_paths
from factorise.cli._progress import epoch_progress
from factorise.experiments import DEFAULT_METHODS, METHODS, compare_methods, lab_experiment, optimum_ratio
from factorise.io import read_dense_matrix, write_dense_csv
from factorise.lab import gd_factorise_masked, sgd_factorise_masked
from factorise.svd import reconstruction_loss

__all__ = ["DEFAULT_METHODS", "METHODS", "demo", "compare", "complete"]

logger = logging.getLogger(__name__)


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _row(label: str, value: str) -> None:
    _out(f"   {label:<42}{value}")


def _warn(text: str) -> None:
    sys.stderr.write(f"factorise: warning: {text}\n")


def _matrix_rows(values: np.ndarray, marked: np.ndarray | None = None) -> list[str]:
    """Format a small matrix, with '*' after marked cells."""
    rows = []
    for r in range(values.shape[0]):
        cells = []
        for c in range(values.shape[1]):
            star = "*" if marked is not None and marked[r, c] else " "
            cells.append(f"{values[r, c]:8.4f}{star}")
        rows.append("[" + " ".join(cells) + " ]")
    return rows


def demo(args: argparse.Namespace) -> None:
    """``factorise demo``: the lab exercise on its embedded matrix."""
    with epoch_progress(2 * args.restarts * args.epochs, quiet=args.quiet, description="demo") as cb:
        result = lab_experiment(
            num_epochs=args.epochs,
            lr=args.lr,
            restarts=args.restarts,
            random_state=args.seed,
            callback=cb,
        )
    summary = result.to_dict()
    if args.json:
        _out(json.dumps(summary, indent=2))
        return

    A, M = result.A, result.M
    k = result.rank
    s = result.singular_values
    losses = result.sgd_losses
    best = result.best_sgd
    _out("factorise demo: the lab exercise")
    _out(
        f"  3x3 matrix, rank {k}; {args.epochs} epochs, lr {args.lr:g}, "
        f"{args.restarts} random starts (seed {args.seed})"
    )
    _out()
    _out("1. Factorise A ~ U V^T by per-entry SGD")
    for line in _matrix_rows(A):
        _out("     " + line)
    _out("   singular values of A: " + ", ".join(f"{x:.4f}" for x in s))
    _row("SGD loss ||A - UV^T||_F^2, best start", f"{losses[best]:.5f}")
    _row(
        f"SGD loss over the {losses.size} starts",
        f"median {np.median(losses):.5f}, range {losses.min():.5f} to {losses.max():.5f}",
    )
    _row(f"SVD optimum sum_(i>{k}) sigma_i^2", f"{result.svd_optimum:.5f}   (Eckart-Young)")
    ratio = optimum_ratio(float(losses[best]), result.svd_optimum)
    if ratio is not None:
        _row("ratio best SGD / optimum", f"{ratio:.4f}")
        _out(
            f"   The best start ends {100 * (ratio - 1):.2f}% above the optimum, which no rank-{k} "
            "factorisation can beat;"
        )
        _out("   starts that end further above it are still converging (try --epochs 3000).")
    _out()

    b = result.best_completion
    Ahat = result.completions[b]
    missing = ~M
    _out(f"2. Complete A from {int(M.sum())} of its {M.size} cells (masked SGD); * = missing cell")
    width = len(_matrix_rows(A)[0])
    _out("     " + "true A".ljust(width + 3) + "completed A_hat")
    for left, right in zip(_matrix_rows(A, missing), _matrix_rows(Ahat, missing)):
        _out(f"     {left}   {right}")
    _row("observed-cell error sum_M (A - A_hat)^2", f"{result.observed_errors[b]:.3g}")
    _row("full-matrix error ||A - A_hat||_F", f"{result.full_errors[b]:.4f}")
    for r, c in np.argwhere(missing):
        values = result.completions[:, r, c]
        _out(
            f"   cell ({r},{c}): true {A[r, c]:.4f}, predicted {Ahat[r, c]:.4f}; "
            f"over the {values.size} starts {values.min():.4f} to {values.max():.4f}"
        )
    _out(
        f"   The missing cells are not identifiable: a rank-{k} {A.shape[0]}x{A.shape[1]} matrix has "
        f"{result.degrees_of_freedom} degrees of freedom"
    )
    _out(
        f"   ({k}*({A.shape[0]}+{A.shape[1]}) - {k}^2) and only {int(M.sum())} cells are observed, so "
        "a whole family of rank-2"
    )
    _out("   matrices fits the observed cells exactly; which one SGD returns depends on its start.")


def _parse_methods(text: str) -> list[str]:
    methods = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise ValueError(f"--methods must be a comma-separated subset of {','.join(METHODS)}; got {text!r}")
    return methods


def compare(args: argparse.Namespace) -> None:
    """``factorise compare FILE --rank K``: every method against the SVD optimum."""
    methods = _parse_methods(args.methods)
    if args.out:
        check_paths(
            [("--out", f"{args.out}_{m}_{side}.csv") for m in methods for side in "UV"],
            [("FILE", args.file)],
        )
    matrix = read_dense_matrix(args.file)
    A = matrix.values
    if np.isnan(A).any():
        r, c = (int(i) for i in np.argwhere(np.isnan(A))[0])
        raise ValueError(
            f"{matrix.describe_cell(r, c)}: missing cell; `compare` needs a complete matrix "
            "(use `factorise complete` to fill missing cells)"
        )
    epochs = args.epochs * sum(m in ("sgd", "gd") for m in methods)
    with epoch_progress(epochs, quiet=args.quiet, description="+".join(m for m in methods if m != "svd")) as cb, about(
        matrix.path
    ):
        results, optimum = compare_methods(
            A,
            args.rank,
            methods=methods,
            num_epochs=args.epochs,
            lr=args.lr,
            gd_lr=args.gd_lr,
            random_state=args.seed,
            callback=cb,
        )
    if args.out:
        for res in results:
            write_dense_csv(f"{args.out}_{res.method}_U.csv", res.U)
            write_dense_csv(f"{args.out}_{res.method}_V.csv", res.V)
    if args.json:
        _out(
            json.dumps(
                {
                    "file": str(matrix.path),
                    "shape": list(A.shape),
                    "rank": args.rank,
                    "svd_optimum": optimum,
                    "results": [
                        {
                            "method": r.method,
                            "loss": r.loss,
                            "ratio_to_optimum": optimum_ratio(r.loss, optimum),
                            "seconds": r.seconds,
                        }
                        for r in results
                    ],
                },
                indent=2,
            )
        )
        return
    m, n = A.shape
    _out(f"{matrix.path}: {m} x {n} matrix, rank {args.rank}")
    _out(f"SVD optimum (Eckart-Young) ||A - A_{args.rank}||_F^2 = {optimum:.6g}")
    _out()
    _out(f"{'method':<8}{'loss':>14}{'ratio to optimum':>19}{'time':>12}")
    for res in results:
        ratio = optimum_ratio(res.loss, optimum)
        ratio_text = f"{ratio:.5f}" if ratio is not None else "n/a"
        _out(f"{res.method:<8}{res.loss:>14.6g}{ratio_text:>19}{res.seconds:>11.3f}s")
    if optimum == 0:
        _out(f"(A has rank <= {args.rank}: the optimum is 0, so ratios are undefined)")
    if args.out:
        _out(f"factors written to {args.out}_<method>_U.csv and {args.out}_<method>_V.csv")


def complete(args: argparse.Namespace) -> None:
    """``factorise complete FILE --rank K --out OUT.csv``: fill the missing cells."""
    check_paths([("--out", args.out)], [("FILE", args.file)])
    matrix = read_dense_matrix(args.file)
    A = matrix.values
    observed = ~np.isnan(A)
    n_missing = int((~observed).sum())
    if n_missing == 0:
        _warn(f"{matrix.path} has no missing cells; writing the rank-{args.rank} fit of every cell")
    for r in np.flatnonzero(~observed.any(axis=1)):
        _warn(f"{matrix.describe_row(int(r))} has no observed cell: its predictions come from the random start only")
    for c in np.flatnonzero(~observed.any(axis=0)):
        _warn(
            f"{matrix.path}, column {int(c) + 1} has no observed cell: its predictions come from the random "
            "start only"
        )
    if args.device is not None:
        from factorise._torch import check_device, torch_device

        if args.method != "gd":
            raise ValueError(f"--device applies to --method gd; got --device {args.device} with --method {args.method}")
        spec = check_device(args.device, "--device")
        if spec is not None:
            torch_device(spec, "--device")  # torch and the device are there, before the fit
    with epoch_progress(args.epochs, quiet=args.quiet, description=f"complete ({args.method})") as cb, about(
        matrix.path
    ):
        if args.method == "gd":
            lr = args.lr if args.lr is not None else 1e-5
            U, V = gd_factorise_masked(
                A, observed, args.rank, args.epochs, lr, random_state=args.seed, device=args.device, callback=cb
            )
        else:
            lr = args.lr if args.lr is not None else 0.01
            U, V = sgd_factorise_masked(A, observed, args.rank, args.epochs, lr, random_state=args.seed, callback=cb)
    completed = U @ V.T
    write_dense_csv(args.out, completed)
    n_obs = int(observed.sum())
    rmse = float(np.sqrt(reconstruction_loss(A, U, V, observed) / n_obs))
    if args.json:
        _out(
            json.dumps(
                {
                    "file": str(matrix.path),
                    "shape": list(A.shape),
                    "rank": args.rank,
                    "n_observed": n_obs,
                    "n_missing": n_missing,
                    "observed_rmse": rmse,
                    "out": str(args.out),
                },
                indent=2,
            )
        )
        return
    _out(
        f"completed {matrix.path}: {A.shape[0]} x {A.shape[1]}, {n_obs} observed and {n_missing} "
        f"missing cells, rank {args.rank}"
    )
    _out(f"RMSE on the observed cells: {rmse:.6g}")
    _out(f"wrote {Path(args.out)}")
