"""Finding search-space files by name: ``load_space("casia_cnn")``, ``list_spaces()``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import tuner
from tuner.errors import SpaceError
from tuner.space.parse import close_match, display_path, load_yaml, parse_space
from tuner.space.spec import SearchSpace

SUFFIXES = (".yaml", ".yml")


def default_search_dirs() -> list[Path]:
    """Where names are looked up, first match wins.

    ``$TUNER_SPACES_DIR`` (several folders separated by ``os.pathsep``), then ``search_spaces/``
    in the working directory, then the repository's ``search_spaces/``; duplicates dropped.
    """
    dirs: list[Path] = []
    env = os.environ.get("TUNER_SPACES_DIR", "")
    dirs.extend(Path(p).expanduser() for p in env.split(os.pathsep) if p.strip())
    dirs.append(Path.cwd() / "search_spaces")
    dirs.append(Path(tuner.__file__).resolve().parents[1] / "search_spaces")
    out: list[Path] = []
    seen: set[Path] = set()
    for d in dirs:
        key = d.resolve()
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


def find_space_files(search_dirs: Sequence[Path] | None = None) -> dict[str, Path]:
    """Every ``*.yaml``/``*.yml`` in the search folders, by name (the file's stem), sorted.

    A name found in an earlier folder hides the same name in later ones.
    """
    dirs = default_search_dirs() if search_dirs is None else [Path(d) for d in search_dirs]
    found: dict[str, Path] = {}
    for d in dirs:
        if not d.is_dir():
            continue
        for f in sorted(d.iterdir()):
            if f.suffix in SUFFIXES and f.is_file():
                found.setdefault(f.stem, f)
    return dict(sorted(found.items()))


def _looks_like_path(text: str) -> bool:
    return "/" in text or os.sep in text or text.endswith(SUFFIXES)


def read_space_file(path: Path) -> SearchSpace:
    """Load and validate one YAML file."""
    label = display_path(path)
    if not path.exists():
        raise SpaceError(
            f"{label}: search space file not found; check the path, or give the name of a "
            f"space from `tune spaces list`"
        )
    if not path.is_file():
        raise SpaceError(f"{label}: is not a file; give the path of a .yaml file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SpaceError(f"{label}: is not UTF-8 text; save it as UTF-8") from None
    except OSError as e:
        raise SpaceError(f"{label}: cannot be read ({e.strerror}); check its permissions") from None
    return parse_space(load_yaml(text, label), source=path)


def load_space(
    name_or_path: str | Path, *, search_dirs: Sequence[Path] | None = None
) -> SearchSpace:
    """A search space by name (``casia_cnn`` → ``casia_cnn.yaml`` in the search folders) or by
    path (anything with a slash or ending in ``.yaml``/``.yml``; a bare file name that is not
    in the working directory is also looked for in the search folders)."""
    dirs = default_search_dirs() if search_dirs is None else [Path(d) for d in search_dirs]
    if isinstance(name_or_path, Path) or _looks_like_path(name_or_path):
        path = Path(name_or_path).expanduser()
        bare = not isinstance(name_or_path, Path) and path.name == name_or_path
        if bare and not path.exists():  # "casia_cnn.yaml": also look in the search folders
            for d in dirs:
                if (d / path.name).is_file():
                    return read_space_file(d / path.name)
        return read_space_file(path)
    name = name_or_path
    for d in dirs:
        for suffix in SUFFIXES:
            candidate = d / f"{name}{suffix}"
            if candidate.is_file():
                return read_space_file(candidate)
    available = find_space_files(dirs)
    where = ", ".join(display_path(d) for d in dirs)
    if not available:
        raise SpaceError(
            f"no search space named {name!r}: no .yaml files in {where}; "
            f"set TUNER_SPACES_DIR or pass the path of a .yaml file"
        )
    guess = close_match(name, available)
    hint = f"did you mean {guess!r}? " if guess else ""
    raise SpaceError(
        f"no search space named {name!r} in {where}; {hint}"
        f"available: {', '.join(available)} (or pass the path of a .yaml file)"
    )


def list_spaces(search_dirs: Sequence[Path] | None = None) -> list[SearchSpace]:
    """Every search space in the search folders, sorted by name; a broken file raises."""
    return [read_space_file(p) for p in find_space_files(search_dirs).values()]
