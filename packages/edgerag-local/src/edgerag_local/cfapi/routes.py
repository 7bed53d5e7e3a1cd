"""All emulator routes, assembled from one module per product, plus the account and token endpoints."""

from __future__ import annotations

from typing import Any

from . import scripts, storage, vectorize_queues, zones
from .http import ApiError, ApiRequest, Router
from .state import ApiState

__all__ = ["build_router"]


def _bearer(req: ApiRequest) -> str:
    return req.headers.get("authorization", "")[len("Bearer ") :].strip()


def _register_accounts(router: Router, state: ApiState) -> None:
    def verify(req: ApiRequest) -> Any:
        token = state.token(_bearer(req))
        assert token is not None  # the router's authorisation already rejected unknown tokens
        account = req.params.get("account")
        if account is not None and account not in token["accounts"]:
            raise ApiError(401, 1000, "Invalid API Token")
        return {"id": token["id"], "status": token["status"]}

    router.add("GET", "/user/tokens/verify", verify)
    router.add("GET", "/accounts/{account}/tokens/verify", verify)

    def accounts(req: ApiRequest) -> Any:
        token = state.token(_bearer(req))
        ids = token["accounts"] if token else []
        return [{"id": a, "name": f"Emulated account {a[:8]}", "type": "standard"} for a in ids]

    router.add("GET", "/accounts", accounts)
    router.add(
        "GET",
        "/accounts/{account}",
        lambda req: {
            "id": req.params["account"],
            "name": f"Emulated account {req.params['account'][:8]}",
            "type": "standard",
            "settings": {},
        },
    )

    def memberships(req: ApiRequest) -> Any:
        return [{"id": "m-" + a["id"][:8], "account": a, "status": "accepted"} for a in accounts(req)]

    router.add("GET", "/memberships", memberships)
    router.add("GET", "/user", lambda req: {"id": "emulator", "email": "emulator@example.com"})


def build_router(state: ApiState) -> Router:
    router = Router()
    _register_accounts(router, state)
    scripts.register(router, state)
    storage.register(router, state)
    vectorize_queues.register(router, state)
    zones.register(router, state)
    return router
