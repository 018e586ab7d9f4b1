"""The ``tune`` command line. Commands only parse and print; the work is in library functions.

Heavy libraries (TensorFlow, MLflow, Optuna) are imported inside the commands that need them,
so ``tune --help`` stays instant.
"""

from __future__ import annotations

import logging
import os
import signal

import click

from tuner import __version__
from tuner.cli.data_cmds import data
from tuner.cli.results_cmds import COMMANDS as RESULTS_COMMANDS
from tuner.cli.space_cmds import spaces
from tuner.cli.study_cmds import best, delete, run, status, ui, worker
from tuner.cli.synth_cmd import synth

# TensorFlow's C++ start-up chatter hides the live view; users can set it back.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# MLflow sets its own loggers to INFO when imported ("Creating initial MLflow database tables").
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
# Over HTTP MLflow prints a "View run" link per run to stdout, which would break the live view.
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


def _listen_for_ctrl_c() -> None:
    """Ctrl-C (SIGINT) stops a study cleanly, so it must reach us: a process started in the
    background of a script inherits SIGINT as ignored, and Python then never raises
    KeyboardInterrupt. Terminal Ctrl-C only reaches the foreground group, so this is safe."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _quiet_libraries() -> None:
    """Our own output says what happened; the libraries' INFO lines only repeat it."""
    for name in ("optuna", "mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tune")
def main() -> None:
    """Hyperparameter studies for Keras CNNs on handwritten Chinese characters.

    Every study lives in a database (SQLite by default, so it resumes) and every trial is an
    MLflow run.

    \b
    Start with:  tune run casia_cnn
    """
    _quiet_libraries()
    _listen_for_ctrl_c()


data.add_command(synth)
for command in (run, worker, status, best, ui, delete, spaces, data, *RESULTS_COMMANDS):
    main.add_command(command)
