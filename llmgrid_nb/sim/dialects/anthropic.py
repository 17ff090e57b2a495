"""Anthropic Messages (``/v1/messages``): request parsing, errors and the content-block SSE events."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from ..formats import Frame, json_bytes, runs_of_kind, sse_event
from ..generation import Completion
from .base import BadRequest, ChatRequest, Headers, Route, check_limit, load_object, options_for, resolve_seed

__all__ = ["ANTHROPIC_FAULTS", "Anthropic", "AnthropicEncoder", "anthropic_error"]

# Anthropic's error type for each status it uses.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    529: "overloaded_error",
}
# fault kind -> (status, message); ``{model}`` is filled in. Anthropic says 529 where others say 503.
ANTHROPIC_FAULTS: dict[str, tuple[int, str]] = {
    "http_400": (400, "prompt is too long: 201537 tokens > 200000 maximum"),
    "http_401": (401, "invalid x-api-key"),
    "http_403": (403, "Your API key does not have permission to use the specified resource."),
    "http_404": (404, "model: {model}"),
    "http_429": (
        429,
        "This request would exceed the rate limit for your organization of 50 requests per minute. For details, "
        "refer to: https://docs.claude.com/en/api/rate-limits. You can see the response headers for current usage.",
    ),
    "http_500": (500, "Internal server error"),
    "http_502": (502, "Bad gateway"),
    "http_503": (529, "Overloaded"),
}
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def _base62(hex_id: str, width: int) -> str:
    n = int(hex_id, 16)
    out = ""
    while len(out) < width:
        n, r = divmod(n, 62)
        out += _B62[r]
    return out


def anthropic_error(type_: str, message: str, request_id: str | None = None) -> bytes:
    """Anthropic's error body; HTTP errors carry the ``request_id``, the in-band event does not."""
    value: dict[str, Any] = {"type": "error", "error": {"type": type_, "message": message}}
    if request_id is not None:
        value["request_id"] = request_id
    return json_bytes(value)


def request_id_header(request_id: str) -> str:
    """The ``request-id`` Anthropic sends, ``req_01...``."""
    return "req_01" + _base62(request_id, 22)


def _text_blocks(value: Any) -> list[dict[str, Any]]:
    """The blocks of a ``system`` or ``content`` field, a string being one text block."""
    if isinstance(value, str):
        return [{"type": "text", "text": value}]
    return [b for b in value if isinstance(b, dict)] if isinstance(value, list) else []


def _turns(body: dict[str, Any]) -> list[dict[str, Any]]:
    """``system`` and ``messages`` as OpenAI-shaped turns; a user turn of only tool results is a tool turn."""
    turns: list[dict[str, Any]] = []
    system = _text_blocks(body.get("system"))
    if system:
        turns.append({"role": "system", "content": system})
    for message in body["messages"]:
        if not isinstance(message, dict):
            continue
        blocks = _text_blocks(message.get("content"))
        role = message.get("role")
        if role == "user" and blocks and all(b.get("type") == "tool_result" for b in blocks):
            role = "tool"
        turns.append({"role": role, "content": [b for b in blocks if b.get("type") == "text"]})
    return turns


def _check_thinking(thinking: Any, max_tokens: int) -> None:
    if thinking is None:
        return
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind not in ("enabled", "disabled", "adaptive"):
        raise BadRequest(400, "thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'")
    if kind == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1024:
            raise BadRequest(400, "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024")
        if budget >= max_tokens:
            raise BadRequest(400, "`max_tokens` must be greater than `thinking.budget_tokens`.")


class Anthropic:
    """The Messages dialect: ``max_tokens`` is required, ``system`` sits beside ``messages``."""

    name = "anthropic"
    stream_content_type = b"text/event-stream; charset=utf-8"

    def parse(self, raw: bytes, route: Route) -> ChatRequest:
        """Model, system, messages, ``max_tokens`` (required), stream, thinking and tools."""
        body = load_object(raw, "Invalid JSON in request body")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest(400, "model: Field required")
        if not isinstance(body.get("messages"), list):
            raise BadRequest(400, "messages: Field required")
        if "max_tokens" not in body:
            raise BadRequest(400, "max_tokens: Field required")
        limit = check_limit(body["max_tokens"], "max_tokens: Input should be greater than or equal to 1", minimum=1)
        assert limit is not None
        _check_thinking(body.get("thinking"), limit)
        options = options_for(model, "model: {name}")
        tools = [
            {"name": t.get("name"), "parameters": t.get("input_schema")}
            for t in body.get("tools") or []
            if isinstance(t, dict)
        ]
        return ChatRequest(
            model=model,
            options=options,
            messages=_turns(body),
            seed=resolve_seed(options, None),
            stream=body.get("stream") is True,
            max_tokens=limit,
            tools=tools or None,
            body=body,
        )

    def error_body(self, error: BadRequest, request_id: str) -> bytes:
        """``{"type": "error", "error": {type, message}, "request_id"}``."""
        type_ = _ERROR_TYPES.get(error.status, "api_error")
        return anthropic_error(type_, error.message, request_id_header(request_id))

    def http_fault(self, kind: str, model: str, request_id: str) -> tuple[int, bytes]:
        """The status and body from ``ANTHROPIC_FAULTS`` (``http_503`` is a 529 ``overloaded_error``)."""
        status, message = ANTHROPIC_FAULTS[kind]
        return status, anthropic_error(_ERROR_TYPES[status], message.format(model=model), request_id_header(request_id))

    def headers(self, request_id: str) -> Headers:
        """``request-id``."""
        return [(b"request-id", request_id_header(request_id).encode())]

    def encoder(self, request: ChatRequest, request_id: str, wall_ns: int, route: Route) -> AnthropicEncoder:
        """Events for message ``msg_01...``."""
        return AnthropicEncoder(message_id="msg_01" + _base62(request_id, 22), model=request.options.model)


class AnthropicEncoder:
    """Messages stream events: one content block per run of thinking, text or tool-input pieces.

    A thinking block ends with a ``signature_delta``; a tool call is a ``tool_use`` block whose
    input streams as ``input_json_delta`` fragments. ``message_delta`` carries the stop reason
    and the cumulative output tokens, ``message_stop`` ends the stream.
    """

    def __init__(self, *, message_id: str, model: str) -> None:
        self.message_id = message_id
        self.model = model
        self._text_index = 0

    def _delta(self, index: int, delta: bytes) -> bytes:
        return sse_event(
            b"content_block_delta", b'{"type":"content_block_delta","index":%d,"delta":%s}' % (index, delta)
        )

    def content(self, text: str) -> bytes:
        """One ``text_delta``."""
        return self._delta(self._text_index, b'{"type":"text_delta","text":' + json_bytes(text) + b"}")

    def raw_content(self, text: bytes) -> bytes:
        """A ``text_delta`` whose string holds ``text`` unescaped."""
        return self._delta(self._text_index, b'{"type":"text_delta","text":"' + text + b'"}')

    def malformed(self) -> bytes:
        """A ``content_block_delta`` whose data is not JSON."""
        return b"event: content_block_delta\ndata: {not json\n\n"

    def error(self) -> bytes:
        """The in-band ``error`` event Anthropic sends when it is overloaded mid-stream."""
        return sse_event(b"error", anthropic_error("overloaded_error", "Overloaded"))

    def _usage(self, completion: Completion, output_tokens: int) -> dict[str, int]:
        return {
            "input_tokens": completion.prompt_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
        }

    def _signature(self, completion: Completion) -> str:
        digest = hashlib.sha512((self.message_id + completion.reasoning).encode()).digest()
        return base64.b64encode(b"\x12\x0b" + digest * 3).decode()

    def _tool_use(self, completion: Completion) -> dict[str, Any]:
        call = completion.tool_call
        assert call is not None
        return {"type": "tool_use", "id": "toolu_01" + call.id.removeprefix("call_")[:22], "name": call.name}

    def frames(self, completion: Completion, offsets: list[float]) -> list[Frame]:
        """``message_start``, each block's start, deltas and stop (a ``ping`` after the first start), the end."""
        pieces = completion.pieces
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": self._usage(completion, 1),
        }
        start = sse_event(b"message_start", json_bytes({"type": "message_start", "message": message}))
        out = [Frame(offsets[0], "start", start)]
        ping = Frame(offsets[0], "ping", sse_event(b"ping", b'{"type": "ping"}'))
        for index, (kind, first, last) in enumerate(runs_of_kind(pieces)):
            at = offsets[first]
            if kind == "tool_call":
                block: dict[str, Any] = {**self._tool_use(completion), "input": {}}
            elif kind == "reasoning":
                block = {"type": "thinking", "thinking": "", "signature": ""}
            else:
                block = {"type": "text", "text": ""}
                self._text_index = index
            start = sse_event(
                b"content_block_start",
                json_bytes({"type": "content_block_start", "index": index, "content_block": block}),
            )
            # The tool-input run starts with an empty piece: its frame is the tool_use block's start.
            out.append(Frame(at, "tool_call" if kind == "tool_call" else "block_start", start))
            if index == 0:
                out.append(Frame(at, "ping", ping.data))
            for i in range(first + (kind == "tool_call"), last + 1):
                text = json_bytes(pieces[i].text)
                if kind == "content":
                    delta = b'{"type":"text_delta","text":' + text + b"}"
                elif kind == "reasoning":
                    delta = b'{"type":"thinking_delta","thinking":' + text + b"}"
                else:
                    delta = b'{"type":"input_json_delta","partial_json":' + text + b"}"
                out.append(Frame(offsets[i], kind, self._delta(index, delta)))
            if kind == "reasoning":
                signature = b'{"type":"signature_delta","signature":"' + self._signature(completion).encode() + b'"}'
                out.append(Frame(offsets[last], "signature", self._delta(index, signature)))
            stop = b'{"type":"content_block_stop","index":%d}' % index
            out.append(Frame(offsets[last], "block_stop", sse_event(b"content_block_stop", stop)))
        if not pieces:
            out.append(ping)
        end = offsets[len(pieces) - 1] if pieces else offsets[0]
        finish = {
            "type": "message_delta",
            "delta": {"stop_reason": _STOP_REASONS.get(completion.finish_reason, "end_turn"), "stop_sequence": None},
            "usage": self._usage(completion, completion.completion_tokens),
        }
        out.append(Frame(end, "finish", sse_event(b"message_delta", json_bytes(finish))))
        out.append(Frame(end, "done", sse_event(b"message_stop", b'{"type":"message_stop"}')))
        return out

    def body(self, completion: Completion, offsets: list[float], total_s: float) -> bytes:
        """The non-streamed ``message``: the same blocks, whole."""
        content: list[dict[str, Any]] = []
        for kind, first, last in runs_of_kind(completion.pieces):
            text = "".join(p.text for p in completion.pieces[first : last + 1])
            if kind == "reasoning":
                content.append({"type": "thinking", "thinking": text, "signature": self._signature(completion)})
            elif kind == "content":
                content.append({"type": "text", "text": text})
            else:
                try:
                    arguments = json.loads(text)
                except ValueError:
                    arguments = {}
                content.append({**self._tool_use(completion), "input": arguments})
        return json_bytes(
            {
                "id": self.message_id,
                "type": "message",
                "role": "assistant",
                "model": self.model,
                "content": content,
                "stop_reason": _STOP_REASONS.get(completion.finish_reason, "end_turn"),
                "stop_sequence": None,
                "usage": self._usage(completion, completion.completion_tokens),
            }
        )
