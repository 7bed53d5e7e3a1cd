"""Zones, worker routes and custom domains in the emulator: what ``wrangler deploy`` calls for a worker
with ``routes`` (a route pattern or ``custom_domain = true``).

wrangler finds a route's zone by asking ``GET /zones?name=<host>&account.id=<id>`` for the host and
then each parent domain; a zone exists only if a test added it (``CloudflareApiEmulator.add_zone``),
as a domain must be set up in the account before a route can use it. Then it replaces the script's
routes with ``PUT .../scripts/{s}/routes`` and its custom domains with
``PUT .../scripts/{s}/domains/records``.
"""

from __future__ import annotations

from typing import Any

from .http import ApiError, ApiRequest, Paged, Router
from .state import ApiState

__all__ = ["register"]


def _zones(state: ApiState) -> dict[str, dict[str, Any]]:
    zones: dict[str, dict[str, Any]] = state.data.setdefault("zones", {})
    return zones


def add_zone(state: ApiState, account: str, name: str) -> str:
    zones = _zones(state)
    if name not in zones:
        zones[name] = {
            "id": state.new_hex("zone"),
            "name": name,
            "account": {"id": account},
            "status": "active",
        }
    return str(zones[name]["id"])


def _zone_for(state: ApiState, account: str, host: str) -> dict[str, Any]:
    labels = host.split(".")
    while len(labels) > 1:
        zone = _zones(state).get(".".join(labels))
        if zone is not None and zone["account"]["id"] == account:
            return zone
        labels = labels[1:]
    raise ApiError(400, 10020, f"no zone in this account covers {host}")


def register(router: Router, state: ApiState) -> None:
    def list_zones(req: ApiRequest) -> Any:
        name, account = req.arg("name"), req.arg("account.id")
        return Paged(
            [
                z
                for z in _zones(state).values()
                if (name is None or z["name"] == name) and (account is None or z["account"]["id"] == account)
            ]
        )

    def script(req: ApiRequest) -> dict[str, Any]:
        found = state.account(req.params["account"])["scripts"].get(req.params["script"])
        if found is None:
            raise ApiError(404, 10007, "This Worker does not exist on your account.")
        result: dict[str, Any] = found
        return result

    def put_routes(req: ApiRequest) -> Any:
        target = script(req)
        routes = []
        for route in req.json() or []:
            pattern = str(route.get("pattern", ""))
            host = str(route.get("zone_name") or pattern.split("/", 1)[0].lstrip("*."))
            zone = _zone_for(state, req.params["account"], host)
            routes.append(
                {
                    "id": state.new_hex("route"),
                    "pattern": pattern,
                    "zone_id": zone["id"],
                    "zone_name": zone["name"],
                    "script": req.params["script"],
                }
            )
        target["routes"] = routes
        return routes

    def put_domains(req: ApiRequest) -> Any:
        target = script(req)
        domains = []
        for origin in (req.json() or {}).get("origins", []):
            hostname = str(origin.get("hostname", ""))
            zone = _zone_for(state, req.params["account"], str(origin.get("zone_name") or hostname))
            domains.append(
                {
                    "id": state.new_hex("domain"),
                    "hostname": hostname,
                    "zone_id": zone["id"],
                    "zone_name": zone["name"],
                    "service": req.params["script"],
                    "environment": "production",
                }
            )
        target["domains"] = domains
        return domains

    def list_domains(req: ApiRequest) -> Any:
        service = req.arg("service")
        found = [
            d for s in state.account(req.params["account"])["scripts"].values() for d in s.get("domains", [])
        ]
        return Paged([d for d in found if service is None or d["service"] == service])

    def zone_routes(req: ApiRequest) -> Any:
        zone = next((z for z in _zones(state).values() if z["id"] == req.params["zone"]), None)
        if zone is None:
            raise ApiError(404, 1001, "Invalid zone identifier")
        scripts = state.account(zone["account"]["id"])["scripts"].values()
        return Paged(
            [
                {"id": r["id"], "pattern": r["pattern"], "script": r["script"]}
                for s in scripts
                for r in s.get("routes", [])
                if r["zone_id"] == zone["id"]
            ]
        )

    router.add("GET", "/zones", list_zones)
    router.add("GET", "/zones/{zone}/workers/routes", zone_routes)
    router.add("PUT", "/accounts/{account}/workers/scripts/{script}/routes", put_routes)
    router.add(
        "GET",
        "/accounts/{account}/workers/scripts/{script}/routes",
        lambda req: list(script(req).get("routes", [])),
    )
    router.add("PUT", "/accounts/{account}/workers/scripts/{script}/domains/records", put_domains)
    router.add("GET", "/accounts/{account}/workers/domains/records", list_domains)
