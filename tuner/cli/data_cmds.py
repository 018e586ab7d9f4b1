"""``tune data ...``: build, import, inspect datasets. (Owned by the data layer.)"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click


@click.group()
def data() -> None:
    """Datasets: the embedded synthetic default, CASIA .gnt import, a first look at a dataset."""


def _echo_warnings(work: Callable[[], Any]) -> Any:
    """Run ``work``; its data warnings become one ``Warning:`` line each on stderr."""
    from tuner.data.layout import DataWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        result = work()
    for warning in caught:
        if issubclass(warning.category, DataWarning):
            click.echo(f"Warning: {warning.message}", err=True)
        else:
            warnings.showwarning(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    return result


@data.command("import-gnt")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Dataset folder to create or add to (OUT/<split>/<char>/<n>.png).",
)
@click.option(
    "--chars",
    default=None,
    metavar="course55|FILE|a,b,c",
    help="Import only these characters: a preset, a file with one per line, or a list.",
)
@click.option(
    "--split",
    type=click.Choice(["Train", "Test"]),
    default="Train",
    show_default=True,
    help="Which split the files become (import the official test files with --split Test).",
)
def import_gnt_cmd(paths: tuple[Path, ...], out_dir: Path, chars: str | None, split: str) -> None:
    """Write CASIA-HWDB .gnt files (or folders of them) as PNGs in the course layout.

    Each .gnt file is one writer; writers are recorded in OUT/writers.csv so validation splits
    keep writers apart.
    """
    from tuner.data.charsets import resolve_charset
    from tuner.data.gnt import import_gnt

    wanted = resolve_charset(chars) if chars else None
    result = import_gnt(paths, out_dir, chars=wanted, split=split)
    click.echo(result.summary())
    if result.missing:
        shown = "".join(result.missing[:20]) + ("…" if len(result.missing) > 20 else "")
        click.echo(f"not found in these files: {shown}", err=True)


@data.command("info")
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_png",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where to save the image-size histograms (default: in the tuner cache).",
)
@click.option("--all", "show_all", is_flag=True, help="List every class, even in big datasets.")
def info_cmd(path: Path, out_png: Path | None, show_all: bool) -> None:
    """Images per class in Train and Test, thin classes, original image sizes."""
    from rich.console import Console
    from rich.table import Table

    from tuner.data.info import dataset_info, save_size_histograms
    from tuner.paths import cache_dir

    info = dataset_info(path)
    console = Console(highlight=False)
    thin = {(t.split, t.cls) for t in info.thin}
    many = len(info.classes) > 60 and not show_all
    shown = [c for c in info.classes if any(cls == c for _, cls in thin)] if many else info.classes

    console.print(f"{info.root}")
    table = Table(title="images per class", show_footer=True)
    table.add_column("class", footer="total")
    table.add_column("Train", justify="right", footer=str(info.train.total))
    if info.test is not None:
        table.add_column("Test", justify="right", footer=str(info.test.total))
    for cls in shown:
        row = [cls, _count_cell(info.train.counts[cls], ("Train", cls) in thin)]
        if info.test is not None:
            row.append(_count_cell(info.test.counts[cls], ("Test", cls) in thin))
        table.add_row(*row)
    console.print(table)
    if many:
        console.print(
            f"{len(info.classes)} classes; the table lists the thin ones (--all: every one)"
        )

    for split in (info.train, info.test):
        if split is None:
            continue
        line = (
            f"{split.name}: {split.total} images, {len(split.counts)} classes, "
            f"median {split.median_count():g} per class"
        )
        if len(split.sizes):
            widths, heights = split.sizes[:, 0], split.sizes[:, 1]
            line += (
                f"; width {widths.min()}-{widths.max()} (median {int(_median(widths))}),"
                f" height {heights.min()}-{heights.max()} (median {int(_median(heights))}) px"
            )
        if split.unreadable:
            line += f"; {split.unreadable} unreadable"
        console.print(line)
    if info.thin:
        console.print(
            f"[red]{len(info.thin)} thin classes[/red] (under {info.thin_ratio:.0%} of their "
            "split's median): collect more images or expect weak scores there"
        )
    if info.only_train or info.only_test:
        console.print(
            f"[red]class sets differ[/red]: only in Train {''.join(info.only_train) or '-'}; "
            f"only in Test {''.join(info.only_test) or '-'} (loading will refuse this dataset)"
        )
    if out_png is None:
        out_png = cache_dir() / "info" / f"{info.root.resolve().name}-sizes.png"
    saved = save_size_histograms(info, out_png)
    console.print(f"size histograms: {saved}")


def _count_cell(count: int, thin: bool) -> str:
    return f"[red]{count} thin[/red]" if thin else str(count)


def _median(values: Any) -> float:
    import numpy as np

    return float(np.median(values))


@data.command("check")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--height", type=click.IntRange(8, 1024), default=80, show_default=True)
@click.option("--width", type=click.IntRange(8, 1024), default=60, show_default=True)
@click.option(
    "--val-fraction", type=click.FloatRange(0, 1, max_open=True), default=0.2, show_default=True
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=None,
    help="Decoding processes (default: one per CPU).",
)
@click.option("--no-cache", is_flag=True, help="Decode everything again; leave the cache alone.")
def check_cmd(
    path: Path,
    height: int,
    width: int,
    val_fraction: float,
    seed: int,
    workers: int | None,
    no_cache: bool,
) -> None:
    """Load a dataset as a study would (filling the cache) and print what it holds."""
    from tuner.data import cache
    from tuner.data.layout import load_dataset
    from tuner.data.preprocess import Preprocessing

    before = (cache.STATS.hits, cache.STATS.misses)
    started = time.perf_counter()
    dataset = _echo_warnings(
        lambda: load_dataset(
            path,
            preprocessing=Preprocessing(height=height, width=width),
            val_fraction=val_fraction,
            seed=seed,
            workers=workers,
            use_cache=not no_cache,
        )
    )
    seconds = time.perf_counter() - started
    hits, misses = cache.STATS.hits - before[0], cache.STATS.misses - before[1]
    test = f", test {len(dataset.test)}" if dataset.test is not None else ", no Test split"
    writers = " (writer-aware split)" if dataset.train.writers is not None else ""
    source = "caching off" if no_cache else f"cache: {hits} hit, {misses} miss"
    click.echo(
        f"{dataset.root}: {len(dataset.classes)} classes; train {len(dataset.train)}, "
        f"val {len(dataset.val)}{writers}{test}; {height}x{width} images; "
        f"{seconds:.2f} s ({source})"
    )


@data.command("cache")
@click.option("--clear", is_flag=True, help="Delete every cached array file.")
def cache_cmd(clear: bool) -> None:
    """Where decoded arrays are cached and how much room they take (--clear to empty it)."""
    from tuner.data.cache import cache_info, clear_cache

    if clear:
        removed = clear_cache()
        click.echo(f"removed {removed} cached array files from {cache_info().directory}")
        return
    info = cache_info()
    click.echo(f"{info.directory}: {info.entries} cached array files, {info.bytes / 1e6:.1f} MB")
