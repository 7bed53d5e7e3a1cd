"""The one real embedding model the local Workers AI serves: WordLlama ``l2_supercat_256``.

WordLlama (PyPI ``wordllama``) ships its weights inside the wheel: a 32,000 x 256 token-embedding table
(``wordllama/weights/l2_supercat_256.safetensors``, Llama-2 vocabulary) and the matching tokenizer
(``wordllama/tokenizers/l2_supercat_tokenizer_config.json``). ``WordLlama.load()`` looks for the
tokenizer under a different folder name and then falls back to a model hub, which cannot work offline,
so this module opens the two packaged files itself and never touches the network or any hub variable.

The embedding is exactly what ``WordLlamaInference.embed(texts, norm=True)`` computes: tokenise without
special tokens, look up each token's row, average the rows of a text (mean pooling over its tokens),
L2-normalise. It is done here text by text on the unpadded token ids, so no padded batch tensor is
materialised (the contract suite checks the result against WordLlama's own code).

Loading is lazy and cached per process (:func:`load_wordllama`): nothing is read at import time. The
package is located with ``importlib.util.find_spec`` rather than imported, because importing
``wordllama`` configures the root logger as a side effect.

To serve another packaged static-embedding model, add a loader like :func:`load_wordllama` that returns a
:class:`StaticEmbedder` over that model's table and tokenizer.
"""

from __future__ import annotations

import importlib.util
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = ["ModelFilesMissingError", "StaticEmbedder", "load_wordllama", "wordllama_files"]

WEIGHTS_FILE = "weights/l2_supercat_256.safetensors"
TOKENIZER_FILE = "tokenizers/l2_supercat_tokenizer_config.json"
TENSOR_KEY = "embedding.weight"
# Llama-2's beginning-of-sequence token; used only for a text that tokenises to nothing (which the
# embedding schemas already reject as an empty string), so every text has at least one row to average.
_BOS_ID = 1

Vectors = npt.NDArray[np.float32]


class ModelFilesMissingError(RuntimeError):
    """The installed ``wordllama`` wheel does not contain the packaged weights or tokenizer."""


def wordllama_files() -> tuple[Path, Path]:
    """Paths of the packaged weights and tokenizer files, without importing ``wordllama``."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise ModelFilesMissingError("the 'wordllama' package is not installed")
    root = Path(next(iter(spec.submodule_search_locations)))
    weights, tokenizer = root / WEIGHTS_FILE, root / TOKENIZER_FILE
    for path in (weights, tokenizer):
        if not path.is_file():
            raise ModelFilesMissingError(f"wordllama wheel has no {path.relative_to(root)}")
    return weights, tokenizer


@dataclass(frozen=True)
class StaticEmbedder:
    """Mean-pooled, L2-normalised static token embeddings with their tokenizer."""

    table: npt.NDArray[np.float32]
    tokenizer: Tokenizer
    name: str

    @property
    def dims(self) -> int:
        return int(self.table.shape[1])

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, without special tokens (batch tokenisation)."""
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [enc.ids for enc in encodings]

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def embed_ids(self, ids_per_text: Sequence[Sequence[int]]) -> Vectors:
        """Mean-pool each text's token rows and L2-normalise; shape ``[len(ids_per_text), dims]``."""
        if not ids_per_text:
            return np.zeros((0, self.dims), dtype=np.float32)
        pooled: Vectors = np.empty((len(ids_per_text), self.dims), dtype=np.float32)
        last = self.table.shape[0] - 1
        for row, ids in enumerate(ids_per_text):
            # Ids outside the table cannot come from this tokenizer; clamp as WordLlama does, for safety.
            token_ids = np.clip(np.asarray(ids if ids else [_BOS_ID], dtype=np.int64), 0, last)
            # One small gather and a pairwise mean per text: measured ~10x faster than a single gather
            # over the whole batch followed by np.add.reduceat.
            pooled[row] = self.table[token_ids].mean(axis=0)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        # A text whose token rows cancel out exactly would divide by zero; leave it as the zero vector.
        np.divide(pooled, norms, out=pooled, where=norms > 0)
        return pooled

    def embed(self, texts: Sequence[str]) -> Vectors:
        return self.embed_ids(self.token_ids(texts))


_lock = threading.Lock()
_cached: StaticEmbedder | None = None


def load_wordllama() -> StaticEmbedder:
    """The packaged WordLlama model, loaded on first use and shared by the whole process."""
    global _cached
    if _cached is not None:
        return _cached
    with _lock:
        if _cached is None:
            _cached = _load()
        return _cached


def _load() -> StaticEmbedder:
    # Imported here so that importing the emulator package stays cheap and free of native-library loads.
    from safetensors import safe_open
    from tokenizers import Tokenizer

    weights, tokenizer_file = wordllama_files()
    with safe_open(str(weights), framework="np") as handle:
        table = np.ascontiguousarray(handle.get_tensor(TENSOR_KEY), dtype=np.float32)
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    # The packaged config carries no padding or truncation; keep it that way so counts are exact.
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return StaticEmbedder(table=table, tokenizer=tokenizer, name="wordllama l2_supercat_256")
