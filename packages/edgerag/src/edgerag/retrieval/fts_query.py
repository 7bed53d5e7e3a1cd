"""Turn arbitrary user text into a safe SQLite FTS5 ``MATCH`` expression.

FTS5 has a query language of its own (``AND OR NOT NEAR(...)``, ``*`` prefixes, ``^`` anchors,
``col:`` filters, ``+``, parentheses and quoted phrases); raw user text in ``MATCH`` either fails with
a syntax error (a 500 if unhandled) or silently means something else. So user text is never parsed
as that language:

1. Terms are the words of the text: runs of letters/digits (``\\w``, Unicode-aware, with inner
   apostrophes as in "don't"); everything else separates terms. Terms without a letter or digit are
   dropped, as are terms longer than ``max_term_chars`` (hashes, base64: noise for bm25).
2. Every term becomes an FTS5 string (``"term"``, embedded quotes doubled), which FTS5 reads as a
   plain phrase: keywords, operators and special characters inside it have no meaning.
3. Terms are OR-ed. A natural-language question rarely has every word in one chunk; with OR every
   chunk matching any word is a candidate and bm25 ranks those matching more, rarer words higher.
4. Stop words are left out because they match nearly every chunk and make the OR query slow while
   barely changing the bm25 order; if the text is nothing but stop words, they are kept.
5. Duplicates (case-insensitive) are removed and at most ``max_terms`` terms are kept: the longest
   ones, in the query's order (an OR of many terms matches most of the index and bm25 scores every
   match, so the cap is what keeps long natural-language input fast).

Operators (``syntax="operators"``, :func:`parse_query`): our own small language, parsed here and
re-emitted through step 2, so it is exactly as safe:

- ``"exact phrase"``: the words, in this order, must appear (stop words inside a phrase are kept);
- ``+term`` / ``+"phrase"``: must appear;
- ``-term`` / ``-"phrase"``: must not appear;
- anything else: ordinary terms as above (they rank, they are not required).

``+``/``-`` are operators only at the start of a whitespace-separated token (``covid-19`` and
``non-smoker`` are ordinary words), and an unmatched ``"`` is ignored. The expression requires every
required phrase, keeps the ordinary terms in the query so bm25 still ranks by them (``R1 AND R2 AND
(R1 OR t1 OR t2)``: the group is always true once R1 matched, but FTS5's bm25 counts every phrase of the
expression), and ends with ``NOT (X1 OR X2)``. FTS5 has no pure negation, so a query of exclusions only
matches nothing.

Measured on SciFact train (BEIR; 5,183 abstracts, 10,229 chunks, 809 queries, porter unicode61 index,
title weight 2; ``benchmarks/bench_fts_terms.py``): keyword nDCG@10 0.698 / Recall@100 0.911 with the
shipped choices. Quoting whole whitespace-separated tokens as phrases scored 0.693 / 0.927 (earlier
measurement); no stop words 0.694 at 2.7x the SQLite time; the earlier short stop-word list 0.697; a
cap of 8 terms 0.666, 12: 0.691, 16: 0.698, 32: 0.699. Long input (five queries run together, ~37
content words) costs 55 ms of SQLite CPU at p50 uncapped, 41 ms at 32 terms, 23 ms at 16: hence 16,
keeping the longest terms (length stands in for rarity) when there are more. Title weights 1, 3 and 5
scored 0.698, 0.697 and 0.694: 2 stays.

The result goes into the query as a bound parameter (``WHERE chunks_fts MATCH ?1``), never by string
formatting. To change the term rules, keep step 2: it is what makes any input safe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "MAX_TERMS",
    "STOPWORDS",
    "FtsQueryLimits",
    "ParsedQuery",
    "QuerySyntax",
    "build_match_query",
    "parse_query",
    "quote_term",
]

MAX_TERMS = 16  # measured: see the module docstring
QuerySyntax = Literal["plain", "operators"]

# English function words: they match most chunks (slow OR queries) and carry no topic. Words that can
# carry meaning in a query ("not", "no", "more", "less", "after", "before") are in as well: bm25 gives
# them almost no weight anyway, and the measured effect is in the module docstring.
STOPWORDS: frozenset[str] = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just me more
    most my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves""".split()
)

# The typographic apostrophe (U+2019) is intended: with it, "don\u2019t" is one term, like "don't".
_TERM = re.compile(r"\w+(?:['’]\w+)*")  # noqa: RUF001
# One token of the operator syntax: an optional +/- then a "quoted phrase" or a run of non-space,
# non-quote characters. An unmatched quote matches neither alternative and is skipped by finditer.
_TOKEN = re.compile(r'(?P<op>[+-]?)(?:"(?P<phrase>[^"]*)"|(?P<word>[^\s"]+))')


@dataclass(frozen=True)
class FtsQueryLimits:
    """Caps on the expression built from one query (lower them in tests)."""

    max_terms: int = MAX_TERMS
    max_term_chars: int = 64

    def __post_init__(self) -> None:
        if self.max_terms < 1 or self.max_term_chars < 1:
            raise ValueError("FTS query limits must be >= 1")


Phrase = tuple[str, ...]


@dataclass(frozen=True)
class ParsedQuery:
    """A query split into ordinary terms, required phrases and excluded phrases (all lower case).

    ``embedding_text`` is what the vector retriever embeds: the text without the excluded parts and
    without the operator characters.
    """

    terms: tuple[str, ...]
    required: tuple[Phrase, ...] = ()
    excluded: tuple[Phrase, ...] = ()
    embedding_text: str = ""

    @property
    def has_constraints(self) -> bool:
        return bool(self.required or self.excluded)

    @property
    def searchable(self) -> bool:
        """False when nothing positive is left (empty, or exclusions only): such a query finds nothing."""
        return bool(self.terms or self.required)

    def match_expression(self) -> str | None:
        """The FTS5 MATCH expression, or None when nothing searchable is left."""
        required = [_phrase(p) for p in self.required]
        optional = [quote_term(t) for t in self.terms]
        if required:
            expression = " AND ".join(required)
            if optional:
                expression += " AND (" + " OR ".join([required[0], *optional]) + ")"
        elif optional:
            expression = " OR ".join(optional)
        else:
            return None
        if self.excluded:
            expression = f"({expression}) NOT ({self.excluded_expression()})"
        return expression

    def required_expression(self) -> str | None:
        """Every required phrase AND-ed (to check a chunk another retriever found), or None."""
        return " AND ".join(_phrase(p) for p in self.required) or None

    def excluded_expression(self) -> str | None:
        """The excluded phrases OR-ed (a chunk matching this is dropped), or None."""
        return " OR ".join(_phrase(p) for p in self.excluded) or None


def quote_term(term: str) -> str:
    """An FTS5 string literal: the term in double quotes, embedded double quotes doubled."""
    return '"' + term.replace('"', '""') + '"'


def _phrase(words: Phrase) -> str:
    return quote_term(" ".join(words))


def _words(text: str, limits: FtsQueryLimits) -> list[str]:
    words = []
    for match in _TERM.finditer(text.lower()):
        word = match.group().replace("\u2019", "'")
        if len(word) <= limits.max_term_chars and any(ch.isalnum() for ch in word):
            words.append(word)
    return words


def _content_terms(words: list[str], stopwords: frozenset[str], limits: FtsQueryLimits) -> list[str]:
    terms: list[str] = []
    seen: set[str] = set()
    for word in words:
        if word not in seen:
            seen.add(word)
            terms.append(word)
    terms = [t for t in terms if t not in stopwords] or terms
    if len(terms) <= limits.max_terms:
        return terms
    # Too many terms for a fast OR: keep the longest (length is a cheap stand-in for rarity, which is
    # what bm25 weighs), in the query's order.
    by_length = sorted(range(len(terms)), key=lambda i: (-len(terms[i]), i))[: limits.max_terms]
    return [terms[i] for i in sorted(by_length)]


def parse_query(
    user_text: str,
    *,
    syntax: QuerySyntax = "plain",
    limits: FtsQueryLimits | None = None,
    stopwords: frozenset[str] = STOPWORDS,
) -> ParsedQuery:
    """Parse ``user_text``: every character is ordinary text with ``syntax="plain"``; with
    ``"operators"``, ``"..."``, ``+`` and ``-`` mean what the module docstring says."""
    limits = limits or FtsQueryLimits()
    if syntax == "plain":
        terms = _content_terms(_words(user_text, limits), stopwords, limits)
        return ParsedQuery(tuple(terms), embedding_text=user_text)
    ordinary: list[str] = []
    required: list[Phrase] = []
    excluded: list[Phrase] = []
    kept: list[str] = []
    for match in _TOKEN.finditer(user_text):
        op, phrase, word = match.group("op"), match.group("phrase"), match.group("word")
        raw = phrase if phrase is not None else word
        words = _words(raw, limits)[: limits.max_terms]
        if not words:
            continue
        if op == "-":
            if tuple(words) not in excluded and len(excluded) < limits.max_terms:
                excluded.append(tuple(words))
            continue
        kept.append(raw)
        if op == "+" or phrase is not None:
            if tuple(words) not in required and len(required) < limits.max_terms:
                required.append(tuple(words))
        else:
            ordinary.extend(words)
    terms = _content_terms(ordinary, stopwords, limits)
    if required:
        # Stop words among the ordinary terms add nothing once something is required.
        terms = [t for t in terms if t not in stopwords and (t,) not in required]
    return ParsedQuery(tuple(terms), tuple(required), tuple(excluded), " ".join(kept))


def build_match_query(
    user_text: str,
    *,
    limits: FtsQueryLimits | None = None,
    stopwords: frozenset[str] = STOPWORDS,
) -> str | None:
    """An FTS5 MATCH expression for ``user_text`` as plain text, or None when nothing searchable is
    left."""
    return parse_query(user_text, limits=limits, stopwords=stopwords).match_expression()
