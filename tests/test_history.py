"""The SQLite run log keeps the summary's newer columns (cost, answers, turns) and still reads, and
grows, a log written before they existed."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

import pandas as pd
import pytest

import llmgrid_nb as lg
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

