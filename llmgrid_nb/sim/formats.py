"""Wire formats: OpenAI SSE chunks and Ollama NDJSON lines, pre-encoded as timed frames."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Callable, Protocol, Union

from .generation import Completion
from .sendlog import SendRecord

__all__ = [
    "TOKEN_KINDS",
    "Encoder",
    "Frame",
    "OllamaEncoder",
    "OpenAIEncoder",
    "ollama_error",
    "openai_error",
    "rfc3339_ns",
]

TOKEN_KINDS = frozenset({"content", "reasoning", "tool_call"})

FrameData = Union[bytes, Callable[[SendRecord], bytes]]


@dataclass(frozen=True, slots=True)
class Frame:
    """Bytes due at ``offset`` seconds after the request; ``data`` may be computed at send time."""

    offset: float
    kind: str
    data: FrameData


class Encoder(Protocol):
    """A stream format: how to encode a whole completion and the pieces faults need."""

    def frames(self, completion: Completion, offsets: list[float]) -> list[Frame]:
        """All frames of a normal stream; ``offsets`` has one entry per piece (at least one)."""
        ...

    def content(self, text: str) -> bytes:
        """One content chunk."""
        ...

    def raw_content(self, text: bytes) -> bytes:
        """One content chunk whose text is inserted as raw bytes (possibly invalid UTF-8)."""
        ...

    def malformed(self) -> bytes:
        """A line that is not valid JSON."""
        ...

    def error(self) -> bytes:
        """An in-band error event."""
        ...


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def openai_error(message: str, type_: str, code: str | None = None, param: str | None = None) -> bytes:
    """OpenAI's error body."""
    return _dumps({"error": {"message": message, "type": type_, "param": param, "code": code}})


def ollama_error(message: str) -> bytes:
    """Ollama's error body."""
    return _dumps({"error": message})


def rfc3339_ns(ns: int) -> str:
    """``ns`` since the epoch as RFC 3339 UTC with nanoseconds, as Ollama writes ``created_at``."""
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


class OpenAIEncoder:
    """Chat Completions chunks in OpenAI's exact shape, built from per-request templates."""

    def __init__(self, *, chunk_id: str, created: int, model: str, include_usage: bool) -> None:
        self.chunk_id = chunk_id
        self.created = created
        self.model = model
        self.include_usage = include_usage
        head = {"id": chunk_id, "object": "chat.completion.chunk", "created": created, "model": model}
        self._head = _dumps(head)[:-1] + b',"system_fingerprint":"fp_llmgrid_sim"'
        self._prefix = b"data: " + self._head + b',"choices":[{"index":0,"delta":'
        tail = b',"finish_reason":null,"logprobs":null}]'
        self._suffix = tail + (b',"usage":null' if include_usage else b"") + b"}\n\n"

    def _delta(self, delta: bytes, finish: str | None = None) -> bytes:
        if finish is None:
            return self._prefix + delta + self._suffix
        tail = b',"finish_reason":' + _dumps(finish) + b',"logprobs":null}]'
        return self._prefix + delta + tail + (b',"usage":null' if self.include_usage else b"") + b"}\n\n"

    def content(self, text: str) -> bytes:
        """One content delta chunk."""
        return self._delta(b'{"content":' + _dumps(text) + b"}")

    def raw_content(self, text: bytes) -> bytes:
        """A content delta whose string holds ``text`` unescaped."""
        return self._delta(b'{"content":"' + text + b'"}')

    def malformed(self) -> bytes:
        """An event whose data is not JSON."""
        return b"data: {not json\n\n"

    def error(self) -> bytes:
        """The in-band error event OpenAI sends when generation fails mid-stream."""
        return b"data: " + _dumps(
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
        out = [Frame(offsets[0], "role", self._delta(b'{"role":"assistant","content":""}'))]
        call = completion.tool_call
        for i, piece in enumerate(completion.pieces):
            if piece.kind == "content":
                data = self.content(piece.text)
            elif piece.kind == "reasoning":
                data = self._delta(b'{"reasoning_content":' + _dumps(piece.text) + b"}")
            elif i == 0 or completion.pieces[i - 1].kind != "tool_call":
                assert call is not None
                head = {"index": 0, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
                data = self._delta(b'{"tool_calls":[' + _dumps(head) + b"]}")
            else:
                data = self._delta(b'{"tool_calls":[{"index":0,"function":{"arguments":' + _dumps(piece.text) + b"}}]}")
            out.append(Frame(offsets[i], piece.kind, data))
        end = offsets[len(completion.pieces) - 1] if completion.pieces else offsets[0]
        out.append(Frame(end, "finish", self._delta(b"{}", completion.finish_reason)))
        if self.include_usage:
            usage = b"data: " + self._head + b',"choices":[],"usage":' + _dumps(self.usage(completion)) + b"}\n\n"
            out.append(Frame(end, "usage", usage))
        out.append(Frame(end, "done", b"data: [DONE]\n\n"))
        return out

    def body(self, completion: Completion) -> bytes:
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
        return _dumps(
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


class OllamaEncoder:
    """Ollama ``/api/chat`` NDJSON lines; the final line reports the durations actually sent."""

    def __init__(self, *, model: str, wall_ns: int) -> None:
        self.model = model
        self.wall_ns = wall_ns
        self._model_json = _dumps(model)

    def _line(self, offset: float, message: bytes) -> bytes:
        created = rfc3339_ns(self.wall_ns + int(offset * 1e9))
        return (
            b'{"model":' + self._model_json + b',"created_at":"' + created.encode() + b'","message":'
            + message + b',"done":false}\n'
        )

    def content(self, text: str, offset: float = 0.0) -> bytes:
        """One content line."""
        return self._line(offset, b'{"role":"assistant","content":' + _dumps(text) + b"}")

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
                msg = b'{"role":"assistant","content":"","thinking":' + _dumps(piece.text) + b"}"
                out.append(Frame(offsets[i], "reasoning", self._line(offsets[i], msg)))
            elif i == len(pieces) - 1 or pieces[i + 1].kind != "tool_call":
                msg = {"role": "assistant", "content": "", "tool_calls": self._tool_calls(completion)}
                out.append(Frame(offsets[i], "tool_call", self._line(offsets[i], _dumps(msg))))
        end = offsets[len(pieces) - 1] if pieces else offsets[0]

        def final(record: SendRecord) -> bytes:
            t0 = record.t_request
            sent = [t - t0 for t, k in zip(record.send_times, record.kinds) if k in TOKEN_KINDS]
            total = time.monotonic() - t0
            first, last = (sent[0], sent[-1]) if sent else (total, total)
            return _dumps(self._final(completion, first, last, total)) + b"\n"

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
        return _dumps(final)
