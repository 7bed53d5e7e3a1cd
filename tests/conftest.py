"""Suite-wide settings, read before any test module imports the local runtime.

The local Workers AI serves the bge ids with bge-small-en-v1.5 and the reranker with a MiniLM
cross-encoder by default (int8 ONNX transformers: seconds per batch on 2 cores). The suite embeds
thousands of texts to test behaviour, not retrieval quality, so it runs on the fast static models
(WordLlama, and the cosine stand-in for the reranker) unless the environment chooses otherwise. Tests of
the ONNX models build their registry explicitly (tests/unit/test_local_onnx_models.py).
"""

from __future__ import annotations

import os

os.environ.setdefault("EDGERAG_LOCAL_EMBEDDINGS", "wordllama")
os.environ.setdefault("EDGERAG_LOCAL_RERANKER", "cosine")
