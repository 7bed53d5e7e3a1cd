"""A scripted OpenAI- and Anthropic-compatible provider server on loopback, for tests and benchmarks.

    async with FakeProvider() as fake:
        fake.reply(openai_stream(["Hel", "lo"]), error_reply(429, headers={"retry-after": "2"}))
        provider = OpenAICompatibleProvider("fake", fake.openai_base_url, "sk-test", http)
        ...
        assert fake.requests[0].headers["authorization"] == "Bearer sk-test"

The server (:mod:`.server`) speaks HTTP/1.1 itself so tests control every byte and every pause; the
builders (:mod:`.shapes`) produce the providers' documented bodies and streams. It answers any path
(``/v1/chat/completions`` and ``/v1/messages`` alike) with the next scripted reply and records every
request (method, path, lower-case headers, body). CPython only: never deployed.
"""

from edgerag_local.fakeprovider.server import FakeProvider, Pause, RecordedRequest, Respond, Stall, Stream
from edgerag_local.fakeprovider.shapes import (
    DEFAULT_TOKENS,
    FakeToolCall,
    Tokens,
    anthropic_events,
    anthropic_message,
    anthropic_stream,
    error_reply,
    invalid_json,
    json_reply,
    openai_chunks,
    openai_completion,
    openai_stream,
    sse,
    sse_stream,
)

__all__ = [
    "DEFAULT_TOKENS",
    "FakeProvider",
    "FakeToolCall",
    "Pause",
    "RecordedRequest",
    "Respond",
    "Stall",
    "Stream",
    "Tokens",
    "anthropic_events",
    "anthropic_message",
    "anthropic_stream",
    "error_reply",
    "invalid_json",
    "json_reply",
    "openai_chunks",
    "openai_completion",
    "openai_stream",
    "sse",
    "sse_stream",
]
