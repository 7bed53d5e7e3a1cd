"""The demo tenant and its one API key, as ``edgerag dev`` sets them up on every start.

The key is kept: its plaintext lives in the state directory (``demo-key``, mode 0600, next to the
admin token), so every start prints the same key and scripts can read it
(``KEY=$(cat .edgerag/state/demo-key)``). A new key is minted only when the kept one no longer
authenticates (file deleted, key revoked, fresh state); then every other active key named ``demo``
of the demo tenant is revoked, so restarts never pile up live keys. This is local-only convenience:
nothing here is deployed, and a deployed tenant's keys are never written to disk.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edgerag.problems import NotFound
from edgerag.store.tenants import TenantRecord, TenantStore

__all__ = ["DEMO_KEY_FILE", "DEMO_KEY_NAME", "DEMO_TENANT", "DemoKey", "ensure_demo_key"]

DEMO_TENANT = "demo"
DEMO_KEY_NAME = "demo"
DEMO_KEY_FILE = "demo-key"
_DEMO_SCOPES = "read write admin"


@dataclass(frozen=True)
class DemoKey:
    tenant: TenantRecord
    key_id: str
    plaintext: str
    path: Path
    minted: bool  # False when the kept key was reused
    revoked: tuple[str, ...]  # ids of older demo keys revoked when this one was minted


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)  # before the secret goes in, whatever the umask made of an older file
    path.write_text(text + "\n", encoding="utf-8")


async def ensure_demo_key(store: TenantStore, state_dir: Path) -> DemoKey:
    """The demo tenant (created if missing) and a working demo key: the kept one, or a new one."""
    try:
        tenant = await store.find_tenant(DEMO_TENANT)
    except NotFound:
        tenant = await store.create_tenant(DEMO_TENANT)
    path = state_dir / DEMO_KEY_FILE
    kept = _read(path)
    if kept is not None:
        principal = await store.authenticate(kept)
        if principal is not None and principal.tenant_id == tenant.id:
            return DemoKey(tenant, principal.key_id, kept, path, minted=False, revoked=())
    issued = await store.issue_key(tenant.id, DEMO_KEY_NAME, _DEMO_SCOPES)
    _write_private(path, issued.plaintext)
    revoked = []
    for record in await store.list_keys(tenant.id):
        if record.name == DEMO_KEY_NAME and record.revoked_at is None and record.id != issued.record.id:
            await store.revoke_key(tenant.id, record.id, allow_lockout=True)
            revoked.append(record.id)
    return DemoKey(tenant, issued.record.id, issued.plaintext, path, minted=True, revoked=tuple(revoked))
