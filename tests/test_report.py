"""The plain-text report, read from a run's frames: no Grid needed behind them."""

from __future__ import annotations

import dataclasses

import pytest
from hand_made import ANSWER, ERROR, PARTIAL, TOOL_CALL, hand_made_run

from llmgrid_nb.report import text_report, turn_note


def test_text_report_of_a_hand_made_run_shows_each_pane_then_the_total() -> None:
    lines = text_report(hand_made_run(), width=80).splitlines()
    assert lines == [
        "── fast · done · TTFT 0.10 s · 4 tokens · 12.0 tok/s · $0.0012 " + "─" * 17,
        ANSWER,
        f"[tool call] {TOOL_CALL}",
        "",
        "── broken · failed · TTFT 0.20 s · 1 tokens · – " + "─" * 32,
        PARTIAL,
        f"[error] {ERROR}",
        "",
        "total cost $0.0012 (1 of 2 panes have a known cost)",
    ]


def test_frames_without_the_answer_columns_are_reported_from_their_chunks() -> None:
    run = hand_made_run()
    # A run log written before the summary kept the answers.
    old = dataclasses.replace(run, summary=run.summary.drop(columns=["text", "reasoning", "refusal", "tool_calls"]))
    assert text_report(old) == text_report(run)


def test_text_report_takes_one_run_not_a_bare_frame() -> None:
    with pytest.raises(TypeError, match="RunRecord"):
        text_report(hand_made_run().summary)  # type: ignore[arg-type]


def test_a_follow_ups_reports_say_its_turn() -> None:
    import llmgrid_nb as lg
    from llmgrid_nb.export import html_report
    from llmgrid_nb.static_view import static_bundle

    first = lg.run("q", ["sim/fast?tokens=5"], widget=False)
    assert turn_note(first.summary) == "" and not text_report(first).startswith("Turn")
    second = first.ask("and?")
    note = f"turn 2 of conversation {first.run_id}"
    assert turn_note(second.summary) == note
    assert text_report(second).startswith(f"Turn 2 of conversation {first.run_id}: and?")
    bundle = static_bundle(second.summary, second.chunks, prompt=second.prompt, status=second.status)
    assert all(note in text for text in bundle.values())
    assert note in html_report(second)
