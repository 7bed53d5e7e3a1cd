"""A document's ingestion stage, progress and timings, written to its D1 row as the pipeline runs.

Stages (migrations/0011): queued -> extracting -> chunking -> embedding -> indexing -> ready | failed.
``progress`` counts chunks: ``base`` (the chunks earlier slices of a sliced run committed) plus the
current stage's units (chunks embedded, vectors written) of ``base`` + this slice's total, so a
client polling ``GET /v1/documents/{id}`` sees how far a large document got; ``timings`` holds the
milliseconds of every stage, summed over the run's slices (``timings`` passed in: the earlier
slices'). ``ready`` and ``failed`` are written by the store in the same batch as the chunks swap or
the cleanup, never here.

Writes are one small UPDATE, at most one per :data:`MIN_WRITE_INTERVAL_S`: the first stage is always
written, later stage changes and steps (one per embedding or upsert batch) only once that long has
passed since the last write, and at the end of every slice (:meth:`Progress.flush`). A client
polling a large document sees it move every half second or so; a small one (done in milliseconds)
costs one progress write instead of six, each a D1 round trip at the edge. Nothing is lost: the
final stage, counts and timings are written with ``ready``.

To add a stage: add it to the CHECK in a migration, to
``edgerag.store.documents.Stage``, and call :meth:`Progress.stage` where it starts.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from edgerag.store.documents import DocumentStore, Stage

__all__ = ["MIN_WRITE_INTERVAL_S", "Progress"]

MIN_WRITE_INTERVAL_S = 0.5


class Progress:
    def __init__(
        self,
        store: DocumentStore,
        tenant_id: str,
        document_id: str,
        clock: Callable[[], float] = time.perf_counter,
        *,
        base: int = 0,
        timings: dict[str, float] | None = None,
        min_interval_s: float = MIN_WRITE_INTERVAL_S,
    ) -> None:
        self._store = store
        self._tenant_id = tenant_id
        self._document_id = document_id
        self._clock = clock
        self._stage: Stage | None = None
        self._began = 0.0
        self._run_began = clock()
        self._base = base
        self.timings: dict[str, float] = dict(timings or {})
        self.done = base
        self.total = base
        self._min_interval_s = min_interval_s
        self._last_write: float | None = None
        self.writes = 0

    def _add(self, name: str, seconds: float) -> None:
        self.timings[name] = round(self.timings.get(name, 0.0) + seconds * 1000, 2)

    def _close_stage(self) -> None:
        if self._stage is not None:
            self._add(f"{self._stage}_ms", self._clock() - self._began)
            self._stage = None

    async def _write(self, *, force: bool = False) -> None:
        assert self._stage is not None
        now = self._clock()
        if not force and self._last_write is not None and now - self._last_write < self._min_interval_s:
            return
        self._last_write = now
        self.writes += 1
        await self._store.set_progress(
            self._tenant_id, self._document_id, self._stage, self.done, self.total, self.timings
        )

    async def stage(self, name: Stage, total: int = 0) -> None:
        """Finish the current stage (recording its time) and start ``name`` with ``total`` units."""
        self._close_stage()
        self._stage, self._began = name, self._clock()
        self.done, self.total = self._base, self._base + total
        await self._write()

    async def advance(self, units: int) -> None:
        self.done = min(self.total, self.done + units)
        await self._write()

    async def flush(self) -> None:
        """Write the current stage and counts now, however recent the last write (a slice's end)."""
        if self._stage is not None:
            await self._write(force=True)

    def finish(self) -> None:
        """Record the last stage's time and add this slice's run time to ``total_ms``; the caller
        writes them (with the cursor, or in the batch that marks the document ``ready``)."""
        self._close_stage()
        self._add("total_ms", self._clock() - self._run_began)
