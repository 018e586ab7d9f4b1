"""``tune data ...``: build, import, inspect datasets. (Owned by the data layer.)"""

from __future__ import annotations

import click


@click.group()
def data() -> None:
    """Datasets: the embedded synthetic default, CASIA .gnt import, a first look at a dataset."""
