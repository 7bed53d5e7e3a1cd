"""Key terms of a text, shared by query rewriting and follow-up questions.

A key term is a lower-cased run of letters/digits (with inner apostrophes) of at least 3 characters
that is not a stop word and not only digits. A key phrase is a run of two or more consecutive key
terms within one clause (stop words, short words and punctuation end a run), cut to its first
``max_words`` words: "combustion chamber", "liquid rocket engines". The stop words are the English
function words plus the words that shape a question or a command ("explain", "tell", "about"), which
carry no topic. :func:`stem` folds a plural "s" so "engines" covers "engine".
"""

from __future__ import annotations

import re

__all__ = ["STOPWORDS", "all_key_terms", "key_phrases", "key_terms", "stem", "words"]

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
    return [w for w in words(text) if _key(w)]


def key_terms(text: str) -> list[str]:
    """The key terms of ``text`` in order of first appearance, without duplicates."""
    return list(dict.fromkeys(all_key_terms(text)))


_CLAUSE = re.compile(r"[.,;:!?()\[\]{}\"\n]+")


def _key(word: str) -> bool:
    return len(word) >= 3 and word not in STOPWORDS and not word.isdigit()


def key_phrases(text: str, max_words: int = 3) -> list[str]:
    """Every key phrase of ``text`` (repetitions included), in order."""
    phrases: list[str] = []
    for clause in _CLAUSE.split(text):
        run: list[str] = []
        for word in [*words(clause), ""]:
            if word and _key(word):
                run.append(word)
                continue
            if len(run) >= 2:
                phrases.append(" ".join(run[:max_words]))
            run = []
    return phrases


def stem(term: str) -> str:
    """``term`` without a plural ``s`` ("engines" -> "engine"; "glass" and "gas" stay)."""
    return term[:-1] if len(term) > 3 and term.endswith("s") and not term.endswith("ss") else term
