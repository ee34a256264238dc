"""Hangul in plots: find a font with Hangul glyphs, or romanise labels when there is none.

Matplotlib's default font (DejaVu Sans) has no Hangul, so Korean labels would draw as
empty boxes. :func:`find_hangul_font` looks through the system's fonts (Nanum and
Noto CJK first) for one covering the Hangul syllables; without one,
:func:`plot_labels` turns labels into Revised Romanization (행복 → haengbok), and the
report lists the original labels as HTML text, which the browser renders itself.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from matplotlib import font_manager
from matplotlib.ft2font import FT2Font

# Syllables whose glyphs a usable font must have: the first and last of the block, and common ones.
_PROBE = "가힣행복슬픔분노"
_PREFERRED = (
    "nanumgothic",
    "nanum",
    "notosanscjk",
    "notoserifcjk",
    "notosanskr",
    "sourcehan",
    "undotum",
    "unbatang",
    "baekmuk",
    "malgun",
    "applegothic",
    "applesdgothic",
    "droidsansfallback",
    "wqy",
)
_STYLED = (
    "bold",
    "light",
    "thin",
    "extra",
    "heavy",
    "black",
    "italic",
    "coding",
    "mono",
    "eco",
    "round",
    "square",
    "pen",
    "brush",
    "myeongjo",
)

_INITIALS = ("g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s", "ss", "", "j", "jj", "ch", "k", "t", "p", "h")
_VOWELS = (
    "a",
    "ae",
    "ya",
    "yae",
    "eo",
    "e",
    "yeo",
    "ye",
    "o",
    "wa",
    "wae",
    "oe",
    "yo",
    "u",
    "wo",
    "we",
    "wi",
    "yu",
    "eu",
    "ui",
    "i",
)
_FINALS = (
    "",
    "k",
    "k",
    "k",
    "n",
    "n",
    "n",
    "t",
    "l",
    "k",
    "m",
    "l",
    "l",
    "l",
    "p",
    "l",
    "m",
    "p",
    "p",
    "t",
    "t",
    "ng",
    "t",
    "t",
    "k",
    "t",
    "p",
    "t",
)
_FIRST_SYLLABLE, _LAST_SYLLABLE = 0xAC00, 0xD7A3


@functools.cache
def find_hangul_font() -> Path | None:
    """A system font file with Hangul glyphs (Nanum, Noto CJK, ... first), or ``None`` when there is none."""
    files = sorted(font_manager.findSystemFonts(fontext="ttf"), key=_preference)
    for file in files:
        if covers_hangul(Path(file)):
            return Path(file)
    return None


def _preference(file: str) -> tuple[int, bool, str]:
    """Preferred families first, and within them the plain (regular, proportional) face."""
    name = Path(file).name.lower().replace(" ", "").replace("-", "").replace("_", "")
    ranks = [rank for rank, key in enumerate(_PREFERRED) if key in name]
    styled = any(style in name for style in _STYLED)
    return (ranks[0] if ranks else len(_PREFERRED), styled, file)


def covers_hangul(path: Path) -> bool:
    """Whether the font at ``path`` has glyphs for Hangul syllables (unreadable files: no)."""
    try:
        charmap = FT2Font(str(path)).get_charmap()
    except (OSError, RuntimeError, ValueError):
        return False
    return all(ord(character) in charmap for character in _PROBE)


def font_family(path: Path) -> str:
    """Register the font at ``path`` with matplotlib and return its family name."""
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()


def romanize(text: str) -> str:
    """Hangul syllables in Revised Romanization, letter by letter (no sound-change rules); other text unchanged."""
    parts = []
    for character in text:
        code = ord(character)
        if _FIRST_SYLLABLE <= code <= _LAST_SYLLABLE:
            offset = code - _FIRST_SYLLABLE
            initial, rest = divmod(offset, 21 * 28)
            vowel, final = divmod(rest, 28)
            parts.append(_INITIALS[initial] + _VOWELS[vowel] + _FINALS[final])
        else:
            parts.append(character)
    return "".join(parts)


def plot_labels(labels: Sequence[str], hangul: bool) -> list[str]:
    """Labels as they can be drawn: unchanged with a Hangul font, else romanised.

    A label that still holds non-Latin characters after romanising (Chinese, say),
    or that collides with another, becomes ``class N`` (its class id).
    """
    if hangul:
        return list(labels)
    drawn = [romanize(label) for label in labels]
    shown = []
    for index, text in enumerate(drawn):
        drawable = all(ord(character) < 0x250 for character in text)
        shown.append(text if drawable and drawn.count(text) == 1 and text.strip() else f"class {index}")
    return shown


def plot_text(text: str, hangul: bool) -> str:
    """Free text (run descriptions) as it can be drawn: romanised without a Hangul font, other scripts as ``?``."""
    if hangul:
        return text
    return "".join(character if ord(character) < 0x250 else "?" for character in romanize(text))
