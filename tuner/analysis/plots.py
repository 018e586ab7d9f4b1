"""The analysis plots, drawn with matplotlib's object API (no pyplot state) in a CJK font.

Each function takes plain arrays and a target path, writes one PNG and returns its path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tuner.analysis.fonts import plot_style

if TYPE_CHECKING:
    from matplotlib.figure import Figure

GRID_COLUMNS = 6
GRID_MAX = 36
LEAST_LEGIBLE = 30
WRITERS_SHOWN = 80


def new_figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def save(fig: Figure, path: Path, *, tight: bool = False) -> Path:
    """Write ``fig`` as a PNG (called inside :func:`plot_style`, so text uses the CJK font)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight" if tight else None)
    return path


def failure_title(true: str, predicted: str, confidence: float) -> str:
    """The course's caption for a mistake: "东 not 本 (100%)" (predicted, true, confidence)."""
    return f"{predicted} not {true} ({confidence:.0%})"


def plot_least_legible(
    classes: Sequence[str], accuracy: Sequence[float], counts: Sequence[int], path: Path
) -> Path:
    """Bars of the characters with the lowest test accuracy, worst first."""
    order = np.argsort(np.asarray(accuracy, dtype=float), kind="stable")[:LEAST_LEGIBLE]
    labels = [classes[i] for i in order]
    values = [float(accuracy[i]) for i in order]
    with plot_style(labels):
        fig = new_figure(max(6.0, 0.32 * len(labels) + 2), 4.0)
        ax = fig.add_subplot()
        bars = ax.bar(range(len(labels)), values, color="#c0504d")
        ax.set_xticks(range(len(labels)), labels, fontsize=13)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("test accuracy")
        ax.set_title(f"least legible characters ({len(labels)} of {len(classes)}, worst first)")
        for bar, i in zip(bars, order.tolist(), strict=True):
            ax.annotate(
                str(counts[i]),
                (bar.get_x() + bar.get_width() / 2, bar.get_height()),
                ha="center",
                va="bottom",
                fontsize=7,
                color="#555555",
            )
        ax.grid(axis="y", alpha=0.3)
        return save(fig, path)


def plot_accuracy_by_writer(
    writers: Sequence[str], accuracy: Sequence[float], counts: Sequence[int], path: Path
) -> Path:
    """Bars of test accuracy per writer, worst first (the worst WRITERS_SHOWN when there are
    more): which people the model still cannot read."""
    order = np.argsort(np.asarray(accuracy, dtype=float), kind="stable")[:WRITERS_SHOWN]
    labels = [writers[i] for i in order]
    values = [float(accuracy[i]) for i in order]
    with plot_style(labels):
        fig = new_figure(max(6.0, 0.22 * len(labels) + 2), 4.0)
        ax = fig.add_subplot()
        ax.bar(range(len(labels)), values, color="#4f81bd")
        ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("test accuracy")
        ax.set_xlabel("writer")
        shown = f"{len(labels)} of {len(writers)}" if len(labels) < len(writers) else "all"
        mean = float(np.average(accuracy, weights=counts)) if len(writers) else float("nan")
        ax.set_title(f"accuracy by writer ({shown} writers, worst first; overall {mean:.0%})")
        ax.grid(axis="y", alpha=0.3)
        return save(fig, path)


def plot_failures(
    images: np.ndarray,
    titles: Sequence[str],
    path: Path,
    *,
    heading: str = "",
) -> Path:
    """A grid of images (as the model saw them) with their captions."""
    count = min(len(titles), GRID_MAX)
    cols = max(1, min(GRID_COLUMNS, count))
    rows = max(1, -(-count // cols))
    with plot_style(titles[:count]):
        fig = new_figure(1.7 * cols + 0.4, 1.9 * rows + 0.5)
        if heading:
            fig.suptitle(heading)
        if count == 0:
            ax = fig.add_subplot()
            ax.axis("off")
            ax.text(0.5, 0.5, "no mistakes on the test set", ha="center", va="center")
            return save(fig, path)
        for i in range(count):
            ax = fig.add_subplot(rows, cols, i + 1)
            ax.imshow(images[i], cmap="gray", vmin=0, vmax=255)
            ax.set_title(titles[i], fontsize=11)
            ax.set_xticks([])
            ax.set_yticks([])
        return save(fig, path)


def plot_confidence(right: np.ndarray, wrong: np.ndarray, path: Path) -> Path:
    """Histograms of the top probability when the prediction is right and when it is wrong."""
    bins = np.linspace(0.0, 1.0, 21).tolist()
    with plot_style():
        fig = new_figure(6.5, 4.0)
        ax = fig.add_subplot()
        ax.hist(right, bins=bins, alpha=0.6, color="#4f81bd", label=f"right ({len(right)})")
        ax.hist(wrong, bins=bins, alpha=0.6, color="#c0504d", label=f"wrong ({len(wrong)})")
        ax.set_xlabel("confidence (the top class's probability)")
        ax.set_ylabel("test images")
        ax.set_title("how sure the model is when right and when wrong")
        ax.legend()
        return save(fig, path)


def plot_best_so_far(
    curves: Mapping[str, Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]]],
    metric: str,
    path: Path,
) -> Path:
    """Best-so-far value against trial number and against wall time, per sampler: the mean of
    the repeats as a line, their min-max as a band.

    ``curves[sampler]`` is one (trial numbers from 1, elapsed seconds, best so far) per repeat.
    """
    with plot_style(list(curves)):
        fig = new_figure(11.0, 4.2)
        by_trial, by_time = fig.subplots(1, 2)
        for name, repeats in curves.items():
            if not repeats:
                continue
            n = max(len(r[0]) for r in repeats)
            steps = np.arange(1, n + 1)
            stacked = np.vstack([_pad(r[2], n) for r in repeats])
            _band(by_trial, steps, stacked, name, len(repeats))
            horizon = max(float(r[1][-1]) if len(r[1]) else 0.0 for r in repeats)
            grid = np.linspace(0.0, horizon or 1.0, 200)
            on_grid = np.vstack([_step_at(r[1], r[2], grid) for r in repeats])
            _band(by_time, grid, on_grid, name, len(repeats))
        from matplotlib.ticker import MaxNLocator

        by_trial.xaxis.set_major_locator(MaxNLocator(integer=True))
        by_trial.set_xlabel("trial")
        by_time.set_xlabel("wall time (s)")
        for ax in (by_trial, by_time):
            ax.set_ylabel(f"best {metric} so far")
            ax.grid(alpha=0.3)
            ax.legend(loc="lower right")
        fig.suptitle("samplers under the same budget (line: mean of repeats; band: min-max)")
        return save(fig, path)


def _pad(values: np.ndarray, n: int) -> np.ndarray:
    """A best-so-far curve stretched to ``n`` points by holding its last value."""
    out = np.full(n, np.nan)
    out[: len(values)] = values
    if len(values):
        last = values[-1]
        out[len(values) :] = last
    return out


def _step_at(times: np.ndarray, values: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """The best-so-far step function at each grid time (NaN before the first result)."""
    if not len(times):
        return np.full(len(grid), np.nan)
    index = np.searchsorted(times, grid, side="right") - 1
    out = np.where(index >= 0, values[np.clip(index, 0, None)], np.nan)
    return out.astype(float)


def _band(ax: Any, x: np.ndarray, stacked: np.ndarray, name: str, repeats: int) -> None:
    import warnings

    with warnings.catch_warnings():  # columns that are all NaN (before any result) stay blank
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(stacked, axis=0)
        low = np.nanmin(stacked, axis=0)
        high = np.nanmax(stacked, axis=0)
    (line,) = ax.plot(x, mean, label=f"{name} ({repeats}×)", drawstyle="steps-post")
    ax.fill_between(x, low, high, color=line.get_color(), alpha=0.2, linewidth=0, step="post")
