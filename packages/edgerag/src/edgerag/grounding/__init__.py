"""Grounding: turning retrieved chunks into a prompt a model can answer from, and checking the answer.

One core for every surface that answers from the tenant's documents (``POST /v1/answer``, chat
sessions, the OpenAI-compatible routes), so they fence sources, validate citations and score
confidence the same way:

- :mod:`.sources` — :class:`Source`, a numbered retrieved chunk (built from hybrid-search hits);
- :mod:`.retrieve` — :func:`retrieve_sources`: hybrid search -> the relevant hits as sources;
- :mod:`.prompt` — :func:`build_messages`: rules, fenced numbered sources, user context, bounded
  history, the question last;
- :mod:`.citations` — :func:`check_citations`: keep only ``[n]`` markers that name a given source;
- :mod:`.scoring` — :func:`confidence`, a documented formula (never asked of the model);
- :mod:`.followups` — :func:`follow_ups`, three questions from what the sources hold and the answer
  did not cover;
- :mod:`.intent` — :func:`detect_intent`: question / command / chit-chat, by rules;
- :mod:`.rewrite` — :func:`rewrite_query`: follow-ups made self-contained for retrieval.

Everything but :mod:`.retrieve` (which takes the D1 and Vectorize ports) is pure (no I/O, stdlib +
pydantic) and deterministic, so it runs in Pyodide and is tested with tables. A new step gets its own
module and an export below.
"""

from edgerag.grounding.citations import Citation, CitationCheck, check_citations
from edgerag.grounding.followups import follow_ups
from edgerag.grounding.intent import Intent, detect_intent
from edgerag.grounding.prompt import (
    CLOSE_FENCE,
    MAX_HISTORY_CHARS,
    MAX_HISTORY_TURNS,
    OPEN_FENCE,
    build_messages,
)
from edgerag.grounding.retrieve import retrieve_sources, sources_from_hits
from edgerag.grounding.rewrite import rewrite_query
from edgerag.grounding.scoring import confidence
from edgerag.grounding.sources import Source, is_relevant

__all__ = [
    "CLOSE_FENCE",
    "MAX_HISTORY_CHARS",
    "MAX_HISTORY_TURNS",
    "OPEN_FENCE",
    "Citation",
    "CitationCheck",
    "Intent",
    "Source",
    "build_messages",
    "check_citations",
    "confidence",
    "detect_intent",
    "follow_ups",
    "is_relevant",
    "retrieve_sources",
    "rewrite_query",
    "sources_from_hits",
]
