"""The engine: one event loop in a dedicated daemon thread that runs every stream.

Owning the loop means ``run()`` can block correctly even where the caller's loop is already
running (a notebook kernel), chunk timestamps are taken on a loop that a busy kernel thread
does not delay, and widget messages from the kernel keep flowing (no nest-asyncio).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import threading
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from .clients import ClientPool
from .errors import ProviderError

__all__ = ["ISOLATED_ENGINE", "Engine", "get_engine", "relay_isolated"]

T = TypeVar("T")


class Engine:
    """An asyncio loop running forever in a thread, plus the pooled HTTP clients it owns."""

    def __init__(self, name: str = "llmgrid-engine") -> None:
        self.loop = asyncio.new_event_loop()
        self.pool = ClientPool()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()
        self._ready.wait()

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.call_soon(self._ready.set)
        self.loop.run_forever()

    @property
    def in_engine_thread(self) -> bool:
        """True when called from the engine's own thread (blocking there would deadlock)."""
        return threading.current_thread() is self._thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule a coroutine on the engine loop from any thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call_soon(self, fn: Any, *args: Any) -> None:
        """Call ``fn(*args)`` on the engine loop, thread-safely."""
        self.loop.call_soon_threadsafe(fn, *args)

    def shutdown(self, timeout: float = 2.0) -> None:
        """Cancel what still runs, close the HTTP clients and stop the loop."""
        if not self.loop.is_running():
            return

        async def _close() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.pool.aclose()

        try:
            self.submit(_close()).result(timeout)
        except (concurrent.futures.TimeoutError, RuntimeError):
            pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout)


_engines: dict[str, Engine] = {}
_engine_lock = threading.Lock()


def _forget_engines_after_fork() -> None:
    """A forked child inherits the engines but not their threads: it starts its own on first use
    (``multiprocessing`` with fork, the Linux default before Python 3.14, would hang otherwise)."""
    global _engine_lock
    _engines.clear()
    _engine_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_engines_after_fork)


def get_engine(name: str = "llmgrid-engine") -> Engine:
    """A process-wide engine by name, started on first use and stopped at interpreter exit.

    The default one runs every stream. Sources whose client library may block its loop
    (LiteLLM's first calls block for up to ~0.6 s, measured here) run on a second one through
    ``relay_isolated``, so they cannot delay the other streams' timestamps.
    """
    with _engine_lock:
        engine = _engines.get(name)
        if engine is None:
            engine = _engines[name] = Engine(name)
            atexit.register(engine.shutdown)
        return engine


#: The engine for client libraries that block their loop (LiteLLM): streams relayed from it
#: by ``relay_isolated`` cannot delay the timestamps of the streams on the default engine.
ISOLATED_ENGINE = "llmgrid-litellm"


async def relay_isolated(make: Callable[[], AsyncIterator[T]], *, engine: str = ISOLATED_ENGINE) -> AsyncIterator[T]:
    """Run the async iterator ``make()`` on another engine's loop and yield its items here.

    Exceptions raised there are re-raised here (a cancellation there as a ProviderError, so it
    is not mistaken for this task's own); closing this generator cancels the producer.
    """
    here = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    end = object()

    async def produce() -> None:
        try:
            async for item in make():
                here.call_soon_threadsafe(queue.put_nowait, item)
            here.call_soon_threadsafe(queue.put_nowait, end)
        except BaseException as exc:  # relayed, re-raised on the consuming side
            here.call_soon_threadsafe(queue.put_nowait, exc)

    future = get_engine(engine).submit(produce())
    try:
        while True:
            item = await queue.get()
            if item is end:
                return
            if isinstance(item, asyncio.CancelledError):  # the far side was cancelled, not this task
                raise ProviderError(f"the stream on {engine} was cancelled", kind="cancelled")
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        future.cancel()
