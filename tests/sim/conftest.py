"""A simulator shared by the tests in this folder."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from llmgrid_nb.sim import SimServer, start_simulator


@pytest.fixture(scope="session")
def sim() -> Iterator[SimServer]:
    """One simulator subprocess for the session, Brave limited to 1 request/s per token."""
    with start_simulator(env={"LLMGRID_SIM_BRAVE_RATE": "1"}) as server:
        yield server


@pytest.fixture(scope="session")
def client(sim: SimServer) -> Iterator[httpx.Client]:
    """An httpx client pointed at the simulator."""
    with httpx.Client(base_url=sim.url, timeout=10) as c:
        yield c
