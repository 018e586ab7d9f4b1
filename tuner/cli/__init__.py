"""The ``tune`` command line. Commands only parse and print; the work is in library functions.

Heavy libraries (TensorFlow, MLflow, Optuna) are imported inside the commands that need them,
so ``tune --help`` stays instant.
"""

from __future__ import annotations

import os

import click

from tuner import __version__
from tuner.cli.data_cmds import data
from tuner.cli.space_cmds import spaces
from tuner.cli.study_cmds import best, delete, run, status, ui
from tuner.cli.synth_cmd import synth

# TensorFlow's C++ start-up chatter hides the live view; users can set it back.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tune")
def main() -> None:
    """Hyperparameter studies for Keras CNNs on handwritten Chinese characters.

    Every study lives in a database (SQLite by default, so it resumes) and every trial is an
    MLflow run.

    \b
    Start with:  tune run casia_cnn
    """


data.add_command(synth)
for command in (run, status, best, ui, delete, spaces, data):
    main.add_command(command)
