"""The live terminal view: every pane of a run in one table, redrawn a few times a second.

``%llmgrid`` shows it where no widget is shown (terminal IPython, ``ipython script.ipy``) and
stdout is an interactive terminal; the run's last frame stays on screen, and the text report
follows. Pipes, CI logs, ``jupyter console`` (a kernel's stdout is never the user's terminal) and
``--background`` runs get no live view.

The sink's work on the engine loop is a few attribute updates per event (0.1-0.4 µs); drawing
happens on rich's refresh thread (``refresh_per_second``, 4 by default) whatever the chunk rate,
and draws only the rows the terminal can show while the run streams (the final frame has them
all), so its cost is bounded by the frame rate and the screen, not by the chunk rate or the pane
count (``benchmarks/bench_terminal_view.py``). Starting and stopping the display (terminal
writes, the first price lookup) run off the loop too.

Model output and provider errors are untrusted: they are drawn as rich ``Text`` (never parsed
as markup) after ``plain_text`` has shown every control character as an escape, so an answer
cannot move the cursor, clear the screen, retitle the window or reorder what is shown.

This package imports rich only when a view is made, and does without it (the text report
alone). httpx 0.28 is another matter: ``import httpx`` imports its command line, rich among it,
whenever rich, click and pygments are all installed (+21 ms to ``import llmgrid_nb``).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .events import CONTENT_KINDS, Event

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

    from .blind import Blinding
    from .cost import Cost, Price
    from .multiplexer import Multiplexer

__all__ = ["TerminalView", "live_view_sinks", "plain_text"]

log = logging.getLogger(__name__)

_ENDED = frozenset({"done", "failed", "cancelled"})
_STATUS_STYLE = {"queued": "dim", "connecting": "dim", "waiting": "yellow", "streaming": "cyan",
                 "retrying": "yellow", "done": "green", "failed": "bold red", "cancelled": "magenta"}

# C0 controls but newline and tab, DEL, C1 controls (0x9b is a one-byte CSI to some terminals),
# and the bidirectional embeddings, overrides and isolates (they reorder what follows).
_ESCAPES: dict[int, str] = {c: f"\\x{c:02x}" for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))
                            if c not in (0x09, 0x0A)}
_ESCAPES.update({c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))})
_ONE_LINE: dict[int, str] = {**_ESCAPES, 0x09: " ", 0x0A: " "}


def plain_text(text: str, *, one_line: bool = False) -> str:
    """``text`` safe to write to a terminal: each control character shown as an escape (``\\x1b``).

    Newlines and tabs are kept (``one_line``: made spaces); CRLF is a newline."""
    return text.replace("\r\n", "\n").translate(_ONE_LINE if one_line else _ESCAPES)


class _Row:
    """The view's copy of one pane, updated on the engine loop and read by the drawing thread."""

    __slots__ = ("name", "model", "route", "status", "text", "reasoning", "refusal", "error", "note",
                 "chunks", "usage_tokens", "t_first", "t_last", "ttft", "price", "cost")

    def __init__(self, name: str, model: str, route: str) -> None:
        self.name = name
        self.model = model
        self.route = route
        self.status = "queued"
        #: Deltas as they came: appending is O(1) on the loop; the drawing thread reads the tail.
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.refusal: list[str] = []
        self.error: str | None = None
        #: The latest thing worth a line while there is no answer yet: a retried failure, a tool call, progress.
        self.note: str | None = None
        self.chunks = 0
        self.usage_tokens: int | None = None
        self.t_first: float | None = None
        self.t_last: float | None = None
        self.ttft: float | None = None
        self.price: Price | None = None
        self.cost: Cost | None = None

    @property
    def tokens(self) -> int:
        return self.usage_tokens if self.usage_tokens is not None else self.chunks

    @property
    def tokens_per_s(self) -> float | None:
        """Decode rate, as the widget shows it: chunks after the first over the time they took."""
        if self.t_first is None or self.t_last is None or self.t_last <= self.t_first or self.tokens < 2:
            return None
        return (self.tokens - 1) / (self.t_last - self.t_first)


class TerminalView:
    """A sink drawing every pane of one run live on a rich ``Console`` (``live_view_sinks`` makes
    one for stdout); ``drain`` stops the display with the final frame left on screen.

    One run per view: a follow-up handed the same view (in its copied settings) is not shown."""

    def __init__(self, console: Console, *, refresh_per_second: float = 4.0) -> None:
        self.console = console
        self.refresh_per_second = refresh_per_second
        self.frames = 0
        self._phase = "new"  # new -> live (on_start) -> finished (on_finish) -> closed (drain)
        self._mux: Multiplexer | None = None
        self._rows: dict[str, _Row] = {}
        self._elapsed: float | None = None
        self._live: Any = None
        self._starting: asyncio.Future[None] | None = None
        #: A blind run's letters (set by the API before the run starts): panes shown as
        #: "Model A", ... in letter order, no cost, makers taken out of errors. A terminal has no
        #: vote bar: ``grid.vote`` casts the verdict, and the report after it also shows letters.
        self.blinding: Blinding | None = None

    # -- Sink protocol (engine loop) ----------------------------------------------------------
    def on_start(self, mux: Multiplexer) -> None:
        if self._phase != "new":
            return
        self._phase = "live"
        self._mux = mux
        order = self.blinding.order if self.blinding is not None else list(mux.slots)
        self._rows = {name: _Row(name, mux.slots[name].source.model, mux.slots[name].source.route) for name in order}
        self._starting = asyncio.get_running_loop().run_in_executor(None, self._start)

    def on_event(self, ev: Event) -> None:
        if self._phase != "live":
            return
        row = self._rows.get(ev.source)
        if row is None:
            return
        kind = ev.kind
        if kind == "token":  # nearly every event: the shortest path
            row.text.append(ev.text)  # type: ignore[union-attr]
            row.chunks += 1
            row.t_last = ev.t_s
            if row.t_first is None:
                self._first_content(row, ev)
            return
        if kind == "final_synthesis":
            row.text.append(ev.text)  # type: ignore[union-attr]
        elif kind == "reasoning":
            row.reasoning.append(ev.text)  # type: ignore[union-attr]
        elif kind == "refusal":
            row.refusal.append(ev.text)  # type: ignore[union-attr]
        elif kind == "status":
            row.status = ev.state  # type: ignore[union-attr]
        elif kind == "error":
            if ev.fatal:  # type: ignore[union-attr]
                row.error = ev.message  # type: ignore[union-attr]
            else:
                row.note = ev.message  # type: ignore[union-attr]
        elif kind == "usage":
            if ev.output_tokens is not None:  # type: ignore[union-attr]
                row.usage_tokens = ev.output_tokens  # type: ignore[union-attr]
        elif kind == "tool_call":
            row.note = f"tool call {ev.name}({ev.arguments})"  # type: ignore[union-attr]
        elif kind == "progress":
            total = f"/{ev.total}" if ev.total is not None else ""  # type: ignore[union-attr]
            row.note = f"{ev.stage} {ev.done}{total} {ev.detail}".rstrip()  # type: ignore[union-attr]
        if kind in CONTENT_KINDS:
            row.chunks += 1
            row.t_last = ev.t_s
            if row.t_first is None:
                self._first_content(row, ev)

    def _first_content(self, row: _Row, ev: Event) -> None:
        """TTFT as the widget shows it: from the request being sent to the first content."""
        row.t_first = ev.t_s
        slot = self._mux.slots.get(ev.source) if self._mux is not None else None
        t_request = slot.ctx.t_request if slot is not None else None
        row.ttft = ev.t_s - t_request if t_request is not None else None

    def on_finish(self, mux: Multiplexer) -> None:
        if self._phase != "live":
            return
        self._phase = "finished"
        self._elapsed = mux.now()

    async def drain(self) -> None:
        """Stop the display (off the loop): its last frame, the final state, stays on screen."""
        if self._phase != "finished":
            return
        self._phase = "closed"
        if self._starting is not None:
            await self._starting
        await asyncio.to_thread(self._stop)

    # -- the display (worker threads) -----------------------------------------------------------
    def _start(self) -> None:
        from rich.live import Live

        self._look_up_prices()
        try:
            self._live = Live(get_renderable=self.render, console=self.console,
                              refresh_per_second=self.refresh_per_second, transient=False)
            self._live.start(refresh=True)
        except Exception:  # another live display on this console, a closed terminal: no view, same run
            log.exception("the live terminal view could not start")
            self._live = None

    def _stop(self) -> None:
        if self._live is not None:
            self._live.stop()

    def _look_up_prices(self) -> None:
        """Each pane's price: the first lookup reads LiteLLM's price map (~15 ms), kept off the loop."""
        try:
            from .cost import price_for

            for row in self._rows.values():
                row.price = price_for(row.name, row.model, row.route)
        except Exception:
            log.exception("no prices for the live terminal view")

    def render(self) -> RenderableType:
        """The current frame: one row per pane, then the run's totals."""
        from rich.cells import cell_len
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        self.frames += 1
        width = self.console.width
        blinding = self.blinding
        names = {name: plain_text(blinding.labels[name] if blinding is not None else name, one_line=True)
                 for name in self._rows}
        name_w = max(4, min(max((cell_len(n) for n in names.values()), default=4), max(12, width // 3)))
        # Fixed widths, so the answer column's width is known and its tail (the newest text) fits.
        fixed = (("status", 10), ("TTFT", 7), ("tokens", 7), ("tok/s", 6))
        answer_w = max(8, width - name_w - sum(w for _, w in fixed) - 2 * (len(fixed) + 1))
        table = Table(box=None, padding=(0, 1), pad_edge=False, show_edge=False, header_style="bold")
        table.add_column("pane", width=name_w, no_wrap=True, overflow="ellipsis")
        for label, w in fixed:
            table.add_column(label, width=w, no_wrap=True, justify="left" if label == "status" else "right")
        table.add_column("answer", width=answer_w, no_wrap=True, overflow="crop")
        rows = list(self._rows.items())
        # While the run streams, only the rows the terminal can show are drawn: a frame's cost is
        # bounded by the screen, not by the pane count. The final frame has them all.
        room = max(1, self.console.height - 3) if self._phase == "live" else len(rows)
        hidden = rows[room:]
        for name, row in rows[:room]:
            status = row.status
            tps = row.tokens_per_s
            table.add_row(
                Text(names[name]),
                Text(status, style=_STATUS_STYLE.get(status, "")),
                Text(f"{row.ttft:.2f} s" if row.ttft is not None else "–"),
                Text(f"{row.tokens:,}"),
                Text(f"{tps:.1f}" if tps is not None else "–"),
                self._answer(row, answer_w, self.blinding),
            )
        return Group(table, self._footer(len(hidden)))

    @staticmethod
    def _answer(row: _Row, width: int, blinding: Blinding | None = None) -> Any:
        """The end of the pane's answer (the newest text), or its error in the provider's words
        (a blind run's without the names in them)."""
        from rich.text import Text

        if row.error is not None:
            error = blinding.redact(row.error) if blinding is not None else row.error
            return Text(_fit("error: " + plain_text(error, one_line=True), width, keep="head"), style="red")
        for pieces, label, style in ((row.text, "", ""), (row.refusal, "refusal: ", "yellow"),
                                     (row.reasoning, "thinking: ", "dim")):
            if pieces:
                return Text(label + _tail(pieces, width - len(label)), style=style)
        if row.note is not None:
            note = blinding.redact(row.note) if blinding is not None else row.note
            return Text(_fit(plain_text(note, one_line=True), width, keep="head"), style="yellow")
        return Text("")

    def _footer(self, hidden: int = 0) -> Any:
        from rich.text import Text

        from .cost import format_usd

        mux = self._mux
        elapsed = self._elapsed if self._elapsed is not None else (mux.now() if mux is not None else 0.0)
        rows = list(self._rows.values())
        ended = sum(r.status in _ENDED for r in rows)
        parts = [f"{elapsed:.1f} s", f"{sum(r.tokens for r in rows):,} tokens", f"{ended} of {len(rows)} panes ended"]
        if hidden:
            parts.append(f"{hidden} more panes shown at the end")
        costs = [c for c in (self._cost(r) for r in rows) if c is not None and c.cost_usd is not None]
        if costs and self.blinding is None:  # a price gives a blind run's models away
            simulated = any(c.cost_source == "simulated" for c in costs)
            total = format_usd(sum(c.cost_usd or 0.0 for c in costs), "simulated" if simulated else None)
            known = "" if len(costs) == len(rows) else f" ({len(costs)} of {len(rows)} panes priced)"
            parts.append(f"cost {total}{known}")
        return Text(" · ".join(parts), style="dim" if self._elapsed is None else "", no_wrap=True, overflow="ellipsis")

    def _cost(self, row: _Row) -> Cost | None:
        """What an ended pane cost (computed once, from the recorder's final usage)."""
        if row.cost is None and row.status in _ENDED and self._mux is not None:
            from .cost import stream_cost

            facts = self._mux.recorder.streams.get(row.name)
            if facts is not None:
                row.cost = stream_cost(row.price, prompt_tokens=facts.prompt_tokens,
                                       output_tokens=facts.output_tokens,
                                       usage_reported=facts.usage_reported, server=facts.server)
        return row.cost


def _tail(pieces: Sequence[str], width: int) -> str:
    """The last ``width`` terminal cells of the joined pieces, whitespace collapsed, made plain."""
    taken: list[str] = []
    n = 0
    for piece in reversed(pieces):  # safe while the loop appends: the iterator walks down from its start
        taken.append(piece)
        n += len(piece)
        if n > 4 * width + 16:
            break
    text = " ".join(plain_text("".join(reversed(taken)), one_line=True).split())
    return _fit(text, width, keep="tail")


def _fit(text: str, width: int, *, keep: str) -> str:
    """``text`` cut to ``width`` terminal cells with an ellipsis, keeping its ``head`` or its ``tail``."""
    from rich.cells import cell_len

    width = max(width, 1)
    if cell_len(text) <= width:
        return text
    if keep == "tail":
        text = text[-width:]
        while cell_len(text) > width - 1:
            text = text[1:]
        return "…" + text
    text = text[:width]
    while cell_len(text) > width - 1:
        text = text[:-1]
    return text + "…"


def live_view_sinks(*, widget: bool | None, background: bool) -> tuple[TerminalView, ...]:
    """For ``%llmgrid``: a live view on stdout when the run shows no widget (``widget`` False, or
    None where no front end renders one), waits in the foreground and stdout is an interactive
    terminal (rich's ``is_terminal`` and ``is_interactive``, and a real tty: ``FORCE_COLOR`` in a
    CI log does not make one); otherwise none. ``--background`` gets none: the prompt owns the
    screen while it runs."""
    if background or widget:
        return ()
    if widget is None:
        from .frontend import renders_widgets

        if renders_widgets():
            return ()
    out = sys.stdout
    try:
        if not out.isatty():  # a pipe, a file, a kernel's stream: no need to import rich
            return ()
    except (AttributeError, ValueError):
        return ()
    try:
        from rich.console import Console
    except ImportError:  # an install without rich: the text report alone, as before the view
        return ()
    console = Console(file=out)
    if not (console.is_terminal and console.is_interactive) or console.is_jupyter:
        return ()
    return (TerminalView(console),)
