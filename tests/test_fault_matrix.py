"""The fault matrix: every fault on every route, with two healthy sources beside the faulty one.

Expected every time: the faulty pane ends in a distinct status with a one-line error, its
partial text is kept, the healthy panes finish with the same text as a run without the fault,
retries happen only before the first token, and nothing is left running or open afterwards.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from conftest import engine_tasks

import llmgrid_nb as lg
from llmgrid_nb.events import Error
from llmgrid_nb.sim import default_simulator

PROMPT = "How do SSE reconnects work?"
HEALTHY = ["sim/fast?tokens=25&seed=11", "sim/steady?tokens=20&rate=250&seed=12"]
BASE = "steady?tokens=30&rate=250&seed=7"


#: The native dialects, each over the simulator's endpoint of that dialect.
DIALECT_APIS = {"direct-anthropic": "anthropic", "direct-gemini": "gemini", "direct-openai-responses": "responses"}


def route_source(route: str, options: str) -> lg.OpenAICompatible | lg.Ollama | str:
    model = f"{BASE}&{options}" if options else BASE
    if route == "direct-openai":
        return f"sim/{model}"
    if route in DIALECT_APIS:
        return f"sim/{model}&api={DIALECT_APIS[route]}"
    if route == "direct-ollama":
        return lg.Ollama(model, base_url=default_simulator().ollama_base, name=f"ollama/{model}")
    return f"litellm:sim/{model}"


@pytest.fixture(scope="module")
def baseline() -> dict[str, str]:
    return lg.run(PROMPT, HEALTHY).texts


@pytest.fixture(scope="module", autouse=True)
def no_leaks() -> Iterator[None]:
    lg.run(PROMPT, HEALTHY * 2)  # warm the pool
    before = psutil.Process().num_fds()
    yield
    time.sleep(0.2)
    assert engine_tasks() == []
    assert psutil.Process().num_fds() <= before + 8, "file descriptors leaked across the matrix"


# (fault options, expected status, error fragment, partial text expected, retried)
FAULTS = [
    ("fault=http_400", "failed", "request rejected (HTTP 400)", False, False),
    ("fault=http_401", "failed", "authentication failed (HTTP 401)", False, False),
    ("fault=http_403", "failed", "authentication failed (HTTP 403)", False, False),
    ("fault=http_404", "failed", "not found (HTTP 404)", False, False),
    ("fault=http_429&retry_after=0.2", "failed", "rate limited (HTTP 429)", False, True),
    ("fault=http_429&retry_after=none", "failed", "rate limited (HTTP 429)", False, True),
    ("fault=http_500", "failed", "server error (HTTP 500)", False, True),
    ("fault=http_502", "failed", "server error (HTTP 502)", False, True),
    ("fault=http_503", "failed", "server error (HTTP 503)", False, True),
    ("fault=reset&after=6", "failed", "reset", True, False),
    ("fault=stall&after=6&stall_s=5", "failed", "stalled: no data for 2 s", True, False),
    ("fault=drip&drip_s=0.05", "failed", "timed out: no complete answer within 3 s", None, False),
    ("fault=no_done&after=6", "failed", "ended before", True, False),
    ("fault=error_chunk&after=6", "failed", "error", True, False),
    ("fault=html", "failed", "", False, False),
    ("fault=malformed&after=6", "done", None, True, False),
    ("fault=invalid_utf8&after=6", "done", None, True, False),
    ("fault=huge_line&after=6", "done", None, True, False),
]
ROUTES = ["direct-openai", "direct-ollama", "direct-anthropic", "direct-gemini", "direct-openai-responses", "litellm"]
#: Where a dialect words a failure its own way (Anthropic's overloaded status is 529; Google's
#: in-band error is UNAVAILABLE, in its own words).
MESSAGES = {
    ("direct-anthropic", "fault=http_503"): "server error (HTTP 529): Anthropic overloaded_error: Overloaded",
    ("direct-anthropic", "fault=error_chunk&after=6"): "Anthropic overloaded_error: Overloaded",
    ("direct-gemini", "fault=error_chunk&after=6"): "Gemini UNAVAILABLE",
    ("direct-openai-responses", "fault=error_chunk&after=6"): "OpenAI server_error",
}
NOT_ON = {  # faults a route cannot see as such (the format has no such thing, or litellm hides it)
    "direct-ollama": {"fault=no_done&after=6", "fault=error_chunk&after=6", "fault=html", "fault=huge_line&after=6",
                      "fault=invalid_utf8&after=6", "fault=drip&drip_s=0.05"},
    "litellm": {"fault=malformed&after=6", "fault=invalid_utf8&after=6", "fault=huge_line&after=6",
                "fault=drip&drip_s=0.05", "fault=no_done&after=6", "fault=html", "fault=http_429&retry_after=none"},
}


MATRIX = [(route, f[0], f[1], MESSAGES.get((route, f[0]), f[2]), *f[3:])
          for route in ROUTES for f in FAULTS if f[0] not in NOT_ON.get(route, set())]


@pytest.mark.parametrize(("route", "fault", "status", "message", "partial", "retried"), MATRIX,
                         ids=[f"{m[0]}-{m[1]}" for m in MATRIX])
def test_fault(baseline: dict[str, str], route: str, fault: str, status: str, message: str | None,
               partial: bool | None, retried: bool) -> None:
    bad = route_source(route, fault)
    grid = lg.run(PROMPT, [*HEALTHY, bad], retries=1, stall_timeout=2, timeout=3 if "drip" in fault else 30)
    name = grid.sources[-1]
    row = grid.summary.set_index("source").loc[name]
    assert row.status == status, row.error
    for healthy in HEALTHY:
        assert grid.texts[healthy] == baseline[healthy] and grid.statuses[healthy] == "done", grid.summary.to_dict("records")
    if status == "failed":
        assert isinstance(row.error, str) and "\n" not in row.error and len(row.error) < 600
        if message:
            assert message in row.error
        fatal = [e for e in grid.events if isinstance(e, Error) and e.fatal and e.source == name]
        assert len(fatal) == 1 and fatal[0].partial_text == grid.texts[name]
        if partial:
            assert grid.texts[name], "the partial text is kept"
        assert row.attempts == (2 if retried else 1)
    elif "huge_line" in fault:
        assert row.chars > 1_000_000
    else:
        assert row.warnings >= 1


def test_refused_connection_and_dns_failure(baseline: dict[str, str]) -> None:
    bad = [lg.OpenAICompatible("m", "http://127.0.0.1:9/v1", name="refused"),
           lg.OpenAICompatible("m", "http://no-such-host.invalid/v1", name="dns"),
           lg.Ollama("m", base_url="http://127.0.0.1:9", name="ollama-refused")]
    grid = lg.run(PROMPT, [*HEALTHY, *bad], retries=1)
    errors = grid.summary.set_index("source").error
    assert "cannot connect to 127.0.0.1:9" in errors["refused"]
    assert "cannot connect to no-such-host.invalid" in errors["dns"]
    assert "cannot connect to 127.0.0.1:9" in errors["ollama-refused"]
    assert all(grid.texts[h] == baseline[h] for h in HEALTHY)


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    d: Path = tmp_path_factory.mktemp("tls")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "k.pem"),
                    "-out", str(d / "c.pem"), "-days", "1", "-subj", "/CN=localhost"],
                   check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(d / "c.pem", d / "k.pem")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                pass

    threading.Thread(target=serve, daemon=True).start()
    yield f"https://localhost:{sock.getsockname()[1]}/v1"
    stop.set()
    sock.close()


def test_tls_error_is_reported_and_not_retried(tls_server: str, baseline: dict[str, str]) -> None:
    grid = lg.run(PROMPT, [*HEALTHY, lg.OpenAICompatible("m", tls_server, name="tls")], retries=2)
    row = grid.summary.set_index("source").loc["tls"]
    assert row.status == "failed" and row.error.startswith("TLS error talking to localhost")
    assert row.attempts == 1
    assert all(grid.texts[h] == baseline[h] for h in HEALTHY)


@pytest.fixture
def silent_server() -> Iterator[str]:
    """Accepts connections (kernel backlog) but never answers: a request stuck before headers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
    sock.close()


@pytest.mark.parametrize("phase", ["connecting", "waiting", "streaming"])
def test_cancellation_at_each_phase(phase: str, silent_server: str) -> None:
    if phase == "connecting":
        target: object = lg.OpenAICompatible("m", silent_server, name="target")
    elif phase == "waiting":
        target = lg.OpenAICompatible("slow?ttft=10&tokens=5", default_simulator().openai_base, name="target")
    else:
        target = lg.OpenAICompatible("steady?tokens=400&rate=40", default_simulator().openai_base, name="target")
    grid = lg.start(PROMPT, [*HEALTHY, target])
    deadline = time.monotonic() + 10
    while grid.statuses["target"] != phase and time.monotonic() < deadline:
        time.sleep(0.005)
    assert grid.statuses["target"] == phase
    if phase == "streaming":
        time.sleep(0.3)
    t = time.monotonic()
    grid.cancel("target")
    grid.wait(10)
    assert grid.statuses["target"] == "cancelled"
    cancelled_at = next(e.t_s for e in grid.events if e.source == "target" and e.kind == "status"
                        and e.state == "cancelled")
    assert grid.t0_monotonic + cancelled_at - t < 1.0
    assert (grid.texts["target"] != "") is (phase == "streaming")
    assert all(grid.statuses[h] == "done" for h in HEALTHY)
    assert engine_tasks() == []
