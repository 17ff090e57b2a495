"""The simulator's raw ASGI application: routing, the chat dialects, Brave, pages and the send log."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
import struct
import time
import uuid
from typing import Any, Awaitable, Callable, MutableMapping
from urllib.parse import parse_qsl

from .brave import BraveError, BraveRateLimiter, search_payload, token_error
from .faults import HTTP_FAULTS, FlakyPicker, apply_fault
from .dialects import ANTHROPIC, GEMINI, BadRequest, Route, route
from .dialects.ollama import ollama_error
from .dialects.openai_chat import openai_error
from .formats import Encoder, Frame
from .generation import Completion, generate
from .pages import error_page, nginx_error_page, render_page
from .profiles import PROFILES, Fault, schedule
from .sendlog import SendLog, SendRecord

__all__ = ["SimApp"]

logger = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Transports = dict[Any, asyncio.Transport]

_JSON = b"application/json"
_CREATED = 1_700_000_000
_LONG_WAIT = 0.5
_POLL = 0.2
_SLOW_PAGE_S = 3.0
_SSE = b"text/event-stream"


class _Disconnected(Exception):
    """The client went away before the request body was read."""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes = _JSON,
    headers: tuple[tuple[bytes, bytes], ...] | list[tuple[bytes, bytes]] = (),
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


class SimApp:
    """The ASGI app; ``transports`` maps client address to transport so faults can reset a connection.

    The server's protocol class fills ``transports`` (see ``server.py``); without it, resets
    fall back to raising inside the app, which makes uvicorn close the connection.
    """

    def __init__(self, *, brave_rate: float = 1.0, log_capacity: int = 10_000) -> None:
        self.log = SendLog(log_capacity)
        self.flaky = FlakyPicker()
        self.brave = BraveRateLimiter(brave_rate)
        self.transports: Transports = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
            return
        t0 = time.monotonic()
        path: str = scope["path"]
        method: str = scope["method"]
        query = scope.get("query_string", b"").decode("latin-1")
        chat = route(path, query)
        try:
            if chat is not None and method == "POST":
                await self._chat(scope, receive, send, t0, chat)
            elif method != "GET" or chat is not None:
                await self._not_found(scope, send, 405 if chat is not None or path in _GET_PATHS else 404)
            elif path == "/res/v1/web/search":
                await self._brave(scope, send, t0)
            elif path.startswith("/pages/"):
                await self._page(scope, send, path[len("/pages/") :])
            elif path == "/v1/models":
                anthropic = _header(scope, b"anthropic-version") is not None
                await _respond(send, 200, _anthropic_models_body() if anthropic else _models_body())
            elif path == "/v1beta/models":
                await _respond(send, 200, _gemini_models_body())
            elif path == "/api/tags":
                await _respond(send, 200, _tags_body())
            elif path == "/api/version":
                await _respond(send, 200, b'{"version":"0.6.0-llmgrid-sim"}')
            elif path.startswith("/_sim/log/"):
                record = self.log.get(path[len("/_sim/log/") :])
                if record is None:
                    await _respond(send, 404, b'{"error":"unknown request id"}')
                else:
                    await _respond(send, 200, _json(record.to_json()))
            elif path == "/_sim/health":
                await _respond(send, 200, b'{"ok":true}')
            else:
                await self._not_found(scope, send, 404)
        except _Disconnected:
            return

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _not_found(self, scope: Scope, send: Send, status: int) -> None:
        path, method = scope["path"], scope["method"]
        message = "Not Found" if status == 404 else "Method Not Allowed"
        if path.startswith("/v1/messages"):
            body = ANTHROPIC.error_body(BadRequest(status, message), uuid.uuid4().hex)
        elif path.startswith("/v1beta/"):
            body = GEMINI.error_body(BadRequest(status, message), "")
        elif path.startswith("/v1/"):
            body = openai_error(f"Invalid URL ({method} {path})", "invalid_request_error")
        elif path.startswith("/api/"):
            body = ollama_error("404 page not found" if status == 404 else "405 method not allowed")
        else:
            body = _json({"detail": message})
        await _respond(send, status, body)

    # Chat -------------------------------------------------------------------------------

    async def _chat(self, scope: Scope, receive: Receive, send: Send, t0: float, chat: Route) -> None:
        """One chat request in any dialect: parse, pick a fault, generate, then answer or stream."""
        dialect = chat.dialect
        raw = await _read_body(receive)
        request_id = uuid.uuid4().hex
        try:
            request = dialect.parse(raw, chat)
        except BadRequest as exc:
            await _respond(send, exc.status, dialect.error_body(exc, request_id), headers=dialect.headers(request_id))
            return
        opts = request.options
        fault = opts.fault or self.flaky.pick(opts.profile, request.seed, opts.fault_defaults)
        record = SendRecord(
            request_id, request.model, opts.profile.name, t0, fault.kind if fault else None, user_turns=request.user_turns,
            transcript=request.transcript,
        )
        self.log.add(record)
        headers = [*dialect.headers(request_id), (b"x-sim-request-id", request_id.encode())]

        if fault is not None and fault.kind in HTTP_FAULTS:
            if fault.kind == "http_429" and fault.retry_after is not None:
                headers.append((b"retry-after", fault.retry_after.encode()))
            status, body = dialect.http_fault(fault.kind, opts.model, request_id)
            await _respond(send, status, body, headers=headers)
            record.send_times.append(time.monotonic())
            record.kinds.append("error")
            return
        if fault is not None and fault.kind == "html":
            await self._sleep_until(t0 + opts.profile.ttft, None)
            await _respond(send, 200, nginx_error_page(), b"text/html", headers)
            record.send_times.append(time.monotonic())
            record.kinds.append("html")
            return

        completion = generate(
            opts.profile, request.messages, request.seed, max_tokens=request.max_tokens, tools=request.tools, xss=opts.xss
        )
        offsets = schedule(opts.profile, max(1, len(completion.pieces)), request.seed)
        transport = self.transports.get(scope.get("client"))
        wall_ns = time.time_ns() - int((time.monotonic() - t0) * 1e9)
        encoder = dialect.encoder(request, request_id, wall_ns, chat)

        if not request.stream:
            await self._unary(send, encoder, completion, offsets, fault, record, transport, headers)
            return

        n = dialect.choices(request) if hasattr(dialect, "choices") else 1
        if n > 1:  # the choices are different answers (seeds apart), each on its own schedule
            completions = [completion, *(generate(opts.profile, request.messages, request.seed + i,
                                                  max_tokens=request.max_tokens, tools=request.tools, xss=opts.xss)
                                         for i in range(1, n))]
            schedules = [offsets, *(schedule(opts.profile, max(1, len(c.pieces)), request.seed + i)
                                    for i, c in enumerate(completions[1:], 1))]
            frames = encoder.frames_n(completions, schedules)
        else:
            frames = encoder.frames(completion, offsets)
        if fault is not None:
            frames = apply_fault(frames, fault, encoder)
        content_type = dialect.stream_content_type if chat.sse else _JSON
        start = [(b"content-type", content_type)]
        if content_type.startswith(_SSE):
            start.append((b"cache-control", b"no-cache"))
        await send({"type": "http.response.start", "status": 200, "headers": start + headers})
        if fault is not None and fault.kind == "drip":
            await self._drip(send, frames, record, transport, t0, fault.drip_s)
        else:
            await self._play(send, frames, record, transport, t0)

    async def _unary(
        self,
        send: Send,
        encoder: Encoder,
        completion: Completion,
        offsets: list[float],
        fault: Fault | None,
        record: SendRecord,
        transport: asyncio.Transport | None,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        t0 = record.t_request
        if fault is not None and fault.kind == "reset":
            if await self._sleep_until(t0 + offsets[0], transport):
                await self._reset(transport, record)
            return
        stall = fault.stall_s if fault is not None and fault.kind == "stall" else 0.0
        end = offsets[len(completion.pieces) - 1] if completion.pieces else offsets[0]
        if not await self._sleep_until(t0 + end + stall, transport):
            return
        body = encoder.body(completion, offsets, time.monotonic() - t0)
        if fault is not None and fault.kind == "malformed":
            body = body[: len(body) // 2]
        await _respond(send, 200, body, headers=headers)
        record.send_times.append(time.monotonic())
        record.kinds.append("body")

    # Sending ----------------------------------------------------------------------------

    async def _sleep_until(self, deadline: float, transport: asyncio.Transport | None) -> bool:
        """Sleep until monotonic ``deadline``; False if the client disconnected meanwhile."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return True
            if transport is not None and transport.is_closing():
                return False
            await asyncio.sleep(min(remaining, _POLL))

    async def _reset(self, transport: asyncio.Transport | None, record: SendRecord) -> None:
        record.send_times.append(time.monotonic())
        record.kinds.append("reset")
        if transport is None:
            raise ConnectionResetError("simulated connection reset")
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # SO_LINGER with a zero timeout turns close() into an RST instead of a FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
        # Let the protocol see connection_lost, so uvicorn treats the response as abandoned.
        await asyncio.sleep(0)
        await asyncio.sleep(0)

    async def _play(
        self, send: Send, frames: list[Frame], record: SendRecord, transport: asyncio.Transport | None, t0: float
    ) -> None:
        """Send each frame at ``t0 + offset``; sleeps target absolute deadlines, so errors never add up."""
        times = record.send_times
        kinds = record.kinds
        monotonic = time.monotonic
        sleep = asyncio.sleep
        last = len(frames) - 1
        for i, frame in enumerate(frames):
            deadline = t0 + frame.offset
            delay = deadline - monotonic()
            if delay > 0:
                if delay > _LONG_WAIT:
                    if not await self._sleep_until(deadline, transport):
                        return
                else:
                    await sleep(delay)
            if frame.kind == "reset":
                await self._reset(transport, record)
                return
            data = frame.data if isinstance(frame.data, bytes) else frame.data(record)
            await send({"type": "http.response.body", "body": data, "more_body": i != last})
            times.append(monotonic())
            kinds.append(frame.kind)
            if transport is not None and transport.is_closing():
                return
        if last < 0:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _drip(
        self,
        send: Send,
        frames: list[Frame],
        record: SendRecord,
        transport: asyncio.Transport | None,
        t0: float,
        drip_s: float,
    ) -> None:
        """Send the whole stream one byte every ``drip_s`` seconds, starting at the first frame's time."""
        start = t0 + (frames[0].offset if frames else 0.0)
        k = 0
        for frame in frames:
            data = frame.data if isinstance(frame.data, bytes) else frame.data(record)
            for j in range(len(data)):
                if not await self._sleep_until(start + k * drip_s, transport):
                    return
                await send({"type": "http.response.body", "body": data[j : j + 1], "more_body": True})
                record.send_times.append(time.monotonic())
                record.kinds.append("drip")
                k += 1
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    # Brave and pages ---------------------------------------------------------------------

    async def _brave(self, scope: Scope, send: Send, t0: float) -> None:
        token = _header(scope, b"x-subscription-token")
        params = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        if not token or token == "invalid":
            decision = self.brave.check(token or "", t0, count=False)
            await _respond(send, 422, _json(token_error().payload()), headers=decision.headers)
            return
        decision = self.brave.check(token, t0)
        if decision.error is not None:
            await _respond(send, 429, _json(decision.error.payload()), headers=decision.headers)
            return
        host = _header(scope, b"host") or "{}:{}".format(*scope.get("server") or ("127.0.0.1", 80))
        try:
            payload = search_payload(params, f"http://{host}")
        except BraveError as exc:
            await _respond(send, exc.status, _json(exc.payload()), headers=decision.headers)
            return
        await _respond(send, 200, _json(payload), headers=decision.headers)

    async def _page(self, scope: Scope, send: Send, rest: str) -> None:
        html = b"text/html; charset=utf-8"
        mode, _, slug = rest.partition("/")
        if not slug:
            mode, slug = "", rest
        if not slug or mode not in ("", "slow", "error", "big"):
            await _respond(send, 404, b"<html><body><h1>404 Not Found</h1></body></html>", html)
            return
        if mode == "error":
            await _respond(send, 500, error_page(), html)
            return
        if mode == "slow":
            transport = self.transports.get(scope.get("client"))
            if not await self._sleep_until(time.monotonic() + _SLOW_PAGE_S, transport):
                return
        await _respond(send, 200, render_page(slug, big=mode == "big"), html)


_GET_PATHS = frozenset(
    {"/v1/models", "/v1beta/models", "/api/tags", "/api/version", "/res/v1/web/search", "/_sim/health"}
)


def _models_body() -> bytes:
    data = [{"id": name, "object": "model", "created": _CREATED, "owned_by": "llmgrid-sim"} for name in PROFILES]
    return _json({"object": "list", "data": data})


def _anthropic_models_body() -> bytes:
    data = [
        {"type": "model", "id": name, "display_name": name, "created_at": "2025-01-01T00:00:00Z"} for name in PROFILES
    ]
    return _json({"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]})


def _gemini_models_body() -> bytes:
    methods = ["generateContent", "countTokens", "streamGenerateContent"]
    models = [
        {
            "name": f"models/{name}",
            "version": "001",
            "displayName": name,
            "description": profile.description,
            "inputTokenLimit": 1_048_576,
            "outputTokenLimit": 65_536,
            "supportedGenerationMethods": methods,
        }
        for name, profile in PROFILES.items()
    ]
    return json.dumps({"models": models}, indent=2).encode()


def _tags_body() -> bytes:
    models = []
    for name in PROFILES:
        digest = hashlib.sha256(name.encode()).hexdigest()
        models.append(
            {
                "name": f"{name}:latest",
                "model": f"{name}:latest",
                "modified_at": "2024-06-01T12:00:00.000000000Z",
                "size": 4_661_224_676 + len(name) * 1_000_003,
                "digest": digest,
                "details": {
                    "parent_model": "",
                    "format": "gguf",
                    "family": "llmgrid-sim",
                    "families": ["llmgrid-sim"],
                    "parameter_size": "8.0B",
                    "quantization_level": "Q4_K_M",
                },
            }
        )
    return _json({"models": models})
