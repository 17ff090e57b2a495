"""Keeps Python's cyclic garbage collector off the objects that existed before a run.

A full (oldest-generation) collection scans every tracked object in the process. In a kernel
that has imported litellm that is ~400,000 objects and takes ~270 ms on this machine; when one
fell inside a run, every chunk arriving meanwhile was stamped up to 270 ms late (seen as a p99
arrival lag of 275-390 ms in bench_fidelity). While any run streams, the objects that existed
when the first run started are frozen (``gc.freeze``): collections still run, on what the runs
allocate, and the frozen objects are handed back (``gc.unfreeze``) when the last run ends.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["frozen_heap"]

_lock = threading.Lock()
_active = 0
_ours = False  # whether the frozen generation is ours to hand back


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Freeze the existing heap for the duration (nests across concurrent runs).

    Does nothing if the application froze objects itself: unfreezing would undo its freeze."""
    global _active, _ours
    with _lock:
        if _active == 0:
            _ours = gc.get_freeze_count() == 0
            if _ours:
                gc.freeze()
        _active += 1
    try:
        yield
    finally:
        with _lock:
            _active -= 1
            if _active == 0 and _ours:
                gc.unfreeze()
                _ours = False
