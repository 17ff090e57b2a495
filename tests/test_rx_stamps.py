"""Kernel receive timestamps: a chunk's arrival time is when its bytes reached the machine, so a
busy engine loop does not show up as model latency. Real sockets against the simulator."""

from __future__ import annotations

import asyncio
import threading
import time

import httpx
import numpy as np
import pytest

import llmgrid_nb as lg
from llmgrid_nb import rx_stamps, rx_transport
from llmgrid_nb.engine import get_engine
from llmgrid_nb.sim import default_simulator

pytestmark = pytest.mark.skipif(
    not rx_stamps.enabled(),
    reason="kernel receive timestamps are off: not Linux on a 64-bit x86/ARM/RISC-V/POWER/s390 machine, "
           "or LLMGRID_KERNEL_TIMESTAMPS=0 is set")

MODEL = "sim/steady?tokens=24&rate=10&jitter=0&ttft=0.1&seed=3"


def _lags_with_a_busy_loop() -> tuple[np.ndarray, float]:
    """Stream MODEL while the engine loop is blocked for 50 ms out of every 70 ms (as a busy
    kernel would delay it): each chunk's recorded arrival minus the simulator's send time, and the
    largest delay the loop saw."""
    loop = get_engine().loop
    stop = threading.Event()
    worst = [0.0]

    def block() -> None:
        if stop.is_set():
            return
        time.sleep(0.05)
        loop.call_later(0.02, block)

    def probe(expected: float) -> None:  # how late the loop runs a callback due now
        worst[0] = max(worst[0], time.monotonic() - expected)
        if not stop.is_set():
            loop.call_later(0.005, probe, time.monotonic() + 0.005)

    loop.call_soon_threadsafe(block)
    loop.call_soon_threadsafe(probe, time.monotonic())
    try:
        grid = lg.run("Explain SSE", [MODEL])
    finally:
        stop.set()
    row = grid.summary.iloc[0]
    assert row.status == "done", row.error
    log = httpx.get(f"{default_simulator().url}/_sim/log/{row.request_id}").json()
    sends = np.asarray([t for t, k in zip(log["send_times"], log["kinds"]) if k == "content"])
    tokens = grid.chunks[grid.chunks.kind == "token"]
    arrivals = grid.t0_monotonic + tokens.t_s.to_numpy()
    assert len(sends) == len(arrivals) == 24
    return arrivals - sends, worst[0]


def test_a_busy_engine_loop_does_not_delay_the_recorded_arrival_times() -> None:
    lags, worst = _lags_with_a_busy_loop()
    assert worst > 0.03  # the loop really was held up
    # Chunks 100 ms apart never wait together in one read: each keeps its own packet's stamp.
    assert np.abs(lags).max() < 0.003, lags


def test_with_kernel_stamps_off_the_same_run_records_the_loops_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMGRID_KERNEL_TIMESTAMPS", "0")
    lags, _worst = _lags_with_a_busy_loop()
    # What a read-time stamp records: the blocks show up as tens of ms of "model latency".
    assert lags.max() > 0.02 and np.percentile(lags, 75) > 0.005, lags


def test_stamps_are_on_the_monotonic_clock_and_never_after_the_read() -> None:
    async def read_one() -> tuple[float | None, float, float]:
        url = default_simulator().url
        client = httpx.AsyncClient(transport=rx_transport.transport(httpx.Limits()))
        try:
            before = time.monotonic()
            resp = await client.get(f"{url}/_sim/health")
            after = time.monotonic()
            return rx_stamps.receive_time(resp), before, after
        finally:
            await client.aclose()

    stamp, before, after = asyncio.run(read_one())
    assert stamp is not None and before <= stamp <= after


def test_https_and_foreign_responses_have_no_stamp() -> None:
    assert rx_stamps.receive_time(httpx.Response(200)) is None


def test_connection_errors_are_httpx_errors_naming_the_cause() -> None:
    async def refused() -> None:
        client = httpx.AsyncClient(transport=rx_transport.transport(httpx.Limits()))
        try:
            await client.get("http://127.0.0.1:9/")  # the discard port: nothing listens
        finally:
            await client.aclose()

    with pytest.raises(httpx.ConnectError):
        asyncio.run(refused())
