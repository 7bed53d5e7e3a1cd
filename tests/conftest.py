"""Suite-wide settings, read before any test module imports the local runtime.

No test reaches a network: outbound HTTP made through the local Workers SDK stand-in (``fetch``: URL
sources, provider adapters, anything a worker calls) is limited to loopback for the whole run,
including stacks served in threads and subprocesses started by tests, which inherit the environment.
A test that needs to prove the refusal sets the variable itself (tests/unit/test_outbound_policy.py).

The local Workers AI serves the bge ids with bge-small-en-v1.5 and the reranker with a MiniLM
cross-encoder by default (int8 ONNX transformers: seconds per batch on 2 cores). The suite embeds
thousands of texts to test behaviour, not retrieval quality, so it runs on the fast static models
(WordLlama, and the cosine stand-in for the reranker) unless the environment chooses otherwise. Tests of
the ONNX models build their registry explicitly (tests/unit/test_local_onnx_models.py).
"""

from __future__ import annotations

import os

from edgerag_local.sdk import OUTBOUND_ENV

os.environ[OUTBOUND_ENV] = "loopback"
os.environ.setdefault("EDGERAG_LOCAL_EMBEDDINGS", "wordllama")
os.environ.setdefault("EDGERAG_LOCAL_RERANKER", "cosine")
