"""dedalus's tools and their registry (:mod:`dedalus.tools.registry`).

:func:`all_tools` lists every tool; :func:`build_registry` makes a registry and :func:`isolate_registry`
is the one the service uses, built on first use and kept for the isolate's life (checking the tools'
schemas costs tens of milliseconds: once per isolate, never per request, never at import). Each
tool reads who the call is for from the :class:`~dedalus.turns.ToolContext` only, never from its
arguments. To add a tool: write its module (a ``Tool`` and its coroutine), list it in
:func:`all_tools`, and add its two-tenant test to tests/integration/test_tools_isolation.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from dedalus.tools.ingest import INGEST_DOCUMENT
from dedalus.tools.knowledge import SEARCH_KNOWLEDGE_BASE, TAG_DOCUMENT
from dedalus.tools.language import CLASSIFY_INTENT, EXTRACT_ENTITIES, SUMMARIZE
from dedalus.tools.registry import Tool, ToolError, ToolNotAllowedError, ToolOutcome, ToolRegistry
from dedalus.tools.user import GET_USER_CONTEXT

__all__ = [
    "Tool",
    "ToolError",
    "ToolNotAllowedError",
    "ToolOutcome",
    "ToolRegistry",
    "all_tools",
    "build_registry",
    "isolate_registry",
]


def all_tools() -> list[Tool]:
    return [
        SEARCH_KNOWLEDGE_BASE,
        SUMMARIZE,
        EXTRACT_ENTITIES,
        CLASSIFY_INTENT,
        TAG_DOCUMENT,
        GET_USER_CONTEXT,
        INGEST_DOCUMENT,
    ]


def build_registry(*, timer: Callable[[], float] = time.perf_counter) -> ToolRegistry:
    return ToolRegistry(all_tools(), timer=timer)


_ISOLATE: list[ToolRegistry] = []


def isolate_registry() -> ToolRegistry:
    """The registry of this isolate (module memory), built at the first call."""
    if not _ISOLATE:
        _ISOLATE.append(build_registry())
    return _ISOLATE[0]
