"""The widget sink: throttled, offset-checked deltas and a final full state, from a real run."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import llmgrid_nb as lg
from llmgrid_nb.widget import GridWidget, WidgetSink

ROOT = Path(__file__).resolve().parents[1]


class RecordingWidget(GridWidget):
    """A GridWidget whose comm traffic is also kept, as the browser would receive it."""

    def __init__(self) -> None:
        super().__init__()
        self.traffic: list[dict[str, Any]] = []
        self.sent: list[tuple[float, dict[str, Any]]] = []
        self.observe(self._trait, names=["panes", "snapshot", "run"])

    def _trait(self, change: dict[str, Any]) -> None:
        self.traffic.append({"trait": change["name"], "value": json.loads(json.dumps(change["new"]))})

    def send(self, content: Any, buffers: Any = None) -> None:
        self.sent.append((time.monotonic(), content))
        self.traffic.append({"msg": json.loads(json.dumps(content))})
        super().send(content, buffers)


def run_with_widget(models: list[str], **kw: Any) -> tuple[lg.Grid, RecordingWidget, WidgetSink]:
    widget = RecordingWidget()
    sink = WidgetSink(widget)
    grid = lg.run("Explain SSE", models, sinks=[sink], widget=False, **kw)
    return grid, widget, sink


def test_deltas_rebuild_exactly_the_final_text_and_never_exceed_30_per_second() -> None:
    models = ["sim/fast?tokens=300&rate=400", "sim/reasoning?tokens=40&reasoning=20&rate=300", "sim/tools"]
    t0 = time.monotonic()
    grid, widget, sink = run_with_widget(models)
    duration = time.monotonic() - t0
    assert sink.messages_sent <= 30 * duration + 2
    rebuilt: dict[str, str] = {m: "" for m in models}
    reasoning: dict[str, str] = {m: "" for m in models}
    seqs = []
    for _, msg in widget.sent:
        assert msg["v"] == 1 and msg["type"] == "delta"
        seqs.append(msg["seq"])
        for pane, delta in msg["panes"].items():
            ended = delta.get("status") in ("done", "failed", "cancelled")
            for field, held in (("text", rebuilt), ("reasoning", reasoning)):
                if field not in delta:
                    continue
                offset, text = delta[field]
                if ended:  # the final full state: offset 0, the whole text
                    assert offset == 0 and text.startswith(held[pane])
                else:
                    assert offset == len(held[pane]), "offsets must be contiguous while streaming"
                held[pane] += text[len(held[pane]) - offset:]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert rebuilt == grid.texts
    assert reasoning[models[1]] == grid.reasoning[models[1]]
    snap = widget.snapshot
    for m in models:
        assert snap[m]["status"] == "done" and snap[m]["text"] == grid.texts[m]
    assert snap["sim/tools"]["tool_calls"][0]["name"]
    assert widget.run["status"] == "done"


def test_the_last_delta_is_never_dropped_even_when_the_stream_ends_between_flushes() -> None:
    for _ in range(5):
        grid, widget, _ = run_with_widget(["sim/instant?tokens=500"])
        held = ""
        for _, m in widget.sent:
            for d in m["panes"].values():
                if "text" in d:
                    offset, text = d["text"]
                    held += text[len(held) - offset:]
        assert held == grid.texts["sim/instant?tokens=500"]


def test_failed_pane_shows_its_error_and_keeps_partial_text() -> None:
    bad = "sim/steady?tokens=30&rate=300&fault=reset&after=6"
    grid, widget, _ = run_with_widget([bad, "sim/fast?tokens=10"])
    state = widget.snapshot[bad]
    assert state["status"] == "failed" and "reset" in state["error"]["message"]
    assert state["text"] == grid.texts[bad] and state["text"]


def test_stop_message_from_the_browser_cancels_that_pane() -> None:
    widget = RecordingWidget()
    sink = WidgetSink(widget, stoppable=True)
    grid = lg.run("Explain SSE", ["sim/steady?tokens=100&rate=20", "sim/fast?tokens=20"], sinks=[sink],
                  widget=False, background=True)
    widget.on_stop(grid.cancel)
    time.sleep(0.6)
    widget._handle_message(widget, {"v": 1, "type": "stop", "pane": "sim/steady?tokens=100&rate=20"}, [])
    grid.wait(10)
    assert grid.statuses == {"sim/steady?tokens=100&rate=20": "cancelled", "sim/fast?tokens=20": "done"}
    assert widget.snapshot["sim/steady?tokens=100&rate=20"]["status"] == "cancelled"


@pytest.mark.skipif(shutil.which("node") is None, reason="node is needed to run the JS protocol")
def test_the_js_protocol_folds_our_messages_into_the_same_panes(tmp_path: Path) -> None:
    models = ["sim/fast?tokens=120&rate=300", "sim/steady?tokens=20&rate=100&fault=reset&after=5"]
    grid, widget, _ = run_with_widget(models)
    first_panes = next(e["value"] for e in widget.traffic if e.get("trait") == "panes")
    scenario = {"initial": {"panes": first_panes, "snapshot": {}, "run": {}}, "steps": widget.traffic}
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario))
    for flags in ([], ["--deltas-only"]):
        out = subprocess.run(["node", str(ROOT / "js" / "test" / "fold-scenario.mjs"), str(path), *flags],
                             capture_output=True, text=True, timeout=60, check=True)
        panes = json.loads(out.stdout)
        for m in models:
            assert panes[m]["text"] == grid.texts[m]
            assert panes[m]["status"] == grid.statuses[m]
            assert not panes[m]["stale"]


def test_the_widget_ships_the_bundle_source_not_its_path() -> None:
    widget = GridWidget()
    assert "export" in widget._esm and len(widget._esm) > 10_000
    assert ".llmgrid-pane" in widget._css


class SlowSendWidget(RecordingWidget):
    """Each comm message takes 50 ms to go out, and notes which thread sent it."""

    def __init__(self) -> None:
        super().__init__()
        self.threads: set[str] = set()

    def send(self, content: Any, buffers: Any = None) -> None:
        import threading

        self.threads.add(threading.current_thread().name)
        time.sleep(0.05)
        super().send(content, buffers)


def test_widget_updates_go_out_in_order_off_the_engine_loop_and_are_all_out_when_the_run_ends() -> None:
    widget = SlowSendWidget()
    grid = lg.run("Explain SSE", ["sim/fast?tokens=200&rate=400", "sim/steady?tokens=40"],
                  sinks=[WidgetSink(widget)], widget=False)
    assert widget.threads == {"llmgrid-widget-sender"}
    seqs = [msg["seq"] for _, msg in widget.sent]
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    # Everything is out when run() returns, the final run status last of all.
    assert widget.traffic[-1] == {"trait": "run", "value": widget.run}
    assert widget.run["status"] == "done"
    assert {name: state["text"] for name, state in widget.snapshot.items()} == grid.texts
    # Slow sends did not hold up the streams (2.5 ms apart): sent from the engine loop, every
    # message would have put a gap of 50 ms or more into them.
    gaps = grid.chunks[grid.chunks.source == "sim/fast?tokens=200&rate=400"].gap_s.dropna()
    assert (gaps >= 0.05).sum() <= 1, gaps.describe()
