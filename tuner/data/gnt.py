"""CASIA-HWDB offline ``.gnt`` files, read and written out in the course layout.

A ``.gnt`` file holds one writer's samples back to back; each sample is::

    uint32 LE   total size in bytes (this 10-byte header plus the bitmap)
    2 bytes     tag code: the character's GB2312 code, lead byte first
    uint16 LE   width
    uint16 LE   height
    width*height bytes   grayscale bitmap, row by row, 255 = background

:func:`import_gnt` writes ``OUT/<split>/<char>/<n>.png`` plus ``OUT/writers.csv`` (one writer per
``.gnt`` file), so validation splits can keep writers apart.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import shutil
import struct
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from tuner.data import cache as array_cache
from tuner.data.layout import (
    CLASSES_FILE,
    IMPORT_MARKER,
    TEST,
    TRAIN,
    WRITERS_FILE,
    WRITERS_HEADER,
    list_class_folders,
    natural_key,
    read_writers,
)
from tuner.errors import DataError

SAMPLE_HEADER = struct.Struct("<I2sHH")
_REDOWNLOAD = "download or extract it again"
# Characters that cannot name a folder on common file systems.
_UNSAFE_NAMES = frozenset({"", ".", ".."})
_UNSAFE_CHARS = frozenset('/\\\0:*?"<>|')


def _decode_tag(tag: bytes, path: Path, offset: int) -> str:
    code = tag.rstrip(b"\0")  # single-byte (ASCII) tags are padded with NUL in some files
    for encoding in ("gb2312", "gb18030"):
        try:
            char = code.decode(encoding)
        except UnicodeDecodeError:
            continue
        if len(char) == 1:
            return char
    raise DataError(
        f"{path.name} has an unknown tag code {tag.hex()} at byte {offset}: it is not a CASIA "
        f".gnt file, or it is corrupt ({_REDOWNLOAD})"
    )


def iter_gnt(path: str | Path) -> Iterator[tuple[str, np.ndarray]]:
    """(character, (height, width) uint8 bitmap) for each sample in a ``.gnt`` file.

    A truncated or malformed file raises DataError with the file name and the byte offset of the
    sample that does not fit.
    """
    path = Path(path)
    with path.open("rb") as handle:
        offset = 0
        while True:
            header = handle.read(SAMPLE_HEADER.size)
            if not header:
                return
            if len(header) < SAMPLE_HEADER.size:
                raise DataError(
                    f"{path.name} is truncated at byte {offset}: the sample header there has "
                    f"{len(header)} of {SAMPLE_HEADER.size} bytes ({_REDOWNLOAD})"
                )
            size, tag, width, height = SAMPLE_HEADER.unpack(header)
            if width == 0 or height == 0 or size != SAMPLE_HEADER.size + width * height:
                raise DataError(
                    f"{path.name} is not a CASIA .gnt file or is corrupt at byte {offset}: the "
                    f"sample there claims {size} bytes for a {width}x{height} bitmap "
                    f"({_REDOWNLOAD})"
                )
            bitmap = handle.read(width * height)
            if len(bitmap) < width * height:
                raise DataError(
                    f"{path.name} is truncated at byte {offset}: the sample there needs {size} "
                    f"bytes, the file has {SAMPLE_HEADER.size + len(bitmap)} left ({_REDOWNLOAD})"
                )
            char = _decode_tag(tag, path, offset)
            yield char, np.frombuffer(bitmap, dtype=np.uint8).reshape(height, width).copy()
            offset += size


def write_gnt(samples: Iterable[tuple[str, np.ndarray]], path: str | Path) -> None:
    """Write (character, bitmap) samples as a ``.gnt`` file (for tests and small fixtures)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        for char, bitmap in samples:
            bitmap = np.ascontiguousarray(bitmap, dtype=np.uint8)
            height, width = bitmap.shape
            tag = char.encode("gb2312")
            if len(tag) == 1:
                tag += b"\0"
            size = SAMPLE_HEADER.size + width * height
            handle.write(SAMPLE_HEADER.pack(size, tag, width, height))
            handle.write(bitmap.tobytes())


@dataclass
class GntImport:
    """What :func:`import_gnt` did."""

    out_dir: Path
    split: str
    files: int = 0  # .gnt files read (writers)
    samples: int = 0  # samples in them
    written: int = 0  # PNGs written
    classes: list[str] = field(default_factory=list)  # characters written, in first-seen order
    missing: list[str] = field(default_factory=list)  # asked-for characters never seen
    already_imported: list[str] = field(default_factory=list)  # writers skipped as duplicates
    unsafe_names: int = 0  # samples whose character cannot name a folder

    def summary(self) -> str:
        line = (
            f"imported {self.written} images of {len(self.classes)} characters from "
            f"{self.files} .gnt files into {self.out_dir / self.split}"
        )
        notes = []
        if self.missing:
            notes.append(f"{len(self.missing)} asked-for characters not found")
        if self.already_imported:
            notes.append(f"{len(self.already_imported)} files skipped as already imported")
        if self.unsafe_names:
            notes.append(f"{self.unsafe_names} samples skipped (character not a valid folder name)")
        return line + (f" ({'; '.join(notes)})" if notes else "")


def expand_gnt_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Files as given; folders as the ``.gnt`` files inside them (sorted)."""
    found: list[Path] = []
    for given in paths:
        path = Path(given).expanduser()
        if path.is_dir():
            inside = sorted(
                (p for p in path.iterdir() if p.suffix.lower() == ".gnt" and p.is_file()),
                key=lambda p: natural_key(p.name),
            )
            if not inside:
                raise DataError(f"{path} holds no .gnt files: give .gnt files or their folder")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise DataError(
                f"{path} does not exist: give .gnt files from CASIA-HWDB (e.g. unzipped "
                "HWDB1.1trn_gnt.zip) or the folder holding them"
            )
    if not found:
        raise DataError("no .gnt files given: name the files, or the folder holding them")
    return found


def _next_numbers(out_dir: Path, split: str) -> dict[str, int]:
    """For each existing class folder, the first free ``<n>`` in ``<n>.png``."""
    split_dir = out_dir / split
    numbers: dict[str, int] = {}
    if not split_dir.is_dir():
        return numbers
    for cls in list_class_folders(split_dir):
        used = [int(p.stem) for p in (split_dir / cls).iterdir() if p.stem.isdigit()]
        numbers[cls] = max(used, default=0) + 1
    return numbers


def _writers_text(rows: Sequence[tuple[str, str, str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(WRITERS_HEADER)
    writer.writerows(rows)
    return buffer.getvalue()


def import_gnt(
    paths: Iterable[str | Path],
    out_dir: str | Path,
    *,
    chars: list[str] | None = None,
    split: str = TRAIN,
) -> GntImport:
    """Write the samples of ``.gnt`` files as ``out_dir/<split>/<char>/<n>.png``.

    Only ``chars`` where given (their order becomes ``classes.txt`` in a new dataset). Each file
    is one writer, recorded in ``out_dir/writers.csv`` (merged with what is there; a writer
    already imported into this split is skipped). Images are written to a staging folder first:
    a new dataset appears in one rename, an existing one is marked incomplete while files move
    in, so an interrupted import never passes for a complete dataset.
    """
    if split not in (TRAIN, TEST):
        raise DataError(f"split must be {TRAIN} or {TEST}, not {split!r}")
    files = expand_gnt_paths(paths)
    stems = [p.stem for p in files]
    duplicates = sorted({s for s in stems if stems.count(s) > 1})
    if duplicates:
        raise DataError(
            f"several .gnt files are named {duplicates[0]}: each file name is a writer id, so "
            "import same-named files from different folders in separate runs"
        )
    out_dir = Path(out_dir).expanduser()
    if (out_dir / IMPORT_MARKER).exists():
        raise DataError(
            f"a previous import into {out_dir} did not finish: delete {out_dir} and import again"
        )
    fresh = not out_dir.exists() or (out_dir.is_dir() and not any(out_dir.iterdir()))
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"{out_dir} is a file: give a folder for the dataset with --out")
    known_writers = {} if fresh else read_writers(out_dir)
    imported = {w for (s, _, _), w in known_writers.items() if s == split}

    wanted = set(chars) if chars else None
    result = GntImport(out_dir=out_dir, split=split)
    numbers = {} if fresh else _next_numbers(out_dir, split)
    new_rows: list[tuple[str, str, str, str]] = []

    try:
        staging_parent = out_dir.parent if fresh else out_dir
        staging_parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.import-", dir=staging_parent))
        try:
            for path in files:
                writer_id = path.stem
                if writer_id in imported:
                    result.already_imported.append(writer_id)
                    continue
                result.files += 1
                for char, bitmap in iter_gnt(path):
                    result.samples += 1
                    if wanted is not None and char not in wanted:
                        continue
                    if char in _UNSAFE_NAMES or _UNSAFE_CHARS.intersection(char):
                        result.unsafe_names += 1
                        continue
                    class_dir = staging / split / char
                    if char not in numbers:
                        numbers[char] = 1
                    if not class_dir.is_dir():
                        class_dir.mkdir(parents=True)
                        if char not in result.classes:
                            result.classes.append(char)
                    name = f"{numbers[char]}.png"
                    numbers[char] += 1
                    Image.fromarray(bitmap).save(class_dir / name)
                    new_rows.append((split, char, name, writer_id))
                    result.written += 1
            if chars:
                result.missing = [c for c in chars if c not in set(result.classes)]
                result.classes.sort(key=chars.index)
            if result.written == 0:
                if result.files == 0:
                    return result  # every file was imported before: nothing to do
                what = "of the chosen characters " if chars else ""
                raise DataError(
                    f"the {result.files} .gnt files hold no samples {what}to import "
                    f"({result.samples} samples read): check --chars and the files"
                )
            if fresh:
                _finish_fresh(staging, out_dir, new_rows, result.classes if chars else None)
            else:
                _finish_merge(staging, out_dir, split, new_rows, known_writers, result.classes)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        where = exc.filename or out_dir
        raise DataError(
            f"cannot write the dataset ({where}: {exc.strerror or exc}): give a writable --out "
            "folder with room for the images"
        ) from exc
    return result


def _finish_fresh(
    staging: Path,
    out_dir: Path,
    rows: list[tuple[str, str, str, str]],
    class_order: list[str] | None,
) -> None:
    if rows:
        (staging / WRITERS_FILE).write_text(_writers_text(rows), encoding="utf-8")
    if class_order:
        (staging / CLASSES_FILE).write_text("".join(f"{c}\n" for c in class_order), "utf-8")
    if out_dir.exists():
        out_dir.rmdir()  # empty (checked by the caller): rename cannot replace it everywhere
    os.replace(staging, out_dir)


def _finish_merge(
    staging: Path,
    out_dir: Path,
    split: str,
    rows: list[tuple[str, str, str, str]],
    known_writers: dict[tuple[str, str, str], str],
    new_classes: list[str],
) -> None:
    marker = out_dir / IMPORT_MARKER
    marker.write_text("`tune data import-gnt` was moving files in here and did not finish\n")
    staged_split = staging / split
    target_split = out_dir / split
    target_split.mkdir(exist_ok=True)
    if staged_split.is_dir():
        for cls in list_class_folders(staged_split):
            target = target_split / cls
            if not target.exists():
                os.replace(staged_split / cls, target)
                continue
            for image in (staged_split / cls).iterdir():  # numbered after the existing ones
                os.replace(image, target / image.name)
    if rows:
        merged = [(*key, writer) for key, writer in known_writers.items()] + rows
        array_cache.write_text_atomic(out_dir / WRITERS_FILE, _writers_text(merged))
    classes_path = out_dir / CLASSES_FILE
    if classes_path.is_file():
        listed = [line.strip() for line in classes_path.read_text("utf-8").splitlines()]
        listed = [c for c in listed if c]
        added = [c for c in new_classes if c not in set(listed)]
        if added:
            array_cache.write_text_atomic(classes_path, "".join(f"{c}\n" for c in listed + added))
    with contextlib.suppress(FileNotFoundError):
        marker.unlink()
