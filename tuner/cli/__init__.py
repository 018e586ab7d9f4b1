"""The ``tune`` command line. Commands only parse and print; the work is in library functions.

Heavy libraries (TensorFlow, MLflow, Optuna) are imported inside the commands that need them,
so ``tune --help`` stays instant.
"""

from __future__ import annotations

import click

from tuner import __version__
from tuner.cli.data_cmds import data
from tuner.cli.synth_cmd import synth


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tune")
def main() -> None:
    """Hyperparameter studies for Keras CNNs on handwritten Chinese characters.

    Every study lives in a database (SQLite by default, so it resumes) and every trial is an
    MLflow run.
    """


data.add_command(synth)
main.add_command(data)
