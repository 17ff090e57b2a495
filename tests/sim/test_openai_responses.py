"""The OpenAI Responses endpoint over real sockets."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

PROMPT = "How do Server-Sent Events stream tokens?"
Events = list[tuple[str, dict[str, Any]]]


def sse_events(body: bytes) -> list[tuple[str, str]]:
    """``(event, data)`` of each event in a whole body."""
    out = []
    for block in body.decode().split("\n\n"):
        if block:
            fields = dict(line.split(": ", 1) for line in block.split("\n"))
            out.append((fields["event"], fields["data"]))
    return out


def stream(client: httpx.Client, model: str, **extra: Any) -> tuple[httpx.Response, Events]:
    response = client.post("/v1/responses", json={"model": model, "input": PROMPT, "stream": True, **extra})
    assert response.status_code == 200, response.text
    return response, [(name, json.loads(data)) for name, data in sse_events(response.content)]


def of_type(events: Events, type_: str) -> list[dict[str, Any]]:
    return [data for name, data in events if name == type_]


def test_stream_has_numbered_semantic_events(client: httpx.Client) -> None:
    response, events = stream(client, "sim/fast?tokens=6&ttft=0&rate=0")
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-request-id"].startswith("req_")
    names = [name for name, _ in events]
    assert names == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * 6,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert all(data["type"] == name for name, data in events)
    created = events[0][1]["response"]
    assert created["id"].startswith("resp_") and created["object"] == "response"
    assert created["status"] == "in_progress" and created["output"] == [] and created["usage"] is None
    item = events[2][1]["item"]
    assert item["id"].startswith("msg_") and item["type"] == "message" and item["status"] == "in_progress"
    for delta in of_type(events, "response.output_text.delta"):
        assert delta["item_id"] == item["id"] and delta["output_index"] == 0 and delta["content_index"] == 0
        assert delta["logprobs"] == []
    text = "".join(d["delta"] for d in of_type(events, "response.output_text.delta"))
    assert of_type(events, "response.output_text.done")[0]["text"] == text
    final = events[-1][1]["response"]
    assert final["status"] == "completed" and final["id"] == created["id"]
    assert final["output"] == [
        {
            "id": item["id"],
            "type": "message",
            "status": "completed",
            "content": [{"type": "output_text", "annotations": [], "logprobs": [], "text": text}],
            "role": "assistant",
        }
    ]
    assert final["usage"] == {
        "input_tokens": final["usage"]["input_tokens"],
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": 6,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": final["usage"]["input_tokens"] + 6,
    }


def test_send_log_has_one_entry_per_event_and_text_matches_the_response(client: httpx.Client) -> None:
    model = "instant?tokens=30&seed=4"
    response, events = stream(client, model, instructions="Be brief.")
    log = client.get(f"/_sim/log/{response.headers['x-sim-request-id']}").json()
    ends = ["block_stop"] * 3 + ["done"]
    assert log["kinds"] == ["start", "start", "block_start", "block_start"] + ["content"] * 30 + ends
    assert len(log["send_times"]) == len(events)
    text = "".join(d["delta"] for d in of_type(events, "response.output_text.delta"))
    body = client.post("/v1/responses", json={"model": model, "input": PROMPT, "instructions": "Be brief."}).json()
    assert body["status"] == "completed" and body["instructions"] == "Be brief."
    assert body["output"][0]["content"][0]["text"] == text and "Server" in text


def test_reasoning_summary_item_comes_before_the_message(client: httpx.Client) -> None:
    _, events = stream(client, "reasoning?ttft=0&rate=0&tokens=4&reasoning=3", reasoning={"effort": "low", "summary": "auto"})
    added = [d["item"] for d in of_type(events, "response.output_item.added")]
    assert [(i["type"], i["id"][:3]) for i in added] == [("reasoning", "rs_"), ("message", "msg")]
    summary = of_type(events, "response.reasoning_summary_text.delta")
    assert len(summary) == 3 and all(d["output_index"] == 0 and d["summary_index"] == 0 for d in summary)
    assert of_type(events, "response.reasoning_summary_part.added")[0]["part"] == {"type": "summary_text", "text": ""}
    assert of_type(events, "response.reasoning_summary_text.done")[0]["text"] == "".join(d["delta"] for d in summary)
    assert all(d["output_index"] == 1 for d in of_type(events, "response.output_text.delta"))
    final = events[-1][1]["response"]
    assert final["reasoning"] == {"effort": "low", "summary": "auto"}
    assert final["usage"]["output_tokens_details"] == {"reasoning_tokens": 3}
    assert final["usage"]["output_tokens"] == 7


def test_function_call_item_streams_its_arguments(client: httpx.Client) -> None:
    properties = {"city": {"type": "string"}, "days": {"type": "integer"}}
    tools = [{"type": "function", "name": "forecast", "parameters": {"type": "object", "properties": properties}}]
    _, events = stream(client, "tools?ttft=0&rate=0", tools=tools)
    item = of_type(events, "response.output_item.added")[0]["item"]
    assert item["type"] == "function_call" and item["id"].startswith("fc_") and item["call_id"].startswith("call_")
    assert item["name"] == "forecast" and item["arguments"] == "" and item["status"] == "in_progress"
    deltas = of_type(events, "response.function_call_arguments.delta")
    assert len(deltas) > 3 and all(d["item_id"] == item["id"] for d in deltas)
    arguments = "".join(d["delta"] for d in deltas)
    assert of_type(events, "response.function_call_arguments.done")[0]["arguments"] == arguments
    assert set(json.loads(arguments)) == {"city", "days"}
    output = events[-1][1]["response"]["output"]
    assert output == [{**item, "status": "completed", "arguments": arguments}]
    assert events[-1][1]["response"]["tools"] == tools


def test_max_output_tokens_ends_incomplete(client: httpx.Client) -> None:
    _, events = stream(client, "instant?tokens=50", max_output_tokens=16)
    assert len(of_type(events, "response.output_text.delta")) == 16
    assert events[-1][0] == "response.incomplete"
    final = events[-1][1]["response"]
    assert final["status"] == "incomplete" and final["incomplete_details"] == {"reason": "max_output_tokens"}
    assert final["max_output_tokens"] == 16 and final["output"][0]["status"] == "incomplete"


def test_max_output_tokens_below_sixteen_is_rejected(client: httpx.Client) -> None:
    reply = client.post("/v1/responses", json={"model": "fast", "input": PROMPT, "max_output_tokens": 5})
    assert reply.status_code == 400
    error = reply.json()["error"]
    assert error["param"] == "max_output_tokens" and error["code"] == "integer_below_min_value"
    assert error["message"].startswith("Invalid 'max_output_tokens': integer below minimum value.")


def test_error_chunk_is_an_error_event_then_response_failed(client: httpx.Client) -> None:
    _, events = stream(client, "instant?tokens=8&fault=error_chunk&after=2")
    assert [name for name, _ in events[-2:]] == ["error", "response.failed"]
    error = events[-2][1]
    assert error["error"] == {
        "type": "server_error",
        "code": "server_error",
        "message": "The server had an error while processing your request. Sorry about that!",
        "param": None,
    }
    failed = events[-1][1]["response"]
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))
    assert len(of_type(events, "response.output_text.delta")) == 2


def test_an_inserted_huge_delta_keeps_the_sequence_numbers_counting(client: httpx.Client) -> None:
    _, events = stream(client, "instant?tokens=5&fault=huge_line&after=2")
    deltas = of_type(events, "response.output_text.delta")
    assert len(deltas) == 6 and max(len(d["delta"]) for d in deltas) == 1024 * 1024
    assert [data["sequence_number"] for _, data in events] == list(range(len(events)))


@pytest.mark.parametrize(("fault", "status"), [("http_429", 429), ("http_500", 500), ("http_503", 503)])
def test_http_faults_use_openai_error_shape(client: httpx.Client, fault: str, status: int) -> None:
    reply = client.post("/v1/responses", json={"model": f"fast?fault={fault}", "input": PROMPT, "stream": True})
    assert reply.status_code == status
    assert set(reply.json()["error"]) == {"message", "type", "param", "code"}


def test_input_items_are_turns_and_the_last_user_turn_is_answered(client: httpx.Client) -> None:
    items = [
        {"role": "user", "content": "Tell me about giraffes"},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Giraffes are tall."}]},
        {"role": "user", "content": [{"type": "input_text", "text": "How should I cache database queries?"}]},
    ]
    response, events = stream(client, "instant?tokens=40&seed=3", input=items)
    text = "".join(d["delta"] for d in of_type(events, "response.output_text.delta"))
    assert "cach" in text.lower() or "database" in text.lower()
    assert client.get(f"/_sim/log/{response.headers['x-sim-request-id']}").json()["user_turns"] == 2
