"""Progress bars for the command line (tqdm on stderr)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm

__all__ = ["epoch_progress", "history_progress"]


@contextmanager
def epoch_progress(
    total: int, *, quiet: bool, description: str
) -> Iterator[Callable[[int, float], None]]:
    """Yield an epoch callback that drives a progress bar on stderr.

    The bar appears only after a second (short runs stay silent), never when
    ``quiet`` is set or stderr is not a terminal.

    Parameters
    ----------
    total : int
        Total number of epochs the callback will see.
    quiet : bool
        Suppress the bar.
    description : str
        Label shown left of the bar.
    """
    disable = quiet or not sys.stderr.isatty() or total <= 0
    bar = tqdm(total=total, desc=description, unit="epoch", delay=1.0, file=sys.stderr, disable=disable)
    last = 0.0

    def callback(epoch: int, sse: float) -> None:
        nonlocal last
        bar.update(1)
        now = time.monotonic()
        if now - last > 0.25:
            bar.set_postfix_str(f"epoch sse {sse:.4g}", refresh=False)
            last = now

    try:
        yield callback
    finally:
        bar.close()


@contextmanager
def history_progress(
    total: int, *, quiet: bool, description: str, n_ratings: int = 0
) -> Iterator[Callable[[int, dict[str, float]], None]]:
    """Yield a ``callback(step, record)`` for :meth:`RatingModel.fit` that drives a bar.

    The bar shows steps done, ETA, ratings per second (when ``n_ratings`` is
    given) and the latest train and validation RMSE. It appears after a second,
    never when ``quiet`` is set or stderr is not a terminal.
    """
    disable = quiet or not sys.stderr.isatty() or total <= 0
    bar = tqdm(total=total, desc=description, unit="epoch", delay=1.0, file=sys.stderr, disable=disable)
    start = time.monotonic()

    def callback(step: int, record: dict[str, float]) -> None:
        parts = [f"train {record['train_rmse']:.4f}"]
        if "valid_rmse" in record:
            parts.append(f"valid {record['valid_rmse']:.4f}")
        elapsed = time.monotonic() - start
        if n_ratings and elapsed > 0:
            parts.append(f"{n_ratings * step / elapsed / 1e6:.1f}M ratings/s")
        bar.set_postfix_str(", ".join(parts), refresh=False)
        bar.update(1)

    try:
        yield callback
    finally:
        bar.close()
