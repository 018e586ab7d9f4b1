"""Errors a user can act on.

Every error the user should see is a :class:`TunerError`: one line that names the problem and
the fix. It subclasses ``click.UsageError`` (as Flask's CLI does), so the CLI prints
``Error: <message>`` and exits with status 2, without a traceback. Library code raises it
directly; tests catch it directly.
"""

from __future__ import annotations

import sys
from typing import IO, Any

import click


class TunerError(click.UsageError):
    """A problem with the user's input or environment, with the fix in the message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)

    def show(self, file: IO[Any] | None = None) -> None:
        # One line, no usage block: the message already says what to do.
        click.echo(f"Error: {self.format_message()}", file=file or sys.stderr)


class DataError(TunerError):
    """A dataset on disk that cannot be used as it is."""


class SpaceError(TunerError):
    """A search-space file that does not validate."""


class StudyError(TunerError):
    """A study that cannot be created, resumed or read."""


class StorageError(TunerError):
    """A study database or tracking store that cannot be reached."""
