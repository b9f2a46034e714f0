"""A version's pictures: the training curves (``training_png``) and the test confusion matrix (``confusion_png``).

Both are drawn with matplotlib's Agg renderer on a ``Figure`` of their own (no pyplot, so no global state and
no display needed), imported only when a picture is drawn, and written beside the target and renamed into
place. The PNGs carry no timestamp or software version, so the same numbers draw the same bytes.

- ``training.png``: loss and accuracy per validation round, training and validation side by side, the x
  axis in epochs (from 1), the kept round marked.
- ``confusion.png``: rows are the true classes, columns the predicted ones; a cell's colour is its share of
  the true class's test rows (so rare classes read as well as common ones), its text the count; a class
  with no test rows is a grey row. Long class names are cut with an ellipsis (``report.md`` has them
  whole). The figure grows with the number of classes; past ``COUNTS_UP_TO`` classes only the colours
  remain.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from streamtrain.fs.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

TRAINING_NAME = "training.png"
CONFUSION_NAME = "confusion.png"
DPI = 120
COUNTS_UP_TO = 30  # classes: beyond this the cells are too small for their counts
LABEL_CHARS = 28  # longer class names are cut, with an ellipsis
TRAIN_COLOUR, VAL_COLOUR, BEST_COLOUR = "#1f77b4", "#ff7f0e", "#2ca02c"
EMPTY_ROW_COLOUR = "#dddddd"  # the row of a class with no test rows


def preload() -> None:
    """Import what drawing needs (matplotlib's ``Figure``, its tickers and the Agg canvas) ahead of the first picture.

    ``fit.prebuild`` calls it while ``train``'s prepare child works, so the pictures drawn as fit ends do not
    pay for the import.
    """
    import importlib

    for name in ("matplotlib.figure", "matplotlib.ticker", "matplotlib.backends.backend_agg"):
        importlib.import_module(name)


def training_png(
    history: dict[str, list[float]], best: int | None, path: str | os.PathLike[str], per_epoch: int = 1
) -> None:
    """Draw loss and accuracy per validation round (training, and validation when recorded) into the PNG ``path``.

    Args:
        history: each metric per round (``history.json``).
        best: the 1-based round whose weights were kept (marked); None: none marked.
        path: the PNG to write (by a rename).
        per_epoch: rounds per epoch: the x axis is in epochs.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, MaxNLocator

    # Fixed margins, not the constrained layout: this figure's parts have the same sizes every time, and the
    # layout's solver was much of the drawing's time (docs/design/training-speed.md).
    fig = Figure(figsize=(11, 4.2))
    fig.subplots_adjust(left=0.065, right=0.985, bottom=0.12, top=0.83, wspace=0.2)
    panels = fig.subplots(1, 2)
    rounds = max((len(v) for v in history.values()), default=0)
    epochs = rounds / per_epoch
    best_at = best / per_epoch if best else None
    for ax, metric, title in zip(panels, ("loss", "accuracy"), ("Loss", "Accuracy")):
        drawn = False
        for key, name, colour in ((metric, "training", TRAIN_COLOUR), (f"val_{metric}", "validation", VAL_COLOUR)):
            values = [_number(v) for v in history.get(key) or []]
            if values:
                xs = [(i + 1) / per_epoch for i in range(len(values))]
                ax.plot(xs, values, color=colour, marker="o", markersize=4 if len(values) <= 40 else 0, label=name)
                drawn = True
        if best_at:
            kept = "best" if history.get("val_loss") else "final"  # no validation: no early stopping
            ax.axvline(best_at, color=BEST_COLOUR, linestyle="--", linewidth=1.2, label=f"{kept} (epoch {best_at:g})")
        if not drawn:
            ax.text(0.5, 0.5, f"no {metric} recorded", ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_title(f"{title} per epoch" if per_epoch == 1 else f"{title}, {per_epoch} validations per epoch")
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        last = max(math.ceil(epochs), math.ceil(best_at or 0), 1)
        ax.xaxis.set_major_locator(FixedLocator(range(1, last + 1)) if last <= 15 else MaxNLocator(integer=True))
        ax.set_xlim(0.5 / per_epoch if per_epoch > 1 else 0.5, last + 0.5 / per_epoch)
        ax.grid(True, alpha=0.3)
        if drawn or best_at:
            ax.legend(loc="best", fontsize=9)
    fig.suptitle(f"Training: {epochs:g} epoch{'s' if epochs != 1 else ''}", fontsize=13)
    _save(fig, path)


def confusion_png(confusion: Sequence[Sequence[int]], labels: Sequence[str], path: str | os.PathLike[str]) -> None:
    """Draw the test ``confusion`` matrix (rows true, columns predicted; ``labels`` in order) into the PNG ``path``."""
    import matplotlib
    import numpy as np
    from matplotlib.figure import Figure

    counts = np.asarray(confusion, dtype=np.int64).reshape(len(labels), len(labels))
    n = len(labels)
    support = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, support, out=np.zeros(counts.shape, dtype=float), where=support > 0)

    cell = 0.7 if n <= 6 else 0.5 if n <= 15 else 0.36 if n <= COUNTS_UP_TO else max(0.16, 10.0 / n)
    tick_size = 11 if n <= 6 else 9 if n <= 15 else 8 if n <= COUNTS_UP_TO else 6 if n <= 60 else 5
    text_size = 11 if n <= 6 else 8.5 if n <= 15 else 6.5
    names = [_short(name) for name in labels]
    longest = max((len(name) for name in names), default=1)
    label_in = min(longest, LABEL_CHARS) * tick_size * 0.6 / 72 + 0.3  # room for a tick label, in inches
    side = n * cell
    fig = Figure(figsize=(max(side + label_in + 1.6, 5.0), max(side + label_in + 1.0, 4.2)), layout="constrained")
    ax = fig.add_subplot()
    cmap = matplotlib.colormaps["Blues"].with_extremes(bad=EMPTY_ROW_COLOUR)  # a class with no test rows: grey
    shown = np.ma.masked_array(share, mask=np.broadcast_to(support == 0, share.shape))
    image = ax.imshow(shown, cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest", aspect="equal")
    bar = fig.colorbar(image, ax=ax, shrink=0.8 if n > 4 else 1.0, fraction=0.05, pad=0.02)
    bar.set_label("share of the true class's rows", fontsize=9)
    bar.ax.tick_params(labelsize=8)

    upright = n <= 2 and longest <= 12
    ax.set_xticks(range(n), names, fontsize=tick_size, rotation=0 if upright else 45 if n <= 15 else 60)
    if not upright:
        for text in ax.get_xticklabels():
            text.set_horizontalalignment("right")
            text.set_rotation_mode("anchor")
    ax.set_yticks(range(n), names, fontsize=tick_size)
    empty = int((support == 0).sum())
    note = f"\n(grey row{'s' if empty > 1 else ''}: no test rows of that class)" if empty else ""
    ax.set_xlabel("predicted class" + note, fontsize=10)
    ax.set_ylabel("true class", fontsize=10)
    ax.tick_params(length=0)
    ax.set_xticks(np.arange(n + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(n + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", linewidth=0.8 if n <= COUNTS_UP_TO else 0.3)
    ax.tick_params(which="minor", length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    if n <= COUNTS_UP_TO:
        for i in range(n):
            for j in range(n):
                colour = "white" if share[i, j] > 0.55 else "#222222"
                ax.text(j, i, _count(int(counts[i, j])), ha="center", va="center", fontsize=text_size, color=colour)
    total = int(counts.sum())
    right = int(np.trace(counts))
    accuracy = f"accuracy {right / total:.4f}" if total else "no test rows"
    ax.set_title(f"Test confusion matrix: {total} rows, {accuracy}", fontsize=12 if n <= 15 else 11)
    _save(fig, path)


def _number(value: Any) -> float:
    """``value`` as a float; NaN when it is not a number (matplotlib leaves a gap)."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _short(name: str) -> str:
    """A class name on one line, cut to ``LABEL_CHARS`` with an ellipsis."""
    name = " ".join(str(name).split())  # no newlines or tabs in a tick label
    return name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1].rstrip() + "…"


def _count(n: int) -> str:
    """A count that fits a small cell: 123, 4567, 12.3k, 456k, 1.2M."""
    if n < 10_000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k" if n < 100_000 else f"{n // 1000}k"
    return f"{n / 1_000_000:.1f}M"


def _save(fig: Figure, path: str | os.PathLike[str]) -> None:
    """Render ``fig`` with Agg and write it to ``path`` by a rename (a reader never sees half a PNG)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # a class name in a script the font lacks is drawn as boxes; report.md has it
        warnings.filterwarnings("ignore", message="Glyph .* missing from font", category=UserWarning)
        fig.savefig(buffer, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})
    atomic_write_bytes(path, buffer.getvalue())
