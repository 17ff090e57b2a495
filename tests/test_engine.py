"""The engine thread: one per process, also in a process forked from one that used it."""

from __future__ import annotations

import multiprocessing

import llmgrid_nb as lg


def _run_in_child(model: str) -> tuple[str, str]:
    grid = lg.run("Explain SSE", [model], widget=False)
    return grid.status, grid.summary.status.iloc[0]


def test_a_forked_child_runs_on_an_engine_of_its_own() -> None:
    lg.run("warm up the parent's engine", ["sim/fast?tokens=5"], widget=False)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        result = pool.apply_async(_run_in_child, ("sim/fast?tokens=5",)).get(timeout=60)
    assert result == ("done", "done")
    assert lg.run("and the parent's still runs", ["sim/fast?tokens=5"], widget=False).status == "done"
