"""A CJK font for every plot, on a fresh machine with no system fonts.

The font comes from a PyPI dependency, ``pylopdf-fonts-zh-cn`` (Noto Sans SC Regular, SIL OFL
1.1: every GB2312 character and every character the synthetic handwriting knows). When it is
missing, other Noto/WenQuanYi packages and the system's fonts are tried, each checked for the
glyphs it is asked to draw (its cmap, read with fontTools), so a plot never shows empty boxes.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tuner.errors import TunerError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

# TUNER_CJK_FONT names a font file to use instead (a .ttf, .otf or .ttc).
ENV_FONT = "TUNER_CJK_FONT"
INSTALL_HINT = "pip install pylopdf-fonts-zh-cn"
# (module, function returning the path or attribute path) of packages that ship a CJK font.
_PACKAGED: tuple[tuple[str, str], ...] = (
    ("pylopdf_fonts_zh_cn", "sans_path()"),
    ("paperang_p2_fonts_cjk", "fonts/wqy-microhei.ttc"),
    ("manimgx_fonts_cjk", "NotoSansCJK-VF.otf.ttc"),
)
# Characters every candidate must have: common ones from the course's set.
PROBE = "大天夫人东本的一是"


class FontError(TunerError):
    """No font on this machine can draw the characters a plot needs."""


def _packaged_fonts() -> Iterator[Path]:
    for module_name, where in _PACKAGED:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        if where.endswith("()"):
            path = Path(getattr(module, where[:-2])())
        else:
            path = Path(module.__file__ or "").parent / where
        if path.is_file():
            yield path


def _system_fonts() -> Iterator[Path]:
    from matplotlib import font_manager

    for entry in font_manager.fontManager.ttflist:
        yield Path(entry.fname)


@functools.lru_cache(maxsize=64)
def font_codepoints(path: Path) -> frozenset[int]:
    """The code points a font file maps to glyphs (the first font of a collection)."""
    from fontTools.ttLib import TTFont

    with contextlib.suppress(Exception):
        font = TTFont(str(path), fontNumber=0, lazy=True)
        try:
            cmap = font.getBestCmap() or {}
            return frozenset(cmap)
        finally:
            font.close()
    return frozenset()


def missing_glyphs(path: Path, text: Iterable[str]) -> list[str]:
    """Characters of ``text`` (whitespace aside) that the font at ``path`` cannot draw."""
    points = font_codepoints(Path(path))
    seen: dict[str, None] = {}
    for ch in "".join(text):
        if not ch.isspace() and ord(ch) not in points:
            seen[ch] = None
    return list(seen)


def candidate_fonts() -> Iterator[Path]:
    """Font files to try, best first: TUNER_CJK_FONT, packaged fonts, the system's."""
    explicit = os.environ.get(ENV_FONT)
    if explicit:
        yield Path(explicit).expanduser()
    yield from _packaged_fonts()
    yield from _system_fonts()


def find_cjk_font(chars: Iterable[str] = ()) -> Path:
    """The first candidate font that has every glyph of ``chars`` (and a few common ones)."""
    needed = PROBE + "".join(chars)
    best: tuple[int, Path] | None = None
    for path in candidate_fonts():
        if not path.is_file():
            continue
        missing = missing_glyphs(path, needed)
        if not missing:
            return path
        if best is None or len(missing) < best[0]:
            best = (len(missing), path)
    shown = "".join(missing_glyphs(best[1], needed)[:10]) if best else needed[:10]
    raise FontError(
        f"no installed font can draw the characters {shown}: {INSTALL_HINT} (or set "
        f"{ENV_FONT} to a CJK font file)"
    )


@functools.lru_cache(maxsize=8)
def register_font(path: Path) -> str:
    """Add the font file to matplotlib's font manager; its family name."""
    from matplotlib import font_manager

    font_manager.fontManager.addfont(str(path))
    return str(font_manager.FontProperties(fname=str(path)).get_name())


def cjk_rc(chars: Iterable[str] = ()) -> dict[str, Any]:
    """matplotlib settings that draw text in a CJK font covering ``chars``."""
    family = register_font(find_cjk_font(chars))
    return {
        "font.family": "sans-serif",
        "font.sans-serif": [family, "DejaVu Sans"],
        "axes.unicode_minus": False,
        "savefig.dpi": 110,
    }


@contextlib.contextmanager
def plot_style(chars: Iterable[str] = ()) -> Iterator[None]:
    """``with plot_style(labels):`` everything plotted inside uses the Agg backend and a CJK
    font that has the labels' glyphs."""
    import sys

    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")  # files only: no window, no display needed
    settings: Any = cjk_rc(chars)
    with matplotlib.rc_context(settings):
        yield


def figure_texts(fig: Figure) -> list[Any]:
    """Every visible Text artist in ``fig`` (titles, tick labels, legends, annotations)."""
    from matplotlib.text import Text

    fig.canvas.draw()  # tick labels exist only once drawn
    return [
        t
        for t in fig.findobj(match=Text)
        if t.get_visible() and t.get_text() and t.get_text().strip()
    ]


def undrawable_text(fig: Figure) -> list[tuple[str, str, str]]:
    """(text, font file, missing characters) for each text in ``fig`` whose font lacks some of
    its glyphs; empty when every character has a glyph. mathtext (``$...$``) is skipped."""
    from matplotlib import font_manager

    problems = []
    for text in figure_texts(fig):
        content = text.get_text()
        if content.count("$") >= 2:
            continue
        path = Path(font_manager.findfont(text.get_fontproperties()))
        missing = missing_glyphs(path, content)
        if missing:
            problems.append((content, str(path), "".join(missing)))
    return problems
