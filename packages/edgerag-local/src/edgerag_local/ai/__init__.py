"""The local Workers AI binding: real models that ship inside PyPI wheels, no downloads at run time.

- :class:`LocalAi` — the ``env.AI`` binding (``await ai.run(model, inputs)``, ``await ai.models()``).
- :class:`ModelRegistry` / :func:`default_registry` — which ids are served and by what.
- :class:`EmbeddingModel` — bge-shaped embeddings from bge-small-en-v1.5 (int8 ONNX, the default) or
  WordLlama (``EDGERAG_LOCAL_EMBEDDINGS=wordllama``), mapped isometrically to each id's dimensions; see
  :mod:`.embeddings` and :mod:`.bert_onnx`.
- :class:`CrossEncoderReranker` — ms-marco-MiniLM-L-12-v2 for ``@cf/baai/bge-reranker-base`` (default);
  :class:`Reranker` — the cosine stand-in (``EDGERAG_LOCAL_RERANKER=cosine``).
- :class:`ExtractiveResponder` — the text-generation stand-in (quotes its prompt's sources; not an LLM)
  behind the configured ``@cf/...`` chat ids and ``@local/extractive-responder``.
- :func:`count_tokens` — the token count the local input limit uses, for chunker tests.
- :class:`AiLimits` — 100 texts per call, 512 input tokens; tests may lower them.

To serve a new model, implement ``task``/``run``/``describe`` in a module of this package and register it
in :func:`default_registry`.
"""

from __future__ import annotations

from .bert_onnx import BertEncoder, CrossEncoderOnnx, load_bge_small, load_msmarco_cross_encoder
from .binding import LocalAi
from .embeddings import POOLINGS, AiLimits, EmbeddingModel, isometry
from .registry import (
    BGE_BASE,
    BGE_LARGE,
    BGE_RERANKER,
    BGE_SMALL,
    EMBEDDINGS,
    RERANKERS,
    WORDLLAMA,
    AiModel,
    ModelInfo,
    ModelRegistry,
    count_tokens,
    default_registry,
)
from .reranker import CrossEncoderReranker, Reranker
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
    "EMBEDDINGS",
    "EXTRACTIVE_RESPONDER",
    "LLAMA_31_8B",
    "LLAMA_33_70B",
    "MISTRAL_7B",
    "POOLINGS",
    "RERANKERS",
    "WORDLLAMA",
    "AiLimits",
    "AiModel",
    "BertEncoder",
    "CrossEncoderOnnx",
    "CrossEncoderReranker",
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
    "load_bge_small",
    "load_msmarco_cross_encoder",
    "load_wordllama",
]
