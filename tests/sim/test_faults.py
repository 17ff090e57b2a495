"""Explicit faults requested in the model name, on both chat endpoints."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

PROMPT = [{"role": "user", "content": "Tell me about retries"}]


def post(client: httpx.Client, model: str, path: str = "/v1/chat/completions", **extra: Any) -> httpx.Response:
    return client.post(path, json={"model": model, "messages": PROMPT, "stream": True, **extra})


Reads = list[tuple[float, bytes]]


def raw_stream(
    client: httpx.Client, model: str, path: str = "/v1/chat/completions", timeout: float = 10
) -> tuple[httpx.Response, Reads]:
    """Raw body reads with their arrival times."""
    reads: Reads = []
    body = {"model": model, "messages": PROMPT, "stream": True}
    with client.stream("POST", path, json=body, timeout=timeout) as response:
        for data in response.iter_raw():
            reads.append((time.monotonic(), data))
    return response, reads


def lines(reads: list[tuple[float, bytes]]) -> list[bytes]:
    return b"".join(d for _, d in reads).split(b"\n")


def data_lines(reads: list[tuple[float, bytes]]) -> list[bytes]:
    return [line[6:] for line in lines(reads) if line.startswith(b"data: ")]


@pytest.mark.parametrize(
    ("fault", "status", "type_"),
    [
        ("http_400", 400, "invalid_request_error"),
        ("http_401", 401, "invalid_request_error"),
        ("http_403", 403, "request_forbidden"),
        ("http_404", 404, "invalid_request_error"),
        ("http_429", 429, "requests"),
        ("http_500", 500, "server_error"),
        ("http_502", 502, "server_error"),
        ("http_503", 503, "server_error"),
    ],
)
def test_http_faults_return_openai_errors(client: httpx.Client, fault: str, status: int, type_: str) -> None:
    reply = post(client, f"fast?fault={fault}")
    assert reply.status_code == status
    error = reply.json()["error"]
    assert error["type"] == type_ and error["param"] is None and error["message"]
    assert set(error) == {"message", "type", "param", "code"}


def test_http_400_has_a_specific_message(client: httpx.Client) -> None:
    error = post(client, "fast?fault=http_400").json()["error"]
    assert "maximum context length" in error["message"] and error["code"] == "context_length_exceeded"


def test_429_retry_after_header(client: httpx.Client) -> None:
    assert post(client, "fast?fault=http_429").headers["retry-after"] == "1"
    assert post(client, "fast?fault=http_429&retry_after=7").headers["retry-after"] == "7"
    assert "retry-after" not in post(client, "fast?fault=http_429&retry_after=none").headers


def test_reset_aborts_the_connection_after_n_chunks(client: httpx.Client) -> None:
    received: list[bytes] = []
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        body = {"model": "fast?ttft=0&rate=50&tokens=20&fault=reset&after=4", "messages": PROMPT, "stream": True}
        with client.stream("POST", "/v1/chat/completions", json=body) as response:
            for line in response.iter_lines():
                if line.startswith("data: "):
                    received.append(line.encode())
    assert len(received) == 5  # role + 4 content chunks


def test_stall_keeps_socket_open_then_continues(client: httpx.Client) -> None:
    response, reads = raw_stream(client, "instant?tokens=6&fault=stall&after=2&stall_s=0.6")
    gaps = [b[0] - a[0] for a, b in zip(reads, reads[1:])]
    assert max(gaps) >= 0.5
    assert data_lines(reads)[-1] == b"[DONE]"


def test_stall_trips_a_read_timeout(client: httpx.Client) -> None:
    with pytest.raises(httpx.ReadTimeout):
        raw_stream(client, "instant?tokens=6&fault=stall&after=2&stall_s=5", timeout=0.3)


def test_drip_sends_one_byte_at_a_time(client: httpx.Client) -> None:
    response, reads = raw_stream(client, "instant?tokens=1&fault=drip&drip_s=0.001")
    assert len(reads) > 100
    assert max(len(d) for _, d in reads) <= 4
    assert data_lines(reads)[-1] == b"[DONE]"


def test_no_done_ends_cleanly_without_finish_or_done(client: httpx.Client) -> None:
    _, reads = raw_stream(client, "instant?tokens=5&fault=no_done")
    payloads = data_lines(reads)
    assert len(payloads) == 6
    assert all(json.loads(p)["choices"][0]["finish_reason"] is None for p in payloads)


def test_malformed_line_then_stream_continues(client: httpx.Client) -> None:
    _, reads = raw_stream(client, "instant?tokens=8&fault=malformed&after=3")
    payloads = data_lines(reads)
    assert payloads[4] == b"{not json"
    assert payloads[-1] == b"[DONE]"
    assert sum(1 for p in payloads if p.startswith(b"{") and p != b"{not json") == 10


def test_huge_line_is_one_mebibyte_of_valid_json(client: httpx.Client) -> None:
    _, reads = raw_stream(client, "instant?tokens=5&fault=huge_line&after=2")
    payloads = data_lines(reads)
    huge = max(payloads, key=len)
    assert len(huge) > 1024 * 1024
    assert len(json.loads(huge)["choices"][0]["delta"]["content"]) == 1024 * 1024
    assert payloads[-1] == b"[DONE]"


def test_invalid_utf8_bytes_inside_a_content_chunk(client: httpx.Client) -> None:
    _, reads = raw_stream(client, "instant?tokens=5&fault=invalid_utf8&after=2")
    body = b"".join(d for _, d in reads)
    assert b"\xff\xfe" in body
    bad = [line for line in lines(reads) if b"\xff\xfe" in line]
    assert len(bad) == 1 and bad[0].startswith(b"data: {") and b'"content":"' in bad[0]


def test_html_fault_returns_nginx_page_with_200(client: httpx.Client) -> None:
    reply = post(client, "instant?fault=html")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/html")
    assert b"nginx" in reply.content and b"<html>" in reply.content


def test_error_chunk_then_close(client: httpx.Client) -> None:
    _, reads = raw_stream(client, "instant?tokens=8&fault=error_chunk&after=2")
    payloads = data_lines(reads)
    assert len(payloads) == 4
    assert json.loads(payloads[-1]) == {
        "error": {"message": "The server had an error while processing your request.", "type": "server_error"}
    }


def test_fault_is_recorded_in_send_log(client: httpx.Client) -> None:
    response, _ = raw_stream(client, "instant?tokens=4&fault=malformed&after=1")
    log = client.get(f"/_sim/log/{response.headers['x-sim-request-id']}").json()
    assert log["fault"] == "malformed"
    assert log["kinds"] == ["role", "content", "malformed", "content", "content", "content", "finish", "done"]


def test_flaky_fails_about_forty_percent_and_retry_gets_next_outcome(client: httpx.Client) -> None:
    outcomes = []
    for _ in range(25):
        try:
            response, reads = raw_stream(client, "flaky?tokens=12&ttft=0&rate=0&seed=99&stall_s=0.2", timeout=5)
        except (httpx.ReadError, httpx.RemoteProtocolError):
            outcomes.append("reset")
            continue
        if response.status_code != 200:
            outcomes.append(str(response.status_code))
        elif b"{not json" in b"".join(d for _, d in reads):
            outcomes.append("malformed")
        elif max((b[0] - a[0] for a, b in zip(reads, reads[1:])), default=0) > 0.15:
            outcomes.append("stall")
        else:
            outcomes.append("ok")
    failures = sum(o != "ok" for o in outcomes)
    assert 4 <= failures <= 18, outcomes
    assert len(set(outcomes)) >= 3


def test_ollama_http_fault_uses_ollama_error_shape(client: httpx.Client) -> None:
    reply = post(client, "fast?fault=http_503", path="/api/chat")
    assert reply.status_code == 503
    assert set(reply.json()) == {"error"}


def test_ollama_malformed_and_error_lines(client: httpx.Client) -> None:
    _, reads = raw_stream(client, "instant?tokens=5&fault=malformed&after=2", path="/api/chat")
    body_lines = [line for line in lines(reads) if line]
    assert body_lines[2] == b"{not json"
    assert json.loads(body_lines[-1])["done"] is True
    _, reads = raw_stream(client, "instant?tokens=5&fault=error_chunk&after=2", path="/api/chat")
    body_lines = [line for line in lines(reads) if line]
    assert len(body_lines) == 3 and set(json.loads(body_lines[-1])) == {"error"}


def test_ollama_reset(client: httpx.Client) -> None:
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        raw_stream(client, "instant?tokens=20&fault=reset&after=3", path="/api/chat")
