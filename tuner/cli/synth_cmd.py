"""``tune data synth``: write synthetic handwriting in the course layout. (Owned by tuner.synth.)"""

from __future__ import annotations

import click


@click.command()
def synth() -> None:
    """Write synthetic handwriting in the course's Train/Test layout."""
    raise click.UsageError("not implemented yet")
