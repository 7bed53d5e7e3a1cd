"""D1 databases, KV namespaces and R2 buckets in the emulator (control plane, plus D1's SQL endpoints).

Shapes follow the API: D1 databases are ``{uuid, name, version, created_at, file_size, num_tables}``,
KV namespaces ``{id, title, supports_url_encoding}``, R2 buckets ``{name, creation_date, location}``
(listed under ``{buckets: [...]}``). Names are unique per account, as in Cloudflare; creating a
duplicate answers the API's error rather than silently returning the existing one.
"""

from __future__ import annotations

from typing import Any

from . import d1sql
from .http import ApiError, ApiRequest, Paged, Router
from .state import ApiState

__all__ = ["register"]


def _d1(state: ApiState, req: ApiRequest) -> dict[str, Any]:
    found = state.account(req.params["account"])["d1"].get(req.params["db"])
    if found is None:
        # The D1 API names databases by uuid; an unknown one is "not found" with D1's code.
        raise ApiError(404, 7404, f"The database {req.params['db']} could not be found")
    result: dict[str, Any] = found
    return result


def _d1_public(state: ApiState, db: dict[str, Any]) -> dict[str, Any]:
    num_tables, file_size = d1sql.describe(state.d1_engine(db["uuid"]))
    return {**db, "num_tables": num_tables, "file_size": file_size}


def _register_d1(router: Router, state: ApiState) -> None:
    base = "/accounts/{account}/d1/database"

    def list_dbs(req: ApiRequest) -> Any:
        dbs = state.account(req.params["account"])["d1"].values()
        name = req.arg("name")
        return Paged([_d1_public(state, db) for db in dbs if name is None or db["name"] == name])

    def create(req: ApiRequest) -> Any:
        body = req.json()
        name = str(body.get("name", ""))
        if not name:
            raise ApiError(400, 7400, "A database name is required")
        dbs = state.account(req.params["account"])["d1"]
        if any(db["name"] == name for db in dbs.values()):
            raise ApiError(400, 7502, "A database with that name already exists")
        uuid = state.new_uuid("d1")
        dbs[uuid] = {"uuid": uuid, "name": name, "version": "production", "created_at": state.now()}
        if body.get("primary_location_hint"):
            dbs[uuid]["primary_location_hint"] = body["primary_location_hint"]
        return _d1_public(state, dbs[uuid])

    def delete(req: ApiRequest) -> Any:
        _d1(state, req)
        del state.account(req.params["account"])["d1"][req.params["db"]]
        return None

    def query(raw: bool) -> Any:
        def handler(req: ApiRequest) -> Any:
            db = _d1(state, req)
            body = req.json()
            return d1sql.execute(
                state.d1_engine(db["uuid"]), str(body.get("sql", "")), body.get("params"), raw=raw
            )

        return handler

    router.add("GET", base, list_dbs)
    router.add("POST", base, create)
    router.add("GET", base + "/{db}", lambda req: _d1_public(state, _d1(state, req)))
    router.add("DELETE", base + "/{db}", delete)
    router.add("POST", base + "/{db}/query", query(raw=False))
    router.add("POST", base + "/{db}/raw", query(raw=True))


def _register_kv(router: Router, state: ApiState) -> None:
    base = "/accounts/{account}/storage/kv/namespaces"

    def list_ns(req: ApiRequest) -> Any:
        return Paged(list(state.account(req.params["account"])["kv"].values()))

    def create(req: ApiRequest) -> Any:
        title = str(req.json().get("title", ""))
        if not title:
            raise ApiError(400, 10019, "title is required")
        spaces = state.account(req.params["account"])["kv"]
        if any(ns["title"] == title for ns in spaces.values()):
            raise ApiError(400, 10014, "a namespace with this account ID and title already exists")
        ns_id = state.new_hex("kv")
        spaces[ns_id] = {"id": ns_id, "title": title, "supports_url_encoding": True}
        return dict(spaces[ns_id])

    def get(req: ApiRequest) -> Any:
        found = state.account(req.params["account"])["kv"].get(req.params["ns"])
        if found is None:
            raise ApiError(404, 10013, "namespace not found")
        return dict(found)

    def delete(req: ApiRequest) -> Any:
        get(req)
        del state.account(req.params["account"])["kv"][req.params["ns"]]
        return None

    router.add("GET", base, list_ns)
    router.add("POST", base, create)
    router.add("GET", base + "/{ns}", get)
    router.add("DELETE", base + "/{ns}", delete)


def _register_r2(router: Router, state: ApiState) -> None:
    base = "/accounts/{account}/r2/buckets"

    def list_buckets(req: ApiRequest) -> Any:
        return {"buckets": list(state.account(req.params["account"])["r2"].values())}

    def create(req: ApiRequest) -> Any:
        body = req.json()
        name = str(body.get("name", ""))
        buckets = state.account(req.params["account"])["r2"]
        if name in buckets:
            raise ApiError(409, 10004, "The bucket you tried to create already exists, and you own it.")
        if not (3 <= len(name) <= 63) or not all(c.islower() or c.isdigit() or c == "-" for c in name):
            raise ApiError(400, 10005, "The specified bucket name is not valid.")
        buckets[name] = {
            "name": name,
            "creation_date": state.now(),
            "location": str(body.get("locationHint") or "ENAM").upper(),
            "storage_class": body.get("storageClass", "Standard"),
        }
        return dict(buckets[name])

    def get(req: ApiRequest) -> Any:
        found = state.account(req.params["account"])["r2"].get(req.params["bucket"])
        if found is None:
            raise ApiError(404, 10006, "The specified bucket does not exist.")
        return dict(found)

    def delete(req: ApiRequest) -> Any:
        get(req)
        del state.account(req.params["account"])["r2"][req.params["bucket"]]
        return None

    router.add("GET", base, list_buckets)
    router.add("POST", base, create)
    router.add("GET", base + "/{bucket}", get)
    router.add("DELETE", base + "/{bucket}", delete)


def register(router: Router, state: ApiState) -> None:
    _register_d1(router, state)
    _register_kv(router, state)
    _register_r2(router, state)
