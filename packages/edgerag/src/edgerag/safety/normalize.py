"""The one text normalisation every safety check matches against.

Deny-lists and the injection detector look at a *folded* copy of the text, never the text itself, so
trivial disguises do not slip through: Unicode compatibility forms are unified (NFKC: ``ignore``
written in full-width letters, and ligatures, become plain letters), invisible characters are dropped
(zero-width spaces and joiners, soft hyphens, bidi controls, the Unicode "tag" block that can smuggle
ASCII), case is folded and every run of whitespace becomes one space. What the model and the user see
is never changed by this module.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

__all__ = ["HIDDEN_CHARACTERS", "fold", "hidden_characters", "tag_payload"]

# Zero-width and formatting characters that render as nothing, bidi overrides, and the tag block
# (U+E0000-U+E007F, "ASCII smuggling": invisible characters that mirror ASCII one for one).
HIDDEN_CHARACTERS: Final = re.compile(
    "[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]"
)
_TAGS: Final = re.compile("[\U000e0020-\U000e007e]+")
_SPACE: Final = re.compile(r"\s+")


def fold(text: str) -> str:
    """NFKC, hidden characters removed, case-folded, whitespace runs collapsed to one space, stripped."""
    text = HIDDEN_CHARACTERS.sub("", unicodedata.normalize("NFKC", text))
    return _SPACE.sub(" ", text.casefold()).strip()


def hidden_characters(text: str) -> int:
    """How many invisible characters the text carries (see :data:`HIDDEN_CHARACTERS`)."""
    return len(HIDDEN_CHARACTERS.findall(text))


def tag_payload(text: str) -> str:
    """The ASCII text smuggled in Unicode tag characters, if any (each tag = its ASCII twin)."""
    return " ".join("".join(chr(ord(ch) - 0xE0000) for ch in run.group(0)) for run in _TAGS.finditer(text))
