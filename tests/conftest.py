"""Shared fixtures: the scripted wire-level server and the engine's leak checks."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from scripted_server import ScriptedServer  # noqa: E402

from llmgrid_nb.engine import get_engine  # noqa: E402


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    yield server
    server.close()


def engine_tasks(settle_s: float = 1.0) -> list[asyncio.Task]:
    """Tasks still alive on the engine loop (there should be none between runs).

    Waits up to ``settle_s`` for transient finalizers (asyncio closes an abandoned async
    generator of a library in a short task of its own) before reporting what is left.
    """
    import time

    engine = get_engine()

    async def _tasks() -> list[asyncio.Task]:
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task() and not t.done()]

    deadline = time.monotonic() + settle_s
    while True:
        tasks = engine.submit(_tasks()).result(5)
        if not tasks or time.monotonic() > deadline:
            return tasks
        time.sleep(0.02)
