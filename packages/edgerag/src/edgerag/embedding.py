"""Text embeddings through the Workers AI binding.

:class:`Embedder` batches texts (Workers AI takes at most 100 texts per call for the bge models) and
checks the response shape, so a model or binding that answers with the wrong dimensions fails loudly
instead of writing bad vectors. Whatever the binding raises (at the edge a JavaScript error, locally
the emulator's ``AiError``) leaves as :class:`EmbeddingError` with the cause chained, so callers map
one exception to their own error (the gateway: a 502 problem) without knowing the platform's types.

With ``truncate=True`` every text is cut to the longest prefix, at a word boundary where there is one,
whose :func:`edgerag.tokens.estimate_tokens` fits the model's input limit
(:func:`input_token_limit`): what a query needs, because a model rejects longer input (bge: 5006, "more
than the model's 512 tokens") and a user's query may be long. Ingestion does not truncate: its chunks
are sized to fit already, and silently dropping document text would hide a chunking bug.

To support another model family: add its input limit to ``_INPUT_LIMITS``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from edgerag.ports import Ai
from edgerag.tokens import estimate_tokens

__all__ = ["MAX_TEXTS_PER_CALL", "Embedder", "EmbeddingError", "input_token_limit", "truncate_to_tokens"]

MAX_TEXTS_PER_CALL = 100

# Model id prefix -> input limit in tokens (special tokens included). bge small/base/large: 512.
_INPUT_LIMITS: dict[str, int] = {"@cf/baai/bge-": 512}
_DEFAULT_INPUT_LIMIT = 512


def input_token_limit(model: str) -> int:
    """The model's input limit in tokens (512 for models this table does not know: the safe choice)."""
    for prefix, limit in _INPUT_LIMITS.items():
        if model.startswith(prefix):
            return limit
    return _DEFAULT_INPUT_LIMIT


def truncate_to_tokens(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose estimated token count is at most ``limit``.

    Cut at the last whitespace before the largest fitting prefix when there is one, so no word is
    split. Binary search over the prefix length: the estimate is monotone (appending never lowers it),
    so this costs O(log n) estimates.
    """
    if estimate_tokens(text) <= limit:
        return text
    low, high = 0, len(text)  # estimate(text[:low]) fits; estimate(text[:high]) does not
    while high - low > 1:
        middle = (low + high) // 2
        if estimate_tokens(text[:middle]) <= limit:
            low = middle
        else:
            high = middle
    prefix = text[:low]
    cut = max(prefix.rfind(" "), prefix.rfind("\n"))
    return (prefix[:cut] if cut > 0 else prefix).rstrip()


class EmbeddingError(RuntimeError):
    """The embedding model answered with something other than one vector per text."""


class Embedder:
    def __init__(
        self,
        ai: Ai,
        model: str,
        *,
        batch_size: int = 50,
        dimensions: int | None = None,
        truncate: bool = False,
    ) -> None:
        if not 1 <= batch_size <= MAX_TEXTS_PER_CALL:
            raise ValueError(f"batch_size must be 1..{MAX_TEXTS_PER_CALL}, got {batch_size}")
        self._ai = ai
        self.model = model
        self._batch_size = batch_size
        self._dimensions = dimensions
        self._limit = input_token_limit(model) if truncate else None

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        vectors: list[list[float]] = []
        for start in range(0, len(texts), self._batch_size):
            batch = list(texts[start : start + self._batch_size])
            if self._limit is not None:
                batch = [truncate_to_tokens(text, self._limit) for text in batch]
            try:
                result: Any = await self._ai.run(self.model, {"text": batch})
            except Exception as exc:  # the platform's own error types are not importable here
                raise EmbeddingError(f"{self.model} failed: {exc}") from exc
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
