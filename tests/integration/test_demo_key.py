"""``edgerag dev``'s demo key (edgerag_local.runtime.demo): one key, kept across starts in the state directory
(mode 0600), replaced only when it stops working, and the replaced one revoked, so restarts never pile
up live keys. Runs on a real local stack, as ``edgerag dev`` does, and checks the key over HTTP.
"""

from __future__ import annotations

import stat
from pathlib import Path

import httpx
from edgerag.store.tenants import TenantStore
from edgerag_local.runtime.demo import ensure_demo_key
from edgerag_local.runtime.host import LocalStack

from .conftest import make_stack


async def _works(stack: LocalStack, key: str) -> bool:
    transport = httpx.ASGITransport(app=stack.asgi("gateway"))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8787") as client:
        answer = await client.get("/v1/keys", headers={"authorization": f"Bearer {key}"})
    return answer.status_code == 200


async def test_restarts_reuse_the_demo_key_and_never_pile_up_keys(tmp_path: Path) -> None:
    stack = make_stack(tmp_path)
    try:
        store = TenantStore(stack.workers["gateway"].env.DB)
        first = await ensure_demo_key(store, stack.state_dir)
        assert first.minted and first.revoked == ()
        assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
        assert first.path.read_text().strip() == first.plaintext
        assert await _works(stack, first.plaintext)

        for _ in range(3):  # three more starts
            again = await ensure_demo_key(store, stack.state_dir)
            assert (again.plaintext, again.key_id, again.minted) == (first.plaintext, first.key_id, False)
        keys = await store.list_keys(first.tenant.id)
        assert [k.id for k in keys] == [first.key_id]

        # The kept key stops working (someone revoked it): the next start mints a new one.
        await store.revoke_key(first.tenant.id, first.key_id, allow_lockout=True)
        replaced = await ensure_demo_key(store, stack.state_dir)
        assert replaced.minted and replaced.plaintext != first.plaintext
        assert await _works(stack, replaced.plaintext) and not await _works(stack, first.plaintext)

        # The file is lost: a new key, and the one it replaced is revoked (rotation, not accumulation).
        replaced.path.unlink()
        rotated = await ensure_demo_key(store, stack.state_dir)
        assert rotated.minted and rotated.revoked == (replaced.key_id,)
        active = [k.id for k in await store.list_keys(first.tenant.id) if k.revoked_at is None]
        assert active == [rotated.key_id]
        assert not await _works(stack, replaced.plaintext)
    finally:
        await stack.stop()
        stack.close()
