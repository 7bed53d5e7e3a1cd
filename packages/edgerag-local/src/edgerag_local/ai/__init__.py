"""The local Workers AI binding: real models that ship inside PyPI wheels, no downloads at run time.

- :class:`LocalAi` — the ``env.AI`` binding (``await ai.run(model, inputs)``, ``await ai.models()``).
- :class:`ModelRegistry` / :func:`default_registry` — which ids are served and by what.
- :class:`EmbeddingModel` — bge-shaped embeddings from WordLlama (local stand-ins for the bge ids,
  mapped isometrically to their dimensions; see :mod:`.embeddings`).
- :class:`Reranker` — a cosine stand-in for ``@cf/baai/bge-reranker-base``.
- :class:`ExtractiveResponder` — the text-generation stand-in (quotes its prompt's sources; not an LLM)
  behind the configured ``@cf/...`` chat ids and ``@local/extractive-responder``.
- :func:`count_tokens` — the token count the local input limit uses, for chunker tests.
- :class:`AiLimits` — 100 texts per call, 512 input tokens; tests may lower them.

To serve a new model, implement ``task``/``run``/``describe`` in a module of this package and register it
in :func:`default_registry`.
"""

from __future__ import annotations

from .binding import LocalAi
from .embeddings import POOLINGS, AiLimits, EmbeddingModel, isometry
from .registry import (
    BGE_BASE,
    BGE_LARGE,
    BGE_RERANKER,
    BGE_SMALL,
    WORDLLAMA,
    AiModel,
    ModelInfo,
    ModelRegistry,
    count_tokens,
    default_registry,
)
from .reranker import Reranker
from .textgen import (
    CONTEXT_WINDOWS,
    EXTRACTIVE_RESPONDER,
    LLAMA_31_8B,
    LLAMA_33_70B,
    MISTRAL_7B,
    ExtractiveResponder,
)
from .wordllama_base import ModelFilesMissingError, StaticEmbedder, load_wordllama

__all__ = [
    "BGE_BASE",
    "BGE_LARGE",
    "BGE_RERANKER",
    "BGE_SMALL",
    "CONTEXT_WINDOWS",
    "EXTRACTIVE_RESPONDER",
    "LLAMA_31_8B",
    "LLAMA_33_70B",
    "MISTRAL_7B",
    "POOLINGS",
    "WORDLLAMA",
    "AiLimits",
    "AiModel",
    "EmbeddingModel",
    "ExtractiveResponder",
    "LocalAi",
    "ModelFilesMissingError",
    "ModelInfo",
    "ModelRegistry",
    "Reranker",
    "StaticEmbedder",
    "count_tokens",
    "default_registry",
    "isometry",
    "load_wordllama",
]
