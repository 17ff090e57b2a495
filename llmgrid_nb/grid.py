"""Grid: the result object users hold, live while a run streams and complete afterwards."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from .engine import Engine
from .events import Event
from .multiplexer import Multiplexer

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Grid"]


class Grid:
    """One run of one prompt against several sources.

    ``texts``, ``events``, ``chunks`` and ``summary`` can be read while the run streams (they
    show what has arrived so far) and are final once ``done`` is true.
    """

    def __init__(self, mux: Multiplexer, engine: Engine, future: concurrent.futures.Future[None] | None) -> None:
        self._mux = mux
        self._engine = engine
        self._future: concurrent.futures.Future[None] = future or concurrent.futures.Future()
        self._frames: tuple[pd.DataFrame, pd.DataFrame] | None = None
        self.started_at = time.time()
        self.widget: Any = None

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
            from .errors import ConfigError

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
            raise
        return self

    def __await__(self) -> Generator[Any, None, Grid]:
        try:
            # Shielded: cancelling the awaiting task asks the run to stop cleanly instead of
            # killing the engine-side coroutine before it has recorded what happened.
            yield from asyncio.shield(asyncio.wrap_future(self._future)).__await__()
        except asyncio.CancelledError:
            self.cancel()
            raise
        return self

    def plot(self, **kwargs: Any) -> Any:
        """The run's 2x2 dashboard: cumulative tokens, TTFT, inter-chunk latency, decode speed."""
        from .plots import plot_run

        return plot_run(self, **kwargs)

    def report(self, path: str | None = None) -> str:
        """A self-contained HTML report of the run (see ``llmgrid_nb.export.html_report``)."""
        from .export import html_report

        return html_report(self, path)

    def show(self) -> Any:
        """Display the run's widget again (another view of the same live panes)."""
        if self.widget is None:
            from .errors import ConfigError

            raise ConfigError("this run has no widget; run it with widget=True inside Jupyter")
        from IPython.display import display

        display(self.widget)
        return None

    def __repr__(self) -> str:
        return f"<Grid {self.run_id} {self.status}: {', '.join(self.sources)}>"
