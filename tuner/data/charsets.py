"""Character sets: presets by name, or a file with one character per line."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from tuner.errors import DataError

PRESETS = ("course55",)


def _read_lines(text: str) -> list[str]:
    chars: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and line not in chars:
            chars.append(line)
    return chars


def course55() -> list[str]:
    """The 55 characters of the course's CASIA subset, in the course's order."""
    return _read_lines(resources.files("tuner.data").joinpath("course55.txt").read_text("utf-8"))


def resolve_charset(spec: str) -> list[str]:
    """A preset name (``course55``), a file with one character per line, or inline characters
    separated by commas (``大,天,夫``)."""
    if spec == "course55":
        return course55()
    path = Path(spec)
    if path.is_file():
        chars = _read_lines(path.read_text("utf-8"))
        if not chars:
            raise DataError(f"character file {path} is empty: put one character per line")
        return chars
    if "," in spec or (len(spec) <= 4 and not path.suffix):
        chars = [c.strip() for c in spec.split(",") if c.strip()] if "," in spec else list(spec)
        if chars:
            return chars
    raise DataError(
        f"unknown character set {spec!r}: give a preset ({', '.join(PRESETS)}), a file with one "
        "character per line, or characters separated by commas"
    )
