"""Split a document's text into retrieval chunks that fit the embedding model's input.

The algorithm, in two passes that run interleaved (units are made as the packer asks for them):

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

Token counts come from ``count`` (default :func:`edgerag.tokens.estimate_tokens`). The searches
assume ``count`` is monotone (appending text never lowers it); with a counter that is not, chunks
still respect the limits but may be smaller than they could be.

**Cost is linear in the text** (uploads are untrusted: a 9 MB "word" must not take minutes). Every
count is of a span at most about one chunk long, apart from one count of each paragraph, sentence and
word, and every search starts from a prediction: a unit's count is known once it is made, the packer
predicts where a chunk ends by adding unit counts (corrected by what the first probe measured), and
over-long words are cut with the previous piece's length as the first guess. The regular expressions
cannot backtrack over a run (a run of 100,000 dots is scanned once, not once per dot), and only a
window of units around the current chunk is kept, so memory stays bounded too.
:func:`iter_chunks` yields chunks as they are made, so a caller can stop after a budget.

To extend: a new boundary kind (e.g. Markdown headings as hard breaks) belongs in the unit pass, as
one more level tried before sentences; the packing pass does not need to change.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import NamedTuple

from edgerag.tokens import estimate_tokens

__all__ = ["Chunk", "ChunkTooLargeError", "ChunkingSettings", "TokenCounter", "chunk_text", "iter_chunks"]

TokenCounter = Callable[[str], int]

_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*+\n\s*")
# The punctuation run is matched once from its first character ((?<!...) and possessive ++/*+):
# otherwise every dot of a long run of dots would restart the match and rescan the run (quadratic).
# Possessive \s++ so that "e.g.  the" (two spaces) cannot backtrack to a space and look like a break.
# Typographic quotes and CJK full stops are intended here.
_SENTENCE_END = re.compile(
    r"(?<![.!?…])[.!?…]++[\"'”’)\]]*+(?=\s++(?![a-z]))|[。！？]+|\n"  # noqa: RUF001
)
_WORD = re.compile(r"\S+")
# Texts this short are counted once per chunk_text call (counters are functions of the text alone).
_MEMO_CHARS = 24
_MEMO_ENTRIES = 4096
_SPACES = re.compile(r"\s*")


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
    return list(iter_chunks(text, settings, count))


def iter_chunks(
    text: str,
    settings: ChunkingSettings | None = None,
    count: TokenCounter = estimate_tokens,
    *,
    start: int = 0,
) -> Iterator[Chunk]:
    """The chunks of :func:`chunk_text`, made lazily: stopping early skips the rest of the work.

    ``start``: chunk ``text[start:]`` only, with offsets still in ``text`` (no copy of the rest is
    made). A sliced ingestion resumes at the ``char_start`` of the first chunk it did not keep.
    """
    if not 0 <= start <= len(text):
        raise ValueError(f"start {start} is outside the text (0..{len(text)})")
    return _Chunker(text, settings or ChunkingSettings(), count, start).run()


class _Unit(NamedTuple):
    start: int
    end: int
    tokens: int
    # Running sum of (tokens - overhead) over the units so far: the packer's additive prediction.
    cost: int
    ends_sentence: bool


def _cost(unit: _Unit) -> int:
    return unit.cost


class _Chunker:
    def __init__(self, text: str, settings: ChunkingSettings, count: TokenCounter, start: int = 0) -> None:
        self.text = text
        self.start = start
        self.settings = settings
        self.count = count
        # What every count includes whatever the text (e.g. special tokens): subtracted when counts
        # of pieces are added up to predict the count of their concatenation.
        self.overhead = count("")
        # The window of units the packer still needs: global index i is _units[i - _first_unit].
        self._units: list[_Unit] = []
        self._first_unit = 0
        self._source = self._make_units()
        self._exhausted = False
        self._cost = 0
        # Sentence starts from the current chunk on: the only places an overlap may begin.
        self._sentence_starts: list[int] = []
        # Spans counted while packing the current chunk (the searches revisit them).
        self._counts: dict[tuple[int, int], int] = {}
        self._memo: dict[str, int] = {}
        # Length of the last piece cut from an over-long word: the first guess for the next piece.
        self._piece_length = 0

    # -- the unit window ---------------------------------------------------------------------------

    def _has(self, index: int) -> bool:
        """Whether unit ``index`` exists, making units up to it if needed."""
        while index - self._first_unit >= len(self._units):
            if self._exhausted:
                return False
            unit = next(self._source, None)
            if unit is None:
                self._exhausted = True
                return False
            self._units.append(unit)
        return True

    def _unit(self, index: int) -> _Unit:
        return self._units[index - self._first_unit]

    def _forget_before(self, index: int, start: int) -> None:
        """Drop what no chunk starting at ``start`` with unit ``index`` can use again."""
        del self._units[: index - self._first_unit]
        self._first_unit = index
        del self._sentence_starts[: bisect_left(self._sentence_starts, start)]
        self._counts = {span: tokens for span, tokens in self._counts.items() if span[0] == start}

    def _count(self, start: int, end: int) -> int:
        key = (start, end)
        tokens = self._counts.get(key)
        if tokens is None:
            tokens = self._counts[key] = self.count(self.text[start:end])
        return tokens

    def _count_piece(self, piece: str) -> int:
        """Count a paragraph, sentence or word: short ones repeat ("the", "a\n\n..."), so remember them."""
        if len(piece) > _MEMO_CHARS:
            return self.count(piece)
        tokens = self._memo.get(piece)
        if tokens is None:
            if len(self._memo) >= _MEMO_ENTRIES:
                self._memo.clear()
            tokens = self._memo[piece] = self.count(piece)
        return tokens

    def _fits(self, start: int, end: int) -> bool:
        return self._count(start, end) <= self.settings.max_tokens

    # -- pass 1: units -----------------------------------------------------------------------------

    def _make_units(self) -> Iterator[_Unit]:
        text, max_tokens, overhead = self.text, self.settings.max_tokens, self.overhead
        count, sentence_starts = self._count_piece, self._sentence_starts
        position = self.start
        # The paragraph loop and the common case (a one-sentence paragraph that fits) are inline:
        # with many tiny paragraphs the per-unit overhead is what costs time.
        for match in chain(_PARAGRAPH_BREAK.finditer(text, position), (None,)):
            if match is None:
                trimmed = self._trim(position, len(text))
            else:
                trimmed = self._trim(position, match.start())
                position = match.end()
            if trimmed is None:
                continue
            start, end = trimmed
            single = _SENTENCE_END.search(text, start, end) is None
            if single:
                tokens = count(text[start:end])
                if tokens <= max_tokens:
                    sentence_starts.append(start)
                    self._cost += tokens - overhead
                    yield _Unit(start, end, tokens, self._cost, True)
                    continue
                spans = self._paragraph(start, end, tokens)
            else:
                spans = self._paragraph(start, end, None)
            for s_start, s_end, tokens, ends_sentence in spans:
                self._cost += tokens - overhead
                yield _Unit(s_start, s_end, tokens, self._cost, ends_sentence)

    def _paragraph(self, start: int, end: int, single: int | None) -> Iterator[tuple[int, int, int, bool]]:
        """The units of a paragraph that is not one sentence that fits (``single``: the count of a
        paragraph that is one sentence)."""
        max_tokens, count, text = self.settings.max_tokens, self._count_piece, self.text
        if single is not None:
            self._sentence_starts.append(start)
            yield from self._words(start, end, single)
            return
        # Count the sentences first and the whole paragraph only if their sum says it may fit: long
        # paragraphs are then counted once, not twice, and counting stops as soon as the sum is over
        # (a monotone counter's terms are never negative). A wrong "no" only costs a preference (the
        # packer still puts the sentences together if they fit), never a limit.
        sentences = self._sentences(start, end)
        counted: list[tuple[int, int, int]] = []
        predicted = self.overhead
        for s_start, s_end in sentences:
            tokens = count(text[s_start:s_end])
            counted.append((s_start, s_end, tokens))
            predicted += tokens - self.overhead
            if predicted > max_tokens:
                break
        else:
            tokens = counted[0][2] if counted[0][:2] == (start, end) else count(text[start:end])
            if tokens <= max_tokens:
                self._sentence_starts.extend(s_start for s_start, _, _ in counted)
                yield start, end, tokens, True
                return
        # The generator resumes after the sentences counted above: each is counted once.
        rest = ((s_start, s_end, count(text[s_start:s_end])) for s_start, s_end in sentences)
        for s_start, s_end, tokens in chain(counted, rest):
            self._sentence_starts.append(s_start)
            if tokens <= max_tokens:
                yield s_start, s_end, tokens, True
            else:
                yield from self._words(s_start, s_end, tokens)

    def _sentences(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        position = start
        for match in _SENTENCE_END.finditer(self.text, start, end):
            if (trimmed := self._trim(position, match.end())) is not None:
                yield trimmed
            position = match.end()
        if (trimmed := self._trim(position, end)) is not None:
            yield trimmed

    def _words(self, start: int, end: int, tokens: int) -> Iterator[tuple[int, int, int, bool]]:
        for word in _WORD.finditer(self.text, start, end):
            w_start, w_end = word.span()
            ends_sentence = w_end == end
            if (w_start, w_end) != (start, end):
                tokens = self._count_piece(self.text[w_start:w_end])
            if tokens <= self.settings.max_tokens:
                yield w_start, w_end, tokens, ends_sentence
                continue
            while w_start < w_end:
                stop, tokens = self._longest_piece(w_start, w_end)
                yield w_start, stop, tokens, ends_sentence and stop == w_end
                w_start = stop

    def _longest_piece(self, start: int, end: int) -> tuple[int, int]:
        """The longest run ``text[start:stop]`` that fits (one character at least), and its count."""
        text, count, max_tokens = self.text, self.count, self.settings.max_tokens
        counts: dict[int, int] = {}

        def fits(stop: int) -> bool:
            counts[stop] = count(text[start:stop])
            return counts[stop] <= max_tokens

        # Gallop from the previous piece's length (usually right, or close), then bisect: each probe
        # counts at most about twice a piece, so a word costs a few counts per piece, not per prefix.
        shortest = start + 1
        guess = min(end, start + max(1, self._piece_length))
        if fits(guess):
            low, high, step = guess, end + 1, 1  # fits at low; high fails (end + 1: nothing does)
            while low < end:
                probe = min(low + step, end)
                if not fits(probe):
                    high = probe
                    break
                low, step = probe, step * 2
        else:
            low, high, step = shortest, guess, 1  # high fails; low is only the forced minimum
            while high > shortest:
                probe = max(high - step, shortest)
                if fits(probe):
                    low = probe
                    break
                high, step = probe, step * 2
            else:
                low = high = shortest
        while high - low > 1:
            middle = (low + high) // 2
            if fits(middle):
                low = middle
            else:
                high = middle
        if low < end:
            self._piece_length = low - start  # cut by the budget: a good guess for the next piece
        tokens = counts.get(low)
        return low, count(text[start:low]) if tokens is None else tokens

    def _trim(self, start: int, end: int) -> tuple[int, int] | None:
        text = self.text
        if start < end and text[start].isspace():
            match = _SPACES.match(text, start, end)
            start = end if match is None else match.end()
        if start < end and text[end - 1].isspace():
            end = start + len(text[start:end].rstrip())
        return (start, end) if start < end else None

    # -- pass 2: packing ---------------------------------------------------------------------------

    def run(self) -> Iterator[Chunk]:
        index, seq, start = 0, 0, None
        while self._has(index):
            if start is None:
                start = self._unit(index).start
            self._forget_before(index, start)
            last = self._extend(start, index)
            end = self._unit(last).end
            yield self._make_chunk(seq, start, end)
            seq, index = seq + 1, last + 1
            start = self._overlap_start(start, end, last, index) if self._has(index) else None

    def _extend(self, start: int, first: int) -> int:
        """The last unit index such that ``text[start:units[last].end]`` fits (``first`` at least)."""
        unit = self._unit(first)
        head = unit.tokens if start == unit.start else self._count(start, unit.end)
        self._counts[start, unit.end] = head
        if head > self.settings.max_tokens:
            return first  # an over-long unit (possible with a custom counter) stands alone

        def fits(index: int) -> bool:
            return self._has(index) and self._fits(start, self._unit(index).end)

        # Probe the additive prediction, then a prediction scaled by what that probe measured
        # (the whitespace between units also costs tokens), then gallop from the bracket and bisect.
        # On prose the second guess is exact or one off, so a chunk costs two or three counts.
        low, high, went_up = first, -1, True  # fits at low; fails at high (-1: no failure known yet)
        guess = self._predict(first, head, 1.0)
        if guess > first:
            went_up = fits(guess)
            low, high = (guess, high) if went_up else (low, guess)
            ratio = self._measured_ratio(start, first, head, guess)
            if ratio is not None:
                guess = self._predict(first, head, ratio)
                if low < guess and (high < 0 or guess < high):
                    went_up = fits(guess)
                    low, high = (guess, high) if went_up else (low, guess)
        step = 1
        if went_up:
            while high < 0 or low + step < high:
                if not fits(low + step):
                    high = low + step
                    break
                low, step = low + step, step * 2
        else:
            while high - step > low:
                if fits(high - step):
                    low = high - step
                    break
                high, step = high - step, step * 2
        while high - low > 1:
            middle = (low + high) // 2
            if fits(middle):
                low = middle
            else:
                high = middle
        return low

    def _predict(self, first: int, head: int, ratio: float) -> int:
        """The last unit that fits if the units after ``first`` cost ``ratio`` times their counts
        (minus the fixed overhead every count includes, e.g. special tokens)."""
        limit = self._unit(first).cost + (self.settings.max_tokens - head) / ratio
        units = self._units
        while units[-1].cost <= limit and self._has(self._first_unit + len(units)):
            pass  # make units until one is past the limit (or there are no more)
        offset = self._first_unit
        return bisect_right(units, limit, lo=first - offset, key=_cost) - 1 + offset

    def _measured_ratio(self, start: int, first: int, head: int, probe: int) -> float | None:
        if not self._has(probe):
            return None
        predicted = self._unit(probe).cost - self._unit(first).cost
        measured = self._count(start, self._unit(probe).end) - head
        return measured / predicted if predicted > 0 and measured > 0 else None

    def _overlap_start(self, chunk_start: int, chunk_end: int, last: int, next_unit: int) -> int | None:
        """Where the next chunk begins so it repeats this chunk's trailing sentences, or None."""
        if self.settings.overlap_tokens == 0 or not self._unit(last).ends_sentence:
            return None
        next_end = self._unit(next_unit).end
        starts = self._sentence_starts
        candidates = starts[bisect_right(starts, chunk_start) : bisect_left(starts, chunk_end)]

        def usable(position: int) -> bool:
            overlap = self._count(position, chunk_end)
            return overlap <= self.settings.overlap_tokens and self._fits(position, next_end)

        # Earlier starts only add text, so the usable ones are a suffix: gallop back from the last
        # sentence (usually one or two are usable), then bisect.
        good = len(candidates) - 1
        if good < 0 or not usable(candidates[good]):
            return None
        bad, step = -1, 1
        while good - step > bad:
            if not usable(candidates[good - step]):
                bad = good - step
                break
            good, step = good - step, step * 2
        while good - bad > 1:
            middle = (good + bad) // 2
            if usable(candidates[middle]):
                good = middle
            else:
                bad = middle
        return candidates[good]

    def _make_chunk(self, seq: int, start: int, end: int) -> Chunk:
        tokens = self._count(start, end)
        if tokens > self.settings.hard_limit_tokens:
            raise ChunkTooLargeError(start, tokens, self.settings.hard_limit_tokens)
        text = self.text[start:end]
        return Chunk(seq=seq, text=text, char_start=start, char_end=end, token_estimate=tokens)
