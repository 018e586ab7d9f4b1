"""The study database: SQLite in the working directory by default, any SQLAlchemy URL else."""

from __future__ import annotations

import os
import re
import sqlite3
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from tuner.errors import StorageError

if TYPE_CHECKING:
    import optuna

DEFAULT_DB = "tuner.db"
# Optuna's heartbeat: a worker that stops beating for GRACE seconds is presumed dead and its
# trial is failed (and retried) by whichever worker looks next.
HEARTBEAT_INTERVAL = 20
HEARTBEAT_GRACE = 60
MAX_RETRY = 2


def resolve_storage_url(explicit: str | None, workdir: Path | None = None) -> str:
    """``--storage``, else ``TUNE_STORAGE``, else ``sqlite:///tuner.db`` in the working dir."""
    url = explicit or os.environ.get("TUNE_STORAGE")
    if not url:
        return f"sqlite:///{(workdir or Path.cwd()).resolve() / DEFAULT_DB}"
    if "://" not in url:  # a bare file name means an SQLite file
        return f"sqlite:///{Path(url).expanduser().resolve()}"
    return url


def redact(url: str) -> str:
    """The URL with its password hidden, for messages."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _prepare_sqlite(url: str) -> None:
    """WAL lets readers and one writer work at once; it is a property of the file, set once."""
    path = Path(url[len("sqlite:///") :])
    if not path.parent.exists():
        raise StorageError(
            f"cannot open study database {url}: folder {path.parent} does not exist; "
            "create it or pass another --storage"
        )
    try:
        with sqlite3.connect(path, timeout=60) as conn:
            conn.execute("PRAGMA journal_mode=WAL")
    except sqlite3.DatabaseError as exc:
        raise StorageError(
            f"{path} is not a usable SQLite study database ({exc}); pass another --storage"
        ) from None


def open_storage(
    url: str,
    *,
    heartbeat: bool = True,
    heartbeat_interval: int = HEARTBEAT_INTERVAL,
    grace_period: int = HEARTBEAT_GRACE,
) -> optuna.storages.RDBStorage:
    """An Optuna RDB storage with heartbeat and retry of trials whose worker died."""
    import optuna
    import sqlalchemy.exc

    engine_kwargs: dict[str, object] = {}
    if url.startswith("sqlite:///"):
        _prepare_sqlite(url)
        engine_kwargs = {"connect_args": {"timeout": 60}}
    else:
        engine_kwargs = {"pool_pre_ping": True}
    try:
        with warnings.catch_warnings():  # heartbeat and retry are "experimental" in Optuna
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return _rdb_storage(
                url, engine_kwargs, (heartbeat_interval, grace_period) if heartbeat else None
            )
    except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ArgumentError) as exc:
        reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
        raise StorageError(
            f"cannot reach study database {redact(url)} ({reason}); check that the server is "
            "running and the URL, user and password are right"
        ) from None
    except ImportError as exc:
        raise StorageError(
            f"no database driver for {redact(url)} ({exc}); for PostgreSQL install "
            "pip install 'tuner[postgres]'"
        ) from None


def _rdb_storage(
    url: str, engine_kwargs: dict[str, object], heartbeat: tuple[int, int] | None
) -> optuna.storages.RDBStorage:
    import optuna

    return optuna.storages.RDBStorage(
        url,
        engine_kwargs=engine_kwargs,
        heartbeat_interval=heartbeat[0] if heartbeat else None,
        grace_period=heartbeat[1] if heartbeat else None,
        heartbeat_stale_trial_callback=(
            optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)
            if heartbeat
            else None
        ),
    )
