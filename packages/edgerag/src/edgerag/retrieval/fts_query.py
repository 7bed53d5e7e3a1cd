"""Turn arbitrary user text into a safe FTS5 ``MATCH`` expression.

FTS5 has its own query language (``AND OR NOT NEAR``, ``*``, ``^``, column filters with ``:``,
quotes); user text must never be parsed as that language. Every term becomes a double-quoted string
(embedded quotes doubled), which FTS5 treats as a plain phrase, and the terms are OR-ed so a
natural-language question keeps its recall while bm25 ranks documents matching more terms higher.
"""

from __future__ import annotations

import re

__all__ = ["MAX_TERMS", "build_match_query"]

MAX_TERMS = 32
_TERM = re.compile(r"\w+(?:['’]\w+)*", re.UNICODE)
# Words that match nearly every chunk and only cost time in an OR query.
_STOPWORDS = frozenset(
    "a an and are as at be but by for from has have how i in is it its of on or that the their there these "
    "this to was were what when where which who why will with".split()
)


def build_match_query(user_text: str) -> str | None:
    """A MATCH expression, or None when nothing searchable is left."""
    terms: list[str] = []
    seen: set[str] = set()
    for raw in _TERM.findall(user_text.lower()):
        term = raw.replace("’", "'")
        if term in seen or not any(ch.isalnum() for ch in term):
            continue
        seen.add(term)
        terms.append(term)
    content = [t for t in terms if t not in _STOPWORDS] or terms
    content = content[:MAX_TERMS]
    if not content:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in content)
