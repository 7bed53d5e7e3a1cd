"""A Workers AI stream that the reader abandons is cancelled, on the JS stream shape Pyodide hands over.

At the edge ``env.AI.run(..., stream=True)`` returns a ReadableStream proxy: ``__aiter__()`` gives the
stream's async iterator, which has ``return()`` (release the reader, cancel the stream) but no
``aclose()``. Stopping early must call it, or the model keeps generating for nobody.
"""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Mapping
from typing import Any

from dedalus.providers.base import ProviderRequest, TextDelta
from dedalus.providers.workers_ai import WorkersAIProvider
from edgerag.llm.types import ChatMessage


class _Chunk:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def to_bytes(self) -> bytes:
        return self._data


class _JsStream:
    def __init__(self, events: list[bytes]) -> None:
        self.pending = list(events)
        self.cancelled = False

    def __aiter__(self) -> Any:
        stream = self

        class _Iterator:
            def __aiter__(self) -> Any:
                return self

            async def __anext__(self) -> _Chunk:
                if not stream.pending:
                    raise StopAsyncIteration
                return _Chunk(stream.pending.pop(0))

        async def _return() -> None:
            stream.cancelled = True

        iterator = _Iterator()
        setattr(iterator, "return", _return)
        return iterator


class _Ai:
    def __init__(self, stream: _JsStream) -> None:
        self.stream = stream

    async def run(self, model: str, inputs: Mapping[str, Any], **options: Any) -> Any:
        return self.stream


def _events(*texts: str) -> list[bytes]:
    return [b"data: " + json.dumps({"response": t}).encode() + b"\n\n" for t in texts] + [b"data: [DONE]\n\n"]


async def test_stopping_after_the_first_token_cancels_the_js_stream() -> None:
    stream = _JsStream(_events("one ", "two ", "three"))
    question = [ChatMessage(role="user", content="hi")]
    request = ProviderRequest(model="@cf/meta/llama-3.1-8b-instruct", messages=question)
    parts = WorkersAIProvider(_Ai(stream)).stream(request)
    async for part in parts:
        if isinstance(part, TextDelta):
            break
    await parts.aclose()
    for _ in range(3):  # the inner readers are closed by the loop's async-generator finalizer
        gc.collect()
        await asyncio.sleep(0)
    assert stream.cancelled
    assert stream.pending  # it was not read to the end
