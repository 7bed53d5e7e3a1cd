"""ingest.progress.Progress against a recording DocumentStore and a manual clock: the first stage is
written at once, later changes at most once per interval, and the timings still cover every stage."""

from __future__ import annotations

from typing import Any

from ingest.progress import MIN_WRITE_INTERVAL_S, Progress


class RecordingStore:
    def __init__(self) -> None:
        self.writes: list[tuple[str, int, int, dict[str, float]]] = []

    async def set_progress(
        self, tenant_id: str, document_id: str, stage: str, done: int, total: int, timings: Any
    ) -> None:
        assert (tenant_id, document_id) == ("tnt_a", "doc_a")
        self.writes.append((stage, done, total, dict(timings)))


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_a_fast_document_writes_its_progress_once() -> None:
    store, clock = RecordingStore(), Clock()
    progress = Progress(store, "tnt_a", "doc_a", clock)  # type: ignore[arg-type]
    await progress.stage("extracting")
    for stage in ("chunking", "embedding", "indexing"):
        clock.now += 0.01
        await progress.stage(stage, total=40)  # type: ignore[arg-type]
        await progress.advance(40)
    progress.finish()
    assert [w[0] for w in store.writes] == ["extracting"]
    stages = {"extracting_ms", "chunking_ms", "embedding_ms", "indexing_ms", "total_ms"}
    assert set(progress.timings) == stages
    assert progress.done == progress.total == 40


async def test_a_slow_document_reports_at_most_once_per_interval() -> None:
    store, clock = RecordingStore(), Clock()
    progress = Progress(store, "tnt_a", "doc_a", clock, base=10)  # type: ignore[arg-type]
    await progress.stage("embedding", total=100)
    for _ in range(10):
        clock.now += MIN_WRITE_INTERVAL_S / 2
        await progress.advance(10)
    # 10 steps over 2.5 intervals: the first write plus one per elapsed interval.
    assert [w[1] for w in store.writes] == [10, 30, 50, 70, 90, 110]
    assert all(w[2] == 110 for w in store.writes) and progress.writes == len(store.writes)
    clock.now += MIN_WRITE_INTERVAL_S
    await progress.stage("indexing", total=100)
    assert store.writes[-1][:3] == ("indexing", 10, 110) and "embedding_ms" in store.writes[-1][3]


async def test_flush_writes_whatever_the_interval() -> None:
    store, clock = RecordingStore(), Clock()
    progress = Progress(store, "tnt_a", "doc_a", clock)  # type: ignore[arg-type]
    await progress.flush()  # no stage yet: nothing to write
    await progress.stage("indexing", total=6)
    await progress.advance(6)
    await progress.flush()
    assert [(w[0], w[1]) for w in store.writes] == [("indexing", 0), ("indexing", 6)]
