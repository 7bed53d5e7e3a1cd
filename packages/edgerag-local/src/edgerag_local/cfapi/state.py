"""The emulated Cloudflare account state: tokens, and per account its workers and resources.

State is one JSON document (``<state_dir>/state.json``, rewritten after every change) plus one SQLite
file per D1 database (``<state_dir>/d1/<uuid>.sqlite3``, run by the local D1 engine), so remote
migrations really run SQL. Without
a state dir everything lives in a temporary directory that :meth:`ApiState.close` removes.

Identifiers are deterministic (a counter per kind hashed into uuid/hex shape), so two runs of the same
test produce the same ids and the emulator never needs randomness.

The ``inject_*`` methods are the test-only way to change what is "deployed" behind the tools' back
(someone editing a binding in the dashboard, a queue setting changed by hand, a migration row lost):
drift detection must report exactly those changes.

To emulate a new product: add its collection to :func:`_empty_account`, its operations here (keep them
pure state changes), and its routes in a ``routes_*`` module.
"""

from __future__ import annotations

import copy
import hashlib
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from edgerag_local.d1.engine import D1Engine
from edgerag_local.d1.limits import D1Limits

from .http import ApiError, ApiRequest

__all__ = ["ApiState"]

# A fixed clock: timestamps only need to be well-formed and ordered, never "now".
_EPOCH = "2026-01-01T00:00:00.000000Z"


def _empty_account() -> dict[str, Any]:
    return {
        "scripts": {},
        "d1": {},
        "kv": {},
        "r2": {},
        "vectorize": {},
        "queues": {},
        "subdomain": None,
        "fail_uploads": [],
    }


class ApiState:
    def __init__(self, state_dir: Path | None) -> None:
        self._temp = state_dir is None
        self.dir = Path(tempfile.mkdtemp(prefix="cfapi-")) if state_dir is None else state_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self._file = self.dir / "state.json"
        self.data: dict[str, Any] = (
            json.loads(self._file.read_text())
            if self._file.exists()
            else {"tokens": {}, "accounts": {}, "zones": {}, "counter": 0}
        )
        self._dbs: dict[str, D1Engine] = {}

    # -- persistence ---------------------------------------------------------------------------------
    def save(self) -> None:
        tmp = self._file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        tmp.replace(self._file)

    def close(self) -> None:
        for engine in self._dbs.values():
            engine.close()
        self._dbs.clear()
        if self._temp:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- identifiers and clock -----------------------------------------------------------------------
    def _next(self, kind: str) -> str:
        self.data["counter"] += 1
        return hashlib.sha256(f"{kind}:{self.data['counter']}".encode()).hexdigest()

    def new_uuid(self, kind: str) -> str:
        h = self._next(kind)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"

    def new_hex(self, kind: str) -> str:
        return self._next(kind)[:32]

    def now(self) -> str:
        # Ordered, well-formed, deterministic: one second per change after a fixed epoch.
        seconds = self.data["counter"]
        return f"2026-01-01T{seconds // 3600 % 24:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.000000Z"

    # -- tokens and accounts -------------------------------------------------------------------------
    def add_token(self, token: str, accounts: list[str]) -> None:
        token_id = hashlib.sha256(token.encode()).hexdigest()[:32]
        self.data["tokens"][token_id] = {"id": token_id, "status": "active", "accounts": accounts}
        for account in accounts:
            self.account(account)

    def token(self, token: str) -> dict[str, Any] | None:
        found = self.data["tokens"].get(hashlib.sha256(token.encode()).hexdigest()[:32])
        return found if isinstance(found, dict) else None

    def check_token(self, token: str, request: ApiRequest) -> None:
        """Authorise ``request``: an unknown token is 401 on verify endpoints and 403 elsewhere."""
        found = self.token(token)
        is_verify = request.path.endswith("/tokens/verify")
        if found is None:
            if is_verify:
                raise ApiError(401, 1000, "Invalid API Token")
            raise ApiError(403, 10000, "Authentication error")
        account = request.params.get("account")
        if account is not None and not is_verify and account not in found["accounts"]:
            raise ApiError(403, 10000, "Authentication error")

    def account(self, account_id: str) -> dict[str, Any]:
        accounts = self.data["accounts"]
        if account_id not in accounts:
            accounts[account_id] = _empty_account()
        result: dict[str, Any] = accounts[account_id]
        return result

    def snapshot(self) -> dict[str, Any]:
        """A deep copy of all account state (tests compare before/after to prove "nothing changed")."""
        return copy.deepcopy({k: v for k, v in self.data["accounts"].items()})

    # -- D1 databases (SQLite files run by the local D1 engine) ---------------------------------------
    def d1_engine(self, uuid: str) -> D1Engine:
        engine = self._dbs.get(uuid)
        if engine is None:
            engine = D1Engine(self.dir / "d1" / f"{uuid}.sqlite3", limits=D1Limits(), clock=time.monotonic)
            self._dbs[uuid] = engine
        return engine
