"""The embedded default dataset: the course's 55 characters, drawn by synthetic writers.

Generated on first use into the cache directory and reused afterwards. The directory name
carries the renderer version and the writer counts, so a renderer change (which bumps
``RENDERER_VERSION``) gets a fresh dataset instead of mixing old and new images.

Sized for the default study, dozens of small-CNN trials on two CPU cores in 10-15 minutes:
120 training writers per character (6,600 images, of which the study holds some writers out
for validation) and 40 test writers per character (2,200 images).

Heavy imports (numpy, Pillow, the stroke data) happen inside the functions, so importing the
constants here stays instant (the CLI does).
"""

from __future__ import annotations

import logging
from pathlib import Path

from tuner import paths

logger = logging.getLogger(__name__)

DEFAULT_TRAIN_WRITERS = 120
DEFAULT_TEST_WRITERS = 40
DEFAULT_SEED = 0
DEFAULT_CHARSET = "course55"
# Bump whenever the renderer, the stroke data or the seeding changes what images come out.
RENDERER_VERSION = 2


def default_dataset_name() -> str:
    """The default dataset's directory name under ``<cache>/datasets``."""
    return (
        f"synth-{DEFAULT_CHARSET}-r{RENDERER_VERSION}"
        f"-w{DEFAULT_TRAIN_WRITERS}+{DEFAULT_TEST_WRITERS}-seed{DEFAULT_SEED}"
    )


def default_dataset_root(cache_dir: Path | None = None) -> Path:
    """The default dataset's root directory (the course's Train/Test layout), generating it
    first if it is not there yet (some seconds, once).

    ``cache_dir`` defaults to :func:`tuner.paths.cache_dir`. Safe when several processes ask
    at once: each writes a private temporary directory and renames it into place; whoever
    comes second keeps the first one's dataset.
    """
    from tuner.data.charsets import resolve_charset
    from tuner.synth.generate import _write_layout

    root = (cache_dir if cache_dir is not None else paths.cache_dir()) / "datasets"
    root = root / default_dataset_name()
    if (root / "classes.txt").is_file():
        return root
    # Anything else there is not ours to trust (an older tool, a hand edit): replace it.
    mode = "replace" if root.exists() else "keep"
    chars = resolve_charset(DEFAULT_CHARSET)
    logger.info(
        "generating the default dataset (%d characters, %d + %d writers) in %s",
        len(chars),
        DEFAULT_TRAIN_WRITERS,
        DEFAULT_TEST_WRITERS,
        root,
    )
    summary = _write_layout(
        root,
        chars,
        train_writers=DEFAULT_TRAIN_WRITERS,
        test_writers=DEFAULT_TEST_WRITERS,
        seed=DEFAULT_SEED,
        variety=1.0,
        workers=None,
        if_exists=mode,
    )
    logger.info("default dataset: %d images in %.1f s", summary.images, summary.seconds)
    return root
