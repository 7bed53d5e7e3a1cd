"""Workers scripts in the emulator: upload, service metadata, settings, versions, deployments, rollback.

Model (the same as Cloudflare's since Gradual Deployments): every upload or settings change creates an
immutable *version*; a *deployment* says which version(s) serve traffic. ``wrangler deploy`` uploads
with ``PUT /workers/scripts/{s}`` (a new version deployed at 100%); ``wrangler rollback`` posts a new
deployment pointing at an older version. ``GET .../settings`` describes the version deployed now.

Fields Cloudflare fills in by itself are filled in here too, so drift detection is tested against
them: service bindings gain ``environment: "production"``, ``observability`` gains
``head_sampling_rate``, ``placement``/``tail_consumers``/``usage_model``/``tags``/``logpush`` appear even
when never set, and bindings come back sorted by name rather than in upload order.

Failure injection: ``state.account(a)["fail_uploads"]`` lists script names whose next uploads answer
500 (a tenant whose deploy breaks halfway).
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from .http import ApiError, ApiRequest, Router
from .state import ApiState

__all__ = ["active_version", "deploy_version", "new_version", "register", "settings_of", "upload"]

_NOT_FOUND = (404, 10007, "This Worker does not exist on your account.")
_SERVICE_NOT_FOUND = (404, 10090, "workers.api.error.service_not_found")


def _script(state: ApiState, req: ApiRequest, code: tuple[int, int, str] = _NOT_FOUND) -> dict[str, Any]:
    found = state.account(req.params["account"])["scripts"].get(req.params["script"])
    if found is None:
        raise ApiError(*code)
    result: dict[str, Any] = found
    return result


def _filled_binding(binding: dict[str, Any]) -> dict[str, Any]:
    out = dict(binding)
    if out.get("type") == "service":
        out.setdefault("environment", "production")
    return out


def active_version(script: dict[str, Any]) -> dict[str, Any]:
    deployment = script["deployments"][0]
    best = max(deployment["versions"], key=lambda v: v["percentage"])
    for version in script["versions"]:
        if version["id"] == best["version_id"]:
            result: dict[str, Any] = version
            return result
    raise ApiError(500, 10000, "deployment points at a missing version")


def settings_of(script: dict[str, Any]) -> dict[str, Any]:
    """The settings object of the deployed version, with the fields Cloudflare fills in."""
    version = active_version(script)
    meta = version["metadata_in"]
    settings = script.get("script_settings") or {}
    observability = dict(settings.get("observability") or meta.get("observability") or {"enabled": False})
    observability.setdefault("head_sampling_rate", 1)
    bindings = sorted(
        (_filled_binding(b) for b in meta.get("bindings", [])), key=lambda b: str(b.get("name"))
    )
    return {
        "bindings": bindings,
        "compatibility_date": meta.get("compatibility_date", ""),
        "compatibility_flags": list(meta.get("compatibility_flags", [])),
        "logpush": bool(settings.get("logpush", meta.get("logpush", False))),
        "observability": observability,
        "placement": meta.get("placement") or {},
        "tags": list(script.get("tags", [])),
        "tail_consumers": settings.get("tail_consumers", meta.get("tail_consumers")),
        "usage_model": "standard",
    }


def _public_version(version: dict[str, Any]) -> dict[str, Any]:
    meta = version["metadata_in"]
    return {
        "id": version["id"],
        "number": version["number"],
        "metadata": {
            "author_email": "emulator@example.com",
            "author_id": "emulator",
            "created_on": version["created_on"],
            "modified_on": version["created_on"],
            "source": version["source"],
            "hasPreview": False,
        },
        "annotations": dict(version.get("annotations") or {}),
        "resources": {
            "bindings": [_filled_binding(b) for b in meta.get("bindings", [])],
            "script": {
                "etag": version["etag"],
                "handlers": ["fetch", "queue"],
                "main_module": meta.get("main_module"),
                "last_deployed_from": version["source"],
            },
            "script_runtime": {
                "compatibility_date": meta.get("compatibility_date"),
                "compatibility_flags": list(meta.get("compatibility_flags", [])),
                "usage_model": "standard",
            },
        },
    }


def new_version(
    state: ApiState, script: dict[str, Any], meta: dict[str, Any], modules: dict[str, str], source: str
) -> dict[str, Any]:
    etag = hashlib.sha256(json.dumps(modules, sort_keys=True).encode()).hexdigest()
    version = {
        "id": state.new_uuid("version"),
        "number": len(script["versions"]) + 1,
        "created_on": state.now(),
        "source": source,
        "metadata_in": meta,
        "modules": modules,
        "etag": etag,
        "annotations": dict(meta.get("annotations") or {}),
    }
    script["versions"].insert(0, version)
    return version


def deploy_version(
    state: ApiState,
    script: dict[str, Any],
    version_id: str,
    source: str,
    annotations: dict[str, Any] | None = None,
) -> dict[str, Any]:
    deployment = {
        "id": state.new_uuid("deployment"),
        "source": source,
        "strategy": "percentage",
        "author_email": "emulator@example.com",
        "created_on": state.now(),
        "annotations": dict(annotations or {}),
        "versions": [{"version_id": version_id, "percentage": 100.0}],
    }
    script["deployments"].insert(0, deployment)
    script["modified_on"] = deployment["created_on"]
    return deployment


def upload(
    state: ApiState,
    account: str,
    name: str,
    meta: dict[str, Any],
    modules: dict[str, str],
    source: str = "wrangler",
) -> dict[str, Any]:
    """Create or update a script from upload metadata; the new version is deployed at 100%."""
    scripts = state.account(account)["scripts"]
    script = scripts.get(name)
    if script is None:
        script = scripts[name] = {
            "id": name,
            "tag": state.new_hex("script"),
            "created_on": state.now(),
            "modified_on": state.now(),
            "tags": [],
            "versions": [],
            "deployments": [],
            "subdomain": {"enabled": False, "previews_enabled": False},
            "last_deployed_from": source,
            "schedules": [],
        }
    keep = set(meta.get("keep_bindings") or [])
    if keep and script["versions"]:
        previous = active_version(script)["metadata_in"].get("bindings", [])
        names = {b["name"] for b in meta.get("bindings", [])}
        kept = [b for b in previous if b["type"] in keep and b["name"] not in names]
        meta = {**meta, "bindings": [*meta.get("bindings", []), *kept]}
    version = new_version(state, script, meta, modules, source)
    deploy_version(state, script, version["id"], source, meta.get("annotations"))
    script["last_deployed_from"] = source
    result: dict[str, Any] = script
    return result


def _check_bindings(state: ApiState, account: str, script: str, bindings: list[dict[str, Any]]) -> None:
    """Reject bindings to resources that do not exist, as the upload API does (code 10021)."""
    acct = state.account(account)
    for b in bindings:
        kind, name = b.get("type"), b.get("name")
        problem = None
        if kind == "d1" and b.get("id") not in acct["d1"]:
            problem = f"D1 database {b.get('id')} not found"
        elif kind == "kv_namespace" and b.get("namespace_id") not in acct["kv"]:
            problem = f"KV namespace '{b.get('namespace_id')}' is not valid"
        elif kind == "r2_bucket" and b.get("bucket_name") not in acct["r2"]:
            problem = f"R2 bucket '{b.get('bucket_name')}' not found"
        elif kind == "vectorize" and b.get("index_name") not in acct["vectorize"]:
            problem = f"Vectorize index '{b.get('index_name')}' not found"
        elif kind == "queue" and not any(
            q["queue_name"] == b.get("queue_name") for q in acct["queues"].values()
        ):
            problem = f"Queue '{b.get('queue_name')}' does not exist"
        elif kind == "service" and b.get("service") not in acct["scripts"] and b.get("service") != script:
            problem = (
                f"Could not resolve service binding '{name}'. Target script '{b.get('service')}' not found"
            )
        if problem is not None:
            raise ApiError(400, 10021, f"binding {name} of type {kind}: {problem} [in script {script}]")


def _parse_upload(state: ApiState, req: ApiRequest) -> tuple[dict[str, Any], dict[str, str]]:
    account, name = req.params["account"], req.params["script"]
    if name in state.account(account)["fail_uploads"]:
        raise ApiError(500, 10013, f"emulated failure: uploads of {name} are set to fail")
    parts = req.form()
    meta_part = next((p for p in parts if p.name == "metadata"), None)
    if meta_part is None:
        raise ApiError(400, 10021, "Missing metadata part in the upload")
    meta = json.loads(meta_part.content)
    modules = {p.name: hashlib.sha256(p.content).hexdigest() for p in parts if p.name != "metadata"}
    if meta.get("main_module") and meta["main_module"] not in modules:
        raise ApiError(400, 10021, f'No such module "{meta["main_module"]}" (main_module)')
    script = state.account(account)["scripts"].get(name)
    meta["bindings"] = _inherit(script, meta.get("bindings", []))
    _check_bindings(state, account, name, meta["bindings"])
    return meta, modules


def _inherit(script: dict[str, Any] | None, bindings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Resolve ``{type: "inherit", name}`` bindings from the deployed version (wrangler's strict mode)."""
    previous = (
        {b["name"]: b for b in active_version(script)["metadata_in"].get("bindings", [])} if script else {}
    )
    out = []
    for b in bindings:
        if b.get("type") == "inherit":
            if b["name"] not in previous:
                raise ApiError(400, 10021, f"binding {b['name']} cannot be inherited: no such binding")
            out.append(previous[b["name"]])
        else:
            out.append(b)
    return out


def _upload_route(state: ApiState) -> Any:
    def handler(req: ApiRequest) -> Any:
        account, name = req.params["account"], req.params["script"]
        meta, modules = _parse_upload(state, req)
        script = upload(state, account, name, meta, modules)
        version = active_version(script)
        return {
            "id": name,
            "tag": script["tag"],
            "etag": version["etag"],
            "handlers": ["fetch", "queue"],
            "created_on": script["created_on"],
            "modified_on": script["modified_on"],
            "compatibility_date": meta.get("compatibility_date"),
            "usage_model": "standard",
            "deployment_id": script["deployments"][0]["id"],
            "startup_time_ms": 1,
            "has_modules": True,
            "has_assets": False,
            "placement_mode": None,
        }

    return handler


def _service(state: ApiState) -> Any:
    def handler(req: ApiRequest) -> Any:
        script = _script(state, req, _SERVICE_NOT_FOUND)
        return {
            "id": req.params["script"],
            "created_on": script["created_on"],
            "modified_on": script["modified_on"],
            "default_environment": {
                "environment": "production",
                "created_on": script["created_on"],
                "modified_on": script["modified_on"],
                "script": {
                    "id": req.params["script"],
                    "tag": script["tag"],
                    "tags": script["tags"],
                    "etag": active_version(script)["etag"],
                    "handlers": ["fetch", "queue"],
                    "last_deployed_from": script["last_deployed_from"],
                    "created_on": script["created_on"],
                    "modified_on": script["modified_on"],
                    "usage_model": "standard",
                },
            },
        }

    return handler


def _rollback_or_deploy(state: ApiState) -> Any:
    """``POST .../deployments``: what ``wrangler rollback`` and ``wrangler versions deploy`` send."""

    def handler(req: ApiRequest) -> Any:
        script = _script(state, req)
        body = req.json()
        versions = body.get("versions") or []
        if not versions or sum(float(v.get("percentage", 0)) for v in versions) != 100:
            raise ApiError(400, 10222, "deployment versions must add up to 100%")
        known = {v["id"] for v in script["versions"]}
        for v in versions:
            if v.get("version_id") not in known:
                raise ApiError(404, 10220, f"version {v.get('version_id')} not found")
        deployment = {
            "id": state.new_uuid("deployment"),
            "source": "wrangler",
            "strategy": body.get("strategy", "percentage"),
            "author_email": "emulator@example.com",
            "created_on": state.now(),
            "annotations": dict(body.get("annotations") or {}),
            "versions": [
                {"version_id": v["version_id"], "percentage": float(v["percentage"])} for v in versions
            ],
        }
        script["deployments"].insert(0, deployment)
        return deployment

    return handler


def register(router: Router, state: ApiState) -> None:
    base = "/accounts/{account}/workers/scripts/{script}"

    router.add("GET", "/accounts/{account}/workers/services/{script}", _service(state))
    router.add("PUT", base, _upload_route(state))

    def list_scripts(req: ApiRequest) -> Any:
        scripts = state.account(req.params["account"])["scripts"]
        return [
            {"id": n, "tag": s["tag"], "created_on": s["created_on"], "modified_on": s["modified_on"]}
            for n, s in sorted(scripts.items())
        ]

    router.add("GET", "/accounts/{account}/workers/scripts", list_scripts)

    def delete_script(req: ApiRequest) -> Any:
        _script(state, req)
        del state.account(req.params["account"])["scripts"][req.params["script"]]
        return None

    router.add("DELETE", base, delete_script)
    router.add("DELETE", "/accounts/{account}/workers/services/{script}", delete_script)  # wrangler delete

    def references(req: ApiRequest) -> Any:
        """Who binds this worker (``wrangler delete`` asks before breaking them)."""
        target = req.params["script"]
        _script(state, req)
        incoming = []
        for name, other in sorted(state.account(req.params["account"])["scripts"].items()):
            bindings = active_version(other)["metadata_in"].get("bindings", [])
            if any(b.get("type") == "service" and b.get("service") == target for b in bindings):
                incoming.append({"service": name, "environment": "production", "name": name})
        return {
            "services": {"incoming": incoming, "outgoing": [], "pages_function": False},
            "durable_objects": [],
            "dispatch_outbounds": [],
        }

    router.add("GET", base + "/references", references)
    router.add("GET", "/accounts/{account}/workers/tails/by-consumer/{script}", lambda req: [])

    router.add("GET", base + "/settings", lambda req: settings_of(_script(state, req)))

    def versions(req: ApiRequest) -> Any:
        script = _script(state, req)
        return {"items": [_public_version(v) for v in script["versions"]]}

    router.add("GET", base + "/versions", versions)

    def version(req: ApiRequest) -> Any:
        for v in _script(state, req)["versions"]:
            if v["id"] == req.params["version"]:
                return _public_version(v)
        raise ApiError(404, 10220, "version not found")

    router.add("GET", base + "/versions/{version}", version)

    def upload_version(req: ApiRequest) -> Any:
        """``POST .../versions``: a new version that is *not* deployed (deploy posts a deployment next)."""
        script = _script(state, req)
        meta, modules = _parse_upload(state, req)
        created = new_version(state, script, meta, modules, "wrangler")
        return {**_public_version(created), "startup_time_ms": 1}

    router.add("POST", base + "/versions", upload_version)

    def script_settings_get(req: ApiRequest) -> Any:
        script = _script(state, req)
        settings = settings_of(script)
        return {k: settings[k] for k in ("logpush", "observability", "tags", "tail_consumers")}

    def script_settings_patch(req: ApiRequest) -> Any:
        script = _script(state, req)
        body = req.json()
        current = script.setdefault("script_settings", {})
        for key in ("logpush", "observability", "tail_consumers"):
            if key in body:
                current[key] = body[key]
        if "tags" in body and body["tags"] is not None:
            script["tags"] = list(body["tags"])
        return script_settings_get(req)

    router.add("GET", base + "/script-settings", script_settings_get)
    router.add("PATCH", base + "/script-settings", script_settings_patch)

    router.add(
        "GET",
        base + "/deployments",
        lambda req: {"deployments": copy.deepcopy(_script(state, req)["deployments"])},
    )
    router.add("POST", base + "/deployments", _rollback_or_deploy(state))

    def subdomain_get(req: ApiRequest) -> Any:
        return dict(_script(state, req)["subdomain"])

    def subdomain_set(req: ApiRequest) -> Any:
        script = _script(state, req)
        body = req.json()
        script["subdomain"] = {
            "enabled": bool(body.get("enabled")),
            "previews_enabled": bool(body.get("previews_enabled", body.get("enabled"))),
        }
        return dict(script["subdomain"])

    router.add("GET", base + "/subdomain", subdomain_get)
    router.add("POST", base + "/subdomain", subdomain_set)

    def account_subdomain(req: ApiRequest) -> Any:
        account = state.account(req.params["account"])
        if account["subdomain"] is None:
            account["subdomain"] = "emulated-" + req.params["account"][:8]
        return {"subdomain": account["subdomain"]}

    router.add("GET", "/accounts/{account}/workers/subdomain", account_subdomain)

    def schedules_get(req: ApiRequest) -> Any:
        return {"schedules": list(_script(state, req)["schedules"])}

    def schedules_put(req: ApiRequest) -> Any:
        script = _script(state, req)
        script["schedules"] = [{"cron": s.get("cron")} for s in (req.json() or [])]
        return {"schedules": list(script["schedules"])}

    router.add("GET", base + "/schedules", schedules_get)
    router.add("PUT", base + "/schedules", schedules_put)
