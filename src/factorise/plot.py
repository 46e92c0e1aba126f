"""Learning curves: train and validation RMSE per epoch (matplotlib, the ``plot`` extra)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from factorise.io import atomic_write

__all__ = ["plot_learning_curves", "require_matplotlib"]

History = Sequence[Mapping[str, float]]


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ImportError(
            "plotting needs matplotlib: pip install 'factorise[plot]' (or pip install matplotlib)"
        ) from None
    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def require_matplotlib() -> None:
    """Raise the install advice now if matplotlib is missing (before a long fit, not after)."""
    _pyplot()


def plot_learning_curves(
    histories: History | Mapping[str, History],
    path: str | os.PathLike[str],
    *,
    title: str = "Learning curves",
    validation_label: str = "validation",
) -> None:
    """Draw train (solid) and validation (dashed) RMSE per epoch into a PNG file.

    Parameters
    ----------
    histories : list of dict, or mapping of label to list of dict
        One model's ``history_``, or several (for example one per fold),
        each entry holding ``epoch``, ``train_rmse`` and optionally
        ``valid_rmse``.
    path : str or os.PathLike
        Output file (PNG); written atomically.
    title : str, optional
        Figure title.
    validation_label : str, optional
        What the validation curve measures (``"validation"``, ``"test"``).
    """
    if not isinstance(histories, Mapping):
        histories = {"": histories}
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8.5 if isinstance(histories, Mapping) and len(histories) > 1 else 7, 4.5), dpi=110)
    try:
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        best_text = []
        for n, (label, history) in enumerate(histories.items()):
            colour = colours[n % len(colours)]
            epochs = [h["epoch"] for h in history]
            prefix = f"{label} " if label else ""
            ax.plot(epochs, [h["train_rmse"] for h in history], color=colour, lw=1.8, label=f"{prefix}train")
            valid = [h.get("valid_rmse") for h in history]
            if any(v is not None for v in valid):
                ax.plot(
                    epochs, valid, color=colour, lw=1.8, ls="--", label=f"{prefix}{validation_label}"
                )
                best = min(range(len(valid)), key=lambda j: valid[j] if valid[j] is not None else float("inf"))
                ax.plot([epochs[best]], [valid[best]], "o", color=colour, ms=5)
                best_text.append(f"{prefix}best {validation_label} {valid[best]:.4f} @ {epochs[best]}")
        ax.set_xlabel("epoch")
        ax.set_ylabel("RMSE")
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
        if len(histories) > 1:
            ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        else:
            ax.legend(fontsize=8)
        if best_text and len(best_text) <= 3:
            ax.text(
                0.99, 0.97, "\n".join(best_text), transform=ax.transAxes, ha="right", va="top", fontsize=8
            )
        fig.tight_layout()
        with atomic_write(path, "wb") as handle:
            fig.savefig(handle, format="png")
    finally:
        plt.close(fig)
