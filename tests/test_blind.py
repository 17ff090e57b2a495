"""Blind comparison: letters instead of names on everything that leaves the kernel until the vote,
then the vote recorded and the names shown. The browser's side of the wire is a recording comm
(what ipywidgets would hand the front end); the streams are real, from the simulator."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import comm
import httpx
import pandas as pd
import pytest
from comm.base_comm import BaseComm

import llmgrid_nb as lg
from llmgrid_nb.blind import HIDDEN, Blinding
from llmgrid_nb.errors import ConfigError
from llmgrid_nb.sim import default_simulator
from llmgrid_nb.static_view import static_bundle
from llmgrid_nb.votes import votes

PRICED = "sim/fast?tokens=30&price_in=1&price_out=2"
MODELS = [PRICED, "sim/steady?tokens=30&rate=400", "sim/flaky?fault=http_401"]


class Wire:
    """Every comm message the kernel publishes (trait state, updates, custom messages), as JSON."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.comms: list[BaseComm] = []


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Iterator[Wire]:
    """The front end's end of every widget comm: records what would reach the browser."""
    recorded = Wire()

    class RecordingComm(BaseComm):
        def publish_msg(self, msg_type: str, data: Any = None, metadata: Any = None, buffers: Any = None,
                        **keys: Any) -> None:
            state = dict((data or {}).get("state") or {})
            state.pop("_esm", None), state.pop("_css", None)  # the widget's own code, the same for every run
            payload = [bytes(b).decode("utf-8") for b in (buffers or [])]
            recorded.messages.append({"type": msg_type, "data": {**(data or {}), "state": state}, "buffers": payload})

    def create(*args: Any, **kwargs: Any) -> BaseComm:
        c = RecordingComm(*args, **kwargs)
        recorded.comms.append(c)
        return c

    monkeypatch.setattr(comm, "create_comm", create)
    yield recorded


#: What the models wrote: it may say anything ("the model was fast"); the rest may not name one.
_CONTENT = frozenset({"text", "reasoning", "refusal", "analysis", "results", "tool_calls", "question"})


def _strings(value: Any) -> Iterator[str]:
    """Every string value in ``value`` but what the models wrote."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k not in _CONTENT:
                yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def secrets_in(text: str, grid: lg.Grid | None = None) -> list[str]:
    """Names, model ids and routes of the simulator's panes found in ``text``."""
    return sorted(s for s in ("sim/", "fast", "steady", "flaky", "simulat", "openai") if s in text.lower())


def leaks(wire: Wire) -> list[tuple[int, list[str]]]:
    """Every recorded message (its answers' text taken out) that names a pane's model."""
    found = []
    for i, m in enumerate(wire.messages):
        decoded = [json.loads(b) for b in m["buffers"]]
        text = " ".join(_strings({"data": m["data"], "buffers": decoded}))
        if secrets_in(text):
            found.append((i, secrets_in(text)))
    return found


def click(grid: lg.Grid, content: dict[str, Any]) -> None:
    """A message from the browser's view, delivered through the widget's comm as the kernel would."""
    grid.widget.comm.handle_msg({"content": {"data": {"method": "custom", "content": content}}, "buffers": []})


def test_letters_are_shuffled_kept_across_turns_and_map_back() -> None:
    seen = set()
    for seed in range(12):
        b = Blinding.shuffled(["x", "y", "z"], {"brave": "search", "master": "master"}, seed=seed)
        assert sorted(b.ids[n] for n in "xyz") == ["A", "B", "C"]
        assert b.labels["brave"] == "Search" and b.labels["master"] == "Synthesis"
        assert b.order[:3] == sorted("xyz", key=lambda n: b.ids[n]) and b.order[3:] == ["brave", "master"]
        seen.add(tuple(b.ids[n] for n in "xyz"))
        assert b.source_of("model b") == b.source_of("B") == b.order[1]
        assert b.source_of("Model Q") is None
    assert len(seen) > 3, "the order is shuffled"
    b = Blinding.shuffled(["x", "y"], seed=1)
    assert b.with_panes(["x", "y"]) == b
    more = b.with_panes(["x", "y", "w"], {"master": "master"})
    assert {n: more.ids[n] for n in "xy"} == {n: b.ids[n] for n in "xy"} and more.ids["w"] == "C"


def test_redaction_takes_out_names_their_parts_routes_and_makers() -> None:
    b = Blinding.shuffled(["anthropic/claude-sonnet-4-5", "gpt-4o-mini"],
                          secrets=["claude-sonnet-4-5", "direct-anthropic", "gpt-4o-mini", "direct-openai"])
    said = b.redact("Anthropic overloaded_error from claude-sonnet-4-5 via direct-anthropic; OpenAI said no")
    assert said == f"{HIDDEN} overloaded_error from {HIDDEN} via {HIDDEN}; {HIDDEN} said no"
    assert b.redact("HTTP 429: slow down") == "HTTP 429: slow down"


def test_nothing_naming_a_model_reaches_the_browser_before_the_vote(wire: Wire) -> None:
    grid = lg.run("Explain SSE", MODELS, widget=True, blind=True, retries=0, synthesize="sim/steady?tokens=20")
    assert grid.blind and not grid.revealed
    assert set(grid.statuses.values()) == {"done", "failed"}
    assert len(wire.messages) > 10, "the widget's traffic was recorded"
    assert any(m["buffers"] for m in wire.messages), "deltas were recorded"
    assert leaks(wire) == [], "names reached the browser"
    panes = grid.widget.panes
    assert [p["name"] for p in panes] == ["Model A", "Model B", "Model C", "Synthesis"]
    assert all(p["model"] == "" and p["route"] == "" for p in panes)
    snapshot = grid.widget.snapshot
    assert sorted(snapshot) == ["A", "B", "C", "master"]
    failed = next(s for s in snapshot.values() if s["status"] == "failed")
    assert failed["error"]["message"] and "flaky" not in failed["error"]["message"]
    assert all(s["metrics"]["cost_usd"] is None for s in snapshot.values()), "a price gives the model away"
    assert grid.widget.run["total_cost_usd"] is None
    # The synthesiser cited the panes by letter, in the order shown: its prompt named no model.
    rid = grid.summary.set_index("source").request_id["master"]
    sent = httpx.get(f"{default_simulator().url}/_sim/log/{rid}").json()["transcript"][-1][1]
    assert re.findall(r"^\[(\d)\] (Model [ABC])", sent, re.M) == [("1", "Model A"), ("2", "Model B"), ("3", "Model C")]
    assert secrets_in(sent.split("Answers:")[0] + " ".join(re.findall(r"^\[\d\].*$", sent, re.M))) == []
    # The DataFrames keep the real names; the repr does not spoil it.
    assert set(grid.summary.source) == {*MODELS, "master"}
    assert "sim/" not in repr(grid) and "Model A" in repr(grid)
    assert grid.widget.vote["open"] and [c["label"] for c in grid.widget.vote["choices"]] == ["Model A", "Model B",
                                                                                             "Model C"]


def test_a_click_on_a_vote_button_records_the_vote_and_reveals_the_names(wire: Wire) -> None:
    grid = lg.run("Explain SSE", MODELS[:2], widget=True, blind=True)
    real_b = grid.labels["Model B"]
    n_votes = len(votes())
    click(grid, {"v": 1, "type": "vote", "choice": "B"})
    assert grid.voted is not None and grid.voted.winner == real_b
    last = votes().iloc[-1]
    assert len(votes()) == n_votes + 1 and last.run_id == grid.run_id and last.winner == real_b
    assert sorted(last.models) == sorted(MODELS[:2]) and last.turn == 1 and last.prompt == "Explain SSE"
    assert grid.revealed and grid.widget.vote["winner"] == "B" and not grid.widget.vote["open"]
    assert {p["name"] for p in grid.widget.panes} == {f"{label} · {name}" for label, name in grid.labels.items()}
    priced = grid.widget.snapshot[grid._blinding.ids[PRICED]]
    assert priced["metrics"]["cost_usd"] is not None and priced["metrics"]["cost_source"] == "simulated"
    # A second click is refused in the bar, and nothing more is recorded.
    click(grid, {"v": 1, "type": "vote", "choice": "A"})
    assert "already has a vote" in grid.widget.vote["error"] and len(votes()) == n_votes + 1


def test_stop_buttons_name_panes_by_letter(wire: Wire) -> None:
    grid = lg.run("Explain SSE", ["sim/slow?tokens=400&rate=20", "sim/fast?tokens=20"], widget=True, blind=True,
                  background=True)
    slow = grid._blinding.ids["sim/slow?tokens=400&rate=20"]
    deadline = time.monotonic() + 20
    while not grid.texts["sim/slow?tokens=400&rate=20"] and time.monotonic() < deadline:
        time.sleep(0.05)
    click(grid, {"v": 1, "type": "stop", "pane": slow})
    grid.wait(30)
    assert grid.statuses["sim/slow?tokens=400&rate=20"] == "cancelled"
    assert grid.statuses["sim/fast?tokens=20"] == "done"


def test_vote_from_code_by_label_letter_or_tie_and_the_bad_input_records_nothing() -> None:
    grid = lg.run("q", MODELS[:2], widget=False, blind=True)
    n = len(votes())
    for bad, message in (("Model Z", "no model pane 'Model Z'"), (MODELS[0], "no model pane"), (3, "names a pane")):
        with pytest.raises(ConfigError, match=message):
            grid.vote(bad)  # type: ignore[arg-type]
    assert len(votes()) == n
    assert grid.vote("both bad").winner == "both_bad"
    with pytest.raises(ConfigError, match="already has a vote"):
        grid.vote("tie")
    assert len(votes()) == n + 1
    plain = lg.run("q", MODELS[:2], widget=False)
    assert plain.vote(MODELS[1]).winner == MODELS[1]
    with pytest.raises(ConfigError, match="no model pane 'Model A'"):
        lg.run("q", MODELS[:2], widget=False).vote("Model A")
    with pytest.raises(ConfigError, match="compares at least two"):
        lg.run("q", ["sim/fast?tokens=5"], widget=False).vote("tie")
    running = lg.run("q", ["sim/slow?tokens=400&rate=20", "sim/fast"], widget=False, blind=True, background=True)
    with pytest.raises(ConfigError, match="still streaming"):
        running.vote("A")
    running.cancel()
    running.wait(30)
    assert len(votes()) == n + 2


def test_follow_ups_keep_their_letters_and_a_vote_per_turn(tmp_path: Path, wire: Wire) -> None:
    log = tmp_path / "runs.sqlite"
    lg.log_to(log)
    try:
        first = lg.run("Explain SSE", MODELS[:2], widget=True, blind=True)
        second = first.ask("And reconnects?")
        assert second.blind and second.labels == first.labels and not second.revealed
        assert second.widget.panes[0]["name"] == "Model A"
        second.vote("Model A")
        third = second.ask("And proxies?")
        assert third.revealed, "the names were shown at the turn before: this one shows them too"
        assert third.widget.panes[0]["name"] == f"Model A · {first.labels['Model A']}"
        third.vote("tie")
    finally:
        lg.log_to(None)
    stored = votes(log)
    assert stored.turn.tolist() == [2, 3] and stored.winner.tolist() == [first.labels["Model A"], "tie"]
    assert stored.run_id.tolist() == [second.run_id, third.run_id]


def test_static_outputs_of_a_blind_run_name_no_model_until_the_vote() -> None:
    grid = lg.run("Explain SSE", MODELS, widget=False, blind=True, retries=0)
    summary, chunks = grid.shown_frames()
    assert summary.source.tolist() == ["Model A", "Model B", "Model C"]
    assert summary.cost_usd.isna().all() and summary.model.isna().all() and summary.route.isna().all()
    bundle = static_bundle(summary, chunks, prompt=grid.prompt, status=grid.status)
    for mime, text in bundle.items():
        assert "sim/" not in text and "flaky" not in text and "steady" not in text, mime
    grid.vote("A")
    summary, _ = grid.shown_frames()
    assert set(summary.source) == set(MODELS)
    pd.testing.assert_frame_equal(summary, grid.summary)
