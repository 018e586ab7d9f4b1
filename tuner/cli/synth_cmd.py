"""``tune data synth``: write synthetic handwriting in the course layout. (Owned by tuner.synth.)"""

from __future__ import annotations

from pathlib import Path

import click

from tuner.synth.default import DEFAULT_TEST_WRITERS, DEFAULT_TRAIN_WRITERS


@click.command()
@click.option(
    "--chars",
    "charset",
    default="course55",
    show_default=True,
    help="Characters: a preset (course55), a file with one per line, or a comma list (大,天).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Directory to create (Train/<char>/<n>.png, Test/..., classes.txt, writers.csv).",
)
@click.option(
    "--train-writers",
    type=click.IntRange(min=1),
    default=DEFAULT_TRAIN_WRITERS,
    show_default=True,
    help="Writers per character in Train.",
)
@click.option(
    "--test-writers",
    type=click.IntRange(min=1),
    default=DEFAULT_TEST_WRITERS,
    show_default=True,
    help="Writers per character in Test (never the same people as in Train).",
)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--variety",
    type=click.FloatRange(min=0.0),
    default=1.0,
    show_default=True,
    help="How different the writers are (0: all alike, 1: like CASIA's writers).",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Processes to draw with. [default: one per CPU]",
)
@click.option("--overwrite", is_flag=True, help="Replace OUT if it exists and is not empty.")
def synth(
    charset: str,
    out: Path,
    train_writers: int,
    test_writers: int,
    seed: int,
    variety: float,
    workers: int | None,
    overwrite: bool,
) -> None:
    """Write synthetic handwriting in the course's Train/Test layout.

    Each image is a character drawn from its stroke data (Make Me a Hanzi) by a synthetic
    writer with their own size, slant, pen and neatness. The same seed gives the same images.
    """
    from tuner.data.charsets import resolve_charset
    from tuner.synth.generate import write_layout

    chars = resolve_charset(charset)
    summary = write_layout(
        out,
        chars,
        train_writers=train_writers,
        test_writers=test_writers,
        seed=seed,
        variety=variety,
        workers=workers,
        overwrite=overwrite,
    )
    click.echo(
        f"wrote {summary.images:,} images ({summary.train_images:,} Train, "
        f"{summary.test_images:,} Test) of {summary.classes} classes by "
        f"{summary.train_writers} + {summary.test_writers} writers to {summary.root} "
        f"in {summary.seconds:.1f} s"
    )
