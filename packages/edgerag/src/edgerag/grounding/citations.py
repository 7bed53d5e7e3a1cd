"""Citation validation: every ``[n]`` left in an answer names a source the model was given.

:func:`check_citations` finds markers ``[n]``, ``[n, m]`` (and so ``[n][m]``, two markers), keeps the
numbers that are sources' numbers, and removes the others: a marker with some valid numbers is
rewritten with those alone (``[1, 7]`` -> ``[1]``), a marker with none is deleted together with the
space before it (``"thrust [7]."`` -> ``"thrust."``). ``removed`` counts the invalid numbers.

``citations`` lists the valid sources in order of first use, once each. ``cited_fraction`` is the
share of the cleaned answer's sentences that carry at least one valid marker (sentences end at
``.``, ``!`` or ``?`` followed by whitespace, or at a line break; a marker right after a sentence's
full stop, as in ``"... thrust. [1]"``, belongs to that sentence). Sentences without a letter or
digit (list bullets, stray punctuation) are not counted.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from edgerag.grounding.sources import Source

__all__ = ["Citation", "CitationCheck", "check_citations", "sentences"]

_MARKER = re.compile(r"([ \t]*)\[(\d+(?:\s*,\s*\d+)*)\]")
_SPLIT = re.compile(r"(?<=[.!?])[ \t]+|[ \t]*\n+[ \t]*")
_VALID = re.compile(r"\[\d+(?:\s*,\s*\d+)*\]")
# Markers written after a sentence's end ("thrust. [1] Next") move before it for counting.
_TRAILING = re.compile(r"([.!?])((?:[ \t]*\[\d+(?:\s*,\s*\d+)*\])+)")


class Citation(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    n: int = Field(ge=1, description="the marker's number")
    chunk_id: str
    document_id: str
    title: str


class CitationCheck(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = Field(description="the answer with invalid markers removed")
    citations: list[Citation] = Field(description="the valid sources cited, in order of first use")
    removed: int = Field(ge=0, description="marker numbers that named no given source")
    cited_fraction: float = Field(ge=0, le=1, description="share of sentences with a valid marker")


def sentences(text: str) -> list[str]:
    """The sentences of ``text`` that contain a letter or digit (the rule above)."""
    text = _TRAILING.sub(r"\2\1", text)
    return [s for s in (part.strip() for part in _SPLIT.split(text)) if any(ch.isalnum() for ch in s)]


def check_citations(answer: str, sources: Sequence[Source]) -> CitationCheck:
    """``answer`` with only valid markers, and what was cited (see the module docstring)."""
    by_number = {source.n: source for source in sources}
    used: dict[int, None] = {}
    removed = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal removed
        # Over 9 digits names no source (and int() of thousands of digits would raise): 0 never does.
        numbers = [int(p) if len(p) <= 9 else 0 for p in re.split(r"\s*,\s*", match.group(2))]
        valid = [n for n in dict.fromkeys(numbers) if n in by_number]
        removed += sum(1 for n in numbers if n not in by_number)
        for n in valid:
            used.setdefault(n, None)
        if not valid:
            return ""
        if len(valid) == len(numbers):
            return match.group(0)
        return match.group(1) + "[" + ", ".join(str(n) for n in valid) + "]"

    text = _MARKER.sub(replace, answer)
    parts = sentences(text)
    cited = sum(1 for part in parts if _VALID.search(part))
    return CitationCheck(
        text=text,
        citations=[
            Citation(
                n=n,
                chunk_id=by_number[n].chunk_id,
                document_id=by_number[n].document_id,
                title=by_number[n].title,
            )
            for n in used
        ],
        removed=removed,
        cited_fraction=round(cited / len(parts), 4) if parts else 0.0,
    )
