"""Neutralising retrieved text before it is fenced into a prompt as data.

The grounding core (:mod:`edgerag.grounding`) writes each source into the prompt as a block that starts
with ``[n]`` at the beginning of a line, inside a fence the system prompt tells the model to treat as
data. A source must not be able to (a) fake another source's marker, so that its text would be cited as
``[2]``, or (b) close the fence and continue as instructions. :func:`neutralise` makes both impossible
while keeping the text readable for the model:

* a ``[n]`` marker (or its full-width form) becomes ``(n)``: at the start of a line it would open a
  fake source block, and anywhere else a model quoting the sentence would repeat it as a citation of
  a source it never saw (``x[0]``-style indexing, after a letter or digit, is left alone);
* tags that could open or close a fence or a role (``<source>``, ``</document>``, ``<system>``,
  ``</context>``, ...), chat-template tokens (``<|im_start|>``, ``[INST]``, ``<<SYS>>``) and runs of
  three or more backticks or tildes get look-alike characters (single angle quotation marks,
  modifier grave accents), so they read the same but are not the delimiter;
* every occurrence of the caller's own delimiters (``delimiters=("<<<SOURCES", "SOURCES>>>")``) is
  translated the same way; a delimiter must contain at least one of ``< > [ ] ` | { }`` so a look-alike
  exists;
* invisible characters (zero-width, bidi controls, Unicode tag characters) are removed.

It is idempotent (neutralising twice changes nothing more) and leaves ordinary prose untouched.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from edgerag.safety.normalize import HIDDEN_CHARACTERS

__all__ = ["neutralise"]

# Each delimiter character and a look-alike that is not it (single angle quotation marks, quill
# brackets, modifier grave accent, small tilde, broken bar, ornamental braces).
_LOOKALIKE: Final = str.maketrans(
    {
        "<": "\u2039",
        ">": "\u203a",
        "[": "\u2045",
        "]": "\u2046",
        "`": "\u02cb",
        "~": "\u02dc",
        "|": "\u00a6",
        "{": "\u2774",
        "}": "\u2775",
    }
)
_MARKER: Final = re.compile("(?<![\\w\\])\uff09])[\\[\uff3b][ \\t]*(\\d{1,4})[ \\t]*[\\]\uff3d]")
_TAG_NAMES: Final = (
    r"sources?|documents?|context|data|untrusted[\w-]{0,20}|search_results?|retrieved[\w-]{0,20}|"
    r"knowledge|system|instructions?|user|assistant|developer|tool_call|tool_result|function_calls?"
)
_SPECIAL: Final = re.compile(
    rf"</?\s*(?:{_TAG_NAMES})\b[^<>]{{0,200}}>|<\|[\w-]{{1,40}}\|>|\[/?INST\]|<</?SYS>>|`{{3,}}|~{{3,}}",
    re.IGNORECASE,
)


def neutralise(text: str, *, delimiters: Iterable[str] = ()) -> str:
    """``text`` made safe to place inside a fenced, ``[n]``-numbered source block (see module doc)."""
    text = HIDDEN_CHARACTERS.sub("", text)
    for delimiter in delimiters:
        safe = delimiter.translate(_LOOKALIKE)
        if safe == delimiter:
            raise ValueError(f"delimiter {delimiter!r} has none of < > [ ] ` | {{ }}: no look-alike exists")
        text = re.sub(re.escape(delimiter), safe, text, flags=re.IGNORECASE)
    text = _SPECIAL.sub(lambda m: m.group(0).translate(_LOOKALIKE), text)
    return _MARKER.sub(r"(\1)", text)
