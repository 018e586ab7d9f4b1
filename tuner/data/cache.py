"""The decoded-array cache: one uncompressed ``.npz`` per split, source files and preprocessing.

Decoding tens of thousands of PNGs takes seconds; reading them back as one array takes a fraction
of one. An entry's name carries a fingerprint of every source file (relative path, size,
mtime_ns), the class order and the preprocessing settings, so editing, adding or touching a file,
or changing the image size, gives a new name and a rebuild: nothing is ever invalidated in place.

Entries are written to a temporary file in the same folder and moved into place with
``os.replace``, so a reader never sees half of one. Processes that miss the same entry at once
(the workers of one study, started together) take turns on its build lock: one builds, the
others wait and read what it wrote, instead of each decoding or generating the same arrays.
A file that does not read back whole (truncated, bit rot: the zip's CRC catches it) counts as
a miss and is rebuilt.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
import re
import struct
import tempfile
import time
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np

from tuner import paths
from tuner.data.preprocess import Preprocessing

logger = logging.getLogger(__name__)

# A zip local file header: signature ... file name length, extra field length.
_LOCAL_HEADER = struct.Struct("<4s5H3I2H")
# Bumped whenever what an entry holds, or how images are decoded, changes.
CACHE_FORMAT = 1
_SUFFIX = ".npz"
_TMP_SUFFIX = ".tmp"
_LOCK_SUFFIX = ".lock"
# A build lock held this long belongs to a stuck process: build without it rather than hang.
_BUILD_LOCK_TIMEOUT_S = 1800.0
# A temporary file this old belongs to a process that died mid-write.
_STALE_TMP_SECONDS = 3600.0
# <folder>-<path hash>-<settings hash>-<fingerprint>.npz; group 1 is all but the fingerprint.
_ENTRY_NAME = re.compile(r"(.+-[0-9a-f]{12}-[0-9a-f]{8}-)[0-9a-f]{32}\.npz")


@dataclass
class CacheStats:
    """Counters since start (or :func:`reset_stats`): what tests and ``tune data check`` read."""

    hits: int = 0
    misses: int = 0
    corrupt: int = 0  # misses because an entry was there but did not read back whole
    writes: int = 0
    write_errors: int = 0


STATS = CacheStats()


def reset_stats() -> None:
    """Zero the counters (in place, so a reference to ``STATS`` stays live)."""
    for counter in fields(STATS):
        setattr(STATS, counter.name, 0)


def arrays_dir(cache_dir: Path | None = None) -> Path:
    """The folder holding cache entries: ``cache_dir`` itself, else ``<tuner cache>/arrays``."""
    return Path(cache_dir) if cache_dir is not None else paths.cache_dir() / "arrays"


def _short_hash(text: str, length: int) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:length]


def fingerprint(
    sources: Iterable[tuple[str, int, int]], preprocessing: Preprocessing, classes: Iterable[str]
) -> str:
    """A key for (relative path, size, mtime_ns) of every source file, class order, settings."""
    digest = hashlib.sha256()
    header = {"format": CACHE_FORMAT, "pp": preprocessing.key(), "classes": list(classes)}
    digest.update(json.dumps(header, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    for rel, size, mtime_ns in sources:
        digest.update(f"\n{rel}\t{size}\t{mtime_ns}".encode())
    return digest.hexdigest()


def entry_path(
    source_dir: Path, preprocessing: Preprocessing, key: str, cache_dir: Path | None = None
) -> Path:
    """Where the entry for ``key`` lives. The name starts with the source folder and the settings,
    so a rebuild can drop the entries it replaces (same folder, same settings, older files)."""
    resolved = str(Path(source_dir).resolve())
    settings = json.dumps(preprocessing.key(), sort_keys=True)
    name = f"{Path(source_dir).name}-{_short_hash(resolved, 12)}-{_short_hash(settings, 8)}"
    return arrays_dir(cache_dir) / f"{name}-{key[:32]}{_SUFFIX}"


def read_entry(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays stored at ``path``, or None on a miss (absent, truncated, corrupt)."""
    try:
        arrays = _read_npz(path)
    except FileNotFoundError:
        STATS.misses += 1
        return None
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
        STATS.misses += 1
        STATS.corrupt += 1
        logger.warning("cache entry %s is unreadable (%s); rebuilding it", path.name, exc)
        return None
    STATS.hits += 1
    return arrays


# Members at least this big are read straight into their array (see _read_stored_member).
_DIRECT_READ_BYTES = 1 << 20


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    """An uncompressed ``.npz`` as arrays. Opening the zip checks that the file is whole (its
    directory sits at the end); every member's CRC is checked."""
    arrays: dict[str, np.ndarray] = {}
    # One open file for both: a concurrent os.replace cannot slip another file in between.
    with open(path, "rb") as raw, zipfile.ZipFile(raw) as archive:
        for info in archive.infolist():
            name = info.filename.removesuffix(".npy")
            if info.compress_type == zipfile.ZIP_STORED and info.file_size >= _DIRECT_READ_BYTES:
                arrays[name] = _read_stored_member(raw, info)
            else:
                with archive.open(info) as member:  # zipfile checks the CRC as it reads
                    arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
    return arrays


def _read_stored_member(raw: io.BufferedReader, info: zipfile.ZipInfo) -> np.ndarray:
    """One stored ``.npy`` member read with a single ``readinto``: np.load goes through
    zipfile's chunked reads and copies, several times slower for the image array that is
    nearly all of an entry."""
    raw.seek(info.header_offset)
    local = raw.read(_LOCAL_HEADER.size)
    if len(local) < _LOCAL_HEADER.size or local[:4] != b"PK\x03\x04":
        raise ValueError(f"bad local header for {info.filename}")
    name_length, extra_length = _LOCAL_HEADER.unpack(local)[-2:]
    start = info.header_offset + _LOCAL_HEADER.size + name_length + extra_length
    raw.seek(start)
    version = np.lib.format.read_magic(raw)
    if version == (1, 0):
        shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(raw)
    else:
        shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(raw)
    if dtype.hasobject:
        raise ValueError(f"{info.filename} holds Python objects")
    header_end = raw.tell()
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if header_end - start + nbytes != info.file_size:
        raise ValueError(f"{info.filename} has the wrong size")
    data = np.empty(nbytes, dtype=np.uint8)
    if raw.readinto(data.data) != nbytes:
        raise EOFError(f"{info.filename} is truncated")
    raw.seek(start)
    crc = zlib.crc32(raw.read(header_end - start))
    if zlib.crc32(data.data, crc) != info.CRC:
        raise ValueError(f"{info.filename} fails its CRC check")
    return data.view(dtype).reshape(shape, order="F" if fortran_order else "C")


@contextlib.contextmanager
def build_lock(path: Path, timeout_s: float = _BUILD_LOCK_TIMEOUT_S) -> Iterator[None]:
    """Hold the build lock of the entry at ``path`` (an OS file lock, released if the process
    dies). After a miss, take it, then :func:`built_meanwhile`, and build only if that is None.
    Where the lock cannot be had (read-only cache, timeout) the build goes on without it: the
    atomic write keeps the entry whole either way, the lock only saves the duplicate work."""
    from filelock import FileLock, Timeout

    lock = FileLock(path.with_name(path.name + _LOCK_SUFFIX), timeout=timeout_s)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire()
    except (OSError, Timeout) as exc:
        logger.info("building %s without its build lock (%s)", path.name, exc)
        yield
        return
    try:
        yield
    finally:
        lock.release()


def file_identity(path: Path) -> tuple[int, int] | None:
    """(inode, mtime_ns) of the file at ``path``, None if absent: tells a rewritten entry from
    the one already read."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns


def built_meanwhile(path: Path) -> dict[str, np.ndarray] | None:
    """The entry at ``path`` if another process wrote it while this one waited for the build
    lock, else None. Counted as a hit in place of the miss that led here."""
    try:
        arrays = _read_npz(path)
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        return None
    STATS.misses -= 1
    STATS.hits += 1
    return arrays


def count_corrupt_entry() -> None:
    """For callers whose own checks on a read entry failed: turn the hit into a corrupt miss."""
    STATS.hits -= 1
    STATS.misses += 1
    STATS.corrupt += 1


def write_entry(path: Path, arrays: Mapping[str, np.ndarray]) -> bool:
    """Store ``arrays`` at ``path`` atomically; False (and a log line) where the cache is not
    writable, since a cache that cannot be filled must not stop a load."""
    tmp_name: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            dir=path.parent, prefix=f".{path.stem}.", suffix=_TMP_SUFFIX, delete=False
        ) as tmp:
            tmp_name = tmp.name
            # Uncompressed: reading back is a copy, not a decode.
            np.savez(tmp, allow_pickle=False, **arrays)
        os.replace(tmp_name, path)
    except OSError as exc:
        STATS.write_errors += 1
        logger.warning("could not write cache entry %s (%s); loading goes on without it", path, exc)
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
        return False
    STATS.writes += 1
    _prune_replaced(path)
    return True


def _prune_replaced(path: Path) -> None:
    """Drop entries this one replaces (same source folder and settings, other files) and
    temporary files left by processes that died while writing."""
    named = _ENTRY_NAME.fullmatch(path.name)
    prefix = named.group(1) if named else None  # only names entry_path made can be replaced
    now = time.time()
    with contextlib.suppress(OSError), os.scandir(path.parent) as entries:
        for entry in entries:
            try:
                if (
                    prefix
                    and entry.name.endswith((_SUFFIX, _SUFFIX + _LOCK_SUFFIX))
                    and entry.name.startswith(prefix)
                ):
                    if not entry.name.startswith(path.name):
                        os.unlink(entry.path)
                elif (
                    entry.name.endswith(_TMP_SUFFIX)
                    and now - entry.stat().st_mtime > _STALE_TMP_SECONDS
                ):
                    os.unlink(entry.path)
            except OSError:
                continue  # another process got there first, or the file is in use


def write_text_atomic(path: Path, text: str) -> None:
    """Write a small text file whole or not at all (raises OSError where not writable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=_TMP_SUFFIX)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as tmp:
            tmp.write(text)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


def class_order_path(root: Path, cache_dir: Path | None = None) -> Path:
    """The cache's copy of a dataset's class order (kept even where the dataset is read-only)."""
    resolved = str(Path(root).resolve())
    return arrays_dir(cache_dir) / f"{Path(root).name}-{_short_hash(resolved, 12)}.classes.txt"


@dataclass
class CacheInfo:
    directory: Path
    entries: int
    bytes: int


def cache_info(cache_dir: Path | None = None) -> CacheInfo:
    """How many array entries the cache holds, and their size on disk."""
    directory = arrays_dir(cache_dir)
    entries = 0
    total = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(directory) as found:
        for entry in found:
            if entry.name.endswith(_SUFFIX) and entry.is_file():
                entries += 1
                total += entry.stat().st_size
    return CacheInfo(directory=directory, entries=entries, bytes=total)


def clear_cache(cache_dir: Path | None = None) -> int:
    """Delete every cache entry (and temporary, lock and class-order files); the number of
    entries."""
    directory = arrays_dir(cache_dir)
    removed = 0
    with contextlib.suppress(FileNotFoundError), os.scandir(directory) as found:
        for entry in found:
            if entry.is_file() and entry.name.endswith(
                (_SUFFIX, _TMP_SUFFIX, _LOCK_SUFFIX, ".classes.txt")
            ):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed += entry.name.endswith(_SUFFIX)
    return removed
