"""Metric definitions: a pure check on known times, and against the simulator's send log."""

from __future__ import annotations

import json
import math

import httpx
import numpy as np
import pytest

import llmgrid_nb as lg
from llmgrid_nb.metrics import CHUNK_COLUMNS, SUMMARY_COLUMNS, stream_metrics
from llmgrid_nb.sim import default_simulator


def test_definitions_on_a_known_schedule() -> None:
    times = [1.0, 1.5, 1.6, 1.7, 3.0]  # one reasoning chunk, then answer; a 1.3 s stall
    m = stream_metrics(0.5, 0.9, times, ["reasoning", "token", "token", "token", "token"], 5)
    assert m["ttfb_s"] == pytest.approx(0.4)
    assert m["ttft_s"] == pytest.approx(0.5)
    assert m["ttfo_s"] == pytest.approx(1.0)
    assert m["ttst_s"] == pytest.approx(0.5)
    assert m["e2e_s"] == pytest.approx(2.5)
    assert m["tpot_s"] == pytest.approx((2.5 - 0.5) / 4)
    assert m["decode_tokens_per_s"] == pytest.approx(2.0)
    assert m["e2e_tokens_per_s"] == pytest.approx(5 / 2.5)
    assert m["icl_p50_s"] == pytest.approx(np.percentile([0.5, 0.1, 0.1, 1.3], 50))
    assert m["stalls"] == 1 and m["max_gap_s"] == pytest.approx(1.3)


def test_no_content_leaves_latencies_undefined() -> None:
    m = stream_metrics(0.1, None, [], [], 0)
    assert all(math.isnan(m[k]) for k in ("ttft_s", "e2e_s", "tpot_s", "icl_p50_s"))


def test_frames_have_the_documented_columns() -> None:
    grid = lg.run("Explain SSE", ["sim/fast?tokens=15", "sim/reasoning?tokens=5&reasoning=5"])
    assert tuple(grid.chunks.columns) == CHUNK_COLUMNS
    assert tuple(grid.summary.columns[:len(SUMMARY_COLUMNS)]) == SUMMARY_COLUMNS
    chunks = grid.chunks
    fast = chunks[chunks.source == "sim/fast?tokens=15"]
    assert list(fast.seq) == list(range(len(fast)))
    assert (fast.gap_s.dropna() >= 0).all() and math.isnan(fast.gap_s.iloc[0])
    assert "".join(fast[fast.kind == "token"].text) == grid.texts["sim/fast?tokens=15"]
    assert (fast[fast.kind == "token"].chars == fast[fast.kind == "token"].text.str.len()).all()
    assert (fast[fast.kind == "token"].tokens >= 1).all()
    reasoning = grid.summary.set_index("source").loc["sim/reasoning?tokens=5&reasoning=5"]
    assert reasoning.ttfo_s > reasoning.ttft_s


def test_measured_times_match_the_simulators_send_log() -> None:
    model = "sim/steady?tokens=30&rate=25&jitter=0&ttft=0.25&seed=4"
    grid = lg.run("Explain SSE", [model])
    row = grid.summary.iloc[0]
    log = httpx.get(f"{default_simulator().url}/_sim/log/{row.request_id}").json()
    sends = [t for t, k in zip(log["send_times"], log["kinds"]) if k == "content"]
    tokens = grid.chunks[grid.chunks.kind == "token"]
    arrivals = grid.t0_monotonic + tokens.t_s.to_numpy()
    assert len(sends) == len(arrivals) == 30
    lag = arrivals - np.asarray(sends)
    # The simulator stamps a chunk right after its write returns; on a busy machine that stamp can
    # land a little after the client already parsed the chunk, hence the small negative slack.
    assert (lag > -0.005).all() and np.median(lag) < 0.005
    # TTFT measured from our request start vs. the server's first content send.
    t_request_abs = grid.t0_monotonic + row.t_request_s
    assert row.ttft_s == pytest.approx(sends[0] - t_request_abs, abs=0.01)
    assert row.icl_p50_s == pytest.approx(1 / 25, abs=0.003)
    assert row.tpot_s == pytest.approx((sends[-1] - sends[0]) / 29, rel=0.02)
    assert row.output_tokens == 30 and row.tokens_source == "usage"


def test_tokenizer_is_used_when_the_provider_reports_no_usage(scripted) -> None:  # type: ignore[no-untyped-def]
    from scripted_server import Script

    body = b"".join(b'data: {"choices":[{"index":0,"delta":{"content":"%s"}}]}\n\n' % w
                    for w in [b"Hello", b" there", b", streaming", b" world"])
    scripted.scripts.append(Script(body=[body + b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n']))
    grid = lg.run("hi", [lg.OpenAICompatible("gpt-4o-mini", scripted.url + "/v1", name="x")])
    row = grid.summary.iloc[0]
    assert row.tokens_source == "tokenizer" and row.output_tokens == 5  # "Hello there, streaming world"


def test_history_concatenates_runs_with_run_id_and_prompt(tmp_path) -> None:  # type: ignore[no-untyped-def]
    log = tmp_path / "runs.sqlite"
    lg.log_to(log)
    try:
        a = lg.run("first prompt", ["sim/fast?tokens=5"])
        b = lg.run("second prompt", ["sim/fast?tokens=6"])
    finally:
        lg.log_to(None)
    h = lg.history()
    mine = h.summary[h.summary.run_id.isin([a.run_id, b.run_id])]
    assert list(mine.prompt) == ["first prompt", "second prompt"]
    assert len(h.chunks[h.chunks.run_id == b.run_id]) == len(b.chunks)
    import time

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            persisted = lg.history(log)
            if len(persisted.summary) == 2:
                break
        except Exception:
            pass
        time.sleep(0.05)
    assert sorted(persisted.summary.prompt) == ["first prompt", "second prompt"]
    assert len(persisted.chunks) == len(a.chunks) + len(b.chunks)


def test_summary_holds_each_streams_answer_reasoning_and_tool_calls() -> None:
    from llmgrid_nb.events import ToolCall

    models = ["sim/fast?tokens=15", "sim/reasoning?tokens=5&reasoning=5", "sim/tools",
              "sim/steady?tokens=30&rate=300&fault=reset&after=6"]
    grid = lg.run("Explain SSE", models, retries=0)
    summary = grid.summary.set_index("source")
    for m in models:
        assert summary.loc[m, "text"] == grid.texts[m]
        assert summary.loc[m, "reasoning"] == grid.reasoning[m]
        assert summary.loc[m, "refusal"] == ""
    assert summary.loc[models[1], "reasoning"] and summary.loc[models[3], "status"] == "failed"
    assert summary.loc[models[3], "text"], "a failed stream keeps its partial answer"
    calls = [{"id": e.id, "name": e.name, "arguments": e.arguments} for e in grid.events
             if isinstance(e, ToolCall) and e.source == "sim/tools"]
    assert calls and json.loads(summary.loc["sim/tools", "tool_calls"]) == calls
    assert json.loads(summary.loc[models[0], "tool_calls"]) == []
    for col in ("text", "reasoning", "refusal", "tool_calls"):
        assert str(grid.summary[col].dtype) == "string" and not grid.summary[col].isna().any()
    assert (summary.chars == summary.text.str.len() + summary.reasoning.str.len() + summary.refusal.str.len()).all()


def test_a_refusal_is_its_own_column_not_the_answer(scripted) -> None:  # type: ignore[no-untyped-def]
    from scripted_server import Script

    body = b"".join(b'data: {"choices":[{"index":0,"delta":{"refusal":"%s"}}]}\n\n' % w
                    for w in [b"I can't ", b"help with that."])
    scripted.scripts.append(Script(body=[body + b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
                                         b"data: [DONE]\n\n"]))
    grid = lg.run("hi", [lg.OpenAICompatible("m", scripted.url + "/v1", name="x")], retries=0)
    row = grid.summary.iloc[0]
    assert row.refusal == "I can't help with that." and row.text == "" and row.finish_reason == "refusal"
