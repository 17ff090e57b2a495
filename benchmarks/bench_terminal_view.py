"""What the live terminal view costs a run: CPU per 1,000 chunks with the view drawing to a
terminal-like sink (``/dev/null`` as an interactive terminal) as a ratio to the same runs with no
sink (and to a sink that does nothing), interleaved in the same process on the same simulator
streams (the embedded simulator's own CPU is in every figure alike); the view's own
time per event on the engine loop; the time to draw one frame. Not a test: figures, not verdicts.

    python benchmarks/bench_terminal_view.py [--panes 4] [--tokens 20000] [--repeats 7]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from rich.console import Console  # noqa: E402

import llmgrid_nb as lg  # noqa: E402
from llmgrid_nb.engine import get_engine  # noqa: E402
from llmgrid_nb.events import Token  # noqa: E402
from llmgrid_nb.multiplexer import Multiplexer, RunOptions  # noqa: E402
from llmgrid_nb.sources.base import Prompt  # noqa: E402
from llmgrid_nb.sources.resolve import resolve_source  # noqa: E402
from llmgrid_nb.terminal_view import TerminalView  # noqa: E402


def tty_console(width: int = 120) -> Console:
    """A console that draws as it would on an interactive terminal, into /dev/null."""
    return Console(file=open(os.devnull, "w"), force_terminal=True, force_interactive=True, width=width,
                   height=50, color_system="truecolor", _environ={})


class NoopSink:
    """A sink that does nothing: what any sink costs the multiplexer, the view aside."""

    def on_start(self, mux: Multiplexer) -> None: ...

    def on_event(self, ev: object) -> None: ...

    def on_finish(self, mux: Multiplexer) -> None: ...


def measure(models: list[str], kind: str) -> tuple[float, float, int, int]:
    """(process CPU s, wall s, chunks, frames) of one run with no sink, a no-op sink or the view."""
    view = TerminalView(tty_console()) if kind == "view" else None
    sinks = {"none": [], "noop": [NoopSink()], "view": [view]}[kind]
    c0, w0 = time.process_time(), time.perf_counter()
    grid = lg.run("Explain SSE", models, sinks=sinks, widget=False)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return cpu, wall, int(grid.summary.n_chunks.sum()), view.frames if view else 0


def on_event_ns(n_events: int) -> float:
    """The view's own time per token event (what it adds on the engine loop), in ns."""
    mux = Multiplexer("bench", Prompt("q", None, None, None, {}), [resolve_source("sim/instant")], RunOptions(),
                      get_engine().pool, [])
    name = next(iter(mux.slots))
    events = [Token(name, i * 1e-4, "tok ") for i in range(n_events)]
    view = TerminalView(tty_console())

    async def feed() -> float:
        view.on_start(mux)
        t0 = time.perf_counter()
        for ev in events:
            view.on_event(ev)
        elapsed = time.perf_counter() - t0
        view.on_finish(mux)
        await view.drain()
        return elapsed

    return asyncio.run(feed()) / n_events * 1e9


def frame_ms(panes: int, repeats: int = 50) -> float:
    """Median time to build and draw one frame of ``panes`` streaming panes, in ms."""
    models = [f"sim/instant?tokens=300&seed={i}" for i in range(panes)]
    view = TerminalView(tty_console())
    lg.run("Explain SSE", models, sinks=[view], widget=False)  # a finished run: every row has an answer
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        view.console.print(view.render())
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--panes", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=20_000, help="tokens per pane")
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    models = [f"sim/instant?tokens={args.tokens}&seed={i}" for i in range(args.panes)]
    lg.run("warm up", ["sim/instant?tokens=50"], widget=False)
    measure(models[:1], "view")
    kinds = ("none", "noop", "view")
    runs: dict[str, list[tuple[float, float, int, int]]] = {k: [] for k in kinds}
    for _ in range(args.repeats):  # interleaved, so drift in the machine's load hits every kind alike
        for kind in kinds:
            runs[kind].append(measure(models, kind))
    # Best of the repeats, as bench_core does: on a shared machine the minimum is the least noisy.
    cpu = {k: min(c / n * 1000 for c, _, n, _ in runs[k]) for k in kinds}
    wall = {k: min(w for _, w, _, _ in runs[k]) for k in kinds}
    frames = statistics.median(f for *_, f in runs["view"])
    print(f"{args.panes} panes x {args.tokens:,} tokens of sim/instant, best of {args.repeats} interleaved runs")
    labels = {"none": "no sink (baseline)", "noop": "a no-op sink", "view": "live terminal view"}
    for kind in kinds:
        extra = f"   {frames:.0f} frames" if kind == "view" else ""
        print(f"  {labels[kind]:<20} CPU {cpu[kind] * 1e3:6.2f} ms / 1,000 chunks ({cpu[kind] / cpu['none']:5.3f}x)"
              f"   wall {wall[kind]:6.3f} s ({wall[kind] / wall['none']:5.3f}x){extra}")
    base_cpu = cpu["none"]
    ns = on_event_ns(200_000)
    print(f"  the view's on_event on the engine loop: {ns:.0f} ns per token event "
          f"({ns / (base_cpu * 1e6) * 100:.1f}% of the baseline's CPU per chunk)")
    for panes in (4, 32):
        ms = frame_ms(panes)
        print(f"  one frame, {panes:>2} panes: {ms:.2f} ms to build and draw (at 4 frames/s: {ms * 4 / 10:.2f}% of one core)")


if __name__ == "__main__":
    main()
