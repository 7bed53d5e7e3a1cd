"""dedalus: the LLM and agent worker (provider routing, retries, fallbacks, streaming, usage)."""
