"""Safety for everything that talks to a model: input limits and deny-lists, prompt-injection
detection, neutralising retrieved text, output redaction, and the tenant policy that ties them.

A small, stable API the chat, answer and OpenAI-compatible routes call (through the gateway's
``gateway.safety.SafetyGuard``):

- :func:`check_input` — length limit and the tenant's deny-list (:mod:`.denylist`);
- :func:`scan_injection` — a documented, deterministic injection score with reasons (:mod:`.injection`);
- :func:`neutralise` — source text that cannot close a fence or fake a ``[n]`` marker (:mod:`.fence`);
- :func:`filter_output` / :class:`OutputFilter` — secrets and tenant patterns redacted, whole or
  streamed (:mod:`.output`);
- :func:`screen_input` / :func:`screen_sources` — what the policy does with flagged content
  (:mod:`.screen`), :class:`SafetyStore` — the policy and flag records in D1 (:mod:`.store`);
- :class:`SafetyPolicy` (:mod:`.policy`), whose regexes are in the safe subset of :mod:`.regex`.

Everything here is pure Python (stdlib + pydantic) and runs in Pyodide; only :mod:`.store` does I/O,
through the D1 port. A new check gets its own module, a rule table test, and an export below.
"""

from edgerag.safety.denylist import InputVerdict, check_input
from edgerag.safety.fence import neutralise
from edgerag.safety.injection import InjectionScore, scan_injection
from edgerag.safety.output import OutputFilter, Redaction, filter_output
from edgerag.safety.policy import DEFAULT_POLICY, DenyRule, OutputRule, SafetyPolicy
from edgerag.safety.regex import UnsafePatternError, compile_safe
from edgerag.safety.screen import (
    ContentBlocked,
    InputScreening,
    SourceScreening,
    screen_input,
    screen_sources,
)
from edgerag.safety.store import Flag, FlagRecord, SafetyStore

__all__ = [
    "DEFAULT_POLICY",
    "ContentBlocked",
    "DenyRule",
    "Flag",
    "FlagRecord",
    "InjectionScore",
    "InputScreening",
    "InputVerdict",
    "OutputFilter",
    "OutputRule",
    "Redaction",
    "SafetyPolicy",
    "SafetyStore",
    "SourceScreening",
    "UnsafePatternError",
    "check_input",
    "compile_safe",
    "filter_output",
    "neutralise",
    "scan_injection",
    "screen_input",
    "screen_sources",
]
