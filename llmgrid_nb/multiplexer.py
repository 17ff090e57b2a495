"""The multiplexer: fans one prompt out to every source on the engine loop and merges events.

Per source it enforces the time limits (total, first token, stall), retries failures that
happen before the first content chunk (connect errors, 429 honouring Retry-After, 5xx) with
exponential backoff and jitter, and never retries after content arrived: such a failure ends
the source with a fatal Error event that keeps the partial text. Every event is dispatched, in
arrival order, to the recorder and the sinks; one source failing never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Sequence
from contextlib import aclosing
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import ProviderError, StreamTimeout
from .events import CONTENT_KINDS, Error, Event, Status
from .gc_pause import frozen_heap
from .metrics import ChunkRecorder
from .sources.base import Prompt, Source, StreamContext, choice_name

__all__ = ["Multiplexer", "PeerView", "RunOptions", "Sink"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunOptions:
    """Time limits (seconds), retry policy and concurrency of one run."""

    connect_timeout: float = 10.0
    first_token_timeout: float | None = 60.0
    stall_timeout: float | None = 30.0
    timeout: float | None = 300.0
    retries: int = 2
    max_concurrency: int = 32
    stall_threshold: float = 1.0
    backoff_base: float = 0.5
    backoff_max: float = 8.0
    resume: bool = False
    #: Continuations allowed per stream; None: the same budget as ``retries``.
    resume_attempts: int | None = None

    @property
    def resume_budget(self) -> int:
        """How many times one stream may be resumed."""
        return self.retries if self.resume_attempts is None else self.resume_attempts


class Sink(Protocol):
    """Consumes a run's events on the engine loop; keep ``on_event`` cheap.

    A sink that hands work to another thread may also define ``async def drain()``: the run
    awaits it after ``on_finish``, so that work is done when the run is."""

    def on_start(self, mux: Multiplexer) -> None: ...

    def on_event(self, event: Event) -> None: ...

    def on_finish(self, mux: Multiplexer) -> None: ...


class PeerView:
    """What a synthesising source may see of the other streams of its run."""

    def __init__(self, mux: Multiplexer, exclude: str) -> None:
        self._mux = mux
        self._exclude = exclude

    async def wait(self) -> None:
        """Wait until every other stream has finished, failed or been cancelled."""
        tasks = {t for n, t in self._tasks() if t is not None}
        if tasks:
            await asyncio.wait(tasks)

    async def wait_next(self, seen: set[str]) -> set[str]:
        """Wait until some stream not in ``seen`` has ended; return the names of all ended ones."""
        pending = {t for n, t in self._tasks() if n not in seen and t is not None and not t.done()}
        if pending:
            await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        return {n for n, t in self._tasks() if t is None or t.done()}

    def _tasks(self) -> list[tuple[str, asyncio.Task[None] | None]]:
        """(name, the task streaming it) of every other pane; a choice's pane has its stream's."""
        return [(n, (s.leader or s).task) for n, s in self._mux.slots.items() if n != self._exclude]

    @property
    def names(self) -> list[str]:
        """The other streams' names, in pane order."""
        return [n for n in self._mux.slots if n != self._exclude]

    def answers(self, only: set[str] | None = None) -> list[tuple[str, str, str, str | None]]:
        """(name, status, text, error) of every other stream (or those in ``only``), in pane order."""
        out = []
        for name, slot in self._mux.slots.items():
            if name != self._exclude and (only is None or name in only):
                facts = self._mux.recorder.streams[name]
                out.append((name, slot.status, "".join(slot.text), facts.error))
        return out


class _Slot:
    """The multiplexer's state for one source in one run."""

    __slots__ = ("name", "source", "ctx", "task", "text", "reasoning", "got_content", "in_request",
                 "timeout_reason", "stop_requested", "t_start", "status", "followers", "leader")

    def __init__(self, name: str, source: Source, ctx: StreamContext) -> None:
        self.name = name
        self.source = source
        self.ctx = ctx
        self.task: asyncio.Task[None] | None = None
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.got_content = False
        self.in_request = False
        self.timeout_reason: str | None = None
        self.stop_requested = False
        self.t_start = 0.0
        self.status = "queued"
        #: The panes of this stream's other choices (n > 1): no task of their own, fed by this one.
        self.followers: list[_Slot] = []
        #: For such a pane, the slot whose stream feeds it.
        self.leader: _Slot | None = None

    @property
    def group(self) -> list[_Slot]:
        """This slot and the panes of its stream's other choices."""
        return [self, *self.followers] if self.followers else [self]

    @property
    def stream_got_content(self) -> bool:
        """Whether any choice of this stream got content (then it is never retried)."""
        return self.got_content or any(f.got_content for f in self.followers)


def unique_names(sources: Sequence[Source]) -> list[str]:
    """Source labels, with ``#2``, ``#3`` ... appended to repeats."""
    seen: dict[str, int] = {}
    names = []
    for src in sources:
        base = src.name
        seen[base] = seen.get(base, 0) + 1
        names.append(base if seen[base] == 1 else f"{base}#{seen[base]}")
    return names


class Multiplexer:
    """One run: the sources, their events in arrival order, and the recorder."""

    def __init__(self, run_id: str, prompt: Prompt, sources: Sequence[Source], options: RunOptions,
                 pool: Any, sinks: Sequence[Sink] = ()) -> None:
        self.run_id = run_id
        self.prompt = prompt
        self.options = options
        self.events: list[Event] = []
        self.recorder = ChunkRecorder(run_id)
        self.sinks = list(sinks)
        self.t0 = time.monotonic()
        self.t0_wall = time.time()
        self.started = False
        self.finished = False
        self.cancelled = False
        self._pool = pool
        self.slots: dict[str, _Slot] = {}
        for name, src in zip(unique_names(sources), sources):
            slot = self.slots[name] = _Slot(name, src, StreamContext(name, 0.0, pool, options.connect_timeout))
            self.recorder.add_stream(name, src.model, src.route)
            count = getattr(src, "choice_count", None)
            for i in range(1, count(prompt) if count is not None else 1):
                follower = _Slot(choice_name(name, i), src, slot.ctx)
                follower.leader = slot
                slot.followers.append(follower)
                self.slots[follower.name] = follower
                self.recorder.add_stream(follower.name, src.model, src.route)
        self._semaphores: dict[str, asyncio.Semaphore] = {}

    # -- the hot path ---------------------------------------------------------------------
    def _emit(self, ev: Event) -> None:
        self.events.append(ev)
        self.recorder.record(ev)
        for sink in self.sinks:
            try:
                sink.on_event(ev)
            except Exception:  # a broken sink must not break measurement
                log.exception("sink %r failed on %s", sink, ev.kind)

    def now(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self.t0

    def _status(self, slot: _Slot, state: str, detail: str = "") -> None:
        """A lifecycle change of ``slot``; its other choices' panes follow, except into streaming."""
        slot.status = state
        t = self.now()
        self._emit(Status(slot.name, t, state, detail))
        if slot.followers and state != "streaming":
            for follower in slot.followers:
                follower.status = state
                self._emit(Status(follower.name, t, state, detail))

    # -- running ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Prepare every source, start the clock, stream all of them, and finish."""
        await self._prepare()
        with frozen_heap():  # no full GC pass over the whole kernel's heap mid-stream
            await self._stream()

    async def _stream(self) -> None:
        self.t0 = time.monotonic()
        self.t0_wall = time.time()
        streams = [slot for slot in self.slots.values() if slot.leader is None]
        for slot in streams:
            slot.ctx = StreamContext(slot.name, self.t0, self._pool, self.options.connect_timeout)
            if getattr(slot.source, "waits_for_peers", False):
                slot.ctx.peers = PeerView(self, slot.name)
            for follower in slot.followers:
                follower.ctx = slot.ctx
        self.started = True
        for sink in self.sinks:
            sink.on_start(self)
        for slot in streams:
            self._status(slot, "queued")
        if not self.cancelled:
            for slot in streams:
                slot.task = asyncio.create_task(self._drive(slot), name=f"llmgrid:{slot.name}")
        watchdog = asyncio.create_task(self._watchdog(), name="llmgrid:watchdog")
        try:
            tasks = [s.task for s in self.slots.values() if s.task is not None]
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            for slot in streams:
                if slot.task is None:
                    self._status(slot, "cancelled")
        finally:
            watchdog.cancel()
            await asyncio.gather(watchdog, return_exceptions=True)
            self.finished = True
            for sink in self.sinks:
                try:
                    sink.on_finish(self)
                except Exception:
                    log.exception("sink %r failed at finish", sink)
            for sink in self.sinks:
                drain = getattr(sink, "drain", None)
                if drain is not None:
                    try:
                        await drain()
                    except Exception:
                        log.exception("sink %r failed to drain", sink)

    async def _prepare(self) -> None:
        """Let sources do slow set-up (start the simulator, import litellm) off the clock."""
        hooks = [s.source.prepare() for s in self.slots.values()
                 if s.leader is None and hasattr(s.source, "prepare")]
        results = await asyncio.gather(*hooks, return_exceptions=True)
        for res in results:
            if isinstance(res, BaseException):
                log.warning("a source failed to prepare: %s", res)
        # Create pooled clients now: a first client costs 30-40 ms, which would otherwise land
        # inside the first stream's measured latency and delay every other source's start.
        for slot in self.slots.values():
            base = getattr(slot.source, "base_url", None)
            if isinstance(base, str) and base.startswith(("http://", "https://")):
                self._pool.client_for(base)

    def cancel(self, name: str | None = None) -> None:
        """Stop one source, or all; partial text and metrics are kept. Engine thread only."""
        if name is None:
            self.cancelled = True
        for slot in self.slots.values():
            if name is None or slot.name == name:
                slot = slot.leader or slot  # one choice's pane stops with its stream
                slot.stop_requested = True
                if slot.task is not None and not slot.task.done():
                    slot.task.cancel()

    def _semaphore(self, host: str | None) -> asyncio.Semaphore | None:
        if host is None:
            return None
        sem = self._semaphores.get(host)
        if sem is None:
            sem = self._semaphores[host] = asyncio.Semaphore(self.options.max_concurrency)
        return sem

    async def _drive(self, slot: _Slot) -> None:
        facts = self.recorder.streams[slot.name]
        slot.t_start = self.now()
        try:
            sem = self._semaphore(slot.source.host)
            if sem is not None:
                await sem.acquire()
            try:
                await self._attempts(slot, facts)
            finally:
                if sem is not None:
                    sem.release()
        except asyncio.CancelledError:
            slot.in_request = False
            if slot.timeout_reason is not None and not slot.stop_requested:
                self._fail(slot, StreamTimeout(slot.timeout_reason, kind="timeout"))
            else:
                self._status(slot, "cancelled", "stopped by the user")
        except Exception as exc:  # a bug in a source: show it in its pane, keep the others going
            log.exception("source %s raised", slot.name)
            self._fail(slot, ProviderError(f"internal error: {type(exc).__name__}: {exc}", kind="internal"))

    async def _attempts(self, slot: _Slot, facts: Any) -> None:
        opts = self.options
        attempt = resumes = 0
        prompt = self.prompt
        while True:
            facts.attempts = attempt + resumes + 1
            if resumes:
                detail = f"resuming after {len(''.join(slot.text))} characters"
            else:
                detail = f"attempt {attempt + 1}" if attempt else ""
            self._status(slot, "connecting", detail)
            try:
                slot.in_request = True
                await self._consume(slot, prompt)
                self._status(slot, "done")
                return  # the finally below records the request's timings
            except ProviderError as exc:
                failure = exc
            except asyncio.CancelledError:
                if not self._stalled(slot):
                    raise
                task = asyncio.current_task()
                if task is not None and hasattr(task, "uncancel"):
                    task.uncancel()
                failure = StreamTimeout(slot.timeout_reason or "stalled", retryable=True, kind="timeout")
                slot.timeout_reason = None
            finally:
                slot.in_request = False
                self._record_request(slot, facts)
            if slot.stream_got_content:
                # Resume where the API continues a prefill, and for one choice only.
                resumable = getattr(slot.source, "resumable", True) and not slot.followers
                if not (opts.resume and resumable and resumes < opts.resume_budget and failure.retryable
                        and not slot.stop_requested):
                    self._fail(slot, failure)
                    return
                resumes += 1
                facts.resumed = resumes
                partial = "".join(slot.text)
                self._emit(Error(slot.name, self.now(), f"stream broke ({failure.message}); resuming",
                                 recoverable=True, partial_text=partial, status_code=failure.status_code,
                                 fatal=False, error_type="resumed"))
                slot.ctx.keep_origin = True
                prompt = self.prompt.continued(partial)
                if failure.retry_after is not None or resumes > 1:  # the server asked to wait, or it keeps failing
                    await asyncio.sleep(min(opts.backoff_max, failure.retry_after or opts.backoff_base * 2 ** (resumes - 2)))
                continue
            delay = self._retry_delay(slot, failure, attempt)
            if delay is None:
                self._fail(slot, failure)
                return
            self._emit(Error(slot.name, self.now(), f"attempt {attempt + 1} failed: {failure.message}",
                             recoverable=True, status_code=failure.status_code, fatal=False,
                             error_type=failure.kind))
            self._status(slot, "retrying", f"retry {attempt + 1}/{opts.retries} in {delay:.1f} s")
            await asyncio.sleep(delay)
            attempt += 1

    def _stalled(self, slot: _Slot) -> bool:
        """True when the watchdog stopped this stream for a stall (not a total or first-token
        timeout, not a user stop): like a reset, it may be retried before the first token and
        resumed after it."""
        return ((slot.timeout_reason or "").startswith("stalled") and not slot.stop_requested
                and not self.cancelled)

    async def _consume(self, slot: _Slot, prompt: Prompt) -> None:
        """Stream one request of ``slot``, dispatching its events; raises ProviderError on failure."""
        async with aclosing(slot.source.stream(prompt, slot.ctx)) as events:
            async for ev in events:
                kind = ev.kind
                if kind in CONTENT_KINDS:
                    # Another choice's pane (n > 1) gets its own text; the usual case is one pane.
                    pane = slot if ev.source == slot.name else self.slots[ev.source]
                    if not pane.got_content:
                        pane.got_content = True
                        self._status(pane, "streaming")
                    if kind == "token" or kind == "final_synthesis":
                        pane.text.append(ev.text)  # type: ignore[union-attr]
                    elif kind == "reasoning":
                        pane.reasoning.append(ev.text)  # type: ignore[union-attr]
                elif kind == "status":
                    self._emit(ev)
                    self._status_of_stream(slot, ev)  # type: ignore[arg-type]
                    continue
                self._emit(ev)

    def _status_of_stream(self, slot: _Slot, ev: Status) -> None:
        slot.status = ev.state
        for follower in slot.followers:
            follower.status = ev.state
            self._emit(Status(follower.name, ev.t_s, ev.state, ev.detail))

    def _record_request(self, slot: _Slot, facts: Any) -> None:
        for pane in slot.group:
            pane_facts = self.recorder.streams[pane.name]
            pane_facts.t_request = slot.ctx.t_request
            pane_facts.t_first_message = slot.ctx.t_first_message
            pane_facts.request_id = slot.ctx.request_id
            pane_facts.attempts = facts.attempts

    def _retry_delay(self, slot: _Slot, exc: ProviderError, attempt: int) -> float | None:
        """Seconds to wait before retrying, or None when retrying is unsafe or pointless."""
        opts = self.options
        if not exc.retryable or slot.stream_got_content or attempt >= opts.retries or slot.stop_requested:
            return None
        delay = min(opts.backoff_max, opts.backoff_base * 2 ** attempt) * random.uniform(0.5, 1.5)
        if exc.retry_after is not None:
            delay = max(exc.retry_after, 0.0)
        if opts.timeout is not None and self.now() - slot.t_start + delay >= opts.timeout:
            return None
        return delay

    def _fail(self, slot: _Slot, exc: ProviderError) -> None:
        for pane in slot.group:
            self._emit(Error(pane.name, self.now(), exc.message, recoverable=exc.retryable,
                             partial_text="".join(pane.text), status_code=exc.status_code,
                             fatal=True, error_type=exc.kind))
        self._status(slot, "failed", exc.message)

    async def _watchdog(self) -> None:
        """Enforce total, first-token and stall limits by cancelling the offending stream."""
        opts = self.options
        limits = [x for x in (opts.timeout, opts.first_token_timeout, opts.stall_timeout) if x]
        tick = min([0.1] + [x / 20 for x in limits])
        while True:
            await asyncio.sleep(tick)
            now = self.now()
            for slot in self.slots.values():
                task = slot.task
                if task is None or task.done() or slot.timeout_reason or slot.stop_requested:
                    continue
                reason = None
                start: float | None = slot.t_start
                if slot.ctx.peers is not None:  # a synthesiser's clock starts with its own request
                    start = slot.ctx.t_request
                if opts.timeout and start is not None and now - start > opts.timeout:
                    reason = f"timed out: no complete answer within {opts.timeout:g} s"
                elif slot.in_request and slot.ctx.t_request is not None:
                    if (opts.first_token_timeout and not slot.stream_got_content
                            and now - slot.ctx.t_request > opts.first_token_timeout):
                        reason = f"timed out: no first token within {opts.first_token_timeout:g} s"
                    elif opts.stall_timeout and now - slot.ctx.last_activity > opts.stall_timeout:
                        reason = f"stalled: no data for {opts.stall_timeout:g} s"
                if reason:
                    slot.timeout_reason = reason
                    task.cancel()
