"""The Ollama /api/chat and /api/tags endpoints over real sockets."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import httpx

PROMPT = [{"role": "user", "content": "How should I cache database queries?"}]
RFC3339_NS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def ndjson(client: httpx.Client, model: str, **extra: Any) -> tuple[httpx.Response, list[tuple[float, dict[str, Any]]]]:
    out: list[tuple[float, dict[str, Any]]] = []
    with client.stream("POST", "/api/chat", json={"model": model, "messages": PROMPT, **extra}) as response:
        for line in response.iter_lines():
            if line:
                out.append((time.monotonic(), json.loads(line)))
    return response, out


def test_stream_is_ndjson_in_ollama_format(client: httpx.Client) -> None:
    response, lines = ndjson(client, "fast:latest?tokens=10")
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.headers["x-sim-request-id"]
    body = [obj for _, obj in lines]
    assert len(body) == 11
    for obj in body[:-1]:
        assert set(obj) == {"model", "created_at", "message", "done"}
        assert obj["model"] == "fast:latest" and obj["done"] is False
        assert RFC3339_NS.match(obj["created_at"])
        assert obj["message"]["role"] == "assistant"
    final = body[-1]
    assert final["done"] is True and final["done_reason"] == "stop"
    assert final["message"] == {"role": "assistant", "content": ""}
    assert final["eval_count"] == 10
    for key in ("total_duration", "load_duration", "prompt_eval_count", "prompt_eval_duration", "eval_duration"):
        assert isinstance(final[key], int)


def test_final_durations_match_what_was_sent(client: httpx.Client) -> None:
    _, lines = ndjson(client, "steady?tokens=20&ttft=0.1&rate=50&jitter=0")
    first, last = lines[0][0], lines[-2][0]
    final = lines[-1][1]
    assert abs(final["eval_duration"] / 1e9 - (last - first)) < 0.03
    assert abs((final["prompt_eval_duration"] + final["load_duration"]) / 1e9 - 0.1) < 0.03
    assert final["total_duration"] >= final["eval_duration"] + final["prompt_eval_duration"]


def test_joined_stream_equals_non_stream(client: httpx.Client) -> None:
    _, lines = ndjson(client, "instant?tokens=40", options={"seed": 3})
    text = "".join(obj["message"]["content"] for _, obj in lines)
    body = {"model": "instant?tokens=40", "messages": PROMPT, "stream": False, "options": {"seed": 3}}
    reply = client.post("/api/chat", json=body)
    body = reply.json()
    assert body["done"] is True and body["message"]["content"] == text
    assert "## Caching strategies" in text or "## Working with databases" in text


def test_num_predict_cuts_with_length(client: httpx.Client) -> None:
    _, lines = ndjson(client, "instant?tokens=40", options={"num_predict": 5})
    assert len(lines) == 6 and lines[-1][1]["done_reason"] == "length"


def test_reasoning_goes_in_thinking_first(client: httpx.Client) -> None:
    _, lines = ndjson(client, "reasoning?ttft=0&rate=0&tokens=4&reasoning=3")
    messages = [obj["message"] for _, obj in lines[:-1]]
    assert [bool(m.get("thinking")) for m in messages] == [True] * 3 + [False] * 4
    assert all(m["content"] == "" for m in messages[:3])


def test_tool_call_is_one_whole_object(client: httpx.Client) -> None:
    _, lines = ndjson(client, "tools?ttft=0&rate=0")
    assert len(lines) == 2
    call = lines[0][1]["message"]["tool_calls"][0]["function"]
    assert call["name"] == "get_weather" and isinstance(call["arguments"], dict)


def test_unknown_model_is_ollama_404(client: httpx.Client) -> None:
    reply = client.post("/api/chat", json={"model": "llama9", "messages": PROMPT})
    assert reply.status_code == 404
    assert reply.json() == {"error": 'model "llama9" not found, try pulling it first'}


def test_tags_lists_profiles_in_ollama_format(client: httpx.Client) -> None:
    models = client.get("/api/tags").json()["models"]
    names = {m["name"] for m in models}
    assert {"steady:latest", "fast:latest", "tools:latest"} <= names
    for m in models:
        assert set(m) >= {"name", "model", "modified_at", "size", "digest", "details"}
        assert m["details"]["format"] == "gguf"
