"""Queue consumers of the local host, each worker's on a thread of its own with its own event loop.

At the edge a queue consumer runs in its own isolate: however long a batch computes, the gateway's
isolate keeps answering. In one local process the same separation needs a second event loop, or a
CPU-bound batch (extracting and chunking a large document) holds the serving loop and ``/health``
waits for it. :class:`ConsumerThread` runs every dispatcher of one consumer worker (its queue and
its dead-letter queue) on a daemon thread with a private loop; CPython's GIL switch interval (5 ms)
then hands the serving thread the interpreter even while a batch runs pure-Python code.

Why a thread and not a process: the emulators keep state in memory (the Vectorize index's slabs),
which a second process would not see. Every binding the consumer reaches is therefore safe to call
from two threads: D1 serialises calls on its engine lock, KV and R2 open a connection per call, the
queue broker and Vectorize index take a lock per call, and the AI models load once under a lock and
are read-only afterwards. ``ctx.waitUntil`` work started by a batch belongs to the consumer's loop
and is awaited there before the thread ends.

To run another kind of background handler (cron triggers, say), give it the same shape: a coroutine
that runs until its ``stop`` event is set, started with :meth:`ConsumerThread.start`.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence

from edgerag_local.queues import QueueDispatcher

__all__ = ["ConsumerThread"]

log = logging.getLogger("edgerag.host")


class ConsumerThread:
    """Runs ``dispatchers`` (one worker's consumers) on a private event loop in a daemon thread."""

    def __init__(
        self,
        worker: str,
        dispatchers: Sequence[QueueDispatcher],
        drain: Callable[[], Awaitable[None]],
    ) -> None:
        """``drain`` waits for the ``ctx.waitUntil`` work started on the calling loop."""
        self.worker = worker
        self._dispatchers = list(dispatchers)
        self._drain = drain
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()  # bound to self._loop on its first wait, set only through it
        self._failures: list[BaseException] = []
        self._exit_lock = threading.Lock()
        self._finished = False
        self._on_exit: list[Callable[[], object]] = []
        self._thread = threading.Thread(target=self._main, name=f"edgerag-consumer-{worker}", daemon=True)

    def __repr__(self) -> str:
        return f"ConsumerThread({self.worker!r}, {self._dispatchers!r})"

    def start(self) -> None:
        self._thread.start()

    async def stop(self) -> None:
        """Let running batches finish, wait for the thread, then raise what a dispatcher raised."""
        if self._thread.ident is None:
            return  # never started
        # The thread tells this loop when it ends: the serving loop keeps answering while a batch
        # finishes, and a second Ctrl-C can cancel the wait (a join on an executor thread could not).
        ended = asyncio.Event()
        caller = asyncio.get_running_loop()
        with self._exit_lock:
            if self._finished:
                ended.set()
            else:
                self._on_exit.append(lambda: caller.call_soon_threadsafe(ended.set))
                self._loop.call_soon_threadsafe(self._stop.set)  # not closed yet: see _main
        await ended.wait()
        self._thread.join()
        if self._failures:
            raise self._failures[0]

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # an escaped error would only reach threading.excepthook
            log.exception("%s: consumer thread failed", self.worker)
            self._failures.append(exc)
        finally:
            with self._exit_lock:  # before close(), so stop() never schedules on a closed loop
                self._finished = True
            self._loop.run_until_complete(self._loop.shutdown_asyncgens())
            self._loop.close()
            with self._exit_lock:
                callbacks, self._on_exit = self._on_exit, []
            for callback in callbacks:
                callback()

    async def _serve(self) -> None:
        tasks = [asyncio.create_task(d.run_forever(self._stop)) for d in self._dispatchers]
        try:
            for task in asyncio.as_completed(tasks):
                try:
                    await task
                except Exception as exc:  # a broker failure is a bug: log it now, raise it on stop
                    log.exception("%s: queue dispatcher stopped", self.worker)
                    self._failures.append(exc)
        finally:
            await self._drain()
