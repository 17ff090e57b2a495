"""The multiplexer against the simulator over real sockets: faults, retries, cancellation."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time

import httpx
import pytest
from conftest import engine_tasks
from scripted_server import Script, ScriptedServer

import llmgrid_nb as lg
from llmgrid_nb.events import Error, Status

HEALTHY = ["sim/fast?tokens=40&seed=1", "sim/steady?tokens=25&rate=200&seed=2"]
PROMPT = "How do SSE reconnects work?"


@pytest.fixture(scope="module")
def baseline() -> dict[str, str]:
    return lg.run(PROMPT, HEALTHY).texts


def fatal_error(grid: lg.Grid, source: str) -> Error:
    [err] = [e for e in grid.events if isinstance(e, Error) and e.fatal and e.source == source]
    return err


@pytest.mark.parametrize(("fault", "message", "partial"), [
    ("reset&after=5", "was reset by the server", True),
    ("error_chunk&after=5", "the provider reported an error mid-stream", True),
    ("no_done&after=5", "ended before the response was complete", True),
    ("html", "expected an event stream but the server sent text/html", False),
    ("http_400", "request rejected (HTTP 400)", False),
    ("http_401", "authentication failed (HTTP 401)", False),
    ("http_404", "not found (HTTP 404)", False),
])
def test_a_failing_source_keeps_partial_text_and_never_spoils_the_others(
        baseline: dict[str, str], fault: str, message: str, partial: bool) -> None:
    bad = f"sim/steady?tokens=30&rate=200&seed=3&fault={fault}"
    grid = lg.run(PROMPT, [*HEALTHY, bad], retries=1, stall_timeout=2)
    row = grid.summary.set_index("source").loc[bad]
    assert row.status == "failed" and message in row.error
    for name in HEALTHY:
        assert grid.texts[name] == baseline[name]
        assert grid.statuses[name] == "done"
    err = fatal_error(grid, bad)
    assert err.partial_text == grid.texts[bad]
    assert bool(grid.texts[bad]) is partial
    if partial:
        assert row.attempts == 1, "no blind retry after tokens arrived"
        assert row.n_chunks >= 5 and row.ttft_s > 0


def test_5xx_is_retried_with_backoff_then_reported() -> None:
    grid = lg.run(PROMPT, ["sim/fast?fault=http_503"], retries=2)
    row = grid.summary.iloc[0]
    assert row.status == "failed" and row.attempts == 3 and "server error (HTTP 503)" in row.error
    retrying = [e for e in grid.events if isinstance(e, Status) and e.state == "retrying"]
    assert len(retrying) == 2


def test_429_retry_after_is_honoured() -> None:
    grid = lg.run(PROMPT, ["sim/fast?fault=http_429&retry_after=0.4"], retries=1)
    connects = [e.t_s for e in grid.events if isinstance(e, Status) and e.state == "connecting"]
    assert len(connects) == 2 and connects[1] - connects[0] >= 0.4
    assert "rate limited (HTTP 429)" in grid.summary.iloc[0].error


def test_flaky_profile_recovers_by_retrying_before_the_first_token() -> None:
    grid = lg.run(PROMPT, [f"sim/flaky?seed={s}&tokens=20&rate=500&stall_s=0.5" for s in range(6)],
                  retries=3, stall_timeout=0.4)
    summary = grid.summary
    assert (summary.attempts > 1).any(), "the flaky profile should have needed retries"
    for row in summary.itertuples():
        assert row.status in ("done", "failed")
        if row.status == "failed":
            assert isinstance(row.error, str) and row.error


def test_malformed_line_and_invalid_utf8_are_warnings_not_failures() -> None:
    grid = lg.run(PROMPT, ["sim/fast?tokens=20&fault=malformed&after=3", "sim/fast?tokens=20&fault=invalid_utf8&after=3"])
    assert set(grid.statuses.values()) == {"done"}
    assert list(grid.summary.warnings) == [1, 1]
    assert "\ufffd" in grid.texts["sim/fast?tokens=20&fault=invalid_utf8&after=3"]


def test_one_mib_line_is_streamed() -> None:
    grid = lg.run(PROMPT, ["sim/fast?tokens=10&fault=huge_line&after=2"])
    assert grid.statuses == {"sim/fast?tokens=10&fault=huge_line&after=2": "done"}
    assert grid.summary.iloc[0].chars > 1_000_000


def test_first_token_timeout() -> None:
    grid = lg.run(PROMPT, ["sim/slow?ttft=5&tokens=5"], first_token_timeout=0.5, retries=0)
    row = grid.summary.iloc[0]
    assert row.status == "failed" and row.error == "timed out: no first token within 0.5 s"
    assert row.e2e_s != row.e2e_s  # NaN: no content arrived


def test_total_timeout_catches_a_slow_drip() -> None:
    t = time.monotonic()
    grid = lg.run(PROMPT, ["sim/fast?tokens=50&fault=drip&drip_s=0.05"], timeout=1.0, stall_timeout=0.5)
    assert time.monotonic() - t < 2.5
    assert grid.summary.iloc[0].error == "timed out: no complete answer within 1 s"


def test_cancel_closes_every_socket_within_a_second_and_keeps_partial_text(scripted: ScriptedServer) -> None:
    piece = b'data: {"choices": [{"index": 0, "delta": {"content": "part"}}]}\n\n'
    for _ in range(3):
        scripted.scripts.append(Script(body=[piece], hold=True))
    srcs = [lg.OpenAICompatible("m", scripted.url + "/v1", name=f"s{i}") for i in range(3)]
    grid = lg.run(PROMPT, srcs, background=True)
    deadline = time.monotonic() + 5
    while set(grid.texts.values()) != {"part"} and time.monotonic() < deadline:
        time.sleep(0.01)
    t_cancel = time.monotonic()
    grid.cancel()
    grid.wait(5)
    assert set(grid.statuses.values()) == {"cancelled"}
    assert grid.texts == {"s0": "part", "s1": "part", "s2": "part"}
    while len(scripted.closed_at) < 3 and time.monotonic() < t_cancel + 2:
        time.sleep(0.01)
    assert len(scripted.closed_at) == 3 and max(scripted.closed_at) - t_cancel < 1.0
    assert grid.status == "cancelled"
    assert list(grid.summary.status) == ["cancelled"] * 3
    assert engine_tasks() == []


def test_cancel_one_pane_leaves_the_others_running() -> None:
    grid = lg.run(PROMPT, ["sim/steady?tokens=40&rate=40", "sim/fast?tokens=30"], background=True)
    time.sleep(0.5)
    grid.cancel("sim/steady?tokens=40&rate=40")
    grid.wait(10)
    assert grid.statuses == {"sim/steady?tokens=40&rate=40": "cancelled", "sim/fast?tokens=30": "done"}
    assert 0 < len(grid.texts["sim/steady?tokens=40&rate=40"])


def test_keyboard_interrupt_during_wait_cancels_the_run() -> None:
    grid = lg.run(PROMPT, ["sim/steady?tokens=200&rate=20"], background=True)
    threading.Timer(0.6, os.kill, (os.getpid(), signal.SIGINT)).start()
    t = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        grid.wait()
    assert time.monotonic() - t < 2.0
    assert grid.done and grid.statuses == {"sim/steady?tokens=200&rate=20": "cancelled"}
    assert grid.texts["sim/steady?tokens=200&rate=20"]
    assert engine_tasks() == []


async def test_arun_inside_a_running_loop() -> None:
    grid = await lg.arun(PROMPT, ["sim/fast?tokens=10"])
    assert grid.statuses == {"sim/fast?tokens=10": "done"}


async def test_run_blocks_correctly_inside_a_running_loop() -> None:
    assert asyncio.get_running_loop().is_running()
    grid = lg.run(PROMPT, ["sim/fast?tokens=10"])
    assert grid.done and grid.texts["sim/fast?tokens=10"]


async def test_cancelling_the_awaiting_task_cancels_the_run() -> None:
    grid = lg.start(PROMPT, ["sim/steady?tokens=200&rate=20"])
    task = asyncio.ensure_future(_await(grid))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.get_running_loop().run_in_executor(None, grid.wait, 5)
    assert grid.statuses == {"sim/steady?tokens=200&rate=20": "cancelled"}


async def _await(grid: lg.Grid) -> lg.Grid:
    return await grid


def test_connections_are_pooled_per_host_and_reused_across_runs() -> None:
    from llmgrid_nb.engine import get_engine

    from llmgrid_nb.sim import default_simulator

    lg.run(PROMPT, ["sim/fast?tokens=5"])
    pool = get_engine().pool
    before = dict(pool._clients)
    client = pool.client_for(default_simulator().openai_base)
    assert client in before.values()
    lg.run(PROMPT, ["sim/fast?tokens=5", "sim/steady?tokens=5"])
    assert pool._clients == before and pool.client_for(default_simulator().openai_base) is client
    assert isinstance(client, httpx.AsyncClient) and not client.is_closed


def test_per_host_concurrency_limit_queues_streams() -> None:
    grid = lg.run(PROMPT, [f"sim/steady?tokens=10&rate=50&ttft=0.1&seed={i}" for i in range(4)], max_concurrency=2)
    starts = sorted(grid.summary.t_request_s)
    assert starts[2] - starts[0] > 0.2, "the third stream must wait for a free slot"
