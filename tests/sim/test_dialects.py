"""What every chat dialect shares: the schedule, the send log, faults and model options, over real sockets."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from llmgrid_nb.sim import parse_model, schedule

DIALECTS = ["openai", "anthropic", "gemini", "responses"]
PROMPT = "Tell me about retries"
# The send-log kind of each dialect's last frame, and the frame separator.
END = {"openai": "done", "anthropic": "done", "gemini": "finish", "responses": "done"}
SEP = {"openai": b"\n\n", "anthropic": b"\n\n", "gemini": b"\r\n\r\n", "responses": b"\n\n"}


def chat_request(dialect: str, model: str) -> tuple[str, dict[str, Any]]:
    """Path and body of a streamed request for ``model`` in ``dialect``."""
    if dialect == "openai":
        return "/v1/chat/completions", {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": True}
    if dialect == "anthropic":
        body = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 4096, "stream": True}
        return "/v1/messages", body
    if dialect == "gemini":
        path = f"/v1beta/models/{quote(model, safe='')}:streamGenerateContent?alt=sse"
        return path, {"contents": [{"role": "user", "parts": [{"text": PROMPT}]}]}
    return "/v1/responses", {"model": model, "input": PROMPT, "stream": True}


def raw_stream(
    client: httpx.Client, dialect: str, model: str, timeout: float = 10
) -> tuple[httpx.Response, list[tuple[float, bytes]]]:
    """The body reads of a streamed request with their arrival times."""
    path, body = chat_request(dialect, model)
    reads: list[tuple[float, bytes]] = []
    with client.stream("POST", path, json=body, timeout=timeout) as response:
        for data in response.iter_raw():
            reads.append((time.monotonic(), data))
    return response, reads


def frames(dialect: str, reads: list[tuple[float, bytes]]) -> list[bytes]:
    return [f for f in b"".join(d for _, d in reads).split(SEP[dialect]) if f]


def log_of(client: httpx.Client, response: httpx.Response) -> dict[str, Any]:
    return client.get(f"/_sim/log/{response.headers['x-sim-request-id']}").json()


def payload(frame: bytes) -> bytes:
    """The data of an SSE frame (after any ``event:`` line)."""
    return frame.split(b"data: ", 1)[1]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_token_frames_follow_the_schedule(client: httpx.Client, dialect: str) -> None:
    model = "steady?tokens=30&ttft=0.1&rate=100&seed=5"
    response, reads = raw_stream(client, dialect, model)
    log = log_of(client, response)
    assert log["model"] == model and log["profile"] == "steady" and log["fault"] is None
    assert len(log["send_times"]) == len(frames(dialect, reads)) == len(log["kinds"])
    assert log["kinds"].count("content") == 30 and log["kinds"][-1] == END[dialect]
    times = log["send_times"]
    assert all(a <= b for a, b in zip(times, times[1:]))
    tokens = [t - log["t_request"] for t, k in zip(times, log["kinds"]) if k == "content"]
    late = sorted(a - o for a, o in zip(tokens, schedule(parse_model(model).profile, 30, 5)))
    assert late[0] >= -0.001 and late[-1] <= 0.05 and late[len(late) // 2] <= 0.005, late


@pytest.mark.parametrize("dialect", DIALECTS)
def test_reset_aborts_after_n_tokens(client: httpx.Client, dialect: str) -> None:
    path, body = chat_request(dialect, "fast?ttft=0&rate=50&tokens=20&fault=reset&after=4")
    with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
        with client.stream("POST", path, json=body) as response:
            request_id = response.headers["x-sim-request-id"]
            for _ in response.iter_raw():
                pass
    kinds = client.get(f"/_sim/log/{request_id}").json()["kinds"]
    assert kinds.count("content") == 4 and kinds[-1] == "reset"


@pytest.mark.parametrize("dialect", DIALECTS)
def test_stall_keeps_the_socket_open_then_continues(client: httpx.Client, dialect: str) -> None:
    response, reads = raw_stream(client, dialect, "instant?tokens=6&fault=stall&after=2&stall_s=0.6")
    assert max(b[0] - a[0] for a, b in zip(reads, reads[1:])) >= 0.5
    assert log_of(client, response)["kinds"][-1] == END[dialect]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_drip_sends_the_same_stream_a_byte_at_a_time(client: httpx.Client, dialect: str) -> None:
    response, reads = raw_stream(client, dialect, "instant?tokens=1&fault=drip&drip_s=0.0005")
    log = log_of(client, response)
    assert set(log["kinds"]) == {"drip"} and len(log["kinds"]) == sum(len(d) for _, d in reads)
    assert len(reads) > 50
    _, normal = raw_stream(client, dialect, "instant?tokens=1")
    assert len(frames(dialect, reads)) == len(frames(dialect, normal))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_no_done_drops_the_finish_and_end(client: httpx.Client, dialect: str) -> None:
    response, _ = raw_stream(client, dialect, "instant?tokens=5&fault=no_done")
    kinds = log_of(client, response)["kinds"]
    assert kinds.count("content") == 5 and not {"finish", "usage", "done"} & set(kinds)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_malformed_frame_then_the_stream_continues(client: httpx.Client, dialect: str) -> None:
    response, reads = raw_stream(client, dialect, "instant?tokens=4&fault=malformed&after=1")
    kinds = log_of(client, response)["kinds"]
    tokens = [k for k in kinds if k in ("content", "malformed")]
    assert tokens == ["content", "malformed", "content", "content", "content"] and kinds[-1] == END[dialect]
    bad = [f for f in frames(dialect, reads) if payload(f) == b"{not json"]
    assert len(bad) == 1


@pytest.mark.parametrize("dialect", DIALECTS)
def test_huge_line_is_one_mebibyte_of_valid_json(client: httpx.Client, dialect: str) -> None:
    response, reads = raw_stream(client, dialect, "instant?tokens=5&fault=huge_line&after=2")
    huge = max(frames(dialect, reads), key=len)
    assert len(huge) > 1024 * 1024
    assert "lorem ipsum " * 10 in json.dumps(json.loads(payload(huge)))
    assert log_of(client, response)["kinds"][-1] == END[dialect]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_invalid_utf8_bytes_inside_one_content_frame(client: httpx.Client, dialect: str) -> None:
    response, reads = raw_stream(client, dialect, "instant?tokens=5&fault=invalid_utf8&after=2")
    bad = [f for f in frames(dialect, reads) if b"\xff\xfe" in f]
    assert len(bad) == 1 and b'"bad \xff\xfe bytes"' in bad[0]
    assert "invalid_utf8" in log_of(client, response)["kinds"]


@pytest.mark.parametrize("dialect", DIALECTS)
def test_html_fault_returns_an_nginx_page_with_200(client: httpx.Client, dialect: str) -> None:
    response, reads = raw_stream(client, dialect, "instant?fault=html")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert b"nginx" in b"".join(d for _, d in reads)


def streamed_text(dialect: str, reads: list[tuple[float, bytes]]) -> str:
    """The answer text a client of ``dialect`` assembles from the stream."""
    out: list[str] = []
    for frame in frames(dialect, reads):
        data = payload(frame)
        if data == b"[DONE]":
            continue
        event = json.loads(data)
        if dialect == "openai":
            out.extend(c["delta"].get("content") or "" for c in event["choices"])
        elif dialect == "anthropic" and event["type"] == "content_block_delta":
            out.append(event["delta"].get("text", ""))
        elif dialect == "gemini":
            out.extend(p.get("text", "") for p in event["candidates"][0]["content"]["parts"] if not p.get("thought"))
        elif dialect == "responses" and event["type"] == "response.output_text.delta":
            out.append(event["delta"])
    return "".join(out)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_xss_option_puts_payloads_in_the_text(client: httpx.Client, dialect: str) -> None:
    _, reads = raw_stream(client, dialect, "instant?tokens=5&xss=1")
    assert "<script>window.__llmgrid_xss=1</script>" in streamed_text(dialect, reads)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_every_dialect_streams_the_same_answer(client: httpx.Client, dialect: str) -> None:
    _, reads = raw_stream(client, dialect, "instant?tokens=40&seed=8")
    _, openai = raw_stream(client, "openai", "instant?tokens=40&seed=8")
    assert streamed_text(dialect, reads) == streamed_text("openai", openai)


@pytest.mark.parametrize("dialect", DIALECTS)
def test_api_option_is_accepted_and_ignored_but_validated(client: httpx.Client, dialect: str) -> None:
    response, _ = raw_stream(client, dialect, "instant?tokens=3&api=anthropic")
    assert response.status_code == 200 and log_of(client, response)["kinds"].count("content") == 3
    response, _ = raw_stream(client, dialect, "instant?api=bedrock")
    assert response.status_code == 400
