"""Retrieval shared by the workers: safe FTS5 keyword queries (:mod:`.fts_query`), weighted reciprocal
rank fusion (:mod:`.fusion`), and the tenant-scoped hybrid search built from them (:mod:`.hybrid`),
which the gateway's search route and dedalus's ``search_knowledge_base`` tool both call. Building
blocks stay free of bindings (the caller passes data, not env); only :mod:`.hybrid` takes the D1 and
Vectorize ports. A new retrieval step (e.g. reranking) gets its own module here."""
