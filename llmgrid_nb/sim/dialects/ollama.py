"""Ollama ``/api/chat``: request parsing, errors and NDJSON lines that report the durations sent."""

from __future__ import annotations

import json
import time

from ..formats import TOKEN_KINDS, Frame, json_bytes
from ..generation import Completion
from ..sendlog import SendRecord
from .base import (
    BadRequest,
    ChatRequest,
    Headers,
    Route,
    check_limit,
    field_object,
    load_object,
    options_for,
    resolve_seed,
)

__all__ = ["OLLAMA_FAULTS", "Ollama", "OllamaEncoder", "ollama_error", "rfc3339_ns"]

# fault kind -> (status, message); ``{model}`` is filled in.
OLLAMA_FAULTS: dict[str, tuple[int, str]] = {
    "http_400": (400, "invalid request: context length exceeded"),
    "http_401": (401, "unauthorized"),
    "http_403": (403, "forbidden"),
    "http_404": (404, 'model "{model}" not found, try pulling it first'),
    "http_429": (429, "too many requests"),
    "http_500": (500, "an error was encountered while running the model"),
    "http_502": (502, "bad gateway"),
    "http_503": (503, "server busy, please try again.  maximum pending requests exceeded"),
}


def ollama_error(message: str) -> bytes:
    """Ollama's error body."""
    return json_bytes({"error": message})


def rfc3339_ns(ns: int) -> str:
    """``ns`` since the epoch as RFC 3339 UTC with nanoseconds, as Ollama writes ``created_at``."""
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


class Ollama:
    """The Ollama chat dialect: streams unless ``stream`` is false; options carry seed and ``num_predict``."""

    name = "ollama"
    stream_content_type = b"application/x-ndjson"

    def parse(self, raw: bytes, route: Route) -> ChatRequest:
        """Model, messages, ``options.seed`` and ``options.num_predict`` (negative means no limit)."""
        body = load_object(raw, "invalid character in request body")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest(400, "model is required")
        messages = body.get("messages")
        if not isinstance(messages, list):
            raise BadRequest(400, "messages must be a list")
        options = options_for(model, 'model "{name}" not found, try pulling it first')
        extra = field_object(body, "options")
        limit = extra.get("num_predict")
        if isinstance(limit, int) and limit < 0:
            limit = None
        tools = body.get("tools") if isinstance(body.get("tools"), list) else None
        return ChatRequest(
            model=model,
            options=options,
            messages=[m for m in messages if isinstance(m, dict)],
            seed=resolve_seed(options, extra.get("seed")),
            stream=body.get("stream", True) is not False,
            max_tokens=check_limit(limit, "Invalid 'max_tokens': {value!r}. Expected a non-negative integer."),
            tools=tools,
            body=body,
        )

    def error_body(self, error: BadRequest, request_id: str) -> bytes:
        """``{"error": message}``."""
        return ollama_error(error.message)

    def http_fault(self, kind: str, model: str, request_id: str) -> tuple[int, bytes]:
        """The status and body from ``OLLAMA_FAULTS``."""
        status, message = OLLAMA_FAULTS[kind]
        return status, ollama_error(message.format(model=model))

    def headers(self, request_id: str) -> Headers:
        """None: Ollama sends no request id."""
        return []

    def encoder(self, request: ChatRequest, request_id: str, wall_ns: int, route: Route) -> OllamaEncoder:
        """Lines stamped from the request's wall-clock time."""
        return OllamaEncoder(model=request.options.model, wall_ns=wall_ns)


class OllamaEncoder:
    """Ollama ``/api/chat`` NDJSON lines; the final line reports the durations actually sent."""

    def __init__(self, *, model: str, wall_ns: int) -> None:
        self.model = model
        self.wall_ns = wall_ns
        self._model_json = json_bytes(model)

    def _line(self, offset: float, message: bytes) -> bytes:
        created = rfc3339_ns(self.wall_ns + int(offset * 1e9))
        return (
            b'{"model":' + self._model_json + b',"created_at":"' + created.encode() + b'","message":'
            + message + b',"done":false}\n'
        )

    def content(self, text: str, offset: float = 0.0) -> bytes:
        """One content line."""
        return self._line(offset, b'{"role":"assistant","content":' + json_bytes(text) + b"}")

    def raw_content(self, text: bytes) -> bytes:
        """A content line whose string holds ``text`` unescaped."""
        return self._line(0.0, b'{"role":"assistant","content":"' + text + b'"}')

    def malformed(self) -> bytes:
        """A line that is not JSON."""
        return b"{not json\n"

    def error(self) -> bytes:
        """Ollama's in-band error line."""
        return ollama_error("an error was encountered while running the model: unexpected EOF") + b"\n"

    @staticmethod
    def _tool_calls(completion: Completion) -> list[dict[str, object]]:
        call = completion.tool_call
        if call is None:
            return []
        text = "".join(p.text for p in completion.pieces if p.kind == "tool_call")
        try:
            arguments = json.loads(text)
        except ValueError:
            arguments = {}
        return [{"function": {"name": call.name, "arguments": arguments}}]

    def _final(self, completion: Completion, first_s: float, last_s: float, total_s: float) -> dict[str, object]:
        reason = "length" if completion.finish_reason == "length" else "stop"
        total = int(total_s * 1e9)
        first = int(first_s * 1e9)
        load = min(first, 1_000_000)
        return {
            "model": self.model,
            "created_at": rfc3339_ns(self.wall_ns + total),
            "message": {"role": "assistant", "content": ""},
            "done_reason": reason,
            "done": True,
            "total_duration": total,
            "load_duration": load,
            "prompt_eval_count": completion.prompt_tokens,
            "prompt_eval_duration": first - load,
            "eval_count": completion.completion_tokens,
            "eval_duration": max(0, int((last_s - first_s) * 1e9)),
        }

    def frames(self, completion: Completion, offsets: list[float]) -> list[Frame]:
        """One line per token (thinking first), a tool-call line, then the final ``done`` line."""
        out: list[Frame] = []
        pieces = completion.pieces
        for i, piece in enumerate(pieces):
            if piece.kind == "content":
                out.append(Frame(offsets[i], "content", self.content(piece.text, offsets[i])))
            elif piece.kind == "reasoning":
                msg = b'{"role":"assistant","content":"","thinking":' + json_bytes(piece.text) + b"}"
                out.append(Frame(offsets[i], "reasoning", self._line(offsets[i], msg)))
            elif i == len(pieces) - 1 or pieces[i + 1].kind != "tool_call":
                call = {"role": "assistant", "content": "", "tool_calls": self._tool_calls(completion)}
                out.append(Frame(offsets[i], "tool_call", self._line(offsets[i], json_bytes(call))))
        end = offsets[len(pieces) - 1] if pieces else offsets[0]

        def final(record: SendRecord) -> bytes:
            t0 = record.t_request
            sent = [t - t0 for t, k in zip(record.send_times, record.kinds) if k in TOKEN_KINDS]
            total = time.monotonic() - t0
            first, last = (sent[0], sent[-1]) if sent else (total, total)
            return json_bytes(self._final(completion, first, last, total)) + b"\n"

        out.append(Frame(end, "done", final))
        return out

    def body(self, completion: Completion, offsets: list[float], total_s: float) -> bytes:
        """The non-streamed response: one object with the whole message and the durations."""
        last = offsets[len(completion.pieces) - 1] if completion.pieces else offsets[0]
        final = self._final(completion, offsets[0], last, total_s)
        message: dict[str, object] = {"role": "assistant", "content": completion.content}
        if completion.reasoning:
            message["thinking"] = completion.reasoning
        if completion.tool_call is not None:
            message["tool_calls"] = self._tool_calls(completion)
        final["message"] = message
        return json_bytes(final)
