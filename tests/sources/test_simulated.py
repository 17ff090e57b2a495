"""The simulated source: one model string, any dialect, through that dialect's own source."""

from __future__ import annotations

import llmgrid_nb as lg


def test_n_choices_ask_the_dialect_and_the_simulator_says_it_streams_one() -> None:
    """A Chat Completions request for two choices makes two panes (as a real OpenAI stream would
    fill); the simulator answers with a 400 naming ``n``, shown in both, never an internal error."""
    grid = lg.run("q", ["sim/fast?tokens=10"], params={"n": 2}, widget=False, retries=0)
    summary = grid.summary.set_index("source")
    assert list(summary.index) == ["sim/fast?tokens=10", "sim/fast?tokens=10[1]"]
    assert set(summary.status) == {"failed"}
    assert all("Invalid 'n': 2" in e and "HTTP 400" in e for e in summary.error)
    # A dialect without choices streams one pane whatever n says.
    assert list(lg.run("q", ["sim/fast?tokens=5&api=anthropic"], params={"n": 2}, widget=False).statuses) == [
        "sim/fast?tokens=5&api=anthropic"]
