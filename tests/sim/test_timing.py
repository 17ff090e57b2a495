"""The simulator keeps its schedule under concurrent load."""

from __future__ import annotations

from llmgrid_nb.sim import SimServer
from llmgrid_nb.sim.bench import measure_lateness


def test_forty_concurrent_streams_stay_on_schedule(sim: SimServer) -> None:
    report = measure_lateness(sim, streams=40, rate=50, tokens=60)
    assert report.chunks == 40 * 61
    assert report.min_ms >= -0.5
    assert report.p99_ms < 50, str(report)
