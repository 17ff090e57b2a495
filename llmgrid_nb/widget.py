"""The anywidget grid: synced traits, and a sink that streams throttled deltas to it.

Kernel -> browser traffic follows one small versioned envelope (mirrored in
``js/src/protocol.js``, fixtures in ``js/test/fixtures/messages.json``):

- traits ``panes`` (display order), ``snapshot`` (full state of every pane, refreshed when a
  pane ends and when the run ends, so a re-opened notebook or a second view shows everything)
  and ``run`` (run id, prompt, status, elapsed, total tokens);
- custom messages ``{"v": 1, "type": "delta", "seq", "panes": {id: delta}, "run"}`` carrying
  only appended text with its offset (``"text": [offset, appended]``), so a repeated or missed
  delta is detected instead of corrupting the pane.

The sink coalesces every event between flushes and flushes at most ``rate`` times a second
with a true throttle: a leading flush when idle, a trailing flush always scheduled while
anything is pending, never a debounce. When a stream ends, its full state goes out once as a
delta with offset 0 (idempotent: the view appends only what it lacks, which also heals a
missed delta); the ``snapshot`` trait follows at most once a second and at the run's end.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from .errors import ConfigError
from .events import CONTENT_KINDS, Event

if TYPE_CHECKING:
    from .multiplexer import Multiplexer

__all__ = ["PROTOCOL_VERSION", "GridWidget", "WidgetSink", "bundle_path"]

log = logging.getLogger(__name__)
PROTOCOL_VERSION = 1
STATIC = Path(__file__).parent / "static"
_ENDED = frozenset({"done", "failed", "cancelled"})


def bundle_path() -> Path:
    """The built widget bundle; a clear error if the JS was never built."""
    path = STATIC / "widget.js"
    if not path.is_file():
        raise ConfigError("the widget's JavaScript bundle is missing: run `make setup` "
                          "(or `cd js && npm ci && npm run build`), or use --no-widget")
    return path


class GridWidget(anywidget.AnyWidget):
    """The panes of one run, rendered by ``js/src/index.js``."""

    panes = traitlets.List(traitlets.Dict()).tag(sync=True)
    snapshot = traitlets.Dict().tag(sync=True)
    run = traitlets.Dict().tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        # The bundle's text, not its Path: anywidget reads a Path only when it is a class
        # attribute, and an instance attribute would send the path itself as the module.
        self._esm = bundle_path().read_text(encoding="utf-8")
        css = STATIC / "widget.css"
        if css.is_file():
            self._css = css.read_text(encoding="utf-8")
        super().__init__(**kwargs)
        self._stop_handler: Any = None
        self.on_msg(self._handle_message)

    def on_stop(self, handler: Any) -> None:
        """Call ``handler(pane_id or None)`` when a Stop button is clicked."""
        self._stop_handler = handler

    def _handle_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        # May run on a comm thread (ipykernel subshells): keep it trivial and thread-safe.
        if (isinstance(content, dict) and content.get("v") == PROTOCOL_VERSION
                and content.get("type") == "stop" and self._stop_handler is not None):
            pane = content.get("pane")
            self._stop_handler(pane if isinstance(pane, str) else None)

    def __repr__(self) -> str:
        return f"GridWidget(run_id={self.run.get('run_id', '')!r}, panes={len(self.panes)})"


_UNSENT = object()


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


class _Pane:
    """The sink's running copy of one pane, plus what is pending for the next delta."""

    __slots__ = ("name", "status", "text", "text_len", "reasoning", "reasoning_len", "tool_calls", "results",
                 "analysis", "error", "n_chunks", "tokens", "usage_tokens", "t_first", "t_last",
                 "pending", "dirty_status", "dirty_metrics", "dirty_error", "sent_metrics")

    def __init__(self, name: str) -> None:
        self.name = name
        self.status = "queued"
        self.text: list[str] = []
        self.text_len = 0
        self.reasoning: list[str] = []
        self.reasoning_len = 0
        self.tool_calls: list[dict[str, str]] = []
        self.results: list[dict[str, str]] = []
        self.analysis: list[str] = []
        self.error: dict[str, Any] | None = None
        self.n_chunks = 0
        self.tokens = 0
        self.usage_tokens: int | None = None
        self.t_first: float | None = None
        self.t_last: float | None = None
        self.pending: dict[str, list[Any]] = {}
        self.dirty_status = False
        self.dirty_metrics = False
        self.dirty_error = False
        self.sent_metrics: dict[str, Any] = {}


class _Sender:
    """Applies a sink's widget updates in order on a thread of its own.

    Serialising, signing and queueing a comm message takes about 1 ms for a 20 KB delta and up to
    6 ms for a snapshot (measured in a kernel, 100 panes). Done on the engine loop, that delayed
    reading the sockets, so chunks were stamped late: p99 arrival lag 9-51 ms instead of < 5 ms.
    """

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def submit(self, update: Callable[[], None]) -> None:
        """Queue ``update`` to run after every update queued before it."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="llmgrid-widget-sender", daemon=True)
            self._thread.start()
        self._queue.put(update)

    def close(self, timeout: float = 10.0) -> bool:
        """Wait until every queued update has been applied, then stop. False if that timed out."""
        if self._thread is None:
            return True
        self._queue.put(None)
        self._thread.join(timeout)
        done = not self._thread.is_alive()
        self._thread = None
        return done

    def _work(self) -> None:
        while (update := self._queue.get()) is not None:
            try:
                update()
            except Exception:  # a closed comm must not break the run
                log.debug("widget update not sent", exc_info=True)


class WidgetSink:
    """Feeds a GridWidget from a run's events, throttled: deltas are built on the engine loop and
    sent from a thread of their own, so the widget never delays the timestamps of the run."""

    def __init__(self, widget: GridWidget, *, rate: float = 25.0, stoppable: bool = True) -> None:
        self.widget = widget
        self.interval = 1.0 / rate
        self.stoppable = stoppable
        self.seq = 0
        self.messages_sent = 0
        self._mux: Multiplexer | None = None
        self._panes: dict[str, _Pane] = {}
        self._last_flush = -1e9
        self._timer: asyncio.TimerHandle | None = None
        self._ended: set[str] = set()
        self._snapshot_due = False
        self._last_snapshot = -1e9
        self._sender = _Sender()

    # -- Sink protocol ----------------------------------------------------------------------
    def on_start(self, mux: Multiplexer) -> None:
        self._mux = mux
        self._panes = {name: _Pane(name) for name in mux.slots}
        self.widget.panes = [
            {"id": name, "name": name, "model": slot.source.model, "route": slot.source.route,
             "kind": getattr(slot.source, "pane_kind", "model")}
            for name, slot in mux.slots.items()
        ]
        self.widget.run = self._run_state("running")
        self.widget.snapshot = {name: self._state(name) for name in self._panes}

    def on_event(self, ev: Event) -> None:
        pane = self._panes.get(ev.source)
        if pane is None:
            return
        kind = ev.kind
        if kind == "token" or kind == "final_synthesis":
            self._append(pane, "text", ev.text)  # type: ignore[union-attr]
        elif kind == "reasoning":
            self._append(pane, "reasoning", ev.text)  # type: ignore[union-attr]
        elif kind == "tool_call":
            item = {"id": ev.id, "name": ev.name, "arguments": ev.arguments}  # type: ignore[union-attr]
            self._append_item(pane, "tool_calls", item)
        elif kind == "search_result":
            item = {"title": ev.title, "url": ev.url, "description": ev.description,  # type: ignore[union-attr]
                    "age": ev.age}  # type: ignore[union-attr]
            self._append_item(pane, "results", item)
        elif kind == "interim_analysis":
            self._append_item(pane, "analysis", ev.text)  # type: ignore[union-attr]
        elif kind == "status":
            pane.status = ev.state  # type: ignore[union-attr]
            pane.dirty_status = True
            if pane.status in _ENDED:
                self._ended.add(ev.source)
        elif kind == "error":
            if ev.fatal:  # type: ignore[union-attr]
                pane.error = {"message": ev.message, "recoverable": ev.recoverable}  # type: ignore[union-attr]
                pane.dirty_error = True
        elif kind == "usage":
            if ev.output_tokens is not None:  # type: ignore[union-attr]
                pane.usage_tokens = ev.output_tokens  # type: ignore[union-attr]
                pane.dirty_metrics = True
        if kind in CONTENT_KINDS:
            pane.n_chunks += 1
            pane.tokens += 1
            if pane.t_first is None:
                pane.t_first = ev.t_s
            pane.t_last = ev.t_s
            pane.dirty_metrics = True
        self._schedule()

    def on_finish(self, mux: Multiplexer) -> None:
        self._cancel_timer()
        self._flush()
        self._push_snapshot()
        run = self._run_state("cancelled" if mux.cancelled else "done")
        self._set_trait("run", run)

    async def drain(self) -> None:
        """Wait (off the loop) for the last updates, so the view is final when the run is."""
        if not await asyncio.to_thread(self._sender.close):
            log.warning("the widget's last updates were still queued after 10 s")

    # -- accumulation -----------------------------------------------------------------------
    @staticmethod
    def _append(pane: _Pane, field: str, text: str) -> None:
        pending = pane.pending.get(field)
        if pending is None:
            offset = pane.text_len if field == "text" else pane.reasoning_len
            pending = pane.pending[field] = [offset]
        pending.append(text)
        if field == "text":
            pane.text.append(text)
            pane.text_len += len(text)
        else:
            pane.reasoning.append(text)
            pane.reasoning_len += len(text)

    @staticmethod
    def _append_item(pane: _Pane, field: str, item: Any) -> None:
        items = getattr(pane, field)
        pending = pane.pending.get(field)
        if pending is None:
            pending = pane.pending[field] = [len(items)]
        pending.append(item)
        items.append(item)

    # -- throttled flushing -------------------------------------------------------------------
    def _schedule(self) -> None:
        if self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last_flush + self.interval - time.monotonic())
        self._timer = loop.call_later(delay, self._on_timer)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _on_timer(self) -> None:
        self._timer = None
        self._flush()

    def _flush(self) -> None:
        now = time.monotonic()
        self._last_flush = now
        ended, self._ended = self._ended, set()
        panes: dict[str, dict[str, Any]] = {}
        for name, pane in self._panes.items():
            delta = self._delta(pane)
            if name in ended:
                delta.update(self._final(pane))
            if delta:
                panes[name] = delta
        if panes:
            self.seq += 1
            message = {"v": PROTOCOL_VERSION, "type": "delta", "seq": self.seq, "panes": panes,
                       "run": {"elapsed_s": round(self._elapsed(), 3), "total_tokens": self._total_tokens()}}
            widget = self.widget
            self._sender.submit(lambda: widget.send(message))
            self.messages_sent += 1
        # The snapshot trait (for views opened later) carries every pane's full text, so it is
        # refreshed at most once a second while streams end, and always at the end of the run.
        self._snapshot_due |= bool(ended)
        if self._snapshot_due and now - self._last_snapshot >= 1.0:
            self._push_snapshot()

    def _push_snapshot(self) -> None:
        self._snapshot_due = False
        self._last_snapshot = time.monotonic()
        self._set_trait("snapshot", {name: self._state(name) for name in self._panes})

    def _set_trait(self, name: str, value: Any) -> None:
        """Set a synced trait from the sender thread, after the deltas queued before it."""
        widget = self.widget
        self._sender.submit(lambda: setattr(widget, name, value))

    @staticmethod
    def _final(pane: _Pane) -> dict[str, Any]:
        """A pane's full state as an idempotent delta (offsets 0): sent once, when it ends."""
        final: dict[str, Any] = {"text": [0, "".join(pane.text)], "status": pane.status, "error": pane.error}
        if pane.reasoning:
            final["reasoning"] = [0, "".join(pane.reasoning)]
        for field in ("tool_calls", "results", "analysis"):
            items = getattr(pane, field)
            if items:
                final[field] = [0, list(items)]
        return final

    def _delta(self, pane: _Pane) -> dict[str, Any]:
        delta: dict[str, Any] = {}
        for field, pending in pane.pending.items():
            if field in ("text", "reasoning"):
                delta[field] = [pending[0], "".join(pending[1:])]
            else:
                delta[field] = [pending[0], pending[1:]]
        pane.pending = {}
        if pane.dirty_status:
            delta["status"] = pane.status
            pane.dirty_status = False
        if pane.dirty_error:
            delta["error"] = pane.error
            pane.dirty_error = False
        if pane.dirty_metrics:
            metrics = self._metrics(pane)
            # Only the fields that changed since the last delta (the view merges them).
            changed = {k: v for k, v in metrics.items() if pane.sent_metrics.get(k, _UNSENT) != v}
            if changed:
                delta["metrics"] = changed
            pane.sent_metrics = metrics
            pane.dirty_metrics = False
        return delta

    # -- state ------------------------------------------------------------------------------
    def _metrics(self, pane: _Pane) -> dict[str, Any]:
        tokens = pane.usage_tokens if pane.usage_tokens is not None else pane.tokens
        ttft = None
        t_request = self._mux.slots[pane.name].ctx.t_request if self._mux is not None else None
        if pane.t_first is not None and t_request is not None:
            ttft = pane.t_first - t_request
        tps = None
        if pane.t_first is not None and pane.t_last is not None and pane.t_last > pane.t_first and tokens > 1:
            tps = (tokens - 1) / (pane.t_last - pane.t_first)
        elapsed = (pane.t_last - t_request) if pane.t_last is not None and t_request is not None else 0.0
        # Display values, rounded: full float precision made up a third of a 100-pane delta.
        # The DataFrames keep the exact times; the widget never feeds them.
        return {"ttft_s": _round(ttft, 4), "tokens": tokens, "tokens_per_s": _round(tps, 2),
                "elapsed_s": round(elapsed, 3), "n_chunks": pane.n_chunks}

    def _state(self, name: str) -> dict[str, Any]:
        pane = self._panes[name]
        return {
            "status": pane.status, "text": "".join(pane.text), "reasoning": "".join(pane.reasoning),
            "tool_calls": list(pane.tool_calls), "results": list(pane.results),
            "analysis": list(pane.analysis), "error": pane.error, "metrics": self._metrics(pane),
            "seq": self.seq,
        }

    def _elapsed(self) -> float:
        return self._mux.now() if self._mux is not None else 0.0

    def _total_tokens(self) -> int:
        return sum(p.usage_tokens if p.usage_tokens is not None else p.tokens for p in self._panes.values())

    def _run_state(self, status: str) -> dict[str, Any]:
        mux = self._mux
        return {"run_id": mux.run_id if mux else "", "prompt": mux.prompt.text if mux else "",
                "status": status, "elapsed_s": round(self._elapsed(), 3), "total_tokens": self._total_tokens(),
                "started_at": round(time.time() * 1000 - self._elapsed() * 1000), "stoppable": self.stoppable}
