"""Answer confidence, computed from retrieval and citations (never asked of the model).

``confidence(sources, check)`` is 0 when no source was given or the answer cites none of them (an
answer that cites nothing is not grounded, whatever it says). Otherwise, over the cited sources::

    confidence = 0.5 * coverage + 0.3 * agreement + 0.2 * strength

- ``coverage`` = ``check.cited_fraction``: the share of the answer's sentences carrying a valid marker;
- ``agreement`` = the share of cited sources that both retrievers (keyword and vector) returned:
  two independent rankings agreeing is the best relevance evidence hybrid search gives;
- ``strength`` = ``1 / r`` where ``r`` is the best rank any retriever gave a cited source (1 when a
  cited chunk was some retriever's top hit, 0.5 for second, ...).

The result is rounded to 3 decimals and lies in [0, 1]. The weights favour what the answer does with
its sources over how retrieval ranked them; change them here and in the README together.
"""

from __future__ import annotations

from collections.abc import Sequence

from edgerag.grounding.citations import CitationCheck
from edgerag.grounding.sources import Source

__all__ = ["AGREEMENT_WEIGHT", "COVERAGE_WEIGHT", "STRENGTH_WEIGHT", "confidence"]

COVERAGE_WEIGHT = 0.5
AGREEMENT_WEIGHT = 0.3
STRENGTH_WEIGHT = 0.2


def confidence(sources: Sequence[Source], check: CitationCheck) -> float:
    """The documented confidence of an answer in [0, 1] (see the module docstring)."""
    by_number = {source.n: source for source in sources}
    cited = [by_number[c.n] for c in check.citations if c.n in by_number]
    if not cited:
        return 0.0
    agreement = sum(1 for s in cited if {"keyword", "vector"} <= s.retrievers.keys()) / len(cited)
    ranks = [rank for s in cited for rank in s.retrievers.values() if rank >= 1]
    strength = 1 / min(ranks) if ranks else 0.0
    value = COVERAGE_WEIGHT * check.cited_fraction + AGREEMENT_WEIGHT * agreement + STRENGTH_WEIGHT * strength
    return round(min(1.0, max(0.0, value)), 3)
