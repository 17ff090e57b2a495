"""The widget sink: throttled, offset-checked deltas and a final full state, from a real run."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from scripted_server import Script, ScriptedServer

import llmgrid_nb as lg
from llmgrid_nb.widget import GridWidget, WidgetSink, unpack_message

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "js" / "test" / "fixtures" / "messages.json"


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
        assert content == {"v": 1, "type": "packed"} and len(buffers) == 1, "deltas travel packed"
        message = unpack_message(content, buffers)
        self.sent.append((time.monotonic(), message))
        self.traffic.append({"msg": message})
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


def test_with_many_panes_the_flush_rate_drops_to_keep_the_sinks_work_bounded() -> None:
    models = [f"sim/fast?tokens=600&rate=300&seed={i}" for i in range(20)]
    t0 = time.monotonic()
    grid, widget, sink = run_with_widget(models, max_concurrency=20)
    duration = time.monotonic() - t0
    assert sink.interval == pytest.approx(20 / sink.pane_updates)  # 8 flushes a second, not 25
    assert sink.interval < 1 / sink.MIN_RATE
    assert sink.messages_sent <= duration / sink.interval + 2
    gaps = sorted(b - a for (a, _), (b, _) in zip(widget.sent, widget.sent[1:]))
    assert gaps[len(gaps) // 2] >= sink.interval * 0.9  # times taken on the sender thread: some jitter
    assert {name: s["text"] for name, s in widget.snapshot.items()} == grid.texts


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


def snapshots(widget: RecordingWidget) -> list[dict[str, Any]]:
    return [step["value"] for step in widget.traffic if step.get("trait") == "snapshot"]


def test_no_snapshot_is_built_mid_run_unless_a_view_asks_and_each_ended_pane_gets_a_final_delta() -> None:
    models = ["sim/fast?tokens=20", "sim/steady?tokens=60&rate=100", "sim/steady?tokens=30&rate=60&fault=reset&after=10"]
    grid, widget, _ = run_with_widget(models)
    # One when the run starts (empty panes), one when it ends: none as the panes end one by one.
    assert len(snapshots(widget)) == 2
    finals = {name: d for _, m in widget.sent for name, d in m["panes"].items() if d.get("final")}
    assert set(finals) == set(models)
    for name, d in finals.items():
        assert d["text"] == [0, grid.texts[name]] and d["status"] == grid.statuses[name]
        assert set(d["metrics"]) == {"ttft_s", "tokens", "tokens_per_s", "elapsed_s", "n_chunks", "cost_usd",
                                     "cost_source"}
    # While streaming only what a pane's header shows goes out.
    live = [d["metrics"] for _, m in widget.sent for d in m["panes"].values() if "metrics" in d and not d.get("final")]
    assert live and all(set(x) <= {"ttft_s", "tokens", "tokens_per_s"} for x in live)


def test_a_view_that_asks_gets_a_snapshot_while_the_run_streams() -> None:
    widget = RecordingWidget()
    model = "sim/steady?tokens=80&rate=40"
    grid = lg.run("Explain SSE", [model], sinks=[WidgetSink(widget)], widget=False, background=True)
    time.sleep(0.8)
    widget._handle_message(widget, {"v": 1, "type": "sync"}, [])
    widget._handle_message(widget, {"v": 1, "type": "sync"}, [])  # a second ask within 1 s: no extra
    time.sleep(0.3)
    mid = snapshots(widget)
    assert len(mid) == 2, "the start's snapshot and one answer to both asks"
    partial = mid[-1][model]
    assert partial["status"] == "streaming" and 0 < len(partial["text"]) < 80 * 3
    at = next(i for i, step in enumerate(widget.traffic) if step.get("value") is mid[-1])
    before = [step["msg"]["seq"] for step in widget.traffic[:at] if "msg" in step]
    assert partial["seq"] == before[-1], "it includes every delta sent before it"
    assert partial["text"] == "".join(step["msg"]["panes"][model].get("text", [0, ""])[1]
                                      for step in widget.traffic[:at] if "msg" in step)
    grid.wait(10)
    assert len(snapshots(widget)) == 3 and snapshots(widget)[-1][model]["text"] == grid.texts[model]
    widget._handle_message(widget, {"v": 1, "type": "sync"}, [])  # after the run: the last one stands
    time.sleep(0.1)
    assert len(snapshots(widget)) == 3


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


def fold_in_js(widget: RecordingWidget, tmp_path: Path, flags: list[str]) -> dict[str, Any]:
    """The pane states the view's own reducers make of a widget's traffic (js/test/fold-scenario.mjs)."""
    first_panes = next(e["value"] for e in widget.traffic if e.get("trait") == "panes")
    scenario = {"initial": {"panes": first_panes, "snapshot": {}, "run": {}}, "steps": widget.traffic}
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario))
    out = subprocess.run(["node", str(ROOT / "js" / "test" / "fold-scenario.mjs"), str(path), *flags],
                         capture_output=True, text=True, timeout=60, check=True)
    return json.loads(out.stdout)


@pytest.mark.skipif(shutil.which("node") is None, reason="node is needed to run the JS protocol")
def test_the_js_protocol_folds_our_messages_into_the_same_panes(tmp_path: Path) -> None:
    models = ["sim/fast?tokens=120&rate=300", "sim/steady?tokens=20&rate=100&fault=reset&after=5"]
    grid, widget, _ = run_with_widget(models)
    for flags in ([], ["--deltas-only"]):
        panes = fold_in_js(widget, tmp_path, flags)
        for m in models:
            assert panes[m]["text"] == grid.texts[m]
            assert panes[m]["status"] == grid.statuses[m]
            assert not panes[m]["stale"]


def sse(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(chunk)}\n\n".encode()


REFUSAL = ["I can't help with that. ", "<script>alert(1)</script>"]


def test_a_refusal_streams_as_offset_deltas_and_is_in_the_final_delta_and_the_snapshot(
        scripted: ScriptedServer, tmp_path: Path) -> None:
    # Pauses far longer than a flush interval: each piece of the refusal goes out in a delta of its own.
    scripted.scripts.append(Script(body=[sse({"role": "assistant", "content": None, "refusal": ""}),
                                         sse({"refusal": REFUSAL[0]}), 0.3, sse({"refusal": REFUSAL[1]}), 0.3,
                                         sse({}, "stop"), b"data: [DONE]\n\n"]))
    widget = RecordingWidget()
    grid = lg.run("Write an exploit", [lg.OpenAICompatible("m", scripted.url + "/v1", name="refuser")],
                  sinks=[WidgetSink(widget)], widget=False)
    full = "".join(REFUSAL)
    assert grid.statuses == {"refuser": "done"} and grid.texts == {"refuser": ""}
    streamed = [d["refusal"] for _, m in widget.sent for d in m["panes"].values()
                if "refusal" in d and not d.get("final")]
    assert streamed == [[0, REFUSAL[0]], [len(REFUSAL[0]), REFUSAL[1]]]
    finals = [d for _, m in widget.sent for d in m["panes"].values() if d.get("final")]
    assert len(finals) == 1 and finals[0]["refusal"] == [0, full] and finals[0]["text"] == [0, ""]
    assert finals[0]["metrics"]["n_chunks"] == 2
    assert widget.snapshot["refuser"]["refusal"] == full and widget.snapshot["refuser"]["text"] == ""
    assert snapshots(widget)[0]["refuser"]["refusal"] == ""  # the field is there from the start
    if shutil.which("node") is not None:
        for flags in ([], ["--deltas-only"]):
            pane = fold_in_js(widget, tmp_path, flags)["refuser"]
            assert pane["refusal"] == full and pane["text"] == "" and not pane["stale"]


def test_the_sinks_pane_state_has_exactly_the_fields_of_the_shared_fixtures() -> None:
    fixture = json.loads(FIXTURES.read_text(encoding="utf-8"))
    want = set(fixture["scenarios"][0]["initial"]["snapshot"]["gpt"])
    _, widget, _ = run_with_widget(["sim/fast?tokens=5"])
    for state in widget.snapshot.values():
        assert set(state) == want
        assert set(state["metrics"]) == set(fixture["scenarios"][0]["expected"]["panes"]["gpt"]["metrics"])


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


PRICED = "sim/steady?tokens=30&rate=300&price_in=150&price_out=600"


def test_a_panes_cost_goes_out_with_its_final_metrics_and_the_run_total_with_the_run(tmp_path: Path) -> None:
    """Computed in the kernel from the pane's final usage: the simulator's declared price here,
    nothing for a model with no price, and the total for the footer."""
    models = [PRICED, "sim/fast?tokens=10"]
    grid, widget, _ = run_with_widget(models)
    summary = grid.summary.set_index("source")
    finals = {name: d for _, m in widget.sent for name, d in m["panes"].items() if d.get("final")}
    priced = finals[PRICED]["metrics"]
    assert priced["cost_source"] == "simulated" and summary.loc[PRICED, "cost_source"] == "simulated"
    assert priced["cost_usd"] == pytest.approx(summary.loc[PRICED, "cost_usd"], abs=1e-8)
    assert priced["cost_usd"] == pytest.approx((9 * 150 + 30 * 600) / 1e6, abs=1e-8)  # 9 prompt tokens, 30 out
    assert finals["sim/fast?tokens=10"]["metrics"]["cost_usd"] is None
    assert finals["sim/fast?tokens=10"]["metrics"]["cost_source"] is None
    live = [d["metrics"] for _, m in widget.sent for d in m["panes"].values() if "metrics" in d and not d.get("final")]
    assert all("cost_usd" not in x for x in live), "no cost before the pane has ended"
    assert widget.run["total_cost_usd"] == pytest.approx(priced["cost_usd"]) and widget.run["cost_simulated"] is True
    assert widget.snapshot[PRICED]["metrics"]["cost_usd"] == priced["cost_usd"]
    if shutil.which("node") is not None:
        for flags in ([], ["--deltas-only"]):
            pane = fold_in_js(widget, tmp_path, flags)[PRICED]
            assert pane["metrics"]["cost_usd"] == priced["cost_usd"] and pane["metrics"]["cost_source"] == "simulated"


def test_a_price_table_cost_reaches_the_pane_header_and_nothing_is_fetched(scripted: ScriptedServer) -> None:
    usage = {"prompt_tokens": 14, "completion_tokens": 30}
    scripted.scripts.append(Script(body=[sse({"role": "assistant", "content": "Hi"}), sse({}, "stop"),
                                         f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n".encode(),
                                         b"data: [DONE]\n\n"]))
    widget = RecordingWidget()
    grid = lg.run("hi", [lg.OpenAICompatible("gpt-4o-mini", scripted.url + "/v1")], sinks=[WidgetSink(widget)],
                  widget=False)
    row = grid.summary.iloc[0]
    final = next(d for _, m in widget.sent for d in m["panes"].values() if d.get("final"))["metrics"]
    assert row.cost_source == "price-table" and final["cost_source"] == "price-table"
    assert final["cost_usd"] == pytest.approx(row.cost_usd, abs=1e-8) and final["cost_usd"] > 0
    assert widget.run["total_cost_usd"] == final["cost_usd"] and widget.run["cost_simulated"] is False
    assert len(scripted.requests) == 1, "the stream, and no other request"


def test_a_follow_ups_widget_shows_each_panes_earlier_turns_from_its_snapshot(capsys: pytest.CaptureFixture[str]) -> None:
    models = ["sim/fast?tokens=6", "sim/steady?tokens=30&rate=300&fault=reset&after=6"]
    first = lg.run("What is SSE?", models, synthesize="sim/fast?tokens=4", widget=True)
    second = first.ask("How do reconnects work?")
    third = second.ask("And retries?")
    assert third.widget is not None and third.widget is not second.widget
    assert all(s["turn"] == 1 and s["turns"] == [] for s in first.widget.snapshot.values())
    for pane in [*models, "master"]:
        state = third.widget.snapshot[pane]
        assert state["turn"] == 3 and state["text"] == third.texts[pane]
        assert state["turns"] == [{"turn": g.turn, "question": g.prompt, "text": g.texts[pane], "status": g.statuses[pane]}
                                  for g in (first, second)]
    assert third.widget.snapshot[models[1]]["turns"][0]["status"] == "failed"
    capsys.readouterr()


def test_earlier_turns_travel_in_snapshots_never_in_deltas(tmp_path: Path) -> None:
    earlier = {"sim/fast?tokens=40": [{"turn": 1, "question": "What is SSE?", "text": "An *answer*.", "status": "done"}]}
    widget = RecordingWidget()
    lg.run("Explain SSE", ["sim/fast?tokens=40", "sim/fast?tokens=5&seed=2"],
           sinks=[WidgetSink(widget, turn=2, earlier=earlier)], widget=False)
    assert widget.sent and all("turns" not in d and "turn" not in d for _, m in widget.sent for d in m["panes"].values())
    for snap in snapshots(widget):
        assert snap["sim/fast?tokens=40"]["turns"] == earlier["sim/fast?tokens=40"]
        assert snap["sim/fast?tokens=5&seed=2"]["turns"] == [] and snap["sim/fast?tokens=5&seed=2"]["turn"] == 2
    if shutil.which("node") is not None:
        for flags in ([], ["--deltas-only"]):
            pane = fold_in_js(widget, tmp_path, flags)["sim/fast?tokens=40"]
            assert pane["turn"] == 2 and pane["turns"] == earlier["sim/fast?tokens=40"]
