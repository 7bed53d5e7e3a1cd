"""OpenAI-compatible API: request/response shapes, errors, grounding glue (see routes/openai_compat)."""
