"""Where the tool keeps things on disk. Every location can be overridden by the caller."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """The user's cache directory for tuner (decoded-array cache, generated default data).

    ``TUNER_CACHE_DIR`` overrides the platform default (``~/.cache/tuner`` on Linux).
    """
    override = os.environ.get("TUNER_CACHE_DIR")
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("tuner", appauthor=False))
