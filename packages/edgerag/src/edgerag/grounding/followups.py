"""Three follow-up questions, derived from the sources without a model call.

:func:`follow_ups` picks *topics* the sources hold that neither the question nor the answer
mentions, then fills three fixed templates with them:

1. topics, in order: the titles of sources the answer did not cite (a document the reader has not
   seen yet), then the sources' key phrases ("combustion chamber",
   :func:`edgerag.grounding.terms.key_phrases`), then their single key terms, each group ranked by
   how many sources contain it, then by how often, then by first appearance; a topic whose key terms
   all occur in the question or the answer is skipped, as are duplicates;
2. templates: "What else do the documents say about {topic}?", "What is the link between
   {topic} and {subject}?", "Can you explain {topic} in more detail?" — ``subject`` is the
   question's first key term (or "this"); each template takes the next unused topic;
3. with fewer than three topics the remaining templates fall back to the question's subject, and
   without sources they suggest rephrasing or naming a document.

Deterministic: the same inputs give the same three questions.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgerag.grounding.citations import check_citations
from edgerag.grounding.sources import Source
from edgerag.grounding.terms import all_key_terms, key_phrases, key_terms, stem

__all__ = ["follow_ups"]

_TEMPLATES = (
    "What else do the documents say about {topic}?",
    "What is the link between {topic} and {subject}?",
    "Can you explain {topic} in more detail?",
)
_NO_SOURCES = (
    "Can you rephrase the question with other words for {subject}?",
    "Which document should I look in for {subject}?",
    "What related topic do the documents cover?",
)
_MAX_TITLE_CHARS = 80


def _topics(question: str, sources: Sequence[Source], answer: str) -> list[str]:
    covered = {stem(t) for t in key_terms(question) + key_terms(answer)}
    cited = {c.n for c in check_citations(answer, sources).citations}
    topics: list[str] = []
    seen: set[str] = set()

    def add(topic: str) -> None:
        terms = [stem(t) for t in key_terms(topic)]
        key = " ".join(terms)
        if terms and key not in seen and not set(terms) <= covered:
            seen.add(key)
            topics.append(topic)

    for source in sources:
        title = " ".join(source.title.split())
        if source.n not in cited and title and len(title) <= _MAX_TITLE_CHARS:
            add(title)
    for extract in (key_phrases, all_key_terms):
        for topic in _ranked([extract(source.title + "\n" + source.text) for source in sources]):
            add(topic)
    return topics


def _ranked(per_source: list[list[str]]) -> list[str]:
    """Items by how many sources have them, then how often, then first appearance."""
    documents: dict[str, int] = {}
    counts: dict[str, int] = {}
    first: dict[str, int] = {}
    for items in per_source:
        for item in dict.fromkeys(items):
            documents[item] = documents.get(item, 0) + 1
            first.setdefault(item, len(first))
        for item in items:
            counts[item] = counts.get(item, 0) + 1
    return sorted(documents, key=lambda item: (-documents[item], -counts[item], first[item]))


def follow_ups(question: str, sources: Sequence[Source], answer: str) -> list[str]:
    """Three follow-up questions (see the module docstring)."""
    question_terms = key_terms(question)
    subject = question_terms[0] if question_terms else "this"
    if not sources:
        return [template.format(subject=subject) for template in _NO_SOURCES]
    topics = _topics(question, sources, answer)
    out: list[str] = []
    for i, template in enumerate(_TEMPLATES):
        topic = topics[i] if i < len(topics) else subject
        if topic == subject and "{subject}" in template:
            out.append(f"What else is known about {subject}?")
            continue
        out.append(template.format(topic=topic, subject=subject))
    return out
