"""Starting and stopping simulator processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from llmgrid_nb.sim import SimServer, start_simulator

ROOT = str(Path(__file__).resolve().parents[2])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_start_and_stop_leaves_no_process() -> None:
    server = start_simulator()
    assert isinstance(server, SimServer)
    assert server.openai_base == server.url + "/v1" and server.ollama_base == server.url
    assert server.url in repr(server)
    pid = server.pid
    assert pid is not None and _alive(pid)
    assert httpx.get(server.url + "/_sim/health").json() == {"ok": True}
    server.stop()
    assert not _alive(pid)
    server.stop()  # idempotent


def test_context_manager_stops_the_server() -> None:
    with start_simulator() as server:
        pid = server.pid
        assert pid is not None
    assert not _alive(pid)


def test_child_dying_before_ready_raises_with_stderr() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match="Address already in use"):
            start_simulator(port)


def _run(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    child_env = {**os.environ, "PYTHONPATH": ROOT, **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=child_env,
        timeout=30,
        check=True,
    )


def test_default_simulator_is_a_singleton_stopped_at_exit() -> None:
    out = _run(
        """
        from llmgrid_nb.sim import default_simulator
        a = default_simulator()
        assert default_simulator() is a
        print(a.pid)
        """
    )
    pid = int(out.stdout.strip())
    assert not _alive(pid)


def test_default_simulator_uses_llmgrid_sim_url_without_starting() -> None:
    out = _run(
        """
        from llmgrid_nb.sim import default_simulator
        s = default_simulator()
        s.stop()
        print(s.url, s.openai_base, s.pid)
        """,
        LLMGRID_SIM_URL="http://127.0.0.1:9/",
    )
    assert out.stdout.split() == ["http://127.0.0.1:9", "http://127.0.0.1:9/v1", "None"]


def test_main_prints_exactly_one_ready_line() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "llmgrid_nb.sim", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": ROOT},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("LLMGRID_SIM_READY http://127.0.0.1:")
        assert httpx.get(line.split()[1] + "/_sim/health").status_code == 200
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=10)
    assert out == ""
