"""Contract suite for Queues: the producer binding (edgerag.ports.Queue) and push consumers
(edgerag.ports.MessageBatch / Message) with batching, retries, delays and dead-lettering.

Runs against every backend in ``BACKENDS``. Locally that is :mod:`edgerag_local.queues` on
``tmp_path`` with an injected clock: a :class:`~edgerag_local.queues.LocalQueueBroker`, producers
from it and :class:`~edgerag_local.queues.QueueDispatcher` consumers whose handler is the test's.

Inside workerd the same assertions would run through a deployed test worker bound as producer and
consumer of scratch queues: ``send``/``sendBatch`` proxied over RPC, and its ``queue()`` handler
recording each batch (ids, bodies, attempts) into a Durable Object and applying the ack/retry
script the test sent along, while :meth:`Harness.deliver` polls that record. Time cannot be moved
there (``advance`` would wait, which makes the delay tests slow but valid) and reopening is a
no-op. Tests that only make sense for the emulator (a killed process, abandoned leases, lowered
limits, several brokers on one file) say so in their name or docstring.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from edgerag.ports import Message, MessageBatch, Queue
from edgerag_local.core.clock import ManualClock
from edgerag_local.core.errors import RpcSerializationError
from edgerag_local.queues import (
    ConsumerConfigError,
    ConsumerSettings,
    DispatchResult,
    LocalQueueBroker,
    QueueDispatcher,
    QueueLimits,
    producer,
)
from edgerag_local.queues.errors import QueueError

from tests.contract.conftest import BACKENDS, Miniflare, only
from tests.contract.miniflare.proxies import QueueConsumer as MiniflareQueueConsumer
from tests.contract.miniflare.proxies import QueueProducer as MiniflareQueueProducer

NOW = 1_700_000_000.0
LEASE = QueueLimits().lease_seconds


Script = Callable[[MessageBatch], Awaitable[object] | None]


@dataclass
class Recorder:
    """A consumer handler that records every delivery and then runs the test's script on the batch."""

    script: Script | None = None
    batches: list[list[tuple[str, Any, int]]] = field(default_factory=list)

    async def __call__(self, batch: MessageBatch) -> None:
        self.batches.append([(m.id, m.body, m.attempts) for m in batch.messages])
        if self.script is not None:
            result = self.script(batch)
            if result is not None:
                await result

    @property
    def bodies(self) -> list[Any]:
        return [body for batch in self.batches for _, body, _ in batch]

    @property
    def attempts(self) -> list[int]:
        return [attempts for batch in self.batches for _, _, attempts in batch]


TIME_TRAVEL = "moves an injected clock; Miniflare's delays and batch timeouts run on the wall clock"
DISPATCHER = "drives the emulator's dispatcher (run_once, run_forever, concurrency, its counts)"
LOCAL_KNOB = (
    "an emulator knob (lowered limits, a killed process, abandoned leases, several brokers on a file)"
)
ACKED_NOT_REDELIVERED = (
    "Miniflare's broker retries the whole batch when the handler throws or calls retryAll(), ignoring "
    "earlier ack()/ackAll(); Queues document that an acknowledged message is not delivered again"
)
IN_MEMORY = "Miniflare's queue broker keeps messages in memory, so a restart loses them (Queues are durable)"
SDK_MODEL = "the emulator's model of the Python SDK's conversions; the proxy hands values to workerd as JSON"


@dataclass
class Harness:
    path: Path
    clock: ManualClock
    limits: QueueLimits
    broker: LocalQueueBroker
    backend: str = "local"

    async def backlog(self, queue: str = "jobs") -> int:
        """Messages sent to ``queue`` and not yet consumed."""
        return int(self.broker.metrics(queue).backlogCount)

    def producer(self, queue: str = "jobs", **kwargs: Any) -> Any:
        return producer(self.broker, queue, **kwargs)

    def consumer(self, queue: str = "jobs", script: Script | None = None, **settings: Any) -> Consumer:
        recorder = Recorder(script)
        dispatcher = QueueDispatcher(self.broker, queue, ConsumerSettings(**settings), recorder)
        return Consumer(dispatcher, recorder)

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def reopen(self) -> None:
        """Close the broker and open the same state again, as a restarted dev server would."""
        self.broker.close()
        self.broker = LocalQueueBroker(self.path, limits=self.limits, clock=self.clock)

    def second_broker(self) -> LocalQueueBroker:
        return LocalQueueBroker(self.path, limits=self.limits, clock=self.clock)


@dataclass
class Consumer:
    dispatcher: QueueDispatcher
    recorder: Recorder

    async def drain(self) -> DispatchResult:
        return await self.dispatcher.drain()

    async def run_once(self) -> DispatchResult:
        return await self.dispatcher.run_once()

    @property
    def bodies(self) -> list[Any]:
        return self.recorder.bodies


@dataclass
class MiniflareConsumer:
    consumer: MiniflareQueueConsumer
    recorder: Recorder

    async def drain(self) -> Any:
        return await self.consumer.drain()

    @property
    def bodies(self) -> list[Any]:
        return self.recorder.bodies


# Consumer settings (ConsumerSettings names) -> Miniflare's consumer options.
_MINIFLARE_OPTION = {
    "max_batch_size": "maxBatchSize",
    "max_retries": "maxRetries",
    "retry_delay": "retryDelay",
}


@dataclass
class MiniflareHarness:
    """Fresh Miniflare queues under the suite's names; a consumer must be made before its queue is used."""

    mf: Miniflare
    physical: dict[str, str] = field(default_factory=dict)
    dead_letter: dict[str, str] = field(default_factory=dict)
    backend: str = "miniflare"

    def _queue(self, logical: str, profile: dict[str, Any] | None = None) -> str:
        if logical in self.physical:
            assert not profile, f"make the consumer of {logical!r} before sending to it (Miniflare fixes it)"
            return self.physical[logical]
        name, dlq = self.mf.take_queue(profile or {})
        self.physical[logical] = name
        if dlq is not None:
            self.dead_letter[logical] = dlq
        return name

    def producer(self, queue: str = "jobs", **kwargs: Any) -> Any:
        assert not kwargs, "producer options (delivery_delay) are fixed in Miniflare's configuration"
        return MiniflareQueueProducer(self.mf.bridge, self._queue(queue))

    def consumer(
        self, queue: str = "jobs", script: Script | None = None, **settings: Any
    ) -> MiniflareConsumer:
        recorder = Recorder(script)
        dlq = settings.pop("dead_letter_queue", None)
        settings.pop("max_batch_timeout", None)  # drain() does not wait for it; Miniflare runs with 0
        unknown = set(settings) - set(_MINIFLARE_OPTION)
        assert not unknown, f"no Miniflare consumer option for {unknown}"
        profile: dict[str, Any] = {_MINIFLARE_OPTION[k]: v for k, v in settings.items()}
        if dlq is not None:
            profile["dlq"] = True
        if queue in self.physical and not profile:
            name = self.physical[queue]
        else:
            name = self._queue(queue, profile)
        if dlq is not None:
            assert dlq not in self.physical, f"{dlq!r} is already a queue of this test"
            self.physical[dlq] = self.dead_letter[queue]
        return MiniflareConsumer(MiniflareQueueConsumer(self.mf.bridge, name, queue, recorder), recorder)

    async def backlog(self, queue: str = "jobs") -> int:
        """Drains ``queue`` (acking everything) and counts what it delivered."""
        return (await self.consumer(queue).drain()).delivered

    def release(self) -> None:
        self.mf.bridge.post("/queues/release", {"queues": list(self.physical.values())})


def _make(tmp_path: Path, limits: QueueLimits) -> Harness:
    clock = ManualClock(NOW)
    path = tmp_path / "queues.sqlite"
    return Harness(path, clock, limits, LocalQueueBroker(path, limits=limits, clock=clock))


@pytest.fixture(params=BACKENDS)
async def q(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "miniflare":
        mf = MiniflareHarness(request.getfixturevalue("miniflare"))
        yield mf
        mf.release()
        return
    harness = _make(tmp_path, QueueLimits())
    yield harness
    harness.broker.close()


@pytest.fixture
async def small(tmp_path: Path) -> AsyncIterator[Harness]:
    """Emulator only: limits lowered so tests can cross them cheaply."""
    harness = _make(
        tmp_path,
        QueueLimits(
            max_message_bytes=10, max_batch_messages=3, max_batch_bytes=25, max_consumer_batch_size=5
        ),
    )
    yield harness
    harness.broker.close()


# ------------------------------------------------------------------------------------ producer


async def test_producer_implements_the_port(q: Any) -> None:
    assert isinstance(q.producer(), Queue)


async def test_json_bodies_round_trip_as_the_sdk_returns_them(q: Any) -> None:
    bodies = [
        {"doc": "a", "n": 1, "nested": {"ok": True, "list": [1, 2.5, None]}},
        [1, "two", {"three": 3}],
        "plain string",
        "",
        42,
        3.25,
        None,
        True,
    ]
    for body in bodies:
        await q.producer().send(body)
    consumer = q.consumer()
    await consumer.drain()
    assert consumer.bodies == bodies
    # Dicts come back with attribute access, like the SDK's JsDict.
    assert consumer.bodies[0].nested.ok is True
    assert consumer.bodies[1][2].three == 3


async def test_json_numbers_follow_js_semantics(q: Any) -> None:
    await q.producer().send({"whole": 2.0, "neg_zero": -0.0, "frac": 0.5})
    consumer = q.consumer()
    await consumer.drain()
    body = consumer.bodies[0]
    assert body == {"whole": 2, "neg_zero": 0, "frac": 0.5}
    assert type(body["whole"]) is int


async def test_message_shape(q: Any) -> None:
    seen: list[Message] = []

    def script(batch: MessageBatch) -> None:
        assert isinstance(batch, MessageBatch)
        assert batch.queue == "jobs"
        seen.extend(batch.messages)

    before = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    await q.producer().send({"x": 1})
    await q.consumer(script=script).drain()
    (message,) = seen
    assert isinstance(message, Message)
    assert isinstance(message.id, str) and message.id
    assert message.attempts == 1
    # A JS Date through the SDK: naive, UTC, millisecond precision.
    if q.backend == "local":
        assert message.timestamp == datetime.fromtimestamp(NOW, tz=UTC).replace(tzinfo=None)
    else:  # workerd stamps the send with its wall clock
        assert before <= message.timestamp <= datetime.now(UTC).replace(tzinfo=None)
        assert message.timestamp.microsecond % 1000 == 0


async def test_message_ids_are_unique(q: Any) -> None:
    await q.producer().sendBatch([{"body": i} for i in range(20)])
    seen: list[str] = []
    await q.consumer(script=lambda b: seen.extend(m.id for m in b.messages)).drain()
    assert len(set(seen)) == 20


async def test_text_bytes_and_v8_content_types(q: Any) -> None:
    stamp = datetime(2026, 5, 1, 12, 30, 15, 123000)
    await q.producer().send("héllo", contentType="text")
    await q.producer().send(b"\x00\x01\xff", contentType="bytes")
    await q.producer().send(memoryview(b"view"), {"contentType": "bytes"})
    await q.producer().send(
        {"blob": b"\x02", "at": stamp, "nan": float("nan"), "$t": "user"}, contentType="v8"
    )
    await q.producer().send({"n": 1}, contentType="JSON")  # workerd lower-cases the content type
    consumer = q.consumer()
    await consumer.drain()
    text, raw, view, v8, json_body = consumer.bodies
    assert text == "héllo"
    assert isinstance(raw, memoryview) and bytes(raw) == b"\x00\x01\xff"
    assert bytes(view) == b"view"
    assert bytes(v8["blob"]) == b"\x02"
    assert v8["at"] == stamp
    assert v8["nan"] != v8["nan"]
    assert v8["$t"] == "user"
    assert json_body == {"n": 1}


async def test_unknown_content_type_is_a_type_error(q: Any) -> None:
    with pytest.raises(TypeError, match="Unsupported queue message content type: xml"):
        await q.producer().send("x", contentType="xml")


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (5, "text", 'Content Type "text" requires a value of type string, but received: number'),
        (None, "text", 'Content Type "text" requires a value of type string, but received: object'),
        (
            "abc",
            "bytes",
            'Content Type "bytes" requires a value of type ArrayBufferView, but received: string',
        ),
        pytest.param(b"abc", None, "binary, which JSON cannot carry", marks=only("local", SDK_MODEL)),
        pytest.param({"at": datetime(2026, 1, 1)}, "json", "datetime", marks=only("local", SDK_MODEL)),
        pytest.param({"x": float("nan")}, "json", "null", marks=only("local", SDK_MODEL)),
        (2**60, "json", "BigInt"),
        pytest.param({1: "a"}, "json", "JS object keys are strings", marks=only("local", SDK_MODEL)),
        pytest.param({1, 2}, "json", "not JSON-serialisable", marks=only("local", SDK_MODEL)),
        pytest.param(object(), "v8", "not structured-cloneable", marks=only("local", SDK_MODEL)),
        pytest.param("\ud800", "text", "lone surrogate", marks=only("local", SDK_MODEL)),
        pytest.param({"k": "\udfff"}, "json", "lone surrogate", marks=only("local", SDK_MODEL)),
    ],
)
async def test_bodies_that_would_not_survive_are_type_errors(
    q: Any, body: Any, content_type: str | None, message: str
) -> None:
    with pytest.raises(TypeError, match=message):
        await q.producer().send(body, contentType=content_type)


@only("local", SDK_MODEL)
@pytest.mark.parametrize("body", [(1, 2), bytearray(b"x"), {"nested": (1,)}])
async def test_values_the_sdk_cannot_send_are_refused(q: Any, body: Any) -> None:
    with pytest.raises(RpcSerializationError, match="cannot be sent over RPC"):
        await q.producer().send(body, contentType="v8")


async def test_options_as_trailing_dict_or_keywords(q: Any) -> None:
    consumer = q.consumer()
    await q.producer().send("a", {"contentType": "text", "delaySeconds": 0})
    await q.producer().send("b", contentType="text", delaySeconds=0)
    await consumer.drain()
    assert consumer.bodies == ["a", "b"]


@only("local", "workerd ignores option names it does not know; the emulator refuses them to catch typos")
async def test_options_with_unknown_names_are_refused(q: Any) -> None:
    with pytest.raises(TypeError, match="unknown option"):
        await q.producer().send("c", {"delay": 5})
    with pytest.raises(TypeError, match="unknown option"):
        await q.producer().sendBatch([{"body": 1}], {"contentType": "json"})
    assert (await q.consumer().drain()).delivered == 0


async def test_message_size_limit_counts_serialised_utf8_bytes(q: Any) -> None:
    producer = q.producer()
    await producer.send("x" * 128_000, contentType="text")
    await producer.send("é" * 64_000, contentType="text")  # 2 bytes each
    await producer.send("x" * 127_998)  # JSON adds the two quotes
    code = r" \(10204\)" if q.backend == "local" else ""  # the emulator adds the API's error code
    with pytest.raises(QueueError, match=rf"message length of 128001 bytes exceeds limit of 128000{code}"):
        await producer.send("x" * 128_001, contentType="text")
    with pytest.raises(QueueError, match=rf"128002 bytes exceeds limit of 128000{code}"):
        await producer.send("é" * 64_001, contentType="text")
    with pytest.raises(QueueError, match=rf"128001 bytes exceeds limit of 128000{code}"):
        await producer.send(b"\0" * 128_001, contentType="bytes")
    assert await q.backlog("jobs") == 3


async def test_a_json_body_counts_its_quotes(q: Any) -> None:
    code = r" \(10204\)" if q.backend == "local" else ""
    with pytest.raises(QueueError, match=rf"128001 bytes exceeds limit of 128000{code}"):
        await q.producer().send("x" * 127_999)


@only(
    "local",
    "Miniflare accepts delays up to 86,400 s and words refusals its own way; Queues document 12 hours "
    "(43,200 s) as the longest delay",
)
@pytest.mark.parametrize("delay", [-1, 43_201])
async def test_send_delay_out_of_range(q: Any, delay: int) -> None:
    with pytest.raises(QueueError, match=rf"message delay {delay} is invalid.*\(10203\)"):
        await q.producer().send("x", delaySeconds=delay)


@only("local", "workerd converts '5' and True to numbers; the emulator refuses anything but an integer")
@pytest.mark.parametrize("delay", ["5", True, 1.5])
async def test_send_delay_must_be_an_integer(q: Any, delay: Any) -> None:
    with pytest.raises(TypeError, match="delaySeconds must be an integer"):
        await q.producer().send("x", delaySeconds=delay)


async def test_send_batch_limits(q: Any) -> None:
    producer = q.producer()
    local = q.backend == "local"  # the emulator adds the API's error codes to workerd's text
    await producer.sendBatch([{"body": i} for i in range(100)])
    with pytest.raises(
        QueueError, match=r"batch message count of 101 exceeds limit of 100" + local * r" \(10206\)"
    ):
        await producer.sendBatch([{"body": i} for i in range(101)])
    with pytest.raises(QueueError, match=r"single message size limit of 128000" + local * r" \(10204\)"):
        await producer.sendBatch([{"body": "x" * 128_001, "contentType": "text"}])
    with pytest.raises(
        QueueError, match=r"batch size of 300000 bytes exceeds limit of 256000" + local * r" \(10205\)"
    ):
        await producer.sendBatch([{"body": "x" * 100_000, "contentType": "text"} for _ in range(3)])
    assert await q.backlog("jobs") == 100


@only("local", "Miniflare accepts delays up to 86,400 s; Queues document 12 hours (43,200 s) as the longest")
async def test_send_batch_delay_limits(q: Any) -> None:
    producer = q.producer()
    with pytest.raises(QueueError, match=r"\(10202\)"):
        await producer.sendBatch([{"body": 1}], delaySeconds=43_201)
    with pytest.raises(QueueError, match=r"\(10203\)"):
        await producer.sendBatch([{"body": 1, "delaySeconds": -5}])
    assert await q.backlog("jobs") == 0


async def test_send_batch_shapes(q: Any) -> None:
    producer = q.producer()
    with pytest.raises(TypeError, match=r"sendBatch\(\) requires at least one message"):
        await producer.sendBatch([])
    with pytest.raises(TypeError, match="Message body cannot be undefined"):
        await producer.sendBatch([{"contentType": "text"}])
    if q.backend == "local":  # workerd ignores keys it does not know; the emulator refuses them
        with pytest.raises(TypeError, match="unknown key"):
            await producer.sendBatch([{"body": 1, "options": {}}])
    # workerd: "Incorrect type: the provided value is not of type 'MessageSendRequest'."
    with pytest.raises(TypeError, match=r"must be an object|not of type 'MessageSendRequest'"):
        await producer.sendBatch(["just a string"])
    with pytest.raises(TypeError, match=r"iterable|not of type 'Sequence'"):  # workerd: the latter
        await producer.sendBatch({"body": 1})
    await producer.sendBatch({"body": i} for i in range(2))  # any iterable
    consumer = q.consumer()
    await consumer.drain()
    assert consumer.bodies == [0, 1]


async def test_send_batch_is_all_or_nothing(q: Any) -> None:
    with pytest.raises(TypeError):
        await q.producer().sendBatch([{"body": "ok"}, {"body": 7, "contentType": "text"}])
    assert await q.backlog("jobs") == 0
    assert (await q.consumer().drain()).delivered == 0


async def test_lowered_limits_apply(small: Harness) -> None:
    """Emulator only: every producer limit reads QueueLimits."""
    producer = small.producer()
    await producer.send("x" * 10, contentType="text")
    with pytest.raises(QueueError, match="limit of 10"):
        await producer.send("x" * 11, contentType="text")
    with pytest.raises(QueueError, match="limit of 3"):
        await producer.sendBatch([{"body": 1}] * 4)
    with pytest.raises(QueueError, match="limit of 25"):
        await producer.sendBatch([{"body": "x" * 9, "contentType": "text"}] * 3)


# --------------------------------------------------------------------------------------- delays


@only("local", TIME_TRAVEL)
async def test_send_delay_defers_delivery(q: Any) -> None:
    await q.producer().send("later", delaySeconds=60)
    await q.producer().send("now")
    consumer = q.consumer()
    await consumer.drain()
    assert consumer.bodies == ["now"]
    q.advance(59)
    assert (await consumer.drain()).delivered == 0
    q.advance(1)
    await consumer.drain()
    assert consumer.bodies == ["now", "later"]


@only("local", TIME_TRAVEL)
async def test_delay_precedence_message_then_batch_then_producer_default(q: Any) -> None:
    producer = q.producer(delivery_delay=30)
    await producer.send("default")  # producer's delivery_delay
    await producer.send("zero", delaySeconds=0)  # 0 overrides the default
    await producer.sendBatch([{"body": "batch"}, {"body": "own", "delaySeconds": 5}], delaySeconds=10)
    consumer = q.consumer()
    await consumer.drain()
    assert consumer.bodies == ["zero"]
    q.advance(5)
    await consumer.drain()
    assert consumer.bodies[-1] == "own"
    q.advance(5)
    await consumer.drain()
    assert consumer.bodies[-1] == "batch"
    q.advance(20)
    await consumer.drain()
    assert consumer.bodies[-1] == "default"


# -------------------------------------------------------------------------------------- batching


@only("local", TIME_TRAVEL)
async def test_full_batches_go_at_once_and_the_rest_waits_for_the_timeout(q: Any) -> None:
    await q.producer().sendBatch([{"body": i} for i in range(25)])
    consumer = q.consumer(max_batch_size=10, max_batch_timeout=5)
    assert (await consumer.run_once()).delivered == 10
    assert (await consumer.run_once()).delivered == 10
    assert (await consumer.run_once()) == DispatchResult()  # 5 waiting, batch not full, not yet due
    q.advance(4.9)
    assert (await consumer.run_once()).batches == 0
    q.advance(0.1)
    assert (await consumer.run_once()).delivered == 5
    assert sorted(consumer.bodies) == list(range(25))


@only("local", TIME_TRAVEL)
async def test_batch_timeout_counts_from_when_the_message_became_deliverable(q: Any) -> None:
    await q.producer().send("delayed", delaySeconds=10)
    consumer = q.consumer(max_batch_timeout=5)
    q.advance(10)
    assert (await consumer.run_once()).batches == 0
    q.advance(5)
    assert (await consumer.run_once()).delivered == 1


@only("local", DISPATCHER)
async def test_zero_batch_timeout_delivers_immediately(q: Any) -> None:
    await q.producer().send("x")
    assert (await q.consumer(max_batch_timeout=0).run_once()).delivered == 1


async def test_drain_ignores_the_batch_timeout(q: Any) -> None:
    consumer = q.consumer(max_batch_size=3, max_batch_timeout=60)
    await q.producer().sendBatch([{"body": i} for i in range(7)])
    result = await consumer.drain()
    assert (result.batches, result.delivered) == (3, 7)
    if q.backend == "local":
        assert result.acked == 7
    assert [len(b) for b in consumer.recorder.batches] == [3, 3, 1]


async def test_queues_are_isolated(q: Any) -> None:
    await q.producer("a").send("for a")
    await q.producer("b").send("for b")
    consumer_b = q.consumer("b")
    await consumer_b.drain()
    assert consumer_b.bodies == ["for b"]
    assert await q.backlog("a") == 1


@only("local", DISPATCHER)
async def test_run_forever_waits_for_the_batch_timeout_on_an_injected_clock(q: Any) -> None:
    stop = asyncio.Event()
    delivered_at: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        q.advance(seconds)
        await asyncio.sleep(0)

    def script(batch: MessageBatch) -> None:
        delivered_at.append(q.clock())
        stop.set()

    await q.producer().sendBatch([{"body": i} for i in range(3)])
    recorder = Recorder(script)
    dispatcher = QueueDispatcher(
        q.broker, "jobs", ConsumerSettings(max_batch_timeout=5), recorder, sleep=fake_sleep
    )
    await dispatcher.run_forever(stop)
    assert recorder.bodies == [0, 1, 2]
    assert delivered_at[0] >= NOW + 5


@pytest.mark.parametrize("concurrency", [1, 2])
@only("local", DISPATCHER)
async def test_run_forever_delivers_up_to_max_concurrency_batches_at_once(q: Any, concurrency: int) -> None:
    stop = asyncio.Event()
    active = 0
    peak = 0
    handled = 0

    async def script(batch: MessageBatch) -> None:
        nonlocal active, peak, handled
        active += 1
        peak = max(peak, active)
        for _ in range(3):
            await asyncio.sleep(0)
        active -= 1
        handled += 1
        if handled == 2:
            stop.set()

    await q.producer().sendBatch([{"body": i} for i in range(4)])
    recorder = Recorder(script)
    settings = ConsumerSettings(max_batch_size=2, max_concurrency=concurrency)
    await QueueDispatcher(q.broker, "jobs", settings, recorder).run_forever(stop)
    assert peak == concurrency
    assert sorted(recorder.bodies) == [0, 1, 2, 3]


@only("local", DISPATCHER)
async def test_run_forever_returns_at_once_when_already_stopped(q: Any) -> None:
    await q.producer().send("x")
    stop = asyncio.Event()
    stop.set()
    recorder = Recorder()
    await QueueDispatcher(q.broker, "jobs", ConsumerSettings(max_batch_timeout=0), recorder).run_forever(stop)
    assert recorder.batches == []
    assert await q.backlog("jobs") == 1


# ------------------------------------------------------------------------------- ack and retry


async def test_returning_normally_acks_everything(q: Any) -> None:
    await q.producer().sendBatch([{"body": i} for i in range(3)])
    consumer = q.consumer()
    result = await consumer.drain()
    assert result.delivered == 3
    if q.backend == "local":
        assert (result.acked, result.retried) == (3, 0)
    assert await q.backlog("jobs") == 0


async def test_explicit_retry_redelivers_that_message_only(q: Any) -> None:
    def script(batch: MessageBatch) -> None:
        for m in batch.messages:
            if m.body == "again" and m.attempts == 1:
                m.retry()

    await q.producer().sendBatch([{"body": "once"}, {"body": "again"}])
    consumer = q.consumer(script=script)
    result = await consumer.drain()
    assert consumer.bodies == ["once", "again", "again"]
    assert consumer.recorder.attempts == [1, 1, 2]
    if q.backend == "local":
        assert (result.acked, result.retried) == (2, 1)


async def test_handler_exception_retries_the_whole_batch(q: Any) -> None:
    calls = 0

    def script(batch: MessageBatch) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("boom")

    await q.producer().sendBatch([{"body": 1}, {"body": 2}])
    consumer = q.consumer(script=script)
    await consumer.drain()
    assert consumer.bodies == [1, 2, 1, 2]
    assert consumer.recorder.attempts == [1, 1, 2, 2]


@only("local", ACKED_NOT_REDELIVERED)
async def test_crash_mid_batch_after_acking_some_retries_only_the_rest(q: Any) -> None:
    def script(batch: MessageBatch) -> None:
        for m in batch.messages:
            if m.body == 3 and m.attempts == 1:
                raise RuntimeError("failed on the third message")
            m.ack()

    await q.producer().sendBatch([{"body": i} for i in range(1, 6)])
    consumer = q.consumer(script=script)
    await consumer.drain()
    first, second = consumer.recorder.batches
    assert [body for _, body, _ in first] == [1, 2, 3, 4, 5]
    assert [(body, attempts) for _, body, attempts in second] == [(3, 2), (4, 2), (5, 2)]


@only("local", ACKED_NOT_REDELIVERED)
async def test_retry_all_with_per_message_ack_taking_precedence(q: Any) -> None:
    def script(batch: MessageBatch) -> None:
        if batch.messages[0].attempts == 1:
            batch.messages[0].ack()
            batch.retryAll()
            batch.messages[1].ack()  # after retryAll(): ignored

    await q.producer().sendBatch([{"body": "a"}, {"body": "b"}, {"body": "c"}])
    consumer = q.consumer(script=script)
    await consumer.drain()
    assert consumer.bodies == ["a", "b", "c", "b", "c"]


@only("local", ACKED_NOT_REDELIVERED)
async def test_ack_all_wins_over_an_exception_but_not_over_an_earlier_retry(q: Any) -> None:
    def script(batch: MessageBatch) -> None:
        if batch.messages[0].attempts == 1:
            batch.messages[2].retry()
            batch.ackAll()
            batch.messages[1].retry()  # after ackAll(): ignored
            raise RuntimeError("ackAll() acks regardless of how the handler ends")

    await q.producer().sendBatch([{"body": "a"}, {"body": "b"}, {"body": "c"}])
    consumer = q.consumer(script=script)
    await consumer.drain()
    assert consumer.bodies == ["a", "b", "c", "c"]


async def test_first_call_wins_per_message(q: Any) -> None:
    def script(batch: MessageBatch) -> None:
        if batch.messages[0].attempts == 1:
            first, second = batch.messages
            first.ack()
            first.retry()  # ignored
            second.retry()
            second.ack()  # ignored

    await q.producer().sendBatch([{"body": "acked"}, {"body": "retried"}])
    consumer = q.consumer(script=script)
    await consumer.drain()
    assert consumer.bodies == ["acked", "retried", "retried"]


async def test_batch_level_first_call_wins(q: Any) -> None:
    def script(batch: MessageBatch) -> None:
        if batch.messages[0].attempts == 1:
            batch.retryAll()
            batch.ackAll()  # ignored

    await q.producer().send("x")
    consumer = q.consumer(script=script)
    await consumer.drain()
    assert consumer.recorder.attempts == [1, 2]


@only("local", DISPATCHER)
async def test_calls_after_the_handler_finished_have_no_effect(
    q: Any, caplog: pytest.LogCaptureFixture
) -> None:
    kept: list[MessageBatch] = []
    await q.producer().send("x")
    consumer = q.consumer(script=kept.append)
    await consumer.drain()
    with caplog.at_level(logging.WARNING, logger="edgerag_local.queues"):
        kept[0].messages[0].retry()
        kept[0].retryAll()
    assert "after the queue handler finished" in caplog.text
    assert (await consumer.drain()).delivered == 0


@only("local", TIME_TRAVEL)
async def test_retry_delay_from_the_call_or_the_consumer_default(q: Any) -> None:
    def script(batch: MessageBatch) -> None:
        for m in batch.messages:
            if m.attempts == 1 and m.body == "own":
                m.retry(delaySeconds=30)
            elif m.attempts == 1 and m.body == "default":
                m.retry()

    await q.producer().sendBatch([{"body": "own"}, {"body": "default"}])
    consumer = q.consumer(script=script, retry_delay=10)
    await consumer.drain()
    q.advance(9)
    assert (await consumer.drain()).delivered == 0
    q.advance(1)
    await consumer.drain()
    assert consumer.bodies[-1] == "default"
    q.advance(19)
    assert (await consumer.drain()).delivered == 0
    q.advance(1)
    await consumer.drain()
    assert consumer.bodies[-1] == "own"


@only("local", TIME_TRAVEL)
async def test_retry_all_delay_and_a_message_delay_overriding_it(q: Any) -> None:
    def script(batch: Any) -> None:  # Any: the options-dict form is the SDK's, not the port's spelling
        if batch.messages[0].attempts == 1:
            batch.retryAll({"delaySeconds": 20})
            batch.messages[1].retry(delaySeconds=5)

    await q.producer().sendBatch([{"body": "batch"}, {"body": "own"}])
    consumer = q.consumer(script=script)
    await consumer.drain()
    q.advance(5)
    await consumer.drain()
    assert consumer.bodies[-1] == "own"
    q.advance(15)
    await consumer.drain()
    assert consumer.bodies[-1] == "batch"


@only("local", TIME_TRAVEL)
async def test_implicit_retry_after_an_exception_uses_retry_delay(q: Any) -> None:
    def script(batch: MessageBatch) -> None:
        if batch.messages[0].attempts == 1:
            raise RuntimeError("boom")

    await q.producer().send("x")
    consumer = q.consumer(script=script, retry_delay=60)
    await consumer.drain()
    q.advance(59)
    assert (await consumer.drain()).delivered == 0
    q.advance(1)
    assert (await consumer.drain()).acked == 1


@only(
    "local",
    "the proxy records retry() calls and replays them in workerd, so a refusal cannot reach the handler",
)
async def test_retry_delay_out_of_range(q: Any) -> None:
    errors: list[Exception] = []

    def script(batch: MessageBatch) -> None:
        try:
            batch.messages[0].retry(delaySeconds=43_201)
        except QueueError as exc:
            errors.append(exc)

    await q.producer().send("x")
    await q.consumer(script=script).drain()
    assert len(errors) == 1 and "(10203)" in str(errors[0])


# -------------------------------------------------------------------------------- dead letters


async def test_dead_letter_after_max_retries_keeps_the_message(
    q: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def always_fail(batch: MessageBatch) -> None:
        raise RuntimeError("poison")

    consumer = q.consumer(script=always_fail, max_retries=2, dead_letter_queue="jobs-dlq")
    await q.producer().send({"doc": "poison"})
    with caplog.at_level(logging.WARNING, logger="edgerag_local.queues"):
        result = await consumer.drain()
    assert consumer.recorder.attempts == [1, 2, 3]  # first delivery + max_retries retries
    assert result.delivered == 3
    if q.backend == "local":  # the dispatcher's counts and log (Miniflare logs in Node)
        assert (result.retried, result.dead_lettered) == (2, 1)
        assert 'to dead letter queue "jobs-dlq" after 3 failed attempts' in caplog.text
    (original_id, _, _) = consumer.recorder.batches[0][0]
    dlq = q.consumer("jobs-dlq")
    await dlq.drain()
    assert dlq.recorder.batches == [[(original_id, {"doc": "poison"}, 1)]]


async def test_default_max_retries_is_three(q: Any) -> None:
    consumer = q.consumer(script=lambda b: b.retryAll(), dead_letter_queue="dlq")
    await q.producer().send("x")
    await consumer.drain()
    assert consumer.recorder.attempts == [1, 2, 3, 4]
    assert await q.backlog("dlq") == 1


async def test_zero_max_retries_dead_letters_after_one_failure(q: Any) -> None:
    consumer = q.consumer(script=lambda b: b.retryAll(), max_retries=0, dead_letter_queue="dlq")
    await q.producer().send("x", contentType="text")
    await consumer.drain()
    assert consumer.recorder.attempts == [1]
    dlq = q.consumer("dlq")
    await dlq.drain()
    assert dlq.bodies == ["x"]


async def test_without_dead_letter_queue_the_message_is_dropped_with_a_warning(
    q: Any, caplog: pytest.LogCaptureFixture
) -> None:
    consumer = q.consumer(script=lambda b: b.messages[0].retry(), max_retries=1)
    await q.producer().send("x")
    with caplog.at_level(logging.WARNING, logger="edgerag_local.queues"):
        result = await consumer.drain()
    assert result.delivered == 2
    if q.backend == "local":  # the dispatcher's counts and log (Miniflare logs in Node)
        assert result.dropped == 1
        assert "Dropped message" in caplog.text and "after 2 failed attempts" in caplog.text
    assert await q.backlog("jobs") == 0


# ---------------------------------------------------------------------------------- durability


@only("local", IN_MEMORY)
async def test_sent_messages_survive_a_restart(q: Any) -> None:
    await q.producer().send(b"\x00bin", contentType="bytes")
    await q.producer().send({"k": "v"}, delaySeconds=30)
    q.reopen()
    consumer = q.consumer()
    await consumer.drain()
    assert [bytes(b) for b in consumer.bodies] == [b"\x00bin"]
    q.advance(30)
    await consumer.drain()
    assert consumer.bodies[-1] == {"k": "v"}


@only("local", IN_MEMORY)
async def test_pending_retries_survive_a_restart_with_their_attempts(q: Any) -> None:
    await q.producer().send("x")
    await q.consumer(script=lambda b: b.retryAll(delaySeconds=10)).drain()
    q.reopen()
    q.advance(10)
    consumer = q.consumer()
    await consumer.drain()
    assert consumer.recorder.attempts == [2]


@only("local", LOCAL_KNOB)
async def test_batch_in_flight_when_the_process_dies_is_redelivered_after_restart(q: Any) -> None:
    """Emulator only: a child process takes a batch, acks one message and dies before returning."""
    child = textwrap.dedent(
        f"""
        import asyncio, os, sys
        from edgerag_local.queues import ConsumerSettings, LocalQueueBroker, QueueDispatcher, producer

        broker = LocalQueueBroker(sys.argv[1], clock=lambda: {NOW!r})

        async def handler(batch):
            batch.messages[0].ack()
            os._exit(3)  # no cleanup, no settle: as if the machine lost power

        async def main():
            await producer(broker, "jobs").sendBatch([{{"body": i}} for i in range(3)])
            await QueueDispatcher(broker, "jobs", ConsumerSettings(), handler).drain()

        asyncio.run(main())
        """
    )
    q.broker.close()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", child, str(q.path), stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await process.communicate()
    assert process.returncode == 3, stderr.decode()
    q.reopen()  # same clock time: only the dead owner's lease release can make them deliverable
    consumer = q.consumer()
    await consumer.drain()
    assert sorted(consumer.bodies) == [0, 1, 2]  # the ack died with the process: at-least-once
    assert consumer.recorder.attempts == [2, 2, 2]


@only("local", LOCAL_KNOB)
async def test_abandoned_lease_expires_and_a_late_settle_is_ignored(q: Any) -> None:
    """Emulator only: a dispatcher in this process hangs; another broker on the file takes over."""
    entered, hang = asyncio.Event(), asyncio.Event()

    async def hang_up(batch: MessageBatch) -> None:
        entered.set()
        await hang.wait()

    await q.producer().send("x")
    stuck = q.consumer(script=hang_up)
    stuck_task = asyncio.create_task(stuck.drain())
    await entered.wait()
    other = q.second_broker()
    try:
        recorder = Recorder()
        rescuer = QueueDispatcher(other, "jobs", ConsumerSettings(), recorder)
        assert (await rescuer.drain()).delivered == 0  # still leased
        q.advance(LEASE)
        assert (await rescuer.drain()).acked == 1
        assert recorder.attempts == [2]
        hang.set()  # the stuck handler returns now; its settle must not resurrect or double-count
        result = await stuck_task
        assert result.acked == 0
        assert (await rescuer.drain()).delivered == 0
    finally:
        other.close()


@only("local", DISPATCHER)
async def test_cancelled_delivery_puts_the_batch_back(q: Any) -> None:
    entered = asyncio.Event()

    async def hang_up(batch: MessageBatch) -> None:
        entered.set()
        await asyncio.Event().wait()  # never set

    await q.producer().send("x")
    stuck = q.consumer(script=hang_up)
    task = asyncio.create_task(stuck.drain())
    await entered.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    consumer = q.consumer()
    await consumer.drain()
    assert consumer.recorder.attempts == [2]


@only("local", LOCAL_KNOB)
async def test_several_brokers_on_one_file_deliver_each_message_once(q: Any) -> None:
    """Emulator only: two brokers (own connections) produce and consume the same queue concurrently."""
    other = q.second_broker()
    try:

        async def pause(batch: MessageBatch) -> None:
            await asyncio.sleep(0)  # let the other dispatcher claim while this batch is in flight

        one, two = Recorder(pause), Recorder(pause)
        first = QueueDispatcher(q.broker, "jobs", ConsumerSettings(max_batch_size=7), one)
        second = QueueDispatcher(other, "jobs", ConsumerSettings(max_batch_size=5), two)
        await asyncio.gather(
            producer(q.broker, "jobs").sendBatch([{"body": f"a{i}"} for i in range(50)]),
            producer(other, "jobs").sendBatch([{"body": f"b{i}"} for i in range(50)]),
        )
        results = await asyncio.gather(first.drain(), second.drain(), first.drain(), second.drain())
        assert sum(r.acked for r in results) == 100
        seen = one.bodies + two.bodies
        assert len(seen) == 100 and len(set(seen)) == 100
        assert one.bodies and two.bodies  # both took part
    finally:
        other.close()


# ------------------------------------------------------------------------------------ settings


def test_consumer_settings_defaults() -> None:
    s = ConsumerSettings()
    assert (s.max_batch_size, s.max_batch_timeout, s.max_retries) == (10, 5.0, 3)
    assert (s.dead_letter_queue, s.retry_delay, s.max_concurrency) == (None, 0, None)


def test_consumer_settings_from_wrangler() -> None:
    s = ConsumerSettings.from_wrangler(
        {
            "queue": "ingest",
            "max_batch_size": 100,
            "max_batch_timeout": 60,
            "max_retries": 100,
            "dead_letter_queue": "ingest-dlq",
            "retry_delay": 43_200,
            "max_concurrency": 250,
        }
    )
    assert s == ConsumerSettings(100, 60, 100, "ingest-dlq", 43_200, 250)
    assert ConsumerSettings.from_wrangler({"queue": "q", "type": "worker", "visibility_timeout_ms": 5}) == (
        ConsumerSettings()
    )


@pytest.mark.parametrize(
    ("table", "named"),
    [
        ({"max_batch_size": 0}, "max_batch_size"),
        ({"max_batch_size": 101}, "max_batch_size"),
        ({"max_batch_size": "3"}, "max_batch_size"),
        ({"max_batch_size": 2.5}, "max_batch_size"),
        ({"max_batch_timeout": 61}, "max_batch_timeout"),
        ({"max_batch_timeout": -1}, "max_batch_timeout"),
        ({"max_retries": 101}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"retry_delay": 43_201}, "retry_delay"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_concurrency": 251}, "max_concurrency"),
        ({"dead_letter_queue": 5}, "dead_letter_queue"),
        ({"dead_letter_queue": ""}, "dead_letter_queue"),
        ({"queue": 5}, "queue"),
        ({"type": "http_pull"}, "type"),
        ({"max_wait": 5}, "max_wait"),
    ],
)
def test_consumer_settings_validation_names_the_key(table: dict[str, Any], named: str) -> None:
    with pytest.raises(ConsumerConfigError, match=named):
        ConsumerSettings.from_wrangler({"queue": "ingest", **table} if "queue" not in table else table)


@only("local", DISPATCHER)
def test_dispatcher_refuses_a_queue_that_is_its_own_dead_letter_queue(q: Any) -> None:
    with pytest.raises(ValueError, match="own dead_letter_queue"):
        QueueDispatcher(q.broker, "jobs", ConsumerSettings(dead_letter_queue="jobs"), Recorder())


def test_dispatcher_checks_settings_against_lowered_limits(small: Harness) -> None:
    """Emulator only: consumer limits come from the broker's QueueLimits too."""
    with pytest.raises(ConsumerConfigError, match="max_batch_size"):
        QueueDispatcher(small.broker, "jobs", ConsumerSettings(max_batch_size=6), Recorder())


@only("local", DISPATCHER)
async def test_metrics_report_the_backlog(q: Any) -> None:
    assert q.broker.metrics("jobs") == {"backlogCount": 0, "backlogBytes": 0, "oldestMessageTimestamp": None}
    await q.producer().send("abc", contentType="text")
    q.advance(1)
    await q.producer().send("de", contentType="text", delaySeconds=60)
    metrics = q.broker.metrics("jobs")
    assert (metrics.backlogCount, metrics.backlogBytes) == (2, 5)
    assert metrics.oldestMessageTimestamp == datetime.fromtimestamp(NOW, tz=UTC).replace(tzinfo=None)
