"""The ``factorise`` command line.

Sub-commands: ``demo`` (the lab exercise on embedded data), ``compare``
(every method against the SVD optimum on a dense matrix file),
``complete`` (fill the missing cells of a CSV), and on rating data ``fit``,
``predict``, ``recommend``, ``evaluate``, ``download`` and ``synth``. Errors print one line and
exit non-zero: 2 for bad input, 1 when a fit diverged.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import math
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from factorise import __version__
from factorise.cli import _commands, _ratings, _synth
from factorise.cli._common import add_common_flags
from factorise.exceptions import DivergenceError

__all__ = ["main", "build_parser"]

logger = logging.getLogger(__name__)

EXIT_INPUT = 2
EXIT_DIVERGED = 1
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 128 + signal.SIGTERM
EXIT_INTERNAL = 70
EXIT_BROKEN_PIPE = 128 + 13  # SIGPIPE


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line (and exit 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_INPUT, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _integer_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}; got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}; got {value}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0; got {text!r}") from None
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0; got {text!r}")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0; got {text!r}") from None
    if not (math.isfinite(value) and value >= 0):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0; got {text!r}")
    return value


def _add_sgd_options(
    parser: argparse.ArgumentParser, *, seed_default: int | None, lr_default: float | None = 0.01
) -> None:
    parser.add_argument("--epochs", type=_integer_at_least(0), default=1000, help="epochs (default: 1000)")
    parser.add_argument(
        "--lr",
        type=_positive_float,
        default=lr_default,
        help="SGD learning rate (default: 0.01)"
        if lr_default is not None
        else "learning rate (default: 0.01 for sgd, 1e-5 for gd)",
    )
    parser.add_argument(
        "--seed",
        type=_integer_at_least(0),
        default=seed_default,
        help=f"random seed (default: {'fresh entropy' if seed_default is None else seed_default})",
    )


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``factorise`` command."""
    parser = _Parser(
        prog="factorise",
        description="Low-rank matrix factorisation and matrix completion.",
    )
    parser.add_argument("--version", action="version", version=f"factorise {__version__}")
    parser.add_argument("--verbose", "-v", action="store_true", help="log details to stderr")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars or notes on stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo",
        help="run the lab exercise on its embedded 3x3 matrix",
        description="Run the lab exercise: factorise the lab's 3x3 matrix at rank 2 by SGD, "
        "compare with the truncated-SVD optimum, and complete it from 7 of its 9 cells.",
    )
    _add_sgd_options(demo, seed_default=0)
    demo.add_argument("--restarts", type=_integer_at_least(1), default=10, help="random starts per fit (default: 10)")
    demo.set_defaults(run=_commands.demo)

    compare = sub.add_parser(
        "compare",
        help="fit a dense matrix with every method and compare with the SVD optimum",
        description="Fit a dense matrix (CSV, TSV, whitespace text or .npy) at rank K with "
        "each method and print loss, ratio to the Eckart-Young optimum and time.",
    )
    compare.add_argument("file", metavar="FILE", help="dense matrix: .csv, .tsv, .txt or .npy")
    compare.add_argument("--rank", "-k", type=_integer_at_least(1), required=True, help="target rank K")
    compare.add_argument(
        "--methods",
        default=",".join(_commands.DEFAULT_METHODS),
        help=f"comma-separated methods of {','.join(_commands.METHODS)} (default: {','.join(_commands.DEFAULT_METHODS)}); "
        "gd is the lab's full-batch gradient descent",
    )
    compare.add_argument(
        "--gd-lr", type=_positive_float, default=1e-5, help="step of the gd method (default: 1e-5, the lab's)"
    )
    compare.add_argument(
        "--out", metavar="PREFIX", help="write each method's factors to PREFIX_<method>_U.csv and _V.csv"
    )
    _add_sgd_options(compare, seed_default=None)
    compare.set_defaults(run=_commands.compare)

    complete = sub.add_parser(
        "complete",
        help="fill the missing cells of a matrix by masked SGD",
        description="Complete a matrix whose empty or NaN cells are missing: fit a rank-K "
        "factorisation to the observed cells and write the completed matrix.",
    )
    complete.add_argument("file", metavar="FILE", help="matrix with empty/NaN cells for missing values")
    complete.add_argument("--rank", "-k", type=_integer_at_least(1), required=True, help="rank K of the completion")
    complete.add_argument("--out", metavar="OUT.csv", required=True, help="where to write the completed matrix")
    complete.add_argument(
        "--method",
        choices=("sgd", "gd"),
        default="sgd",
        help="sgd: the lab's per-cell SGD (default); gd: its full-batch gradient descent",
    )
    _add_sgd_options(complete, seed_default=None, lr_default=None)
    complete.add_argument(
        "--device",
        default=None,
        help="for --method gd: cpu (NumPy, default), torch-cpu, cuda or cuda:N (torch)",
    )
    complete.set_defaults(run=_commands.complete)

    types = {
        "int0": _integer_at_least(0),
        "int1": _integer_at_least(1),
        "int2": _integer_at_least(2),
        "positive": _positive_float,
        "nonneg": _non_negative_float,
    }
    _ratings.add_commands(sub, types)
    _synth.add_command(sub, types)
    for command in sub.choices.values():
        add_common_flags(command)
    parser.set_defaults(json=False)
    return parser


_shown: set[str] = set()  # the warnings shown during this run of the command


def _show_warning(message: Warning | str, category: type[Warning], *args: object, **kwargs: object) -> None:
    """Warnings as one line on stderr, without the library's source line, each text once per run."""
    text = str(message)
    if text in _shown:
        return  # the same advice again (a parameter checked before reading and again by fit)
    _shown.add(text)
    print(f"factorise: warning: {text}", file=sys.stderr)


def _describe(exc: BaseException) -> str:
    """An exception as the one line the user sees: the user's path first, no errno noise."""
    if isinstance(exc, OSError) and not type(exc).__module__.startswith("factorise"):
        reason = exc.strerror or str(exc)
        if exc.filename is not None:
            return f"{exc.filename}: {reason}"
        return reason
    return str(exc)


def _log_unraisable(info: Any) -> None:
    """An exception a library could not raise (in a callback or a finaliser): logged, not printed raw."""
    logger.debug("ignored in %r: %s: %s", info.object, type(info.exc_value).__name__, info.exc_value)


class _Terminated(BaseException):
    """SIGTERM arrived (a BaseException, so that it unwinds like Ctrl-C)."""


def _terminate(signum: int, frame: object) -> NoReturn:
    """SIGTERM unwinds like Ctrl-C, so that partial outputs are removed on the way out."""
    raise _Terminated()


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``factorise`` command; return its exit status.

    Exit status: 0 on success, 2 for bad input (one line on stderr), 1 when a
    fit diverged, 130 when interrupted, 70 for an internal error (a bug: the
    traceback is shown with ``--verbose``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="factorise: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    shown = warnings.showwarning
    warnings.showwarning = _show_warning
    _shown.clear()
    unraisable = sys.unraisablehook
    sys.unraisablehook = _log_unraisable
    previous_term = None
    if threading.current_thread() is threading.main_thread():
        previous_term = signal.signal(signal.SIGTERM, _terminate)
    try:
        args.run(args)
    except DivergenceError as exc:
        print(f"factorise: error: {exc}", file=sys.stderr)
        return EXIT_DIVERGED
    except BrokenPipeError:
        # the reader of stdout went away (`factorise ... | head`): stop quietly, as Unix tools do
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except MemoryError:
        print(
            "factorise: error: out of memory; use a machine with more memory, or smaller data "
            "(--max-memory SIZE refuses too large a fit before it starts)",
            file=sys.stderr,
        )
        return EXIT_INPUT
    except (ValueError, TypeError, OSError, ImportError, RuntimeError) as exc:
        print(f"factorise: error: {_describe(exc)}", file=sys.stderr)
        return EXIT_INPUT
    except KeyboardInterrupt:
        print("factorise: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _Terminated:
        print("factorise: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except Exception as exc:  # noqa: BLE001 - a bug: one line, and the traceback on request
        if args.verbose:
            traceback.print_exc()
        print(
            f"factorise: internal error: {type(exc).__name__}: {exc} (a bug in factorise; "
            "run with --verbose for the traceback and report it)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
    finally:
        warnings.showwarning = shown
        sys.unraisablehook = unraisable
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
