"""The simulated source: one model string, any dialect, through that dialect's own source."""

from __future__ import annotations

import llmgrid_nb as lg


def test_n_choices_are_asked_of_the_dialect_and_each_gets_its_pane() -> None:
    """A Chat Completions request for three choices streams three answers into three panes, each
    with its own text and metrics; a dialect without choices streams one pane whatever n says."""
    grid = lg.run("q", ["sim/fast?tokens=12"], params={"n": 3}, widget=False, retries=0)
    summary = grid.summary.set_index("source")
    names = ["sim/fast?tokens=12", "sim/fast?tokens=12[1]", "sim/fast?tokens=12[2]"]
    assert list(summary.index) == names
    assert set(summary.status) == {"done"} and summary.error.isna().all()
    assert len({grid.texts[n] for n in names}) == 3 and all(grid.texts[n] for n in names)
    assert (summary.ttft_s > 0).all()
    assert list(lg.run("q", ["sim/fast?tokens=5&api=anthropic"], params={"n": 2}, widget=False).statuses) == [
        "sim/fast?tokens=5&api=anthropic"]


def test_a_stream_of_choices_cut_mid_way_fails_every_choice_keeping_its_text() -> None:
    grid = lg.run("q", ["sim/fast?tokens=30&fault=reset&after=12"], params={"n": 2}, widget=False, retries=0)
    summary = grid.summary.set_index("source")
    assert set(summary.status) == {"failed"}
    assert all("reset" in e for e in summary.error)
    assert all(grid.texts.values()), "each choice keeps what arrived before the reset"
