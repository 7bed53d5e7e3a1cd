"""Bad input never produces a 500: arbitrary JSON bodies, query strings and paths get a 2xx or a 4xx
problem-details answer from every public route."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import StackHarness

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
search_bodies = st.fixed_dictionaries(
    {},
    optional={
        "query": st.text(max_size=80) | json_values,
        "top_k": st.integers(-5, 200) | json_values,
        "mode": st.sampled_from(["hybrid", "keyword", "vector", "other"]) | json_values,
        "filters": st.fixed_dictionaries(
            {}, optional={"document_ids": st.lists(st.text(max_size=30), max_size=3)}
        )
        | json_values,
    },
)
document_bodies = st.fixed_dictionaries(
    {},
    optional={
        "title": st.text(max_size=30) | json_values,
        "text": st.text(max_size=200) | json_values,
        "content_type": st.sampled_from(["text/plain", "text/markdown", "image/png"]) | json_values,
        "metadata": json_values,
    },
)


# JSON that Python's json module would accept but the JSON spec (and the API) does not.
NON_STANDARD_JSON = [
    b'{"query": NaN}',
    b'{"query": "x", "top_k": Infinity}',
    b'{"documents": [{"title": "t", "text": -Infinity}]}',
    b"\xff\xfe{",
    rb'{"query": "\ud800"}',
]


def assert_not_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text)
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/problem+json", response.text
        assert response.json()["status"] == response.status_code


async def test_arbitrary_bodies_and_paths_get_client_errors_not_500(harness: StackHarness) -> None:
    tenant = await harness.tenant("fuzz")
    await tenant.client.post("/v1/documents", json={"title": "Seed", "text": "rockets and nozzles"})
    await harness.ingest()
    calls: list[tuple[str, str, Any]] = []

    @settings(
        max_examples=80,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    @given(
        search=search_bodies,
        document=document_bodies,
        raw=st.binary(max_size=60) | st.sampled_from(NON_STANDARD_JSON),
        path=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=20),
        limit=st.text(max_size=6),
    )
    def collect(search: Any, document: Any, raw: bytes, path: str, limit: str) -> None:
        calls.append(("POST", "/v1/search", search))
        calls.append(("POST", "/v1/documents", document))
        calls.append(("RAW", "/v1/documents/batch", raw))
        calls.append(("RAW", "/v1/search", raw))
        calls.append(("GET", f"/v1/documents/{path}", None))
        calls.append(("GET", "/v1/documents", {"limit": limit, "cursor": path}))

    collect()
    for method, url, payload in calls:
        if method == "POST":
            response = await tenant.client.post(url, json=payload)
        elif method == "RAW":
            response = await tenant.client.post(
                url, content=payload, headers={"content-type": "application/json"}
            )
        elif isinstance(payload, dict):
            response = await tenant.client.get(url, params=payload)
        else:
            response = await tenant.client.get(url)
        assert_not_server_error(response)


answer_bodies = st.fixed_dictionaries(
    {},
    optional={
        "question": st.text(max_size=80)
        | st.sampled_from(["hi", "How do rockets work?", "Summarize the nozzles", "?!"])
        | json_values,
        "top_k": st.integers(-5, 50) | json_values,
        "model": st.sampled_from(["no-such-model", "@cf/meta/llama-3.1-8b-instruct", ""]) | json_values,
        "filters": st.fixed_dictionaries(
            {}, optional={"document_ids": st.lists(st.text(max_size=30), max_size=3) | json_values}
        )
        | json_values,
    },
)


async def test_answer_bodies_get_answers_or_client_errors_not_500(harness: StackHarness) -> None:
    tenant = await harness.tenant("fuzz-answers", scopes=("chat", "write"))
    await tenant.client.post("/v1/documents", json={"title": "Seed", "text": "rockets and nozzles"})
    await harness.ingest()
    calls: list[tuple[Any, bytes, str | None]] = []

    @settings(
        max_examples=60,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    @given(
        body=answer_bodies,
        raw=st.binary(max_size=60) | st.sampled_from(NON_STANDARD_JSON),
        end_user=st.none()
        | st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=12),
    )
    def collect(body: Any, raw: bytes, end_user: str | None) -> None:
        calls.append((body, raw, end_user))

    collect()
    for body, raw, end_user in calls:
        headers = {"x-end-user": end_user} if end_user is not None else {}
        assert_not_server_error(await tenant.client.post("/v1/answer", json=body, headers=headers))
        assert_not_server_error(
            await tenant.client.post(
                "/v1/answer", content=raw, headers={**headers, "content-type": "application/json"}
            )
        )
