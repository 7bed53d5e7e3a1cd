"""Retrieval building blocks shared by the workers: safe FTS5 keyword queries (:mod:`.fts_query`) and
weighted reciprocal rank fusion (:mod:`.fusion`). A new retrieval step (e.g. reranking) gets its own
module here, free of bindings: the gateway passes it data, not env."""
