"""Split a document's text into retrieval chunks that fit the embedding model's input.

The algorithm, in two passes:

1. **Units.** The text is cut into the largest pieces that fit ``max_tokens`` on their own, preferring
   natural boundaries: a paragraph (separated by a blank line) if it fits, else its sentences, else a
   sentence's words, else (for pathological "words" such as a base64 blob) runs of characters. Units
   are trimmed of surrounding whitespace, so together they hold every non-space character in order.
2. **Packing.** Consecutive units are packed greedily into a chunk while the chunk still fits
   ``max_tokens``. When a chunk ends at a sentence end, the next chunk starts with the previous
   chunk's trailing whole sentences, as many as fit ``overlap_tokens`` (and still leave room for new
   text), so a passage cut at a chunk boundary is retrievable from either side.

A sentence ends at ``.``, ``!``, ``?`` or ``…`` (plus closing quotes/brackets) followed by whitespace
and not by a lower-case letter ("e.g. the" stays one sentence), at CJK full stops, and at a line
break (lists, tables and code lines are sentences of their own).

Every chunk is an exact slice of the input: ``text[chunk.char_start:chunk.char_end] == chunk.text``.
No normalisation happens here; the extractor normalises line endings before chunking. The result is
deterministic. ``hard_limit_tokens`` is the model's real limit and is enforced: a chunk that would
exceed it (possible only with a custom counter that rates a single character above ``max_tokens``)
raises :class:`ChunkTooLargeError` instead of being silently truncated by the model.

Token counts come from ``count`` (default :func:`edgerag.tokens.estimate_tokens`). The packing
searches assume ``count`` is monotone (appending text never lowers it); with a counter that is not,
chunks still respect the limits but may be smaller than they could be.

To extend: a new boundary kind (e.g. Markdown headings as hard breaks) belongs in the unit pass, as
one more level tried before sentences; the packing pass does not need to change.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass

from edgerag.tokens import estimate_tokens

__all__ = ["Chunk", "ChunkTooLargeError", "ChunkingSettings", "TokenCounter", "chunk_text"]

TokenCounter = Callable[[str], int]

_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
# Possessive \s++ so that "e.g.  the" (two spaces) cannot backtrack to a space and look like a break.
# Typographic quotes and CJK full stops are intended here.
_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’)\]]*(?=\s++(?![a-z]))|[。！？]+|\n")  # noqa: RUF001
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class ChunkingSettings:
    """Chunk sizes in (estimated) tokens: ``0 <= overlap_tokens < max_tokens <= hard_limit_tokens``."""

    max_tokens: int = 400
    overlap_tokens: int = 60
    hard_limit_tokens: int = 512

    def __post_init__(self) -> None:
        for name in ("max_tokens", "overlap_tokens", "hard_limit_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if not 0 <= self.overlap_tokens < self.max_tokens <= self.hard_limit_tokens:
            raise ValueError(
                "chunking settings need 0 <= overlap_tokens < max_tokens <= hard_limit_tokens, got "
                f"overlap_tokens={self.overlap_tokens}, max_tokens={self.max_tokens}, "
                f"hard_limit_tokens={self.hard_limit_tokens}"
            )


@dataclass(frozen=True)
class Chunk:
    """One chunk: its position in the document (``seq``), text, source span and token estimate."""

    seq: int
    text: str
    char_start: int
    char_end: int
    token_estimate: int


class ChunkTooLargeError(ValueError):
    """A piece of text that cannot be split further exceeds ``hard_limit_tokens``."""

    def __init__(self, char_start: int, tokens: int, hard_limit: int) -> None:
        super().__init__(
            f"text at character {char_start} counts {tokens} tokens and cannot be split "
            f"below the hard limit of {hard_limit}"
        )
        self.char_start = char_start
        self.tokens = tokens
        self.hard_limit = hard_limit


def chunk_text(
    text: str, settings: ChunkingSettings | None = None, count: TokenCounter = estimate_tokens
) -> list[Chunk]:
    """Split ``text`` into chunks (see the module docstring); whitespace-only text gives ``[]``."""
    return _Chunker(text, settings or ChunkingSettings(), count).run()


class _Chunker:
    def __init__(self, text: str, settings: ChunkingSettings, count: TokenCounter) -> None:
        self.text = text
        self.settings = settings
        self.count = count
        self.units: list[tuple[int, int]] = []
        # Where sentences (and paragraphs) start and end: the only places an overlap may begin, and
        # the only chunk ends after which an overlap is carried.
        self.sentence_starts: list[int] = []
        self.sentence_ends: set[int] = set()
        # Counting is the expensive step and the searches revisit spans: count each span once.
        self._counts: dict[tuple[int, int], int] = {}
        # What every count includes whatever the text (e.g. special tokens): subtracted when counts
        # of pieces are added up to predict the count of their concatenation.
        self.overhead = count("")

    def run(self) -> list[Chunk]:
        for start, end in self._paragraphs():
            self._add_paragraph(start, end)
        return self._pack()

    def _count(self, start: int, end: int) -> int:
        key = (start, end)
        tokens = self._counts.get(key)
        if tokens is None:
            tokens = self._counts[key] = self.count(self.text[start:end])
        return tokens

    def _fits(self, start: int, end: int) -> bool:
        return self._count(start, end) <= self.settings.max_tokens

    # -- pass 1: units ---------------------------------------------------------------------------

    def _paragraphs(self) -> list[tuple[int, int]]:
        spans, position = [], 0
        for match in _PARAGRAPH_BREAK.finditer(self.text):
            spans.append((position, match.start()))
            position = match.end()
        spans.append((position, len(self.text)))
        return [trimmed for start, end in spans if (trimmed := self._trim(start, end)) is not None]

    def _sentences(self, start: int, end: int) -> list[tuple[int, int]]:
        spans, position = [], start
        for match in _SENTENCE_END.finditer(self.text, start, end):
            spans.append((position, match.end()))
            position = match.end()
        spans.append((position, end))
        return [trimmed for s, e in spans if (trimmed := self._trim(s, e)) is not None]

    def _add_paragraph(self, start: int, end: int) -> None:
        sentences = self._sentences(start, end)
        for s_start, s_end in sentences:
            self.sentence_starts.append(s_start)
            self.sentence_ends.add(s_end)
        # Count the sentences first and the whole paragraph only if their sum says it may fit: long
        # paragraphs are then counted once, not twice. A wrong "no" only costs a preference (the
        # packer still puts the sentences together if they fit), never a limit.
        predicted = sum(self._count(*span) - self.overhead for span in sentences) + self.overhead
        if predicted <= self.settings.max_tokens and self._fits(start, end):
            self.units.append((start, end))
            return
        for s_start, s_end in sentences:
            if self._fits(s_start, s_end):
                self.units.append((s_start, s_end))
                continue
            for word in _WORD.finditer(self.text, s_start, s_end):
                if self._fits(word.start(), word.end()):
                    self.units.append(word.span())
                else:
                    self._add_characters(word.start(), word.end())

    def _add_characters(self, start: int, end: int) -> None:
        """Cut an unsplittable word into the longest character runs that fit, left to right."""
        while start < end:
            low, high = start + 1, end  # invariant: the answer lies in [low, high]
            while low < high:
                middle = (low + high + 1) // 2
                if self._fits(start, middle):
                    low = middle
                else:
                    high = middle - 1
            self.units.append((start, low))
            start = low

    def _trim(self, start: int, end: int) -> tuple[int, int] | None:
        text = self.text
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        return (start, end) if start < end else None

    # -- pass 2: packing -------------------------------------------------------------------------

    def _pack(self) -> list[Chunk]:
        chunks: list[Chunk] = []
        index, start = 0, None
        while index < len(self.units):
            if start is None:
                start = self.units[index][0]
            last = self._extend(start, index)
            end = self.units[last][1]
            chunks.append(self._make_chunk(len(chunks), start, end))
            index = last + 1
            start = self._overlap_start(start, end, index) if index < len(self.units) else None
        return chunks

    def _extend(self, start: int, first: int) -> int:
        """The last unit index such that ``text[start:units[last].end]`` fits (``first`` at least)."""
        units, fits = self.units, self._fits
        guess = self._predict_last(start, first)
        # Search outwards from the guess: the guess is usually exact or one off, so this costs two
        # or three counts; a bad guess (a counter far from additive) costs a logarithmic number.
        if fits(start, units[guess][1]):
            low, high, step = guess, len(units), 1  # fits at `low`; fails from `high` on
            while low + step < high and fits(start, units[low + step][1]):
                low, step = low + step, step * 2
            high = min(high, low + step)
        else:
            low, high, step = first, guess, 1
            while high - step > first and not fits(start, units[high - step][1]):
                high, step = high - step, step * 2
            low = max(first, high - step)
        while high - low > 1:
            middle = (low + high) // 2
            if fits(start, units[middle][1]):
                low = middle
            else:
                high = middle
        return low

    def _predict_last(self, start: int, first: int) -> int:
        """Guess the last unit that fits by treating counts as additive (minus the fixed overhead
        every count includes, e.g. special tokens)."""
        budget = self.settings.max_tokens - self._count(start, self.units[first][1])
        last = first
        for index in range(first + 1, len(self.units)):
            budget -= self._count(*self.units[index]) - self.overhead
            if budget < 0:
                break
            last = index
        return last

    def _overlap_start(self, chunk_start: int, chunk_end: int, next_unit: int) -> int | None:
        """Where the next chunk begins so it repeats this chunk's trailing sentences, or None."""
        if self.settings.overlap_tokens == 0 or chunk_end not in self.sentence_ends:
            return None
        next_end = self.units[next_unit][1]
        chosen = None
        for candidate in reversed(self._starts_within(chunk_start, chunk_end)):
            overlap = self._count(candidate, chunk_end)
            if overlap > self.settings.overlap_tokens or not self._fits(candidate, next_end):
                break  # earlier starts only add text, so they cannot fit either
            chosen = candidate
        return chosen

    def _starts_within(self, chunk_start: int, chunk_end: int) -> list[int]:
        low = bisect_right(self.sentence_starts, chunk_start)
        high = bisect_left(self.sentence_starts, chunk_end)
        return self.sentence_starts[low:high]

    def _make_chunk(self, seq: int, start: int, end: int) -> Chunk:
        tokens = self._count(start, end)
        if tokens > self.settings.hard_limit_tokens:
            raise ChunkTooLargeError(start, tokens, self.settings.hard_limit_tokens)
        text = self.text[start:end]
        return Chunk(seq=seq, text=text, char_start=start, char_end=end, token_estimate=tokens)
