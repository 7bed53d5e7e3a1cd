"""The emulators a queue consumer thread shares with the serving thread are safe to use from both.

``LocalStack.start`` runs consumers on their own thread (issue 7, defect 2), so a binding opened on
the serving thread is called from the consumer thread while the gateway keeps using it. Each test
drives one emulator from two threads at once and checks that nothing raised and nothing was lost.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from edgerag_local.d1 import LocalD1Database
from edgerag_local.queues import ConsumerSettings, LocalQueueBroker, QueueDispatcher
from edgerag_local.queues import producer as queue_producer
from edgerag_local.vectorize import LocalVectorizeIndex, VectorizeIndexConfig

ROUNDS = 200


def run_in_thread(
    work: Callable[[], Coroutine[Any, Any, None]], name: str | None = None
) -> tuple[threading.Thread, list[BaseException]]:
    """Run ``work`` on a new thread with its own event loop; failures are collected, not lost."""
    failures: list[BaseException] = []

    def main() -> None:
        try:
            asyncio.run(work())
        except BaseException as exc:
            failures.append(exc)

    thread = threading.Thread(target=main, name=name)
    thread.start()
    return thread, failures


async def test_a_vectorize_index_takes_upserts_from_one_thread_while_another_queries(tmp_path: Path) -> None:
    index = LocalVectorizeIndex(tmp_path / "v.sqlite", VectorizeIndexConfig("v", 4, "cosine"))

    async def upserts() -> None:
        for i in range(ROUNDS):
            await index.upsert([{"id": f"v{i}", "values": [1.0, float(i), 0.5, 0.25], "namespace": "t"}])

    thread, failures = run_in_thread(upserts)
    try:
        while thread.is_alive():
            result = await index.query([1.0, 2.0, 0.5, 0.25], topK=3, namespace="t")
            assert result["count"] <= 3
            await asyncio.sleep(0)
    finally:
        thread.join()
    assert failures == []
    assert (await index.describe())["vectorCount"] == ROUNDS
    index.close()


async def test_a_queue_broker_takes_sends_from_one_thread_while_another_consumes(tmp_path: Path) -> None:
    broker = LocalQueueBroker(tmp_path / "queues.sqlite")
    producer = queue_producer(broker, "jobs")
    received: list[int] = []

    async def handler(batch: Any) -> None:
        received.extend(int(message.body["n"]) for message in batch.messages)

    dispatcher = QueueDispatcher(broker, "jobs", ConsumerSettings(max_batch_size=5, max_retries=0), handler)
    sending_done = threading.Event()

    async def consume() -> None:
        while not sending_done.is_set() or broker.metrics("jobs")["backlogCount"]:
            await dispatcher.drain()
            await asyncio.sleep(0)

    thread, failures = run_in_thread(consume)
    try:
        for n in range(ROUNDS):
            await producer.send({"n": n})
    finally:
        sending_done.set()
        thread.join()
    assert failures == []
    assert sorted(received) == list(range(ROUNDS))  # each message delivered exactly once here
    broker.close()


async def test_one_d1_database_serves_two_threads_without_mixing_their_transactions(tmp_path: Path) -> None:
    db = LocalD1Database(tmp_path / "d1.sqlite")
    await db.exec("CREATE TABLE t (n INTEGER NOT NULL)")

    async def batches() -> None:
        for n in range(ROUNDS):
            await db.batch([db.prepare("INSERT INTO t (n) VALUES (?)").bind(n)] * 2)

    thread, failures = run_in_thread(batches)
    try:
        while thread.is_alive():
            count = await db.prepare("SELECT count(*) AS c FROM t").first("c")
            assert count % 2 == 0  # a batch is one transaction: never seen half-applied
            await asyncio.sleep(0)
    finally:
        thread.join()
    assert failures == []
    assert await db.prepare("SELECT count(*) AS c FROM t").first("c") == 2 * ROUNDS
    db.close()


async def test_a_d1_call_waiting_for_another_threads_call_does_not_block_the_event_loop(
    tmp_path: Path,
) -> None:
    # The database's clock is read inside the engine, so a clock that stops on the holder's thread
    # keeps that thread's call inside the engine until the test lets it go.
    inside, release = threading.Event(), threading.Event()

    def clock() -> float:
        if threading.current_thread().name == "holder" and not release.is_set():
            inside.set()
            release.wait(timeout=20)  # only a hang guard: the event loop is expected to release it
        return time.perf_counter()

    db = LocalD1Database(tmp_path / "d1.sqlite", clock=clock)
    await db.exec("CREATE TABLE t (n INTEGER NOT NULL)")
    order: list[str] = []

    async def insert() -> None:
        await db.prepare("INSERT INTO t (n) VALUES (1)").run()

    thread, failures = run_in_thread(insert, name="holder")
    assert await asyncio.to_thread(inside.wait, 20)

    async def heartbeat() -> None:
        order.append("event loop ran")
        release.set()

    beat = asyncio.create_task(heartbeat())
    assert await db.prepare("SELECT count(*) AS c FROM t").first("c") == 1  # waited for the insert
    order.append("query returned")
    await beat
    thread.join()
    assert failures == []
    assert order == ["event loop ran", "query returned"]
    db.close()
