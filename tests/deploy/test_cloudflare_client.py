"""edgerag_ops.cloudflare: envelope errors surface code and message; the token stays out of every message."""

from __future__ import annotations

import json

import httpx
import pytest
from edgerag_ops.cloudflare import CloudflareClient, CloudflareError, Credentials, CredentialsError
from edgerag_ops.tenants import load_tenant

from .conftest import REPO

ACCOUNT = "0123456789abcdef0123456789abcdef"
SECRET = "s3cr3t-t0ken-value-0123456789abcdefghij"


def client(handler: httpx.MockTransport) -> CloudflareClient:
    return CloudflareClient(
        Credentials(ACCOUNT, "MY_TOKEN", SECRET), base_url="https://api.test/client/v4", transport=handler
    )


def envelope(
    result: object = None,
    *,
    success: bool = True,
    errors: list[dict[str, object]] | None = None,
    status: int = 200,
    info: dict[str, int] | None = None,
) -> httpx.Response:
    body: dict[str, object] = {"success": success, "errors": errors or [], "messages": [], "result": result}
    if info:
        body["result_info"] = info
    return httpx.Response(
        status, content=json.dumps(body).encode(), headers={"content-type": "application/json"}
    )


def test_error_envelope_surfaces_code_and_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["authorization"] == f"Bearer {SECRET}"
        return envelope(success=False, status=400, errors=[{"code": 7502, "message": "already exists"}])

    with client(httpx.MockTransport(handler)) as c, pytest.raises(CloudflareError) as info:
        c.d1_create("db")
    assert info.value.codes == {7502}
    assert "already exists [code: 7502]" in str(info.value) and "POST" in str(info.value)
    assert SECRET not in str(info.value) and SECRET not in repr(info.value) and SECRET not in repr(c)


def test_non_json_failure_still_raises() -> None:
    with client(httpx.MockTransport(lambda r: httpx.Response(502, text="bad gateway"))) as c:
        with pytest.raises(CloudflareError, match=r"\(502\): HTTP 502"):
            c.queues()


def test_list_all_follows_pages() -> None:
    items = [{"id": str(i), "title": f"t{i}"} for i in range(250)]

    def handler(request: httpx.Request) -> httpx.Response:
        page, per = int(request.url.params["page"]), int(request.url.params["per_page"])
        chunk = items[(page - 1) * per : page * per]
        return envelope(chunk, info={"page": page, "per_page": per, "total_pages": 3, "count": len(chunk)})

    with client(httpx.MockTransport(handler)) as c:
        assert [ns["id"] for ns in c.kv_namespaces()] == [str(i) for i in range(250)]


def test_verify_falls_back_to_the_account_token_endpoint() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        if request.url.path.endswith("/user/tokens/verify"):
            return envelope(
                success=False, status=401, errors=[{"code": 1000, "message": "Invalid API Token"}]
            )
        if request.url.path.endswith("/tokens/verify"):
            return envelope({"id": "x", "status": "active"})
        return envelope({"id": ACCOUNT})

    with client(httpx.MockTransport(handler)) as c:
        c.verify()
    assert seen == [
        "/client/v4/user/tokens/verify",
        f"/client/v4/accounts/{ACCOUNT}/tokens/verify",
        f"/client/v4/accounts/{ACCOUNT}",
    ]


def test_unreachable_api_is_a_clear_error_before_changes() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    with client(httpx.MockTransport(handler)) as c, pytest.raises(CredentialsError, match="cannot verify"):
        c.verify()


def test_credentials_come_from_the_named_variable_only() -> None:
    tenant = load_tenant(REPO / "tenants" / "acme.toml")
    with pytest.raises(CredentialsError, match="ACME_CLOUDFLARE_API_TOKEN"):
        Credentials.from_env(tenant, {"CLOUDFLARE_API_TOKEN": "not-this-one"})
    creds = Credentials.from_env(tenant, {"ACME_CLOUDFLARE_API_TOKEN": SECRET})
    assert creds.token == SECRET and creds.account_id == tenant.account_id and SECRET not in repr(creds)
