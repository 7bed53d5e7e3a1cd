"""The official ``openai`` Python SDK against the gateway over real HTTP.

The whole local stack is served by uvicorn on a loopback port from a thread (as in
tests/e2e/test_api_schema.py); the SDK is pointed at ``<server>/v1`` with a tenant API key that has
only the ``chat`` scope (plus a second key that uploads the document). The answers come from the local
Workers AI stand-in, which quotes the sources the prompt gives it, so "grounded" is checkable: the
answer quotes and cites the uploaded document. Timeouts only guard against hangs.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
import pytest
from edgerag_local.runtime.threaded import serve_stack

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
MODEL = "@cf/meta/llama-3.1-8b-instruct"  # the free plan's chat model in the default local config
EMBEDDING_MODEL = "@cf/baai/bge-base-en-v1.5"
GUARD_S = 60
DOCUMENT = (
    "Liquid rocket engines burn kerosene and liquid oxygen. "
    "The nozzle accelerates the exhaust gases to make thrust."
)


@dataclass(frozen=True)
class Served:
    base_url: str
    chat_key: str
    document_id: str


def _request(url: str, token: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        method="POST" if body is not None else "GET",
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        result: dict[str, Any] = json.loads(reply.read())
        return result


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    state = tmp_path_factory.mktemp("openai-sdk") / "state"
    with serve_stack(REPO, state_dir=state, name="edgerag-openai-sdk") as stack:
        base, token = stack.base_url, stack.admin_token
        tenant = _request(f"{base}/v1/admin/tenants", token, {"name": "sdk"})
        keys = f"{base}/v1/admin/tenants/{tenant['id']}/keys"
        writer = _request(keys, token, {"name": "uploader", "scopes": ["write", "read"]})["key"]
        chat = _request(keys, token, {"name": "sdk", "scopes": ["chat"]})["key"]
        body = {"title": "Rocket engines", "text": DOCUMENT}
        uploaded = _request(f"{base}/v1/documents", writer, body)["document"]
        deadline = time.monotonic() + GUARD_S
        while _request(f"{base}/v1/documents/{uploaded['id']}", writer)["status"] != "ready":
            assert time.monotonic() < deadline, "the document was not ingested"
            time.sleep(0.05)
        yield Served(base, chat, str(uploaded["id"]))


@pytest.fixture
def client(served: Served) -> Iterator[openai.OpenAI]:
    sdk = openai.OpenAI(
        base_url=f"{served.base_url}/v1", api_key=served.chat_key, max_retries=0, timeout=GUARD_S
    )
    try:
        yield sdk
    finally:
        sdk.close()


QUESTION = [{"role": "user", "content": "How does the nozzle make thrust?"}]


def test_models_list(client: openai.OpenAI) -> None:
    ids = [model.id for model in client.models.list()]
    assert ids == [MODEL, EMBEDDING_MODEL]


def test_a_completion_is_grounded_and_cites_the_uploaded_document(
    client: openai.OpenAI, served: Served
) -> None:
    completion = client.chat.completions.create(model=MODEL, messages=QUESTION)  # type: ignore[arg-type]
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.content and "nozzle accelerates the exhaust" in choice.message.content
    assert "[1]" in choice.message.content
    assert completion.usage and completion.usage.total_tokens > 0
    extension = completion.model_extra["edgerag"] if completion.model_extra else {}
    assert [c["document_id"] for c in extension["citations"]] == [served.document_id]


def test_a_streamed_completion_with_usage(client: openai.OpenAI, served: Served) -> None:
    stream = client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,  # type: ignore[arg-type]
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "nozzle accelerates the exhaust" in text and "[1]" in text
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1  # really streamed
    finishing = next(c for c in chunks if c.choices and c.choices[0].finish_reason)
    assert finishing.choices[0].finish_reason == "stop"
    extension = finishing.model_extra["edgerag"] if finishing.model_extra else {}
    assert [c["document_id"] for c in extension["citations"]] == [served.document_id]
    assert chunks[-1].choices == [] and chunks[-1].usage and chunks[-1].usage.total_tokens > 0


def test_grounding_off_through_extra_body(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model=MODEL,
        messages=QUESTION,  # type: ignore[arg-type]
        extra_body={"edgerag": {"grounding": False}},
    )
    extension = completion.model_extra["edgerag"] if completion.model_extra else {}
    assert extension["grounded"] is False and extension["citations"] == []


def test_embeddings(client: openai.OpenAI) -> None:
    # The SDK asks for base64 unless told otherwise and decodes it: both paths give the same floats.
    packed = client.embeddings.create(model=EMBEDDING_MODEL, input=["rocket nozzle", "sourdough"])
    floats = client.embeddings.create(model=EMBEDDING_MODEL, input="rocket nozzle", encoding_format="float")
    assert [d.index for d in packed.data] == [0, 1] and len(packed.data[0].embedding) == 768
    assert packed.data[0].embedding == pytest.approx(floats.data[0].embedding, abs=1e-6)
    assert packed.usage.prompt_tokens > 0


def test_errors_raise_the_sdks_exceptions(client: openai.OpenAI, served: Served) -> None:
    bad = openai.OpenAI(base_url=f"{served.base_url}/v1", api_key="er_bad_key", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as denied:
        bad.models.list()
    assert denied.value.code == "invalid_api_key"
    bad.close()
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="gpt-nope", messages=QUESTION)  # type: ignore[arg-type]
    assert unknown.value.code == "model_not_found" and unknown.value.param == "model"
    with pytest.raises(openai.BadRequestError) as invalid:
        client.chat.completions.create(model=MODEL, messages=[])
    assert invalid.value.param == "messages"
