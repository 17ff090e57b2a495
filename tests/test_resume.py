"""resume=True: a stream that breaks after tokens is continued from its partial answer."""

from __future__ import annotations

import pytest

import llmgrid_nb as lg
from llmgrid_nb.events import Error

PROMPT = "How do SSE reconnects work?"


def test_reset_near_the_end_is_resumed_and_stitched() -> None:
    clean = "sim/steady?tokens=30&rate=400&seed=5"
    broken = clean + "&fault=reset&after=20"
    grid = lg.run(PROMPT, [clean, broken], resume=True)
    assert grid.statuses[broken] == "done"
    assert grid.texts[broken] == grid.texts[clean]
    row = grid.summary.set_index("source").loc[broken]
    assert row.resumed == 1 and row.attempts == 2 and row.tokens_source == "tokenizer"
    first_request = grid.summary.set_index("source").loc[broken].t_request_s
    connecting = [e.t_s for e in grid.events if e.source == broken and e.kind == "status" and e.state == "connecting"]
    assert first_request <= connecting[0] + 0.01, "latencies keep counting from the first request"
    notes = [e for e in grid.events if isinstance(e, Error) and e.source == broken]
    assert [e.error_type for e in notes] == ["resumed"] and not notes[0].fatal


def test_anthropic_continues_a_prefill_so_its_broken_stream_is_resumed() -> None:
    clean = "sim/steady?tokens=30&rate=400&seed=5&api=anthropic"
    broken = clean + "&fault=reset&after=20"
    grid = lg.run(PROMPT, [clean, broken], resume=True)
    assert grid.statuses[broken] == "done" and grid.texts[broken] == grid.texts[clean]
    assert grid.summary.set_index("source").loc[broken].resumed == 1


@pytest.mark.parametrize("api", ["gemini", "responses"])
def test_apis_that_answer_a_prefill_anew_are_not_resumed(api: str) -> None:
    """Stitching a fresh answer onto a partial one would garble it: the partial one stands, failed."""
    broken = f"sim/steady?tokens=30&rate=400&seed=5&api={api}&fault=reset&after=20"
    grid = lg.run(PROMPT, [broken], resume=True)
    row = grid.summary.iloc[0]
    assert row.status == "failed" and row.resumed == 0 and grid.texts[broken]


def test_without_resume_the_partial_answer_is_kept_and_marked_failed() -> None:
    broken = "sim/steady?tokens=30&rate=400&seed=5&fault=reset&after=20"
    grid = lg.run(PROMPT, [broken])
    assert grid.statuses[broken] == "failed" and grid.summary.iloc[0].resumed == 0
    assert len(grid.texts[broken]) > 0


def test_a_stall_after_tokens_is_resumed() -> None:
    clean = "sim/steady?tokens=30&rate=400&seed=6&ttft=0.05"
    stalled = clean + "&fault=stall&after=10&stall_s=5"
    grid = lg.run(PROMPT, [clean, stalled], resume=True, stall_timeout=0.3)
    assert grid.statuses[stalled] == "done" and grid.texts[stalled] == grid.texts[clean]
    # 30 tokens stalling after every 10th: two continuations are needed.
    assert grid.summary.set_index("source").loc[stalled].resumed == 2


def test_resume_never_repairs_a_user_cancel() -> None:
    grid = lg.start(PROMPT, ["sim/steady?tokens=200&rate=40"], resume=True)
    import time

    time.sleep(0.5)
    grid.cancel()
    grid.wait(5)
    assert grid.statuses == {"sim/steady?tokens=200&rate=40": "cancelled"}
