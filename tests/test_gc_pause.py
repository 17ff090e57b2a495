"""A run keeps the cyclic GC off the heap that existed before it, and hands it back after."""

from __future__ import annotations

import gc
import time

import llmgrid_nb as lg
from llmgrid_nb.gc_pause import frozen_heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cyclic GC can free it


def test_a_full_collection_during_a_run_skips_the_heap_from_before_it() -> None:
    ballast = [Node() for _ in range(300_000)]  # a big, long-lived heap, as litellm's import leaves
    t = time.perf_counter()
    gc.collect()
    outside = time.perf_counter() - t
    grid = lg.start("Explain SSE", ["sim/steady?tokens=40&rate=50"], widget=False)
    deadline = time.monotonic() + 30
    while "streaming" not in grid.statuses.values() and time.monotonic() < deadline:
        time.sleep(0.01)
    frozen = gc.get_freeze_count()
    t = time.perf_counter()
    gc.collect()
    during = time.perf_counter() - t
    grid.wait()
    assert grid.statuses == {"sim/steady?tokens=40&rate=50": "done"}
    assert frozen >= len(ballast)
    assert during < outside / 3, (during, outside)
    assert gc.get_freeze_count() == 0  # handed back
    del ballast


def test_nested_runs_unfreeze_once_and_an_applications_own_freeze_is_left_alone() -> None:
    with frozen_heap():
        with frozen_heap():
            assert gc.get_freeze_count() > 0
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0
    keep = [Node() for _ in range(1000)]
    gc.freeze()
    try:
        with frozen_heap():
            pass
        # Still frozen (objects freed meanwhile leave the count, so it is not compared exactly).
        assert gc.get_freeze_count() >= len(keep)
    finally:
        gc.unfreeze()
