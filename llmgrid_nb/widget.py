"""The anywidget grid: synced traits, and a sink that streams throttled deltas to it.

Kernel -> browser traffic follows one small versioned envelope (mirrored in
``js/src/protocol.js``, fixtures in ``js/test/fixtures/messages.json``):

- traits ``panes`` (display order), ``snapshot`` (full state of every pane, set when the run
  starts and ends, and when a view asks for it; in a conversation each pane's state also holds
  its earlier turns, ``turns``, and the number of the live one, ``turn``: they never change
  during a run, so they travel only here, never in a delta) and ``run`` (run id, prompt, status, elapsed,
  total tokens, total cost of the panes whose cost is known);
- custom messages ``{"v": 1, "type": "delta", "seq", "panes": {id: delta}, "run"}`` carrying
  only appended text with its offset (``"text": [offset, appended]``, ``reasoning`` and
  ``refusal`` alike), so a repeated or missed delta is detected instead of corrupting the pane.
  On the wire a delta travels packed: ``{"v": 1, "type": "packed"}`` with one binary buffer
  holding the delta's UTF-8 JSON. Encoded once by ``json.dumps``, it skips the kernel's
  pure-Python walk over every message's content.

Browser -> kernel: ``{"v": 1, "type": "stop", "pane"}`` and ``{"v": 1, "type": "sync"}``, sent
by a view that missed deltas (opened mid-run, or reloaded); the sink answers with a snapshot.

The sink coalesces every event between flushes and flushes at most ``rate`` times a second
with a true throttle: a leading flush when idle, a trailing flush always scheduled while
anything is pending, never a debounce. With many panes the rate drops so that no more than
``pane_updates`` pane deltas go out a second (8 panes: 20 flushes a second, 16: 10, never under
5): the sink's work in the kernel stays bounded however many streams run, and so does the
browser's, which styles, lays out and paints every pane update (benchmarks/bench_browser.py).
When a stream ends, its full state goes out once as a delta marked ``final`` with offsets 0
(idempotent: the view appends only what it lacks, and a view that had missed deltas is whole
again), with what its answer cost (``cost_usd``, ``cost_source``: computed here from the final
usage with ``llmgrid_nb.cost``, prices looked up before the first request). No snapshot is built while streams run unless a
view asks: with every pane's text in it, it is the largest thing the kernel sends.
"""

from __future__ import annotations

import asyncio
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from .errors import ConfigError
from .events import CONTENT_KINDS, Event

if TYPE_CHECKING:
    from .blind import Blinding
    from .cost import Cost, Price
    from .multiplexer import Multiplexer

__all__ = ["PROTOCOL_VERSION", "GridWidget", "WidgetSink", "bundle_path", "pack_message", "unpack_message"]

log = logging.getLogger(__name__)
PROTOCOL_VERSION = 1
STATIC = Path(__file__).parent / "static"
_ENDED = frozenset({"done", "failed", "cancelled"})
#: Pane fields that grow as strings; the others (tool_calls, results, analysis) grow as lists.
_TEXT_FIELDS = frozenset({"text", "reasoning", "refusal"})


def pack_message(message: dict[str, Any]) -> tuple[dict[str, Any], list[bytes]]:
    """A delta as sent: a small envelope plus its JSON in one binary buffer."""
    data = json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return {"v": PROTOCOL_VERSION, "type": "packed"}, [data.encode("utf-8")]


def unpack_message(content: Any, buffers: Any) -> Any:
    """The message a view reads from ``content`` and ``buffers`` (the inverse of pack_message)."""
    if isinstance(content, dict) and content.get("type") == "packed" and buffers:
        return json.loads(bytes(buffers[0]).decode("utf-8"))
    return content


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
    #: The vote bar of a blind run once it has ended: {open, choices: [{id, label}], winner, error}.
    vote = traitlets.Dict().tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        # The bundle's text, not its Path: anywidget reads a Path only when it is a class
        # attribute, and an instance attribute would send the path itself as the module.
        self._esm = bundle_path().read_text(encoding="utf-8")
        css = STATIC / "widget.css"
        if css.is_file():
            self._css = css.read_text(encoding="utf-8")
        super().__init__(**kwargs)
        self._stop_handler: Callable[[str | None], Any] | None = None
        self._sync_handler: Callable[[], Any] | None = None
        self._vote_handler: Callable[[str], Any] | None = None
        self.on_msg(self._handle_message)

    def on_stop(self, handler: Callable[[str | None], Any] | None) -> None:
        """Call ``handler(pane_id or None)`` when a Stop button is clicked."""
        self._stop_handler = handler

    def on_sync(self, handler: Callable[[], Any] | None) -> None:
        """Call ``handler()`` when a view asks for the full state (it missed deltas)."""
        self._sync_handler = handler

    def on_vote(self, handler: Callable[[str], Any] | None) -> None:
        """Call ``handler(choice)`` when a vote button is clicked (a pane id, "tie" or "both_bad")."""
        self._vote_handler = handler

    def _handle_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        # May run on a comm thread (ipykernel subshells): keep it trivial and thread-safe.
        if not isinstance(content, dict) or content.get("v") != PROTOCOL_VERSION:
            return
        kind = content.get("type")
        if kind == "stop" and self._stop_handler is not None:
            pane = content.get("pane")
            self._stop_handler(pane if isinstance(pane, str) else None)
        elif kind == "sync" and self._sync_handler is not None:
            self._sync_handler()
        elif kind == "vote" and self._vote_handler is not None and isinstance(content.get("choice"), str):
            self._vote_handler(content["choice"])

    def __repr__(self) -> str:
        return f"GridWidget(run_id={self.run.get('run_id', '')!r}, panes={len(self.panes)})"


_UNSENT = object()


def _round(x: float | None, digits: int) -> float | None:
    return None if x is None else round(x, digits)


class _Pane:
    """The sink's running copy of one pane, plus what is pending for the next delta."""

    __slots__ = ("name", "status", "text", "text_len", "reasoning", "reasoning_len", "refusal", "refusal_len",
                 "tool_calls", "results", "analysis", "error", "n_chunks", "tokens", "usage_tokens", "t_first",
                 "t_last", "pending", "dirty_status", "dirty_metrics", "dirty_error", "sent_metrics", "price", "cost")

    def __init__(self, name: str) -> None:
        self.name = name
        self.status = "queued"
        self.text: list[str] = []
        self.text_len = 0
        self.reasoning: list[str] = []
        self.reasoning_len = 0
        self.refusal: list[str] = []
        self.refusal_len = 0
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
        #: The pane's price (looked up when the run starts) and, once it has ended, its cost.
        self.price: Price | None = None
        self.cost: Cost | None = None


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

    #: The lowest flush rate the pane budget may bring it down to.
    MIN_RATE = 5.0

    def __init__(self, widget: GridWidget, *, rate: float = 25.0, pane_updates: float = 160.0,
                 stoppable: bool = True, turn: int = 1,
                 earlier: Mapping[str, Sequence[Mapping[str, Any]]] | None = None) -> None:
        self.widget = widget
        #: A blind run's letters (pane ids on the wire are "A", "B", ...; set by the API before
        #: the run starts), and whether the names are still hidden: until the vote, nothing
        #: naming a model is sent (see ``reveal``).
        self.blinding: Blinding | None = None
        self.hidden = False
        #: The live answer's turn, and each pane's earlier turns ({turn, question, text, status}).
        self.turn = turn
        self.earlier = {name: [dict(t) for t in turns] for name, turns in (earlier or {}).items()}
        self.rate = rate
        self.pane_updates = pane_updates
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
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- Sink protocol ----------------------------------------------------------------------
    def on_start(self, mux: Multiplexer) -> None:
        self._mux = mux
        self.interval = 1.0 / min(self.rate, max(self.MIN_RATE, self.pane_updates / max(len(mux.slots), 1)))
        self._loop = asyncio.get_running_loop()
        self.widget.on_sync(self._request_sync)
        self._panes = {name: _Pane(name) for name in mux.slots}
        self._ids = {name: self.blinding.ids[name] if self.blinding is not None else name for name in mux.slots}
        self._look_up_prices(mux)
        self.widget.panes = self._specs()
        self.widget.run = self._run_state("running")
        self.widget.snapshot = self._snapshot()

    def _specs(self) -> list[dict[str, Any]]:
        """The panes trait: display order, names (a blind run's labels while hidden)."""
        assert self._mux is not None
        slots = self._mux.slots
        blinding = self.blinding
        specs = []
        for name in (blinding.order if blinding is not None else slots):
            source = slots[name].source
            spec = {"id": self._ids[name], "name": name, "model": source.model, "route": source.route,
                    "kind": getattr(source, "pane_kind", "model")}
            if blinding is not None and self.hidden:
                spec.update(name=blinding.labels[name], model="", route="")
            elif blinding is not None and blinding.labels[name].startswith("Model "):
                spec["name"] = f"{blinding.labels[name]} · {name}"  # revealed: the letter voted on, then the name
            specs.append(spec)
        return specs

    def _snapshot(self) -> dict[str, Any]:
        return {self._ids[name]: self._state(name) for name in self._panes}

    def reveal(self) -> None:
        """Show a blind run's real names, routes, models, errors and costs (after its vote).
        Called on the kernel's thread once the run has ended."""
        if not self.hidden or self._mux is None:
            return
        self.hidden = False
        with self.widget.hold_sync():
            self.widget.panes = self._specs()
            self.widget.snapshot = self._snapshot()
            self.widget.run = self._run_state("cancelled" if self._mux.cancelled else "done")

    def vote_bar(self) -> dict[str, Any]:
        """The vote trait of a finished blind run: a button per model pane, by letter ({} when
        fewer than two model panes can be compared)."""
        if self.blinding is None or self._mux is None:
            return {}
        slots = self._mux.slots
        order = [n for n in self.blinding.order if getattr(slots[n].source, "pane_kind", "model") == "model"]
        if len(order) < 2:
            return {}
        return {"open": True, "winner": None, "error": None,
                "choices": [{"id": self._ids[n], "label": self.blinding.labels[n]} for n in order]}

    def wire_id(self, name: str) -> str:
        """The id pane ``name`` has in the browser."""
        return self._ids.get(name, name)

    def _look_up_prices(self, mux: Multiplexer) -> None:
        """Each pane's price, before any request is sent: the first lookup reads LiteLLM's price
        map (~15 ms), which must not hold up the engine loop while streams are being read."""
        from .cost import price_for

        for name, pane in self._panes.items():
            facts = mux.recorder.streams.get(name)
            if facts is not None:
                pane.price = price_for(name, facts.model, facts.route)

    def on_event(self, ev: Event) -> None:
        pane = self._panes.get(ev.source)
        if pane is None:
            return
        kind = ev.kind
        if kind == "token" or kind == "final_synthesis":
            self._append(pane, "text", ev.text)  # type: ignore[union-attr]
        elif kind == "reasoning":
            self._append(pane, "reasoning", ev.text)  # type: ignore[union-attr]
        elif kind == "refusal":
            self._append(pane, "refusal", ev.text)  # type: ignore[union-attr]
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
        self._loop = None  # from now on the snapshot is final: sync requests need no answer
        self._cancel_timer()
        self._snapshot_due = False  # the run's last snapshot follows at once
        self._flush()
        self._push_snapshot()
        run = self._run_state("cancelled" if mux.cancelled else "done")
        self._set_trait("run", run)
        if self.blinding is not None:
            self._set_trait("vote", self.vote_bar())

    async def drain(self) -> None:
        """Wait (off the loop) for the last updates, so the view is final when the run is."""
        if not await asyncio.to_thread(self._sender.close):
            log.warning("the widget's last updates were still queued after 10 s")

    def _request_sync(self) -> None:
        """A view missed deltas and asks for a snapshot. Called on whichever thread handles comm
        messages: hand over to the engine loop, where the panes live."""
        loop = self._loop
        if loop is None:
            return
        try:
            loop.call_soon_threadsafe(self._sync_due)
        except RuntimeError:  # the loop is gone: the run is over, its last snapshot was sent
            pass

    def _sync_due(self) -> None:
        if self._loop is not None:
            self._snapshot_due = True
            self._schedule()

    # -- accumulation -----------------------------------------------------------------------
    @staticmethod
    def _append(pane: _Pane, field: str, text: str) -> None:
        """Add ``text`` to a string field (text, reasoning, refusal) and to its pending patch: O(1)."""
        pending = pane.pending.get(field)
        if field == "text":
            if pending is None:
                pending = pane.pending[field] = [pane.text_len]
            pane.text.append(text)
            pane.text_len += len(text)
        elif field == "reasoning":
            if pending is None:
                pending = pane.pending[field] = [pane.reasoning_len]
            pane.reasoning.append(text)
            pane.reasoning_len += len(text)
        else:
            if pending is None:
                pending = pane.pending[field] = [pane.refusal_len]
            pane.refusal.append(text)
            pane.refusal_len += len(text)
        pending.append(text)

    @staticmethod
    def _append_item(pane: _Pane, field: str, item: Any) -> None:
        items = getattr(pane, field)
        pending = pane.pending.get(field)
        if pending is None:
            pending = pane.pending[field] = [len(items)]
        pending.append(item)
        items.append(item)

    # -- throttled flushing -------------------------------------------------------------------
    def _schedule(self, not_before: float = 0.0) -> None:
        if self._timer is not None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, self._last_flush + self.interval - time.monotonic(), not_before - time.monotonic())
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
                panes[self._ids[name]] = delta
        if panes:
            self.seq += 1
            message = {"v": PROTOCOL_VERSION, "type": "delta", "seq": self.seq, "panes": panes,
                       "run": {"elapsed_s": round(self._elapsed(), 3), "total_tokens": self._total_tokens(),
                               **self._total_cost()}}
            widget = self.widget
            self._sender.submit(lambda: widget.send(*pack_message(message)))
            self.messages_sent += 1
        # The snapshot carries every pane's full text: at most once a second for views that ask.
        if self._snapshot_due:
            if now - self._last_snapshot >= 1.0:
                self._push_snapshot()
            else:
                self._schedule(not_before=self._last_snapshot + 1.0)

    def _push_snapshot(self) -> None:
        self._snapshot_due = False
        self._last_snapshot = time.monotonic()
        self._set_trait("snapshot", self._snapshot())

    def _set_trait(self, name: str, value: Any) -> None:
        """Set a synced trait from the sender thread, after the deltas queued before it."""
        widget = self.widget
        self._sender.submit(lambda: setattr(widget, name, value))

    def _final(self, pane: _Pane) -> dict[str, Any]:
        """A pane's full state as an idempotent delta (offsets 0): sent once, when it ends."""
        final: dict[str, Any] = {"text": [0, "".join(pane.text)], "status": pane.status, "error": self._error(pane),
                                 "metrics": self._metrics(pane), "final": True}
        if pane.reasoning:
            final["reasoning"] = [0, "".join(pane.reasoning)]
        if pane.refusal:
            final["refusal"] = [0, "".join(pane.refusal)]
        for field in ("tool_calls", "results", "analysis"):
            items = getattr(pane, field)
            if items:
                final[field] = [0, list(items)]
        return final

    def _delta(self, pane: _Pane) -> dict[str, Any]:
        delta: dict[str, Any] = {}
        for field, pending in pane.pending.items():
            if field in _TEXT_FIELDS:
                delta[field] = [pending[0], "".join(pending[1:])]
            else:
                delta[field] = [pending[0], pending[1:]]
        pane.pending = {}
        if pane.dirty_status:
            delta["status"] = pane.status
            pane.dirty_status = False
        if pane.dirty_error:
            delta["error"] = self._error(pane)
            pane.dirty_error = False
        if pane.dirty_metrics:
            # While streaming, only what a pane header shows, and only the fields that changed
            # since the last delta (the view merges them); the final delta has them all.
            metrics = self._metrics(pane, live=True)
            changed = {k: v for k, v in metrics.items() if pane.sent_metrics.get(k, _UNSENT) != v}
            if changed:
                delta["metrics"] = changed
            pane.sent_metrics = metrics
            pane.dirty_metrics = False
        return delta

    # -- state ------------------------------------------------------------------------------
    def _metrics(self, pane: _Pane, *, live: bool = False) -> dict[str, Any]:
        """The pane's metrics as displayed: ``live`` gives only what its header shows."""
        tokens = pane.usage_tokens if pane.usage_tokens is not None else pane.tokens
        ttft = None
        t_request = self._mux.slots[pane.name].ctx.t_request if self._mux is not None else None
        if pane.t_first is not None and t_request is not None:
            ttft = pane.t_first - t_request
        tps = None
        if pane.t_first is not None and pane.t_last is not None and pane.t_last > pane.t_first and tokens > 1:
            tps = (tokens - 1) / (pane.t_last - pane.t_first)
        # Display values, rounded: full float precision made up a third of a 100-pane delta.
        # The DataFrames keep the exact times; the widget never feeds them.
        if live:
            return {"ttft_s": _round(ttft, 3), "tokens": tokens, "tokens_per_s": _round(tps, 1)}
        elapsed = (pane.t_last - t_request) if pane.t_last is not None and t_request is not None else 0.0
        cost = self._cost(pane)
        return {"ttft_s": _round(ttft, 4), "tokens": tokens, "tokens_per_s": _round(tps, 2),
                "elapsed_s": round(elapsed, 3), "n_chunks": pane.n_chunks,
                "cost_usd": _round(cost.cost_usd, 8) if cost is not None else None,
                "cost_source": cost.cost_source if cost is not None and cost.cost_usd is not None else None}

    def _error(self, pane: _Pane) -> dict[str, Any] | None:
        """The pane's error as shown: a blind run's names and makers taken out while hidden."""
        if pane.error is None or not self.hidden or self.blinding is None:
            return pane.error
        return {**pane.error, "message": self.blinding.redact(pane.error["message"])}

    def _cost(self, pane: _Pane) -> Cost | None:
        """What the pane's answer cost, from its final usage: known once it has ended (a price
        gives the model away: hidden in a blind run until the vote)."""
        if pane.status not in _ENDED or self._mux is None:
            return None
        if self.hidden:
            return None
        if pane.cost is None:
            from .cost import stream_cost

            facts = self._mux.recorder.streams[pane.name]
            pane.cost = stream_cost(pane.price, prompt_tokens=facts.prompt_tokens, output_tokens=facts.output_tokens,
                                    usage_reported=facts.usage_reported, server=facts.server)
        return pane.cost

    def _total_cost(self) -> dict[str, Any]:
        """The run's cost so far (the panes that ended with a known cost), for the footer; {} while
        no pane has one."""
        costs = [c for c in (p.cost for p in self._panes.values()) if c is not None and c.cost_usd is not None]
        if not costs or self.hidden:
            return {}
        return {"total_cost_usd": round(sum(c.cost_usd or 0.0 for c in costs), 8),
                "cost_simulated": any(c.cost_source == "simulated" for c in costs)}

    def _state(self, name: str) -> dict[str, Any]:
        pane = self._panes[name]
        return {
            "status": pane.status, "text": "".join(pane.text), "reasoning": "".join(pane.reasoning),
            "refusal": "".join(pane.refusal),
            "tool_calls": list(pane.tool_calls), "results": list(pane.results),
            "analysis": list(pane.analysis), "error": self._error(pane), "metrics": self._metrics(pane),
            "seq": self.seq, "turn": self.turn, "turns": self.earlier.get(name, []),
        }

    def _elapsed(self) -> float:
        return self._mux.now() if self._mux is not None else 0.0

    def _total_tokens(self) -> int:
        return sum(p.usage_tokens if p.usage_tokens is not None else p.tokens for p in self._panes.values())

    def _run_state(self, status: str) -> dict[str, Any]:
        mux = self._mux
        return {"run_id": mux.run_id if mux else "", "prompt": mux.prompt.text if mux else "",
                "status": status, "elapsed_s": round(self._elapsed(), 3), "total_tokens": self._total_tokens(),
                "started_at": round(time.time() * 1000 - self._elapsed() * 1000), "stoppable": self.stoppable,
                "total_cost_usd": None, "cost_simulated": False, **self._total_cost()}
