"""An upload whose D1 calls fail part-way leaves nothing half-written.

For every n, the n-th D1 call of one ``POST /v1/documents`` fails (as an overloaded D1 fails); the
upload is either accepted (202, and its document is ingested) or refused with a 5xx problem and leaves
no document behind — never a ``queued`` row that no queue message will ever pick up. The load test
(benchmarks/load.py with faults) found one: the insert committed, its separate read-back failed, and
the caller, seeing an error, undid the R2 object but not the row.
"""

from __future__ import annotations

from typing import Any

from edgerag_local.d1.errors import D1Error

from .conftest import StackHarness

MAX_CALLS = 40  # far more D1 calls than one upload makes; the loop ends at the first clean upload


class FailNthCall:
    """Wraps one D1 binding's public calls (statement executions and batches); the n-th one fails."""

    def __init__(self, db: Any) -> None:
        self._prepare, self._batch = db.prepare, db.batch
        self.calls = 0
        self.fail_at: int | None = None
        db.prepare = self.prepare
        db.batch = self.batch

    def arm(self, n: int) -> None:
        self.calls, self.fail_at = 0, n

    def disarm(self) -> None:
        self.fail_at = None

    def tick(self) -> None:
        self.calls += 1
        if self.calls == self.fail_at:
            raise D1Error("D1_ERROR: D1 is overloaded (injected)")

    def prepare(self, query: str) -> _Statement:
        return _Statement(self, self._prepare(query))

    async def batch(self, statements: Any) -> Any:
        self.tick()
        return await self._batch([s.inner if isinstance(s, _Statement) else s for s in statements])


class _Statement:
    def __init__(self, faults: FailNthCall, inner: Any) -> None:
        self._faults, self.inner = faults, inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def bind(self, *values: Any) -> _Statement:
        return _Statement(self._faults, self.inner.bind(*values))

    async def all(self) -> Any:
        self._faults.tick()
        return await self.inner.all()

    async def run(self) -> Any:
        self._faults.tick()
        return await self.inner.run()

    async def first(self, column: str | None = None) -> Any:
        self._faults.tick()
        return await self.inner.first(column)


async def test_a_d1_failure_at_any_step_of_an_upload_leaves_no_orphan_document(
    harness: StackHarness,
) -> None:
    acme = await harness.tenant("acme")
    db = harness.stack.workers["gateway"].env.DB
    faults = FailNthCall(db)
    refused = 0
    for n in range(1, MAX_CALLS):
        faults.arm(n)
        response = await acme.client.post(
            "/v1/documents", json={"title": f"upload {n}", "text": f"Attempt number {n} of the upload."}
        )
        faults.disarm()
        if response.status_code == 202:
            assert faults.calls < n, "a failed D1 call must not end in an accepted upload"
            break
        refused += 1
        assert response.status_code >= 500, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        left = await db.prepare("SELECT id, status FROM documents WHERE title = ?1").bind(f"upload {n}").all()
        assert left["results"] == [], f"failing D1 call {n} left {left['results']}"
    else:
        raise AssertionError(f"the upload never succeeded within {MAX_CALLS} D1 calls")
    assert refused >= 2  # at least authentication and the insert itself were failed
    await harness.ingest()
    accepted = (await acme.client.get(f"/v1/documents/{response.json()['document']['id']}")).json()
    assert accepted["status"] == "ready"
