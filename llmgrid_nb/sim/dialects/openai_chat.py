"""OpenAI Chat Completions (``/v1/chat/completions``): request parsing, errors and SSE chunks."""

from __future__ import annotations

import time
from typing import Any

from ..formats import Frame, json_bytes
from ..generation import Completion
from .base import BadRequest, ChatRequest, Headers, Route, check_limit, load_object, options_for, resolve_seed

__all__ = ["OPENAI_FAULTS", "OpenAIChat", "OpenAIEncoder", "openai_error"]

# fault kind -> (status, message, type, code); ``{model}`` is filled in.
OPENAI_FAULTS: dict[str, tuple[int, str, str, str | None]] = {
    "http_400": (
        400,
        "This model's maximum context length is 128000 tokens. However, your messages resulted in "
        "131072 tokens. Please reduce the length of the messages.",
        "invalid_request_error",
        "context_length_exceeded",
    ),
    "http_401": (
        401,
        "Incorrect API key provided: sk-sim-****. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    ),
    "http_403": (
        403,
        "Country, region, or territory not supported",
        "request_forbidden",
        "unsupported_country_region_territory",
    ),
    "http_404": (
        404,
        "The model '{model}' does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    "http_429": (
        429,
        "Rate limit reached for requests per min (RPM): Limit 3, Used 3, Requested 1. Please try again in 1s.",
        "requests",
        "rate_limit_exceeded",
    ),
    "http_500": (500, "The server had an error while processing your request. Sorry about that!", "server_error", None),
    "http_502": (502, "Bad gateway.", "server_error", None),
    "http_503": (503, "The server is overloaded or not ready yet.", "server_error", None),
}

_INVALID_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP "
    "library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON."
)
_UNKNOWN_MODEL = "The model '{name}' does not exist or you do not have access to it."


def openai_error(message: str, type_: str, code: str | None = None, param: str | None = None) -> bytes:
    """OpenAI's error body."""
    return json_bytes({"error": {"message": message, "type": type_, "param": param, "code": code}})


class OpenAIChat:
    """The Chat Completions dialect: ``messages`` in, ``chat.completion.chunk`` events out."""

    name = "openai"
    stream_content_type = b"text/event-stream; charset=utf-8"

    def parse(self, raw: bytes, route: Route) -> ChatRequest:
        """Model, messages, seed, ``stream`` and ``max_completion_tokens``/``max_tokens``."""
        body = load_object(raw, _INVALID_JSON)
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest(400, "you must provide a model parameter")
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise BadRequest(400, "'messages' is a required property")
        options = options_for(model, _UNKNOWN_MODEL, code="model_not_found")
        limit = check_limit(
            body.get("max_completion_tokens", body.get("max_tokens")),
            "Invalid 'max_tokens': {value!r}. Expected a non-negative integer.",
        )
        n = body.get("n", 1)
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128):
            raise BadRequest(400, f"Invalid 'n': {n!r}. Expected an integer between 1 and 128.", param="n",
                             code="invalid_value")
        if n not in (None, 1) and not body.get("stream", False):
            raise BadRequest(400, f"Invalid 'n': {n}. The simulator answers several choices only when streaming.",
                             param="n", code="invalid_value")
        tools = body.get("tools") if isinstance(body.get("tools"), list) else None
        return ChatRequest(
            model=model,
            options=options,
            messages=[m for m in messages if isinstance(m, dict)],
            seed=resolve_seed(options, body.get("seed")),
            stream=bool(body.get("stream", False)),
            max_tokens=limit,
            tools=tools,
            body=body,
        )

    def error_body(self, error: BadRequest, request_id: str) -> bytes:
        """``{"error": {message, type, param, code}}``."""
        return openai_error(error.message, error.type or "invalid_request_error", error.code, error.param)

    def http_fault(self, kind: str, model: str, request_id: str) -> tuple[int, bytes]:
        """The status and body from ``OPENAI_FAULTS``."""
        status, message, type_, code = OPENAI_FAULTS[kind]
        return status, openai_error(message.format(model=model), type_, code)

    def choices(self, request: ChatRequest) -> int:
        """How many choices the request asks for (``n``, checked by ``parse``)."""
        n = request.body.get("n")
        return n if isinstance(n, int) and n > 1 else 1

    def headers(self, request_id: str) -> Headers:
        """``x-request-id``."""
        return [(b"x-request-id", ("req_" + request_id).encode())]

    def encoder(self, request: ChatRequest, request_id: str, wall_ns: int, route: Route) -> OpenAIEncoder:
        """Chunks with this request's id; a usage chunk if ``stream_options.include_usage``."""
        stream_options: Any = request.body.get("stream_options") or {}
        return OpenAIEncoder(
            chunk_id="chatcmpl-" + request_id[:24],
            created=int(time.time()),
            model=request.options.model,
            include_usage=isinstance(stream_options, dict) and bool(stream_options.get("include_usage")),
        )


class OpenAIEncoder:
    """Chat Completions chunks in OpenAI's exact shape, built from per-request templates."""

    def __init__(self, *, chunk_id: str, created: int, model: str, include_usage: bool) -> None:
        self.chunk_id = chunk_id
        self.created = created
        self.model = model
        self.include_usage = include_usage
        head = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model}
        self._head = json_bytes(head)[:-1] + b',"system_fingerprint":"fp_llmgrid_sim"'
        self._prefix = self._prefix_of(0)
        tail = b',"finish_reason":null,"logprobs":null}]'
        self._suffix = tail + (b',"usage":null' if include_usage else b"") + b"}\n\n"

    def _prefix_of(self, index: int) -> bytes:
        return b"data: " + self._head + b',"choices":[{"index":' + str(index).encode() + b',"delta":'

    def _delta(self, delta: bytes, finish: str | None = None, *, prefix: bytes | None = None) -> bytes:
        prefix = self._prefix if prefix is None else prefix
        if finish is None:
            return prefix + delta + self._suffix
        tail = b',"finish_reason":' + json_bytes(finish) + b',"logprobs":null}]'
        return prefix + delta + tail + (b',"usage":null' if self.include_usage else b"") + b"}\n\n"

    def content(self, text: str) -> bytes:
        """One content delta chunk."""
        return self._delta(b'{"content":' + json_bytes(text) + b"}")

    def raw_content(self, text: bytes) -> bytes:
        """A content delta whose string holds ``text`` unescaped."""
        return self._delta(b'{"content":"' + text + b'"}')

    def malformed(self) -> bytes:
        """An event whose data is not JSON."""
        return b"data: {not json\n\n"

    def error(self) -> bytes:
        """The in-band error event OpenAI sends when generation fails mid-stream."""
        return b"data: " + json_bytes(
            {"error": {"message": "The server had an error while processing your request.", "type": "server_error"}}
        ) + b"\n\n"

    def usage(self, completion: Completion) -> dict[str, object]:
        """The usage object."""
        return {
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
            "total_tokens": completion.prompt_tokens + completion.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": completion.reasoning_tokens},
        }

    def frames(self, completion: Completion, offsets: list[float]) -> list[Frame]:
        """Role, one chunk per piece, finish, optional usage, ``[DONE]``."""
        out = self._choice_frames(completion, offsets, 0)
        return out + self._end(out[-1].offset, self.usage(completion))

    def frames_n(self, completions: list[Completion], offsets: list[list[float]]) -> list[Frame]:
        """Several choices (``n``) in one stream, as OpenAI sends them: every chunk carries one
        choice (its ``index``), the choices' chunks interleaved in time, each choice finishing on
        its own; then one usage chunk (completion tokens summed over the choices) and ``[DONE]``."""
        streams = [self._choice_frames(c, o, i) for i, (c, o) in enumerate(zip(completions, offsets))]
        merged = sorted((f for s in streams for f in s), key=lambda f: f.offset)  # stable: index order on ties
        usage = self.usage(completions[0])
        completion_tokens = sum(c.completion_tokens for c in completions)
        usage.update(completion_tokens=completion_tokens, total_tokens=completions[0].prompt_tokens + completion_tokens,
                     completion_tokens_details={"reasoning_tokens": sum(c.reasoning_tokens for c in completions)})
        return merged + self._end(merged[-1].offset, usage)

    def _choice_frames(self, completion: Completion, offsets: list[float], index: int) -> list[Frame]:
        """One choice's role, pieces and finish chunks."""
        prefix = self._prefix_of(index) if index else self._prefix
        out = [Frame(offsets[0], "role", self._delta(b'{"role":"assistant","content":""}', prefix=prefix))]
        call = completion.tool_call
        for i, piece in enumerate(completion.pieces):
            if piece.kind == "content":
                data = self._delta(b'{"content":' + json_bytes(piece.text) + b"}", prefix=prefix)
            elif piece.kind == "reasoning":
                data = self._delta(b'{"reasoning_content":' + json_bytes(piece.text) + b"}", prefix=prefix)
            elif i == 0 or completion.pieces[i - 1].kind != "tool_call":
                assert call is not None
                head = {"index": 0, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
                data = self._delta(b'{"tool_calls":[' + json_bytes(head) + b"]}", prefix=prefix)
            else:
                data = self._delta(b'{"tool_calls":[{"index":0,"function":{"arguments":' + json_bytes(piece.text)
                                   + b"}}]}", prefix=prefix)
            out.append(Frame(offsets[i], piece.kind, data))
        end = offsets[len(completion.pieces) - 1] if completion.pieces else offsets[0]
        out.append(Frame(end, "finish", self._delta(b"{}", completion.finish_reason, prefix=prefix)))
        return out

    def _end(self, end: float, usage: dict[str, object]) -> list[Frame]:
        """The optional usage chunk and ``[DONE]``."""
        out = []
        if self.include_usage:
            out.append(Frame(end, "usage", b"data: " + self._head + b',"choices":[],"usage":' + json_bytes(usage)
                             + b"}\n\n"))
        out.append(Frame(end, "done", b"data: [DONE]\n\n"))
        return out

    def body(self, completion: Completion, offsets: list[float], total_s: float) -> bytes:
        """The non-streamed ``chat.completion`` response."""
        message: dict[str, object] = {"role": "assistant", "content": completion.content, "refusal": None}
        if completion.reasoning:
            message["reasoning_content"] = completion.reasoning
        call = completion.tool_call
        if call is not None:
            arguments = "".join(p.text for p in completion.pieces if p.kind == "tool_call")
            message["content"] = None
            message["tool_calls"] = [
                {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": arguments}}
            ]
        return json_bytes(
            {
                "id": self.chunk_id,
                "object": "chat.completion",
                "created": self.created,
                "model": self.model,
                "system_fingerprint": "fp_llmgrid_sim",
                "choices": [
                    {"index": 0, "message": message, "logprobs": None, "finish_reason": completion.finish_reason}
                ],
                "usage": self.usage(completion),
            }
        )

