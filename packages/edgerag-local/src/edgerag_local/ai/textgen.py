"""Local stand-in for Workers AI text generation: a deterministic EXTRACTIVE responder.

LOCAL STAND-IN, NOT A LANGUAGE MODEL. No instruction-tuned model small and fast enough ships inside a
PyPI wheel that this project may depend on, so the text-generation ids the workers are configured with
(``@cf/meta/llama-3.3-70b-instruct-fp8-fast``, ``@cf/meta/llama-3.1-8b-instruct``,
``@cf/mistral/mistral-7b-instruct-v0.1``) and the honest ``@local/extractive-responder`` are served by
:class:`ExtractiveResponder`, which answers ONLY by quoting its prompt's sources:

1. The question is the last ``user`` message (its text before the first source block, or the whole
   message when that is empty); ``{"prompt": ...}`` counts as one user message.
2. Sources are blocks in ``system`` and ``user`` messages that start with a marker ``[n]`` at the
   beginning of a line (n = 1, 2, ...) and run to the next marker or the end of the message. When a
   block has more than one line and its first line (after the marker) does not end like a sentence, that
   line is a title and is not quoted.
3. The blocks are split into sentences (after ``.``, ``!`` or ``?`` followed by whitespace, and at line
   breaks) and every sentence is scored against the question with BM25 (k1 = 1.2, b = 0.75; each
   sentence is a document, idf = ln(1 + (N - df + 0.5) / (df + 0.5))) over terms that are lower-cased
   runs of letters and digits, stop words dropped, then "stemmed-lite": one of the suffixes ``ies``
   (-> ``y``), ``ing``, ``ed``, ``es``, ``s`` is removed when at least 3 characters remain.
4. The answer quotes up to :data:`MAX_SENTENCES` sentences with a positive score of at least
   :data:`RELATIVE_CUTOFF` times the best one, best first (ties: source order, then sentence order), each
   cited with its marker: ``"... thrust [1]."``. With no sources it says :data:`NO_SOURCES`; with
   sources but no matching sentence, :data:`NO_ANSWER`.

It never calls tools (offered tools are accepted and ignored: it answers in text), ignores sampling
parameters (``temperature``, ``seed``, ...) and is deterministic: the same input gives the same output.

Tokens (documented, since no real tokenizer runs): prompt and completion are counted with the same
estimate, :func:`edgerag.tokens.estimate_tokens` (an upper bound of Llama-2/BERT counts). The prompt is
rendered as one ``<role>: <content>`` line per message and estimated as a whole; the completion is
estimated without the sequence markers (``estimate_tokens(text) - BASE_TOKENS``). Output is produced in
pieces of one word each (leading whitespace + the next run of non-whitespace, e.g. ``" thrust"``,
``" [1]."``); for these pieces the estimate is additive, so ``max_tokens`` (default 256, as documented)
is respected exactly: the answer stops before the piece that would pass it, with finish reason
``length``.

Call and result shapes follow the Workers AI model pages (schema of llama-3.3-70b-instruct-fp8-fast;
developers.cloudflare.com/workers-ai/models/llama-3.3-70b-instruct-fp8-fast/ and
/workers-ai/models/llama-3.1-8b-instruct/): input ``{"messages": [{"role", "content"}], ...}`` or
``{"prompt": str}``; result ``{"response": str, "usage": {"prompt_tokens", "completion_tokens",
"total_tokens"}}``, plus ``finish_reason`` (``stop``/``length``), which some Workers AI models send and
which the local runtime always sends. With ``stream: true`` the result is a ReadableStream of
server-sent events, one ``data: {"response": "<piece>"}`` per piece, then ``data: {"response": "",
"usage": {...}, "finish_reason": ...}``, then ``data: [DONE]``.

Errors are worded like Workers AI's (see :mod:`.schema`): 5006 for invalid input, and for a prompt
that does not fit the model's context window the error seen from the live service,
``AiError: 5021: The estimated number of input and maximum output tokens (N) exceeded this model context
window limit (W).`` (the window counts prompt + ``max_tokens``). Windows are the model pages' "Context
Window": 24,000 (llama-3.3-70b-instruct-fp8-fast), 7,968 (llama-3.1-8b-instruct), 2,824
(mistral-7b-instruct-v0.1); the ``@local`` id uses 24,000. Locally, unknown input properties are
rejected (the edge ignores them), as the other local models do.

To serve another text-generation id: add it to :data:`CONTEXT_WINDOWS` (from its model page); it is
registered by :func:`.registry.default_registry`.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from edgerag.jsdict import AttrDict
from edgerag.tokens import BASE_TOKENS, estimate_tokens

from edgerag_local.ai.errors import AiError
from edgerag_local.sdk import ReadableStream

from .schema import check_bool, check_enum, check_int, check_string, invalid, json_type, require_object

__all__ = [
    "CONTEXT_WINDOWS",
    "CONTEXT_WINDOW_EXCEEDED",
    "DEFAULT_MAX_TOKENS",
    "EXTRACTIVE_RESPONDER",
    "LLAMA_31_8B",
    "LLAMA_33_70B",
    "MAX_SENTENCES",
    "MISTRAL_7B",
    "NO_ANSWER",
    "NO_SOURCES",
    "RELATIVE_CUTOFF",
    "ExtractiveResponder",
    "answer",
    "completion_tokens",
    "prompt_tokens",
]

LLAMA_33_70B = "@cf/meta/llama-3.3-70b-instruct-fp8-fast"
LLAMA_31_8B = "@cf/meta/llama-3.1-8b-instruct"
MISTRAL_7B = "@cf/mistral/mistral-7b-instruct-v0.1"
EXTRACTIVE_RESPONDER = "@local/extractive-responder"

CONTEXT_WINDOWS: dict[str, int] = {
    LLAMA_33_70B: 24_000,
    LLAMA_31_8B: 7_968,
    MISTRAL_7B: 2_824,
    EXTRACTIVE_RESPONDER: 24_000,
}
CONTEXT_WINDOW_EXCEEDED = 5021
DEFAULT_MAX_TOKENS = 256  # the schema's default for max_tokens
MAX_SENTENCES = 3
RELATIVE_CUTOFF = 0.5  # a sentence scoring under half the best one is a weaker, partial match: left out
NO_SOURCES = "No sources were provided, so I cannot answer this from them."
NO_ANSWER = "The provided sources do not contain the answer to this question."

ROLES = ("system", "user", "assistant", "tool")
_NUMBER_FIELDS = (
    "temperature",
    "top_p",
    "repetition_penalty",
    "frequency_penalty",
    "presence_penalty",
)
_INT_FIELDS = ("top_k", "seed")
_ACCEPTED = frozenset(
    {"messages", "prompt", "stream", "max_tokens", "tools", "functions", "raw", *_NUMBER_FIELDS, *_INT_FIELDS}
)

_MARKER = re.compile(r"^\[(\d+)\][ \t]*", re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\s*\n\s*")
_TERM = re.compile(r"[a-z0-9]+")
_PIECE = re.compile(r"\s*\S+")
_SUFFIXES = (("ies", "y"), ("ing", ""), ("ed", ""), ("es", ""), ("s", ""))
_STOP_WORDS = frozenset(
    "a an and are as at be been but by can could did do does for from had has have how i if in into is "
    "it its me my no not of on or our so than that the their them then there these they this to was we "
    "were what when where which who whom why will with would you your about also any".split()
)
_K1 = 1.2
_B = 0.75


@dataclass(frozen=True)
class _Sentence:
    source: int  # the marker's number
    order: int  # position among all sentences, in prompt order
    text: str
    terms: tuple[str, ...]
    score: float = 0.0


# --------------------------------------------------------------------------------------- tokens


def prompt_tokens(messages: Sequence[Mapping[str, Any]]) -> int:
    """The local token count of a prompt (see the module docstring)."""
    rendered = "\n".join(f"{m['role']}: {m['content']}" for m in messages)
    return estimate_tokens(rendered)


def completion_tokens(text: str) -> int:
    """The local token count of generated text (no sequence markers)."""
    return estimate_tokens(text) - BASE_TOKENS if text else 0


# ------------------------------------------------------------------------------------ retrieval


def _stem(word: str) -> str:
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) + len(replacement) >= 3:
            return word[: len(word) - len(suffix)] + replacement
    return word


def _terms(text: str) -> tuple[str, ...]:
    return tuple(_stem(w) for w in _TERM.findall(text.lower()) if w not in _STOP_WORDS)


def _blocks(content: str) -> tuple[str, list[tuple[int, str]]]:
    """``content`` split into its text before the first marker and its ``(n, block)`` sources."""
    markers = list(_MARKER.finditer(content))
    if not markers:
        return content, []
    blocks = []
    for i, match in enumerate(markers):
        end = markers[i + 1].start() if i + 1 < len(markers) else len(content)
        blocks.append((int(match.group(1)), content[match.end() : end]))
    return content[: markers[0].start()], blocks


def _sentences(blocks: list[tuple[int, str]]) -> list[_Sentence]:
    found: list[_Sentence] = []
    for number, block in blocks:
        lines = block.strip().split("\n", 1)
        # A first line of several that is not itself a sentence is the source's title.
        titled = len(lines) == 2 and not lines[0].rstrip().endswith((".", "!", "?"))
        body = lines[1] if titled else block
        for part in _SENTENCE_END.split(body):
            text = " ".join(part.split())
            if text:
                found.append(_Sentence(number, len(found), text, _terms(text)))
    return found


def _rank(question: tuple[str, ...], sentences: list[_Sentence]) -> list[_Sentence]:
    """Sentences with a positive BM25 score for ``question``, best first (stable ties)."""
    if not sentences or not question:
        return []
    count = len(sentences)
    average = sum(len(s.terms) for s in sentences) / count or 1.0
    df: dict[str, int] = {}
    for sentence in sentences:
        for term in set(sentence.terms):
            df[term] = df.get(term, 0) + 1
    scored: list[tuple[float, int, int, _Sentence]] = []
    for sentence in sentences:
        score = 0.0
        for term in set(question):
            tf = sentence.terms.count(term)
            if tf:
                idf = math.log(1 + (count - df[term] + 0.5) / (df[term] + 0.5))
                norm = tf + _K1 * (1 - _B + _B * len(sentence.terms) / average)
                score += idf * tf * (_K1 + 1) / norm
        if score > 0:
            scored.append((-score, sentence.source, sentence.order, replace(sentence, score=score)))
    scored.sort(key=lambda item: item[:3])
    return [item[3] for item in scored]


def _cite(sentence: _Sentence) -> str:
    text = sentence.text
    if text[-1] in ".!?":
        return f"{text[:-1]} [{sentence.source}]{text[-1]}"
    return f"{text} [{sentence.source}]."


def answer(messages: Sequence[Mapping[str, Any]]) -> str:
    """The extractive answer to ``messages`` (see the module docstring)."""
    question = ""
    blocks: list[tuple[int, str]] = []
    last_user = max((i for i, m in enumerate(messages) if m["role"] == "user"), default=None)
    for i, message in enumerate(messages):
        if message["role"] not in ("system", "user"):
            continue
        before, found = _blocks(message["content"])
        blocks.extend(found)
        if i == last_user:
            question = before if before.strip() else message["content"]
    if not blocks:
        return NO_SOURCES
    ranked = _rank(_terms(_MARKER.sub("", question)), _sentences(blocks))
    if not ranked:
        return NO_ANSWER
    top = ranked[0].score
    best = [s for s in ranked if s.score >= RELATIVE_CUTOFF * top][:MAX_SENTENCES]
    return " ".join(_cite(s) for s in best)


# ------------------------------------------------------------------------------------ the model


class ExtractiveResponder:
    """A text-generation id served by the extractive responder (see the module docstring)."""

    task = "Text Generation"

    def __init__(self, model_id: str, *, context_window: int) -> None:
        self.model_id = model_id
        self.context_window = context_window

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.model_id,
            "task": self.task,
            "implementation": (
                "LOCAL STAND-IN, not a language model: extractive responder that quotes the prompt's "
                "[n]-marked source sentences best matching the last user message (BM25), cites them, "
                "never calls tools, deterministic"
            ),
            "context_window": self.context_window,
            "max_tokens_default": DEFAULT_MAX_TOKENS,
        }

    def run(self, inputs: Mapping[str, Any]) -> AttrDict | ReadableStream:
        messages, stream, max_tokens = self._validate(inputs)
        prompt = prompt_tokens(messages)
        if prompt + max_tokens > self.context_window:
            raise AiError(
                f"AiError: {CONTEXT_WINDOW_EXCEEDED}: The estimated number of input and maximum output "
                f"tokens ({prompt + max_tokens}) exceeded this model context window limit "
                f"({self.context_window})."
            )
        pieces, finish = _pieces(answer(messages), max_tokens)
        text = "".join(pieces)
        completion = completion_tokens(text)
        total = prompt + completion
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
        if stream:
            return ReadableStream(_events(pieces, usage, finish))
        return AttrDict({"response": text, "usage": usage, "finish_reason": finish})

    def _validate(self, inputs: Mapping[str, Any]) -> tuple[list[Mapping[str, Any]], bool, int]:
        if not isinstance(inputs, Mapping):
            invalid(f"Type mismatch of '/', '{json_type(inputs)}' not in 'object'")
        if "messages" in inputs and "prompt" in inputs:
            invalid("oneOf at '/' not met, 2 matches: give either 'prompt' or 'messages'")
        if inputs.get("messages") is None and inputs.get("prompt") is None:
            invalid(
                "oneOf at '/' not met, 0 matches: required properties at '/' are 'prompt'; "
                "required properties at '/' are 'messages'"
            )
        unknown = sorted(set(inputs) - _ACCEPTED)
        if unknown:
            invalid(f"properties at '/' not accepted by the local runtime: '{','.join(unknown)}'")
        if "prompt" in inputs:
            messages: list[Mapping[str, Any]] = [
                {"role": "user", "content": check_string(inputs["prompt"], "/prompt", min_length=1)}
            ]
        else:
            messages = _check_messages(inputs["messages"])
        stream = check_bool(inputs["stream"], "/stream") if "stream" in inputs else False
        max_tokens = DEFAULT_MAX_TOKENS
        if inputs.get("max_tokens") is not None:
            max_tokens = check_int(inputs["max_tokens"], "/max_tokens", minimum=1)
        for name in _NUMBER_FIELDS:
            if inputs.get(name) is not None:
                _check_number(inputs[name], f"/{name}")
        for name in _INT_FIELDS:
            if inputs.get(name) is not None:
                check_int(inputs[name], f"/{name}")
        temperature = inputs.get("temperature")
        if temperature is not None and not 0 <= temperature <= 5:
            invalid(f"Number at '/temperature' is outside 0..5: {temperature}")
        if inputs.get("tools") is not None:
            _check_tools(inputs["tools"])
        if "raw" in inputs:
            check_bool(inputs["raw"], "/raw")
        return messages, stream, max_tokens


def _check_number(value: Any, path: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        invalid(f"Type mismatch of '{path}', '{json_type(value)}' not in 'number'")


def _check_messages(messages: Any) -> list[Mapping[str, Any]]:
    if not isinstance(messages, list | tuple):
        invalid(f"Type mismatch of '/messages', '{json_type(messages)}' not in 'array'")
    checked: list[Mapping[str, Any]] = []
    for i, message in enumerate(messages):
        path = f"/messages/{i}"
        require_object(message, ["role", "content"], path=path)
        check_enum(message["role"], ROLES, f"{path}/role")
        check_string(message["content"], f"{path}/content")
        checked.append(message)
    return checked


def _check_tools(tools: Any) -> None:
    if not isinstance(tools, list | tuple):
        invalid(f"Type mismatch of '/tools', '{json_type(tools)}' not in 'array'")
    for i, tool in enumerate(tools):
        path = f"/tools/{i}"
        if isinstance(tool, Mapping) and "function" in tool:
            require_object(tool, ["type", "function"], path=path)
            tool = tool["function"]
            path = f"{path}/function"
        require_object(tool, ["name", "description", "parameters"], path=path)
        check_string(tool["name"], f"{path}/name", min_length=1)
        require_object(tool["parameters"], ["type", "properties"], path=f"{path}/parameters")


def _pieces(text: str, max_tokens: int) -> tuple[list[str], str]:
    """``text`` in output pieces, cut before the piece that would pass ``max_tokens``."""
    pieces: list[str] = []
    used = 0
    for piece in _PIECE.findall(text):
        cost = completion_tokens(piece)
        if used + cost > max_tokens:
            return pieces, "length"
        pieces.append(piece)
        used += cost
    return pieces, "stop"


async def _events(pieces: list[str], usage: Mapping[str, int], finish: str) -> AsyncIterator[bytes]:
    for piece in pieces:
        yield b"data: " + json.dumps({"response": piece}).encode() + b"\n\n"
        await asyncio.sleep(0)  # one piece per turn of the loop: the consumer sees them as they come
    final = {"response": "", "usage": dict(usage), "finish_reason": finish}
    yield b"data: " + json.dumps(final).encode() + b"\n\n"
    yield b"data: [DONE]\n\n"
