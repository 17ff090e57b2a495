"""Grid: the result object users hold, live while a run streams and complete afterwards."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .engine import Engine
from .errors import ConfigError
from .events import Event
from .multiplexer import Multiplexer
from .sources.base import SourceOptions

if TYPE_CHECKING:
    import pandas as pd

    from .blind import Blinding
    from .conversation import Conversation, Transcripts
    from .history import RunRecord
    from .votes import Vote
    from .widget import WidgetSink

__all__ = ["Grid"]

log = logging.getLogger(__name__)


class Grid:
    """One run of one prompt against several sources: one turn of a conversation.

    ``texts``, ``events``, ``chunks`` and ``summary`` can be read while the run streams (they
    show what has arrived so far) and are final once ``done`` is true. ``ask`` continues the
    conversation: the next turn is a new Grid.
    """

    def __init__(self, mux: Multiplexer, engine: Engine, future: concurrent.futures.Future[None] | None, *,
                 conversation: Conversation | None = None, follow_up: Any = None,
                 previous: Grid | None = None, blinding: Blinding | None = None,
                 widget_sink: WidgetSink | None = None) -> None:
        self._mux = mux
        self._engine = engine
        self._future: concurrent.futures.Future[None] = future or concurrent.futures.Future()
        self._frames: tuple[pd.DataFrame, pd.DataFrame] | None = None
        self.started_at = time.time()
        self.widget: Any = None
        #: The notebook output showing the widget, updated with static renderings when the run ends.
        self.final_display: Any = None
        #: Where this turn stands: what each pane was sent before its question (None: a first
        #: question with no history, whose conversation is made when asked for).
        self._given_conversation = conversation
        #: What the next turn needs (the models and options this run was started with).
        self._follow_up = follow_up
        #: The turn before this one, if any.
        self.previous = previous
        #: A blind run's letters (None: not blind), the sink that shows them, and the vote.
        self._blinding = blinding
        self._widget_sink = widget_sink
        self._vote: Vote | None = None
        self._vote_lock = threading.Lock()

    @property
    def run_id(self) -> str:
        """A short unique id of this run (also a column of every DataFrame)."""
        return self._mux.run_id

    @property
    def prompt(self) -> str:
        """The prompt that was sent."""
        return self._mux.prompt.text

    @property
    def sources(self) -> list[str]:
        """The unique source names, in the order given."""
        return list(self._mux.slots)

    @property
    def _conversation(self) -> Conversation:
        if self._given_conversation is None:
            from .conversation import Conversation

            self._given_conversation = Conversation(id=self._mux.run_id)
        return self._given_conversation

    @property
    def turn(self) -> int:
        """This run's turn in its conversation: 1 for the first question."""
        return self._conversation.turn

    @property
    def conversation_id(self) -> str:
        """The conversation's id (the run_id of its first turn; a column of every DataFrame)."""
        return self._conversation.id

    @property
    def model_panes(self) -> list[str]:
        """The panes that converse: every source but the search and master panes."""
        return [name for name, slot in self._mux.slots.items()
                if getattr(slot.source, "pane_kind", "model") == "model"]

    @property
    def conversation(self) -> Transcripts:
        """Every model pane's whole conversation after this turn: what it was sent (the history,
        system message included), the question, and its answer (partial, with a note, when it
        failed or was stopped). A pane of an extra choice (``name[1]``) was sent its stream's
        history."""
        from .conversation import Transcripts, answer_message

        prompt = self._mux.prompt
        facts = self._mux.recorder.streams
        panes = {}
        for name in self.model_panes:
            slot = self._mux.slots[name]
            sent_as = slot.leader.name if slot.leader is not None else name
            options = getattr(slot.source, "options", None)
            system = prompt.merged(options).system if isinstance(options, SourceOptions) else prompt.system
            text = "".join(slot.text)
            answer = answer_message(text, slot.status, facts[name].error)
            panes[name] = tuple(self._conversation.transcript(sent_as, prompt.text, system, answer))
        return Transcripts(self.conversation_id, self.turn, panes)

    def messages(self, source: str) -> list[dict[str, str]]:
        """Pane ``source``'s whole conversation after this turn (see ``conversation``)."""
        if source not in self._mux.slots:
            raise ConfigError(f"no source named {source!r}; sources are {self.sources}")
        transcripts = self.conversation
        if source not in transcripts:
            raise ConfigError(f"{source} is not a model pane: it keeps no conversation (each turn the master pane "
                              "reconciles that turn's answers and the search pane searches its question)")
        return [dict(m) for m in transcripts[source]]

    def ask(self, prompt: str, *, background: bool = False, **options: Any) -> Grid:
        """Ask a follow-up: the next turn, as a new Grid (finished, unless ``background=True``).

        Every model pane continues its own conversation: its history, its own answer (partial,
        with a note, if it failed or was stopped) and ``prompt``. The master pane reconciles the
        new answers; the search pane searches the new question. The models and options are this
        run's; options given here (those of ``lg.run``) replace them, ``system=`` every pane's
        system message. A stream of several choices (``n > 1``) continues from its main pane's
        answer.
        """
        if self._follow_up is None:
            raise ConfigError("this Grid was not started by lg.run, lg.start or %llmgrid: it has nothing to continue")
        new: Grid = self._follow_up.start(self, prompt, options, stoppable=background)
        if not background:
            new.wait()
        return new

    def _next_turn(self) -> tuple[Conversation, Any]:
        """The conversation and plan of the turn after this one, or a ConfigError saying why not."""
        if self._follow_up is None:
            raise ConfigError("this Grid was not started by lg.run, lg.start or %llmgrid: it has nothing to continue")
        if not self.done:
            raise ConfigError(f"run {self.run_id} is still streaming: wait for it (grid.wait()) before a follow-up")
        if not self.model_panes:
            raise ConfigError(f"run {self.run_id} has no model panes to continue (only search or master panes)")
        return self._conversation.next(self.conversation), self._follow_up

    def _turns(self) -> dict[str, list[dict[str, Any]]]:
        """Every turn up to this one, per pane, as the next turn's widget shows them earlier."""
        chain: list[Grid] = []
        grid: Grid | None = self
        while grid is not None:
            chain.append(grid)
            grid = grid.previous
        out: dict[str, list[dict[str, Any]]] = {}
        for g in reversed(chain):
            for name, text in g.texts.items():
                out.setdefault(name, []).append(
                    {"turn": g.turn, "question": g.prompt, "text": text, "status": g.statuses[name]})
        return out

    @property
    def t0_monotonic(self) -> float:
        """``time.monotonic()`` at the run's start: ``t_s`` values are relative to it."""
        return self._mux.t0

    @property
    def t0_wall(self) -> float:
        """``time.time()`` at the run's start, to line ``t_s`` up with wall-clock logs."""
        return self._mux.t0_wall

    @property
    def done(self) -> bool:
        """True once every stream has finished, failed or been cancelled."""
        return self._future.done()

    @property
    def status(self) -> str:
        """"running", "cancelled" (the user stopped the run), or "done"."""
        if not self.done:
            return "running"
        return "cancelled" if self._mux.cancelled else "done"

    @property
    def statuses(self) -> dict[str, str]:
        """Each source's current status."""
        return {name: slot.status for name, slot in self._mux.slots.items()}

    @property
    def texts(self) -> dict[str, str]:
        """The answer text of every source (partial while streaming or after a failure)."""
        return {name: "".join(slot.text) for name, slot in self._mux.slots.items()}

    @property
    def reasoning(self) -> dict[str, str]:
        """The reasoning text of every source that streamed any."""
        return {name: "".join(slot.reasoning) for name, slot in self._mux.slots.items()}

    @property
    def events(self) -> list[Event]:
        """Every event of the run, in arrival order."""
        return list(self._mux.events)

    def _build(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        if self._frames is not None:
            return self._frames
        rec = self._mux.recorder
        frames = (rec.chunks_frame(), rec.summary_frame(stall_threshold=self._mux.options.stall_threshold))
        if self.done:
            self._frames = frames
        return frames

    @property
    def chunks(self) -> pd.DataFrame:
        """One row per received chunk: source, seq, kind, t_s, gap_s, chars, tokens, text."""
        return self._build()[0]

    @property
    def summary(self) -> pd.DataFrame:
        """One row per source: TTFT, TPOT, tokens/s, ICL percentiles, status, error (see metrics)."""
        return self._build()[1]

    def cancel(self, source: str | None = None) -> None:
        """Cancel every stream still running (or just ``source``), keeping what arrived."""
        if source is not None and source not in self._mux.slots:
            raise ConfigError(f"no source named {source!r}; sources are {self.sources}")
        if not self.done:
            self._engine.call_soon(self._mux.cancel, source)

    def wait(self, timeout: float | None = None) -> Grid:
        """Block until the run is finished; a KeyboardInterrupt cancels it, then re-raises."""
        if self._engine.in_engine_thread:
            raise RuntimeError("Grid.wait() cannot be called from the engine thread; use 'await grid'")
        try:
            self._future.result(timeout)
        except KeyboardInterrupt:
            self.cancel()
            try:
                self._future.result(5.0)
            except (concurrent.futures.TimeoutError, concurrent.futures.CancelledError):
                pass
            self._finish_display()
            raise
        self._finish_display()
        return self

    @property
    def blind(self) -> bool:
        """True when the widget labels the model panes "Model A", "Model B", ... (``blind=True``)."""
        return self._blinding is not None

    @property
    def labels(self) -> dict[str, str]:
        """A blind run's labels and the panes behind them (``{"Model A": "gpt-4o-mini", ...}``;
        {} when not blind). Reading it spoils the comparison: the widget waits for a vote."""
        if self._blinding is None:
            return {}
        return {self._blinding.labels[name]: name for name in self._blinding.order}

    @property
    def revealed(self) -> bool:
        """False while a blind run's outputs hide the names (until its vote, or an earlier turn's)."""
        return self._blinding is None or self._voted_so_far()

    @property
    def voted(self) -> Vote | None:
        """This turn's vote, once cast (``grid.vote``)."""
        return self._vote

    def _voted_so_far(self) -> bool:
        """True when this turn or an earlier one of its conversation has a vote (names known)."""
        grid: Grid | None = self
        while grid is not None:
            if grid._vote is not None:
                return True
            grid = grid.previous
        return False

    def vote(self, winner: str) -> Vote:
        """Say which answer of this turn is better: a pane ("Model A" or "A" in a blind run, else
        its name), "tie", or "both_bad" ("both bad"; with more panes "all bad" too). Recorded with
        ``lg.votes()`` (and the SQLite log when one is set) for ``lg.leaderboard()``; a blind run's
        widget then shows the real names. One vote per turn, once the run has finished."""
        from .votes import Vote, record_vote

        choices = self.model_panes
        if not self.done:
            raise ConfigError(f"run {self.run_id} is still streaming: vote once it has finished (grid.wait())")
        if len(choices) < 2:
            raise ConfigError(f"run {self.run_id} has {len(choices)} model pane(s): a vote compares at least two")
        chosen = self._choice(winner, choices)
        with self._vote_lock:
            if self._vote is not None:
                raise ConfigError(f"turn {self.turn} of run {self.run_id} already has a vote "
                                  f"({self._shown(self._vote.winner)}); ask a follow-up to vote again")
            vote = Vote(self.run_id, self.turn, self.prompt, tuple(choices), chosen)
            record_vote(vote)
            self._vote = vote
        self._after_vote(chosen)
        return vote

    def _choice(self, winner: str, choices: list[str]) -> str:
        """The pane (real name), "tie" or "both_bad" that ``winner`` names; a ConfigError listing
        the choices otherwise."""
        if not isinstance(winner, str):
            raise ConfigError(f"a vote names a pane, 'tie' or 'both_bad', got {type(winner).__name__}")
        key = " ".join(winner.replace("_", " ").split()).casefold()
        if key == "tie":
            return "tie"
        if key in ("both bad", "all bad"):
            return "both_bad"
        if self._blinding is not None:
            name = self._blinding.source_of(winner)
            if name in choices:
                return name
        if winner in choices and self.revealed:
            return winner
        shown = [self._shown(n) for n in choices]
        raise ConfigError(f"no model pane {winner!r} to vote for: choose one of {', '.join(map(repr, shown))}, "
                          "'tie' or 'both_bad'")

    def _shown(self, name: str) -> str:
        """A pane as the user sees it: its label in a blind run."""
        return self._blinding.labels.get(name, name) if self._blinding is not None else name

    def _after_vote(self, winner: str) -> None:
        """Reveal a blind run's names in its widget and its saved output, and close the vote bar."""
        sink = self._widget_sink
        if sink is None or self.widget is None:
            return
        try:
            sink.reveal()
            if self.widget.vote:
                choice = winner if winner in ("tie", "both_bad") else sink.wire_id(winner)
                self.widget.vote = {**self.widget.vote, "open": False, "winner": choice, "error": None}
            if self.final_display is not None:
                self.final_display.refresh(self)
        except Exception:
            log.exception("could not show the vote of run %s in its widget", self.run_id)

    def _vote_clicked(self, choice: str) -> None:
        """A vote button was clicked (on the kernel's thread): vote, or show why not in the bar."""
        try:
            self.vote(choice)
        except ConfigError as exc:
            if self.widget is not None and self.widget.vote:
                self.widget.vote = {**self.widget.vote, "error": str(exc)}

    def _stop_clicked(self, pane: str | None) -> None:
        """A Stop button was clicked: ``pane`` is the browser's id (a blind run's letter)."""
        if pane is not None and self._blinding is not None:
            pane = self._blinding.source_of(pane) or pane
        if pane is not None and pane not in self._mux.slots:
            return
        self.cancel(pane)

    def shown_frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """(summary, chunks) as the run's own outputs may show them: a blind run's by label, with
        nothing naming a model, until the names are revealed."""
        if not self.revealed:
            assert self._blinding is not None
            return self._blinding.frames(self.summary, self.chunks)
        return self.summary, self.chunks

    def _finish_display(self) -> None:
        """On the waiting (kernel) thread, before the cell ends: the output gains the static view."""
        if self.final_display is not None and self.done:
            self.final_display.finish(self)

    def __await__(self) -> Generator[Any, None, Grid]:
        try:
            # Shielded: cancelling the awaiting task asks the run to stop cleanly instead of
            # killing the engine-side coroutine before it has recorded what happened.
            yield from asyncio.shield(asyncio.wrap_future(self._future)).__await__()
        except asyncio.CancelledError:
            self.cancel()
            raise
        return self

    def record(self, *, as_shown: bool = False) -> RunRecord:
        """The run so far as a plain value (its frames, prompt, start time and status): what the
        charts, reports, exports and history read, so that none of them needs the live Grid.
        ``as_shown``: a blind run's frames as its own outputs show them (``shown_frames``)."""
        from .history import RunRecord

        status = self.status
        if as_shown:
            summary, chunks = self.shown_frames()
        else:
            chunks, summary = self._build()
        return RunRecord(self.run_id, self.prompt, chunks, summary, started_at=self.started_at, status=status)

    def plot(self, **kwargs: Any) -> Any:
        """The run's 2x2 dashboard: cumulative tokens, TTFT, inter-chunk latency, decode speed."""
        from .plots import plot_run

        return plot_run(self.record(), **kwargs)

    def report(self, path: str | None = None) -> str:
        """A self-contained HTML report of the run (see ``llmgrid_nb.export.html_report``)."""
        from .export import html_report

        return html_report(self.record(), path)

    def show(self) -> Any:
        """Display the run's widget again (another view of the same live panes)."""
        if self.widget is None:
            raise ConfigError("this run has no widget; run it with widget=True inside Jupyter")
        from IPython.display import display

        display(self.widget)
        return None

    def __repr__(self) -> str:
        turn = f" turn {self.turn}" if self.turn > 1 else ""
        if not self.revealed:
            assert self._blinding is not None
            names = ", ".join(self._blinding.labels[n] for n in self._blinding.order)
            return f"<Grid {self.run_id}{turn} {self.status}, blind: {names}>"
        return f"<Grid {self.run_id}{turn} {self.status}: {', '.join(self.sources)}>"
