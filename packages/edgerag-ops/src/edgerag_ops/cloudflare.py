"""A small synchronous client for the Cloudflare API v4 endpoints deploy and drift need.

The base URL is ``CLOUDFLARE_API_BASE_URL`` when set (the local emulator in tests), otherwise the real
API. The token comes from the environment variable the tenant file *names*; it is held in a field
excluded from ``repr``, sent only in the ``Authorization`` header and never put in a message, so no
log line or exception can carry it.

Every answer is the ``{success, errors, messages, result, result_info}`` envelope; a failure raises
:class:`CloudflareError` carrying each ``code`` and ``message``. Token problems raise
:class:`CredentialsError` from :meth:`CloudflareClient.verify`, which deploy and drift call before
anything else, so a wrong or missing token fails before any change.

To add an endpoint: add a method that calls :meth:`CloudflareClient.call` (or :meth:`list_all` for
paginated lists) and returns plain dicts; return ``None`` for "not found" where callers need to
tell absence from failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

from .tenants import Tenant

__all__ = [
    "DEFAULT_BASE_URL",
    "CloudflareClient",
    "CloudflareError",
    "Credentials",
    "CredentialsError",
]

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
_PER_PAGE = 100


class CloudflareError(Exception):
    """A Cloudflare API call failed; ``errors`` holds the envelope's ``(code, message)`` pairs."""

    def __init__(self, method: str, path: str, status: int, errors: list[tuple[int, str]]) -> None:
        self.method = method
        self.path = path
        self.status = status
        self.errors = errors
        detail = "; ".join(f"{message} [code: {code}]" for code, message in errors) or f"HTTP {status}"
        super().__init__(f"{method} {path} failed ({status}): {detail}")

    @property
    def codes(self) -> set[int]:
        return {code for code, _ in self.errors}

    def __repr__(self) -> str:
        return f"CloudflareError({self.method!r}, {self.path!r}, {self.status}, {self.errors!r})"


class CredentialsError(Exception):
    """The tenant's token is missing, invalid, or cannot reach the tenant's account."""


@dataclass(frozen=True)
class Credentials:
    account_id: str
    token_env: str
    token: str = field(repr=False)

    @classmethod
    def from_env(cls, tenant: Tenant, environ: Mapping[str, str]) -> Credentials:
        token = environ.get(tenant.api_token_env, "").strip()
        if not token:
            raise CredentialsError(
                f"tenant {tenant.name!r}: the environment variable {tenant.api_token_env} (named by "
                f"api_token_env in {tenant.source}) is not set or empty; export the tenant's API token in it"
            )
        return cls(account_id=tenant.account_id, token_env=tenant.api_token_env, token=token)


def base_url_from(environ: Mapping[str, str]) -> str:
    return (environ.get("CLOUDFLARE_API_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")


class CloudflareClient:
    """Account-scoped API calls for one tenant. Use as a context manager or call :meth:`close`."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        base_url: str = DEFAULT_BASE_URL,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.credentials = credentials
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"authorization": f"Bearer {credentials.token}", "user-agent": "edgerag-ops"},
            transport=transport,
            timeout=timeout,
        )

    def __repr__(self) -> str:
        return f"CloudflareClient(account={self.credentials.account_id!r}, base_url={self.base_url!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CloudflareClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def account(self) -> str:
        return f"/accounts/{self.credentials.account_id}"

    # -- transport -----------------------------------------------------------------------------------
    def _send(
        self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            raise CloudflareError(method, path, 0, [(0, f"cannot reach {self.base_url}: {exc}")]) from exc
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        return response.status_code, body

    def call(
        self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None
    ) -> Any:
        """One request; the envelope's ``result`` on success, :class:`CloudflareError` otherwise."""
        status, body = self._send(method, path, json=json, params=params)
        if status >= 400 or body.get("success") is False or "success" not in body:
            errors = [
                (int(e.get("code", 0)), str(e.get("message", "")))
                for e in body.get("errors") or []
                if isinstance(e, dict)
            ]
            raise CloudflareError(method, path, status, errors)
        return body.get("result")

    def list_all(self, path: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every item of a paginated list endpoint."""
        items: list[Any] = []
        page = 1
        while True:
            status, body = self._send(
                "GET", path, params={**(params or {}), "page": page, "per_page": _PER_PAGE}
            )
            if status >= 400 or body.get("success") is False:
                errors = [
                    (int(e.get("code", 0)), str(e.get("message", ""))) for e in body.get("errors") or []
                ]
                raise CloudflareError("GET", path, status, errors)
            result = body.get("result") or []
            items.extend(result)
            info = body.get("result_info") or {}
            if len(result) < _PER_PAGE or page >= int(info.get("total_pages", page)):
                return items
            page += 1

    def _maybe(self, path: str, not_found: set[int]) -> Any | None:
        try:
            return self.call("GET", path)
        except CloudflareError as exc:
            if exc.status == 404 or exc.codes & not_found:
                return None
            raise

    # -- credentials ---------------------------------------------------------------------------------
    def verify(self) -> None:
        """Fail with :class:`CredentialsError` unless the token is active and reaches the account.

        User tokens verify at ``/user/tokens/verify``, account-owned tokens at
        ``/accounts/{id}/tokens/verify``; either is accepted. Then the account itself must be readable.
        """
        env = self.credentials.token_env
        status = None
        for path in ("/user/tokens/verify", f"{self.account}/tokens/verify"):
            try:
                status = (self.call("GET", path) or {}).get("status")
                break
            except CloudflareError as exc:
                if exc.status in (0,) or exc.status >= 500:
                    raise CredentialsError(f"cannot verify the token in {env}: {exc}") from exc
                continue
        if status is None:
            raise CredentialsError(
                f"the API token in {env} was rejected by Cloudflare (invalid or revoked); "
                "create a new token and export it (docs/runbooks/rotate-credentials.md)"
            )
        if status != "active":
            raise CredentialsError(f"the API token in {env} is {status!r}, not active")
        try:
            self.call("GET", self.account)
        except CloudflareError as exc:
            raise CredentialsError(
                f"the API token in {env} cannot access account {self.credentials.account_id} "
                f"({exc.status}: {'; '.join(m for _, m in exc.errors) or 'no detail'}); check the tenant's "
                "account_id and the token's account permissions"
            ) from exc

    # -- D1 -------------------------------------------------------------------------------------------
    def d1_databases(self) -> list[dict[str, Any]]:
        return self.list_all(f"{self.account}/d1/database")

    def d1_create(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", f"{self.account}/d1/database", json={"name": name})
        return result

    def d1_query(self, database_id: str, sql: str, params: list[Any] | None = None) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.call(
            "POST",
            f"{self.account}/d1/database/{database_id}/query",
            json={"sql": sql, "params": params or []},
        )
        return result

    # -- KV -------------------------------------------------------------------------------------------
    def kv_namespaces(self) -> list[dict[str, Any]]:
        return self.list_all(f"{self.account}/storage/kv/namespaces")

    def kv_create(self, title: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "POST", f"{self.account}/storage/kv/namespaces", json={"title": title}
        )
        return result

    # -- R2 -------------------------------------------------------------------------------------------
    def r2_bucket(self, name: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self._maybe(f"{self.account}/r2/buckets/{quote(name)}", {10006})
        return result

    def r2_create(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", f"{self.account}/r2/buckets", json={"name": name})
        return result

    # -- Vectorize ------------------------------------------------------------------------------------
    def vectorize_index(self, name: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self._maybe(
            f"{self.account}/vectorize/v2/indexes/{quote(name)}", {3000}
        )
        return result

    def vectorize_create(self, name: str, dimensions: int, metric: str) -> dict[str, Any]:
        body = {"name": name, "config": {"dimensions": dimensions, "metric": metric}}
        result: dict[str, Any] = self.call("POST", f"{self.account}/vectorize/v2/indexes", json=body)
        return result

    def metadata_indexes(self, index: str) -> list[dict[str, Any]]:
        result = self.call("GET", f"{self.account}/vectorize/v2/indexes/{quote(index)}/metadata_index/list")
        return list((result or {}).get("metadataIndexes") or [])

    def metadata_index_create(self, index: str, prop: str, kind: str) -> None:
        self.call(
            "POST",
            f"{self.account}/vectorize/v2/indexes/{quote(index)}/metadata_index/create",
            json={"propertyName": prop, "indexType": kind},
        )

    # -- Queues ---------------------------------------------------------------------------------------
    def queues(self) -> list[dict[str, Any]]:
        return self.list_all(f"{self.account}/queues")

    def queue_create(self, name: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call("POST", f"{self.account}/queues", json={"queue_name": name})
        return result

    # -- Workers --------------------------------------------------------------------------------------
    def script_settings(self, script: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self._maybe(
            f"{self.account}/workers/scripts/{quote(script)}/settings", {10007}
        )
        return result

    def deployments(self, script: str) -> list[dict[str, Any]]:
        try:
            result = self.call("GET", f"{self.account}/workers/scripts/{quote(script)}/deployments")
        except CloudflareError as exc:
            if exc.status == 404 or 10007 in exc.codes:
                return []
            raise
        return list((result or {}).get("deployments") or [])

    def version(self, script: str, version_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.call(
            "GET", f"{self.account}/workers/scripts/{quote(script)}/versions/{quote(version_id)}"
        )
        return result

    def versions(self, script: str) -> list[dict[str, Any]]:
        result = self.call("GET", f"{self.account}/workers/scripts/{quote(script)}/versions")
        return list((result or {}).get("items") or [])

    def active_version(self, script: str) -> dict[str, Any] | None:
        """The version serving (most of) the traffic now, or ``None`` when the worker does not exist."""
        deployments = self.deployments(script)
        if not deployments:
            return None
        latest = deployments[0]
        best = max(latest.get("versions") or [], key=lambda v: float(v.get("percentage", 0)), default=None)
        return None if best is None else self.version(script, str(best["version_id"]))
