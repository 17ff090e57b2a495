"""The SQLite run log keeps the summary's newer columns (cost, answers, turns) and still reads, and
grows, a log written before they existed."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from hand_made import ANSWER, PARTIAL, STARTED_AT, hand_made_run, history_of

import llmgrid_nb as lg
from llmgrid_nb.history import History, persist_run, run_record
from llmgrid_nb.metrics import SUMMARY_COLUMNS, SUMMARY_DTYPES

PRICED = "sim/steady?tokens=12&rate=400&ttft=0.01&price_in=150&price_out=600"
NEW_COLUMNS = ["cost_usd", "input_cost_usd", "output_cost_usd", "cost_source", "price_source", "text", "reasoning",
               "refusal", "tool_calls"]
TURN_COLUMNS = ["conversation_id", "turn"]


def logged(path: Path, runs: int) -> lg.History:
    """The log at ``path`` once ``runs`` runs are in it (runs are appended off the engine loop)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            h = lg.history(path)
            if h.summary.run_id.nunique() >= runs:
                return h
        except (lg.ConfigError, pd.errors.DatabaseError):
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not get {runs} runs")
        time.sleep(0.05)


def run_logged(path: Path, prompt: str, models: list[str]) -> lg.Grid:
    lg.log_to(path)
    try:
        return lg.run(prompt, models)
    finally:
        lg.log_to(None)


def test_cost_and_answer_columns_round_trip_through_the_log(tmp_path: Path) -> None:
    log = tmp_path / "runs.sqlite"
    grid = run_logged(log, "Explain SSE", [PRICED, "sim/tools"])
    back = logged(log, 1).summary.set_index("source")
    mine = lg.history().summary
    mine = mine[mine.run_id == grid.run_id].set_index("source")
    for col in NEW_COLUMNS:
        assert str(back[col].dtype) == SUMMARY_DTYPES[col], col
        pd.testing.assert_series_equal(back[col], mine[col], check_names=False)
    assert back.loc[PRICED, "cost_source"] == "simulated" and back.loc[PRICED, "cost_usd"] > 0
    assert back.loc["sim/tools", "cost_source"] == "unknown" and pd.isna(back.loc["sim/tools", "cost_usd"])
    assert back.loc[PRICED, "text"] == grid.texts[PRICED]
    assert json.loads(back.loc["sim/tools", "tool_calls"])[0]["name"]


def old_log(path: Path) -> lg.Grid:
    """A log as an earlier version wrote it: none of the newer columns, no turns."""
    grid = lg.run("an old question", ["sim/fast?tokens=5"])
    summary = grid.summary.drop(columns=NEW_COLUMNS + TURN_COLUMNS)
    summary.insert(1, "prompt", grid.prompt)
    summary.insert(2, "started_at", grid.started_at)
    chunks = grid.chunks.drop(columns=TURN_COLUMNS)
    chunks.insert(1, "prompt", grid.prompt)
    with sqlite3.connect(path) as con:
        chunks.to_sql("chunks", con, index=False)
        summary.to_sql("summary", con, index=False)
    return grid


def test_a_log_written_before_the_new_columns_loads_with_them_na(tmp_path: Path) -> None:
    log = tmp_path / "old.sqlite"
    grid = old_log(log)
    h = lg.history(log)
    assert list(h.summary.columns[:3]) == ["run_id", "prompt", "started_at"]
    assert set(SUMMARY_COLUMNS) <= set(h.summary.columns)
    row = h.summary.iloc[0]
    assert row.source == "sim/fast?tokens=5" and row.output_tokens == grid.summary.output_tokens.iloc[0]
    for col in NEW_COLUMNS:
        assert str(h.summary[col].dtype) == SUMMARY_DTYPES[col], col
        assert pd.isna(row[col]), f"{col}: an old log never recorded it"
    assert str(h.summary.prompt_tokens.dtype) == "Int64"
    # Every run then was a conversation of its own: turn 1, its run_id as the conversation's id.
    for frame in (h.summary, h.chunks):
        assert list(frame.conversation_id) == [grid.run_id] * len(frame) and set(frame.turn) == {1}
        assert str(frame.turn.dtype) == "int64" and str(frame.conversation_id.dtype) == "string"
    assert list(h.chunks.columns[:5]) == ["run_id", "prompt", "conversation_id", "turn", "source"]


def test_a_new_run_appends_to_an_old_log_adding_the_columns(tmp_path: Path) -> None:
    log = tmp_path / "old.sqlite"
    old_log(log)
    grid = run_logged(log, "a new question", [PRICED])
    h = logged(log, 2).summary.set_index("prompt")
    assert pd.isna(h.loc["an old question", "cost_usd"]) and pd.isna(h.loc["an old question", "text"])
    assert h.loc["a new question", "cost_source"] == "simulated"
    assert h.loc["a new question", "cost_usd"] == pytest.approx(grid.summary.cost_usd.iloc[0])
    assert h.loc["a new question", "text"] == grid.texts[PRICED]
    assert h.loc["a new question", "conversation_id"] == grid.run_id and h.loc["a new question", "turn"] == 1


def test_turns_and_the_conversation_label_every_row_in_memory_and_in_the_log(tmp_path: Path) -> None:
    log = tmp_path / "runs.sqlite"
    models = ["sim/fast?tokens=8", "sim/fast?tokens=5&api=anthropic"]
    lg.log_to(log)
    try:
        first = lg.run("What is SSE?", models)
        second = first.ask("How do reconnects work?")
        turns = [first, second, second.ask("And retries?")]
    finally:
        lg.log_to(None)
    conversation = first.run_id
    assert len({g.run_id for g in turns}) == 3
    mine = lg.history()
    on_disk = logged(log, 3)
    for n, grid in enumerate(turns, 1):
        for frame in (grid.summary, grid.chunks, *(h[h.run_id == grid.run_id] for h in (
                mine.summary, mine.chunks, on_disk.summary, on_disk.chunks))):
            assert len(frame) and set(frame.turn) == {n} and set(frame.conversation_id) == {conversation}
    # Every turn resends the conversation so far: the prompt grows with it.
    for model in models:
        sizes = [g.summary.set_index("source").prompt_tokens[model] for g in turns]
        assert sizes == sorted(sizes) and len(set(sizes)) == 3, (model, sizes)



# -- plain values: no Grid behind them --------------------------------------------------------------


def test_a_history_gives_back_each_run_as_its_record() -> None:
    first, second = hand_made_run("hand1"), hand_made_run("hand2", "Another question", started_at=STARTED_AT + 60)
    history = history_of(first, second)
    for run in (first, second):
        back = history.run(run.run_id)
        pd.testing.assert_frame_equal(back.chunks, run.chunks, check_exact=True)
        pd.testing.assert_frame_equal(back.summary, run.summary, check_exact=True)
        assert (back.run_id, back.prompt, back.started_at, back.status) == (run.run_id, run.prompt, run.started_at, "done")
    assert history.run().run_id == "hand2"
    with pytest.raises(ValueError, match="no run 'hand3' in this history"):
        history.run("hand3")
    with pytest.raises(ValueError, match="no runs"):
        History(first.chunks.iloc[:0], first.summary.iloc[:0]).run()
    stopped = first.summary.assign(status=["done", "cancelled"])
    assert history_of(dataclasses.replace(first, summary=stopped)).run().status == "cancelled"


def test_a_hand_made_run_is_logged_and_read_back_without_a_grid(tmp_path: Path) -> None:
    log = tmp_path / "runs.sqlite"
    persist_run(hand_made_run(), log)
    persist_run(hand_made_run("hand2", "Another question"), log)
    back = lg.history(log).run("hand1")
    assert (back.prompt, back.started_at) == ("Explain SSE <b>", STARTED_AT)
    assert list(back.summary.source) == ["fast", "broken"] and list(back.summary.text) == [ANSWER, PARTIAL]
    assert list(back.summary.status) == ["done", "failed"] and back.summary.cost_usd.iloc[0] == 0.0012
    assert "prompt" not in back.summary.columns and "prompt" not in back.chunks.columns
    assert list(back.chunks.text) == list(hand_made_run().chunks.text)


def test_a_hand_made_run_joins_the_process_history() -> None:
    code = ("import sys; sys.path.insert(0, sys.argv[1]); import pandas as pd; import llmgrid_nb as lg; "
            "from hand_made import hand_made_run; from llmgrid_nb.history import record_run; "
            "run = hand_made_run(); record_run(run); h = lg.history(); back = h.run('hand1'); "
            "pd.testing.assert_frame_equal(back.summary, run.summary); "
            "pd.testing.assert_frame_equal(back.chunks, run.chunks); "
            "print(list(h.summary.prompt), list(h.summary.started_at))")
    out = subprocess.run([sys.executable, "-c", code, str(Path(__file__).parent)], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == f"['Explain SSE <b>', 'Explain SSE <b>'] [{STARTED_AT}, {STARTED_AT}]"


def test_a_grid_is_kept_in_the_history_as_its_record() -> None:
    grid = lg.run("Explain SSE", ["sim/fast?tokens=8", "sim/steady?tokens=5&fault=reset&after=2"], retries=0)
    mine, back = run_record(grid), lg.history().run(grid.run_id)
    assert (back.prompt, back.started_at, back.status) == (grid.prompt, grid.started_at, "done")
    pd.testing.assert_frame_equal(back.chunks, mine.chunks)
    pd.testing.assert_frame_equal(back.summary[list(mine.summary.columns)], mine.summary)
