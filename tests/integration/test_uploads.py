"""Uploads over HTTP, whole stack: declared charsets survive to search, files that could only fail later
are refused up front (with what they really are), duplicates are detected per tenant, and every
malformed list cursor is a 400 problem."""

from __future__ import annotations

import asyncio
import base64
import io
import zipfile
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import StackHarness, Tenant

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, *fragments: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    for fragment in fragments:
        assert fragment in (body.get("detail") or ""), body
    return body


async def upload_file(
    tenant: Tenant, name: str, data: bytes, content_type: str, **params: str
) -> httpx.Response:
    return await tenant.client.post(
        "/v1/documents", files={"file": (name, data, content_type)}, params=params or None
    )


async def listing(tenant: Tenant) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = (await tenant.client.get("/v1/documents")).json()["documents"]
    return documents


async def stored_objects(harness: StackHarness, tenant: Tenant) -> list[str]:
    files = harness.stack.workers["gateway"].env.FILES
    listed = await files.list(prefix=f"tenants/{tenant.id}/")
    return [obj.key for obj in listed.objects]


# -- defect 6: a declared charset is kept, and the text is found ------------------------------------

CHARSET_CASES = [
    ("iso-8859-1", "Le café crème de Genève est très apprécié des voyageurs.", "Genève"),
    ("windows-1252", "Die “Smörgåsbord” Fassade wirkt naïve und überraschend.", "Smörgåsbord"),
    ("shift_jis", "東京 の 天気 は 晴れ です 。 富士山 も 見える 。", "富士山"),
    ("utf-16-le", "Ärger über die Straßenbahn: Überfüllung am Bahnhof.", "Straßenbahn"),
]


@pytest.mark.parametrize(("charset", "text", "word"), CHARSET_CASES, ids=[c[0] for c in CHARSET_CASES])
async def test_a_declared_charset_survives_upload_ingest_and_search(
    harness: StackHarness, charset: str, text: str, word: str
) -> None:
    tenant = await harness.tenant("acme")
    data = text.encode(charset)
    assert data != text.encode("utf-8")  # the case really is not UTF-8
    accepted = await upload_file(tenant, "notes.txt", data, f"text/plain; charset={charset.upper()}")
    assert accepted.status_code == 202, accepted.text
    document = accepted.json()["document"]
    assert document["content_type"] == f"text/plain; charset={charset}"
    await harness.ingest()
    ready = (await tenant.client.get(f"/v1/documents/{document['id']}")).json()
    assert ready["status"] == "ready", ready["error"]
    found = await tenant.client.post("/v1/search", json={"query": word, "mode": "keyword"})
    assert found.status_code == 200, found.text
    results = found.json()["results"]
    assert [r["document_id"] for r in results] == [document["id"]]
    assert word in results[0]["snippet"]


# -- defect 7: refused before anything is stored ----------------------------------------------------


def docx_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "hello")
    return buffer.getvalue()


DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
REFUSED = [
    # (file name, bytes, declared type, status, words the detail must contain)
    ("nul.txt", b"some text\x00\x01\x02 and binary", "text/plain", 415, ("binary",)),
    ("late-nul.txt", b"a" * 20_000 + b"\x00", "text/plain", 415, ("binary",)),
    ("latin1.txt", "café au lait".encode("latin-1"), "text/plain", 422, ("utf-8",)),
    ("bad.md", b"# Title\n\n\xff\xfe\xfd broken", "text/markdown", 422, ("utf-8",)),
    ("sjis.txt", b"\x82", "text/plain; charset=shift_jis", 422, ("shift_jis",)),
    ("x.txt", b"hello", "text/plain; charset=klingon-8", 415, ("klingon-8",)),
    ("blank.txt", "\u3000\x1c \u2028\n".encode(), "text/plain", 422, ("whitespace",)),
    ("paper.txt", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", "text/plain", 415, ("application/pdf",)),
    ("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "text/plain", 415, ("image/png",)),
    # A binary format is accepted only when its bytes are that format (see test_formats_ingest.py).
    ("report.pdf", b"just words", "application/pdf", 415, ("not application/pdf",)),
    ("sheet.xlsx", docx_bytes(), "application/octet-stream", 415, (DOCX, "not application/vnd")),
    ("report.md", docx_bytes(), "text/markdown", 415, (DOCX,)),
    ("archive.md", zip_bytes(), "text/markdown", 415, ("application/zip",)),
    ("data.csv", b"a,b\n\xff\xfe\n", "text/csv", 422, ("utf-8",)),
    ("photo", b"\xff\xd8\xff\xe0\x00\x10JFIF", "application/octet-stream", 415, ("image/jpeg",)),
]


@pytest.mark.parametrize(
    ("name", "data", "declared", "status", "fragments"), REFUSED, ids=[f"{c[0]}-{c[3]}" for c in REFUSED]
)
async def test_files_that_could_only_fail_later_are_refused_at_upload(
    harness: StackHarness, name: str, data: bytes, declared: str, status: int, fragments: tuple[str, ...]
) -> None:
    tenant = await harness.tenant("acme")
    body = assert_problem(await upload_file(tenant, name, data, declared), status, *fragments)
    assert "application/octet-stream" not in body["detail"] or declared != "application/octet-stream"
    assert await listing(tenant) == []
    assert await stored_objects(harness, tenant) == []


async def test_json_text_with_nul_or_only_whitespace_is_a_validation_problem(harness: StackHarness) -> None:
    tenant = await harness.tenant("acme")
    for text in ("before\x00after", " \n\t ", "\u3000\x1f"):
        response = await tenant.client.post("/v1/documents", json={"title": "t", "text": text})
        body = assert_problem(response, 422)
        assert body["errors"][0]["loc"][-1] == "text"
    batch = await tenant.client.post(
        "/v1/documents/batch",
        json={"documents": [{"title": "a", "text": "ok"}, {"title": "b", "text": "\x00"}]},
    )
    assert assert_problem(batch, 422)["errors"][0]["loc"][:3] == ["documents", "1", "text"]
    assert await listing(tenant) == []


async def test_utf8_with_a_bom_and_untyped_text_files_are_still_accepted(harness: StackHarness) -> None:
    tenant = await harness.tenant("acme")
    bom = await upload_file(tenant, "bom.txt", b"\xef\xbb\xbfZ\xc3\xbcrich notes", "text/plain")
    untyped = await upload_file(tenant, "notes.md", "# Déjà vu\n\ntext".encode(), "application/octet-stream")
    assert (bom.status_code, untyped.status_code) == (202, 202), (bom.text, untyped.text)
    assert untyped.json()["document"]["content_type"] == "text/markdown"
    await harness.ingest()
    assert {d["status"] for d in await listing(tenant)} == {"ready"}


# -- defect 7: duplicates by content hash, per tenant ------------------------------------------------


async def test_identical_content_is_reported_as_a_duplicate_of_the_existing_document(
    harness: StackHarness,
) -> None:
    acme, globex = await harness.tenant("acme"), await harness.tenant("globex")
    first = await acme.client.post("/v1/documents", json={"title": "Notes", "text": "rockets and nozzles"})
    assert first.status_code == 202 and first.json()["duplicate"] is False
    original = first.json()["document"]

    again = await acme.client.post(
        "/v1/documents", json={"title": "Other title", "text": "rockets and nozzles"}
    )
    assert again.status_code == 200, again.text
    assert again.json()["duplicate"] is True
    assert again.json()["document"]["id"] == original["id"]
    # The same bytes as a file are the same content.
    as_file = await upload_file(acme, "notes.txt", b"rockets and nozzles", "text/plain")
    assert (as_file.status_code, as_file.json()["document"]["id"]) == (200, original["id"])
    assert [d["id"] for d in await listing(acme)] == [original["id"]]
    assert len(await stored_objects(harness, acme)) == 1

    forced = await acme.client.post(
        "/v1/documents",
        params={"allow_duplicate": "true"},
        json={"title": "Copy", "text": "rockets and nozzles"},
    )
    assert forced.status_code == 202 and forced.json()["duplicate"] is False
    assert forced.json()["document"]["id"] != original["id"]
    # Another tenant's identical upload is its own document.
    theirs = await globex.client.post("/v1/documents", json={"title": "Notes", "text": "rockets and nozzles"})
    assert theirs.status_code == 202 and theirs.json()["duplicate"] is False
    assert len(await listing(acme)) == 2 and len(await listing(globex)) == 1
    # The forced copy does not become "the" original: a plain re-upload still names the first one.
    plain = await acme.client.post("/v1/documents", json={"title": "N", "text": "rockets and nozzles"})
    assert plain.json()["document"]["id"] == original["id"]


async def test_a_failed_document_may_be_uploaded_again(harness: StackHarness) -> None:
    tenant = await harness.tenant("acme")
    empty_markdown = b"<!-- nothing a reader would see -->\n"
    first = await upload_file(tenant, "empty.md", empty_markdown, "text/markdown")
    assert first.status_code == 202, first.text
    await harness.ingest()
    failed = (await tenant.client.get(f"/v1/documents/{first.json()['document']['id']}")).json()
    assert failed["status"] == "failed"
    again = await upload_file(tenant, "empty.md", empty_markdown, "text/markdown")
    assert again.status_code == 202 and again.json()["duplicate"] is False
    assert again.json()["document"]["id"] != failed["id"]


class GatedBucket:
    """The R2 port, holding every ``put`` until ``width`` are waiting: the uploads have all passed the
    duplicate look-up before any of them inserts its row, so D1's unique index must settle the race."""

    def __init__(self, inner: Any, width: int) -> None:
        self._inner, self._width = inner, width
        self._waiting = 0
        self._open = asyncio.Event()
        self.puts: list[str] = []

    async def put(self, key: str, value: Any, **options: Any) -> Any:
        self.puts.append(key)
        self._waiting += 1
        if self._waiting >= self._width:
            self._open.set()
        await asyncio.wait_for(self._open.wait(), 30)  # guards against a hang only
        return await self._inner.put(key, value, **options)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class EnvWith:
    """A worker env with some bindings replaced (the real env is read-only)."""

    def __init__(self, env: Any, **bindings: Any) -> None:
        self._env, self._bindings = env, bindings

    def __getattr__(self, name: str) -> Any:
        return self._bindings[name] if name in self._bindings else getattr(self._env, name)


async def test_identical_uploads_racing_store_one_document(harness: StackHarness) -> None:
    from gateway.app import build_app

    tenant = await harness.tenant("acme")
    env = harness.stack.workers["gateway"].env
    bucket = GatedBucket(env.FILES, width=3)
    gateway = build_app()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await gateway({**scope, "env": EnvWith(env, FILES=bucket)}, receive, send)

    headers = {"authorization": f"Bearer {tenant.key}"}
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://gw", headers=headers
    ) as client:
        body = {"title": "Race", "text": "the same bytes, three times at once"}
        replies = await asyncio.gather(*(client.post("/v1/documents", json=body) for _ in range(3)))
    assert len(bucket.puts) == 3  # all three got past the look-up
    assert sorted(r.status_code for r in replies) == [200, 200, 202], [r.text for r in replies]
    assert len({r.json()["document"]["id"] for r in replies}) == 1
    assert len(await listing(tenant)) == 1
    assert len(await stored_objects(harness, tenant)) == 1  # the losers' objects were removed
    assert await harness.ingest() == 1


async def test_batch_duplicates_within_the_batch_and_against_existing_documents(
    harness: StackHarness,
) -> None:
    tenant = await harness.tenant("acme")
    existing = await tenant.client.post("/v1/documents", json={"title": "C", "text": "already here"})
    existing_id = existing.json()["document"]["id"]
    await harness.ingest()
    docs = [
        {"title": "C again", "text": "already here"},
        {"title": "A", "text": "alpha text"},
        {"title": "B", "text": "beta text"},
        {"title": "A again", "text": "alpha text"},
    ]
    batch = await tenant.client.post("/v1/documents/batch", json={"documents": docs})
    assert batch.status_code == 202, batch.text
    result = batch.json()
    ids = [d["id"] for d in result["documents"]]
    assert result["duplicates"] == [0, 3]
    assert ids[0] == existing_id and ids[3] == ids[1] and len(set(ids)) == 3
    assert await harness.ingest() == 2
    assert len(await listing(tenant)) == 3

    all_known = await tenant.client.post("/v1/documents/batch", json={"documents": docs[:2]})
    assert all_known.status_code == 200 and all_known.json()["duplicates"] == [0, 1]
    forced = await tenant.client.post(
        "/v1/documents/batch", params={"allow_duplicate": "true"}, json={"documents": docs[1:2] * 2}
    )
    assert forced.status_code == 202 and forced.json()["duplicates"] == []
    assert len(await listing(tenant)) == 5


# -- defect 4: malformed cursors -------------------------------------------------------------------

TIMESTAMP = "2026-01-02T03:04:05.678Z"
DOC_ID = "doc_" + "0" * 26
WRONG_SHAPES = [
    DOC_ID,
    f"{TIMESTAMP}|",
    f"|{DOC_ID}",
    f"{TIMESTAMP}|{DOC_ID}|extra",
    f"{TIMESTAMP}|key_{'0' * 26}",
    f"2026-01-02|{DOC_ID}",
    f"{TIMESTAMP}|{DOC_ID.upper()}",
    f"{TIMESTAMP}|{DOC_ID}\n",
    f"{TIMESTAMP} |{DOC_ID}",
]


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def test_every_malformed_cursor_is_a_400_problem(harness: StackHarness) -> None:
    tenant = await harness.tenant("acme")
    cursors: list[str] = [
        "\u00a9",
        "%%%",
        "=",
        "a",
        "ab=c",
        "a" * 5000,
        *map(b64, (s.encode() for s in WRONG_SHAPES)),
    ]

    @settings(
        max_examples=150,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        database=None,
        derandomize=True,
    )
    @given(
        st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=300)
        | st.binary(max_size=120).map(b64).filter(bool)
        | st.tuples(st.text(max_size=30), st.text(max_size=30)).map(lambda p: b64(f"{p[0]}|{p[1]}".encode()))
    )
    def collect(cursor: str) -> None:
        cursors.append(cursor)

    collect()
    for cursor in cursors:
        response = await tenant.client.get("/v1/documents", params={"cursor": cursor})
        assert response.status_code == 400, (repr(cursor), response.text)
    # The raw percent-encoded form of the reported case.
    assert_problem(await tenant.client.get("/v1/documents?cursor=%C2%A9"), 400)
    # A well-formed cursor that points past every document is simply an empty page.
    valid = await tenant.client.get("/v1/documents", params={"cursor": b64(f"{TIMESTAMP}|{DOC_ID}".encode())})
    assert valid.status_code == 200 and valid.json() == {"documents": [], "next_cursor": None}


async def test_multipart_fields_follow_the_json_rules(harness: StackHarness) -> None:
    tenant = await harness.tenant("acme")
    files = {"file": ("a.txt", b"some text", "text/plain")}
    unknown = await tenant.client.post("/v1/documents", files=files, data={"titel": "typo"})
    assert assert_problem(unknown, 422)["errors"][0]["loc"] == ["body", "titel"]
    long_title = await tenant.client.post("/v1/documents", files=files, data={"title": "t" * 501})
    assert assert_problem(long_title, 422)["errors"][0]["loc"] == ["body", "title"]
    nested = await tenant.client.post("/v1/documents", files=files, data={"metadata": '{"a": {"b": 1}}'})
    assert_problem(nested, 422)
    assert await listing(tenant) == []
    # A plain form field named "file" is UTF-8 text (what a form without a file input sends).
    as_field = await tenant.client.post(
        "/v1/documents", files={"file": (None, "Grüße aus Köln"), "metadata": (None, '{"n": 1}')}
    )
    assert as_field.status_code == 202, as_field.text
    assert as_field.json()["document"]["metadata"] == {"n": 1}


# -- the API description -----------------------------------------------------------------------------


def resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    assert ref.startswith("#/components/schemas/"), ref
    target: dict[str, Any] = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return target


async def test_the_documents_routes_describe_their_bodies_statuses_and_models(harness: StackHarness) -> None:
    schema = (await harness.client().get("/openapi.json")).json()
    paths = schema["paths"]
    upload = paths["/v1/documents"]["post"]
    content = upload["requestBody"]["content"]
    assert set(content) == {"application/json", "multipart/form-data"}
    text_body, url_body = content["application/json"]["schema"]["oneOf"]
    assert set(text_body["properties"]) == {"title", "text", "content_type", "metadata"}
    assert set(url_body["properties"]) == {"url", "title", "metadata", "resync"}
    # the two JSON bodies cannot be confused: each requires its own field and forbids the other's
    assert "text" in text_body["required"] and url_body["required"] == ["url"]
    assert text_body["additionalProperties"] is False and url_body["additionalProperties"] is False
    form = content["multipart/form-data"]["schema"]
    assert form["required"] == ["file"] and "contentMediaType" in form["properties"]["file"]
    batch = paths["/v1/documents/batch"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert batch["properties"]["documents"]["items"]["properties"]["text"]["pattern"]
    expected = {
        ("/v1/documents", "post"): (
            {"200", "202", "400", "401", "403", "409", "413", "415", "422", "429", "503"}
        ),
        ("/v1/documents/batch", "post"): {
            "200",
            "202",
            "401",
            "403",
            "409",
            "413",
            "415",
            "422",
            "429",
            "503",
        },
        ("/v1/documents", "get"): {"200", "400", "401", "403", "422", "429"},
        ("/v1/documents/{document_id}", "get"): {"200", "401", "403", "404", "429"},
        ("/v1/documents/{document_id}", "delete"): {"204", "401", "403", "404", "429"},
    }
    models = {
        ("/v1/documents", "post"): "UploadAccepted",
        ("/v1/documents/batch", "post"): "BatchAccepted",
        ("/v1/documents", "get"): "DocumentList",
        ("/v1/documents/{document_id}", "get"): "Document",
    }
    for (path, method), statuses in expected.items():
        responses = paths[path][method]["responses"]
        assert statuses <= set(responses), (path, method, sorted(responses))
        for status, response in responses.items():
            if status.startswith(("4", "5")):
                assert set(response["content"]) == {PROBLEM}, (path, method, status)
            elif (path, method) in models:
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref == f"#/components/schemas/{models[path, method]}"
    document = schema["components"]["schemas"]["Document"]
    assert {"id", "status", "content_type", "sha256"} <= set(document["required"])
    assert all(
        document["properties"][name].get("description") for name in ("status", "sha256", "content_type")
    )
    listing_schema = schema["components"]["schemas"]["DocumentList"]
    assert "next_cursor" in listing_schema["properties"]
    assert resolve(schema, schema["components"]["schemas"]["UploadAccepted"]["properties"]["document"])
    assert "duplicate" in schema["components"]["schemas"]["UploadAccepted"]["required"]


async def test_responses_match_the_declared_models(harness: StackHarness) -> None:
    from gateway.routes.documents import BatchAccepted, Document, DocumentList, UploadAccepted

    tenant = await harness.tenant("acme")
    one = await tenant.client.post("/v1/documents", json={"title": "t", "text": "typed responses"})
    UploadAccepted.model_validate_json(one.content)
    again = await tenant.client.post("/v1/documents", json={"title": "t", "text": "typed responses"})
    assert UploadAccepted.model_validate_json(again.content).duplicate
    batch = await tenant.client.post(
        "/v1/documents/batch", json={"documents": [{"title": "b", "text": "more"}]}
    )
    BatchAccepted.model_validate_json(batch.content)
    page = DocumentList.model_validate_json(
        (await tenant.client.get("/v1/documents", params={"limit": 1})).content
    )
    assert page.next_cursor is not None
    Document.model_validate_json((await tenant.client.get(f"/v1/documents/{page.documents[0].id}")).content)
    # "batch" is not a document id: the batch route is the only one there.
    wrong = await tenant.client.get("/v1/documents/batch")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
