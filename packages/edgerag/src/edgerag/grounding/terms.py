"""Key terms of a text, shared by query rewriting and follow-up questions.

A key term is a lower-cased run of letters/digits (with inner apostrophes) of at least 3 characters
that is not a stop word and not only digits. The stop words are the English function words plus the
words that shape a question or a command ("explain", "tell", "about"), which carry no topic.
"""

from __future__ import annotations

import re

__all__ = ["STOPWORDS", "all_key_terms", "key_terms", "words"]

STOPWORDS: frozenset[str] = frozenset(
    """a about above after again all also am an and any are as at be been being before below between
    both but by can could did do does doing done during each else few for from further get give got
    had has have having he her here hers him his how however i if in into is it its itself just know
    let like me more most much my no nor not now of off on once only or other our ours out over own
    please same say says she should so some such tell than thank thanks that the their theirs them then
    there these they this those through to too under until up very want was way we well were what
    when where which while who whom whose why will with would yes yet you your yours explain describe
    show list give summarize summarise does doesn't don't isn't aren't what's it's that's there's""".split()
)

_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")  # noqa: RUF001 - the typographic apostrophe is meant


def words(text: str) -> list[str]:
    """The lower-cased words of ``text`` (typographic apostrophes folded to ``'``)."""
    return [w.replace("\u2019", "'") for w in _WORD.findall(text.lower())]


def all_key_terms(text: str) -> list[str]:
    """Every key term of ``text``, repetitions included, in order."""
    return [w for w in words(text) if len(w) >= 3 and w not in STOPWORDS and not w.isdigit()]


def key_terms(text: str) -> list[str]:
    """The key terms of ``text`` in order of first appearance, without duplicates."""
    return list(dict.fromkeys(all_key_terms(text)))
