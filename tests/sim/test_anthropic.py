"""The Anthropic Messages endpoint over real sockets."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

PROMPT = [{"role": "user", "content": "How do Server-Sent Events stream tokens?"}]
Events = list[tuple[str, dict[str, Any]]]


def sse_events(body: bytes) -> list[tuple[str, str]]:
    """``(event, data)`` of each event in a whole body (Anthropic sends one data line per event)."""
    out = []
    for block in body.decode().split("\n\n"):
        if block:
            fields = dict(line.split(": ", 1) for line in block.split("\n"))
            out.append((fields["event"], fields["data"]))
    return out


def stream(client: httpx.Client, model: str, **extra: Any) -> tuple[httpx.Response, Events]:
    body = {"model": model, "messages": PROMPT, "max_tokens": 1024, "stream": True, **extra}
    response = client.post("/v1/messages", json=body)
    assert response.status_code == 200, response.text
    return response, [(name, json.loads(data)) for name, data in sse_events(response.content)]


def log_of(client: httpx.Client, response: httpx.Response) -> dict[str, Any]:
    return client.get(f"/_sim/log/{response.headers['x-sim-request-id']}").json()


def deltas(events: Events, kind: str) -> list[dict[str, Any]]:
    return [d["delta"] for name, d in events if name == "content_block_delta" and d["delta"]["type"] == kind]


def test_stream_has_the_messages_event_sequence(client: httpx.Client) -> None:
    response, events = stream(client, "sim/fast?tokens=6&ttft=0&rate=0")
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["request-id"].startswith("req_01")
    names = [name for name, _ in events]
    assert names == ["message_start", "content_block_start", "ping"] + ["content_block_delta"] * 6 + [
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(data["type"] == name for name, data in events)
    message = events[0][1]["message"]
    assert message["id"].startswith("msg_01") and message["type"] == "message" and message["role"] == "assistant"
    assert message["model"] == "sim/fast" and message["content"] == [] and message["stop_reason"] is None
    assert message["usage"]["input_tokens"] > 0
    assert events[1][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    assert all(d["index"] == 0 for name, d in events if name.startswith("content_block"))
    final = events[-2][1]
    assert final["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert final["usage"]["output_tokens"] == 6
    assert final["usage"]["input_tokens"] == message["usage"]["input_tokens"]


def test_send_log_has_one_entry_per_event_and_text_matches_the_message(client: httpx.Client) -> None:
    model = "instant?tokens=30&seed=4"
    response, events = stream(client, model)
    log = log_of(client, response)
    assert log["kinds"] == ["start", "block_start", "ping"] + ["content"] * 30 + ["block_stop", "finish", "done"]
    assert len(log["send_times"]) == len(events)
    text = "".join(d["text"] for d in deltas(events, "text_delta"))
    body = client.post("/v1/messages", json={"model": model, "messages": PROMPT, "max_tokens": 1024}).json()
    assert body["type"] == "message" and body["content"] == [{"type": "text", "text": text}]
    assert body["stop_reason"] == "end_turn" and body["usage"]["output_tokens"] == 30
    assert "Server" in text


def test_reasoning_is_a_thinking_block_ending_with_a_signature(client: httpx.Client) -> None:
    _, events = stream(client, "reasoning?ttft=0&rate=0&tokens=4&reasoning=3")
    starts = [d for name, d in events if name == "content_block_start"]
    assert [s["content_block"] for s in starts] == [
        {"type": "thinking", "thinking": "", "signature": ""},
        {"type": "text", "text": ""},
    ]
    block0 = [d["delta"]["type"] for name, d in events if name == "content_block_delta" and d["index"] == 0]
    assert block0 == ["thinking_delta"] * 3 + ["signature_delta"]
    assert len(deltas(events, "signature_delta")[0]["signature"]) > 100
    assert [d["index"] for name, d in events if name == "content_block_stop"] == [0, 1]
    assert len(deltas(events, "text_delta")) == 4
    assert events[-2][1]["usage"]["output_tokens"] == 7


def test_tool_use_block_streams_input_json(client: httpx.Client) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}}
    tools = [{"name": "forecast", "description": "Weather", "input_schema": schema}]
    _, events = stream(client, "tools?ttft=0&rate=0", tools=tools)
    block = next(d for name, d in events if name == "content_block_start")["content_block"]
    assert block["type"] == "tool_use" and block["id"].startswith("toolu_01") and block["name"] == "forecast"
    assert block["input"] == {}
    fragments = deltas(events, "input_json_delta")
    assert len(fragments) > 3
    assert set(json.loads("".join(f["partial_json"] for f in fragments))) == {"city", "days"}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    unary = {"model": "tools?ttft=0&rate=0", "messages": PROMPT, "max_tokens": 1024, "tools": tools}
    content = client.post("/v1/messages", json=unary).json()["content"]
    assert content[0]["type"] == "tool_use" and set(content[0]["input"]) == {"city", "days"}


def test_max_tokens_cuts_with_max_tokens_stop_reason(client: httpx.Client) -> None:
    _, events = stream(client, "instant?tokens=50", max_tokens=5)
    assert len(deltas(events, "text_delta")) == 5
    assert events[-2][1]["delta"]["stop_reason"] == "max_tokens"
    assert events[-2][1]["usage"]["output_tokens"] == 5


def test_missing_max_tokens_is_an_invalid_request_error(client: httpx.Client) -> None:
    reply = client.post("/v1/messages", json={"model": "fast", "messages": PROMPT})
    assert reply.status_code == 400
    body = reply.json()
    assert set(body) == {"type", "error", "request_id"} and body["type"] == "error"
    assert body["error"] == {"type": "invalid_request_error", "message": "max_tokens: Field required"}
    assert body["request_id"] == reply.headers["request-id"]


def test_unknown_model_is_a_not_found_error(client: httpx.Client) -> None:
    reply = client.post("/v1/messages", json={"model": "claude-99", "messages": PROMPT, "max_tokens": 10})
    assert reply.status_code == 404
    assert reply.json()["error"] == {"type": "not_found_error", "message": "model: claude-99"}


@pytest.mark.parametrize(
    ("fault", "status", "type_"),
    [
        ("http_400", 400, "invalid_request_error"),
        ("http_401", 401, "authentication_error"),
        ("http_403", 403, "permission_error"),
        ("http_404", 404, "not_found_error"),
        ("http_429", 429, "rate_limit_error"),
        ("http_500", 500, "api_error"),
        ("http_503", 529, "overloaded_error"),
    ],
)
def test_http_faults_use_anthropic_statuses_and_types(
    client: httpx.Client, fault: str, status: int, type_: str
) -> None:
    reply = client.post("/v1/messages", json={"model": f"fast?fault={fault}", "messages": PROMPT, "max_tokens": 9})
    assert reply.status_code == status
    body = reply.json()
    assert body["type"] == "error" and body["error"]["type"] == type_ and body["error"]["message"]
    assert body["request_id"].startswith("req_01")
    if fault == "http_503":
        assert body["error"]["message"] == "Overloaded"
    if fault == "http_429":
        assert reply.headers["retry-after"] == "1"


def test_error_chunk_is_an_overloaded_error_event(client: httpx.Client) -> None:
    body = {"model": "instant?tokens=8&fault=error_chunk&after=2", "messages": PROMPT, "max_tokens": 99, "stream": True}
    raw = client.post("/v1/messages", json=body).content
    assert raw.endswith(
        b'\n\nevent: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
    )
    names = [name for name, _ in sse_events(raw)]
    assert names.count("content_block_delta") == 2 and "message_stop" not in names


def test_malformed_data_line_then_the_stream_continues(client: httpx.Client) -> None:
    body = {"model": "instant?tokens=5&fault=malformed&after=2", "messages": PROMPT, "max_tokens": 99, "stream": True}
    events = sse_events(client.post("/v1/messages", json=body).content)
    bad = [i for i, (_, data) in enumerate(events) if data == "{not json"]
    assert len(bad) == 1 and events[bad[0]][0] == "content_block_delta"
    assert events[-1] == ("message_stop", '{"type":"message_stop"}')


def test_no_done_ends_without_message_delta_or_message_stop(client: httpx.Client) -> None:
    body = {"model": "instant?tokens=5&fault=no_done", "messages": PROMPT, "max_tokens": 99, "stream": True}
    names = [name for name, _ in sse_events(client.post("/v1/messages", json=body).content)]
    assert names[-1] == "content_block_stop" and "message_delta" not in names and "message_stop" not in names


def test_multi_turn_with_system_blocks_answers_the_last_user_turn(client: httpx.Client) -> None:
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Tell me about giraffes"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Giraffes are tall."}]},
        {"role": "user", "content": "How should I cache database queries?"},
    ]
    system = [{"type": "text", "text": "You are terse."}]
    response, events = stream(client, "instant?tokens=40&seed=3", messages=messages, system=system)
    text = "".join(d["text"] for d in deltas(events, "text_delta"))
    assert "cach" in text.lower() or "database" in text.lower()
    assert log_of(client, response)["user_turns"] == 2
    _, single = stream(client, "instant?tokens=40&seed=3", messages=messages[-1:], system="You are terse.")
    assert events[0][1]["message"]["usage"]["input_tokens"] > single[0][1]["message"]["usage"]["input_tokens"]


def test_models_list_is_in_anthropic_shape_when_the_version_header_is_sent(client: httpx.Client) -> None:
    body = client.get("/v1/models", headers={"anthropic-version": "2023-06-01"}).json()
    assert body["has_more"] is False and {"fast", "tools"} <= {m["id"] for m in body["data"]}
    assert all(m["type"] == "model" for m in body["data"])
    assert client.get("/v1/models").json()["object"] == "list"
