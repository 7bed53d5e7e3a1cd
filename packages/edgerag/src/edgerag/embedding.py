"""Text embeddings through the Workers AI binding.

:class:`Embedder` batches texts (Workers AI takes at most 100 texts per call for the bge models) and
checks the response shape, so a model or binding that answers with the wrong dimensions fails loudly
instead of writing bad vectors.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgerag.ports import Ai

__all__ = ["MAX_TEXTS_PER_CALL", "Embedder", "EmbeddingError"]

MAX_TEXTS_PER_CALL = 100


class EmbeddingError(RuntimeError):
    """The embedding model answered with something other than one vector per text."""


class Embedder:
    def __init__(self, ai: Ai, model: str, *, batch_size: int = 50, dimensions: int | None = None) -> None:
        if not 1 <= batch_size <= MAX_TEXTS_PER_CALL:
            raise ValueError(f"batch_size must be 1..{MAX_TEXTS_PER_CALL}, got {batch_size}")
        self._ai = ai
        self.model = model
        self._batch_size = batch_size
        self._dimensions = dimensions

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            result: Any = await self._ai.run(self.model, {"text": batch})
            data = result["data"] if "data" in result else None
            if not isinstance(data, list) or len(data) != len(batch):
                raise EmbeddingError(
                    f"{self.model} returned {0 if not isinstance(data, list) else len(data)} vectors "
                    f"for {len(batch)} texts"
                )
            for vector in data:
                values = [float(x) for x in vector]
                if self._dimensions is not None and len(values) != self._dimensions:
                    raise EmbeddingError(
                        f"{self.model} returned {len(values)} dimensions, "
                        f"the index expects {self._dimensions}"
                    )
                vectors.append(values)
        return vectors

    async def embed_one(self, text: str) -> list[float]:
        return (await self.embed([text]))[0]
