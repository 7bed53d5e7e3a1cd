"""gateway: the public HTTPS API (tenants, API keys, rate limits, documents, search, chat, tools)."""
