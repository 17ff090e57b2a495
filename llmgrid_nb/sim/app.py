"""The simulator's raw ASGI application: routing, the chat formats, Brave, pages and the send log."""

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
from .formats import Frame, OllamaEncoder, OpenAIEncoder, ollama_error, openai_error
from .generation import Completion, generate
from .pages import error_page, nginx_error_page, render_page
from .profiles import PROFILES, Fault, OptionError, SimOptions, UnknownModelError, parse_model, schedule
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

_OPENAI_FAULTS: dict[str, tuple[int, str, str, str | None]] = {
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
_OLLAMA_FAULTS: dict[str, tuple[int, str]] = {
    "http_400": (400, "invalid request: context length exceeded"),
    "http_401": (401, "unauthorized"),
    "http_403": (403, "forbidden"),
    "http_404": (404, 'model "{model}" not found, try pulling it first'),
    "http_429": (429, "too many requests"),
    "http_500": (500, "an error was encountered while running the model"),
    "http_502": (502, "bad gateway"),
    "http_503": (503, "server busy, please try again.  maximum pending requests exceeded"),
}


class _Disconnected(Exception):
    """The client went away before the request body was read."""


class _BadRequest(Exception):
    """A chat request that must be answered with an error status."""

    def __init__(
        self, status: int, message: str, type_: str = "invalid_request_error", code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code


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
        try:
            if path == "/v1/chat/completions" and method == "POST":
                await self._chat(scope, receive, send, t0, "openai")
            elif path == "/api/chat" and method == "POST":
                await self._chat(scope, receive, send, t0, "ollama")
            elif method != "GET" or path in _POST_PATHS:
                await self._not_found(scope, send, 405 if path in _GET_PATHS | _POST_PATHS else 404)
            elif path == "/res/v1/web/search":
                await self._brave(scope, send, t0)
            elif path.startswith("/pages/"):
                await self._page(scope, send, path[len("/pages/") :])
            elif path == "/v1/models":
                await _respond(send, 200, _models_body())
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
        if path.startswith("/v1/"):
            body = openai_error(f"Invalid URL ({method} {path})", "invalid_request_error")
        elif path.startswith("/api/"):
            body = ollama_error("404 page not found" if status == 404 else "405 method not allowed")
        else:
            body = _json({"detail": "Not Found" if status == 404 else "Method Not Allowed"})
        await _respond(send, status, body)

    # Chat -------------------------------------------------------------------------------

    def _error_body(self, fmt: str, error: _BadRequest) -> bytes:
        return openai_error(error.message, error.type, error.code) if fmt == "openai" else ollama_error(error.message)

    async def _chat(self, scope: Scope, receive: Receive, send: Send, t0: float, fmt: str) -> None:
        raw = await _read_body(receive)
        try:
            request = self._parse_chat(raw, fmt)
        except _BadRequest as exc:
            await _respond(send, exc.status, self._error_body(fmt, exc))
            return
        body, opts, seed, stream, max_tokens = request
        fault = opts.fault or self.flaky.pick(opts.profile, seed, opts.fault_defaults)
        request_id = uuid.uuid4().hex
        record = SendRecord(request_id, body["model"], opts.profile.name, t0, fault.kind if fault else None)
        self.log.add(record)
        id_header = (b"x-sim-request-id", request_id.encode())

        if fault is not None and fault.kind in HTTP_FAULTS:
            await self._http_fault(send, fmt, fault, opts, id_header, record)
            return
        if fault is not None and fault.kind == "html":
            await self._sleep_until(t0 + opts.profile.ttft, None)
            await _respond(send, 200, nginx_error_page(), b"text/html", [id_header])
            record.send_times.append(time.monotonic())
            record.kinds.append("html")
            return

        tools = body.get("tools") if isinstance(body.get("tools"), list) else None
        completion = generate(opts.profile, body["messages"], seed, max_tokens=max_tokens, tools=tools, xss=opts.xss)
        offsets = schedule(opts.profile, max(1, len(completion.pieces)), seed)
        transport = self.transports.get(scope.get("client"))
        model = opts.model
        encoder: OpenAIEncoder | OllamaEncoder
        if fmt == "openai":
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            encoder = OpenAIEncoder(
                chunk_id="chatcmpl-" + request_id[:24],
                created=int(time.time()),
                model=model,
                include_usage=include_usage,
            )
        else:
            encoder = OllamaEncoder(model=model, wall_ns=time.time_ns() - int((time.monotonic() - t0) * 1e9))

        if not stream:
            await self._unary(send, encoder, completion, offsets, fault, record, transport, id_header)
            return

        frames = encoder.frames(completion, offsets)
        if fault is not None:
            frames = apply_fault(frames, fault, encoder)
        if fmt == "openai":
            headers = [
                (b"content-type", b"text/event-stream; charset=utf-8"),
                (b"cache-control", b"no-cache"),
                (b"x-request-id", ("req_" + request_id).encode()),
                id_header,
            ]
        else:
            headers = [(b"content-type", b"application/x-ndjson"), id_header]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if fault is not None and fault.kind == "drip":
            await self._drip(send, frames, record, transport, t0, fault.drip_s)
        else:
            await self._play(send, frames, record, transport, t0)

    def _parse_chat(self, raw: bytes, fmt: str) -> tuple[dict[str, Any], SimOptions, int, bool, int | None]:
        try:
            body = json.loads(raw)
        except ValueError:
            if fmt == "openai":
                raise _BadRequest(
                    400,
                    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
                    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
                    "sent was not valid JSON.",
                ) from None
            raise _BadRequest(400, "invalid character in request body") from None
        if not isinstance(body, dict):
            raise _BadRequest(400, "request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _BadRequest(400, "you must provide a model parameter" if fmt == "openai" else "model is required")
        messages = body.get("messages")
        if not isinstance(messages, list):
            message = "'messages' is a required property" if fmt == "openai" else "messages must be a list"
            raise _BadRequest(400, message)
        try:
            opts = parse_model(model)
        except UnknownModelError as exc:
            name = exc.args[0]
            if fmt == "openai":
                raise _BadRequest(
                    404, f"The model '{name}' does not exist or you do not have access to it.", code="model_not_found"
                ) from None
            raise _BadRequest(404, f'model "{name}" not found, try pulling it first') from None
        except OptionError as exc:
            raise _BadRequest(400, str(exc)) from None
        options = body.get("options") if isinstance(body.get("options"), dict) else {}
        seed_field = body.get("seed") if fmt == "openai" else options.get("seed")
        # Without a seed, each profile has its own default, so side-by-side panes differ.
        default = sum(opts.profile.name.encode()) % 7
        seed = opts.seed if opts.seed is not None else seed_field if isinstance(seed_field, int) else default
        if fmt == "openai":
            stream = bool(body.get("stream", False))
            limit = body.get("max_completion_tokens", body.get("max_tokens"))
        else:
            stream = body.get("stream", True) is not False
            limit = options.get("num_predict")
            if isinstance(limit, int) and limit < 0:
                limit = None
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 0):
            raise _BadRequest(400, f"Invalid 'max_tokens': {limit!r}. Expected a non-negative integer.")
        return body, opts, seed, stream, limit

    async def _http_fault(
        self, send: Send, fmt: str, fault: Fault, opts: SimOptions, id_header: tuple[bytes, bytes], record: SendRecord
    ) -> None:
        headers = [id_header]
        if fault.kind == "http_429" and fault.retry_after is not None:
            headers.append((b"retry-after", fault.retry_after.encode()))
        if fmt == "openai":
            status, message, type_, code = _OPENAI_FAULTS[fault.kind]
            body = openai_error(message.format(model=opts.model), type_, code)
        else:
            status, message = _OLLAMA_FAULTS[fault.kind]
            body = ollama_error(message.format(model=opts.model))
        await _respond(send, status, body, headers=headers)
        record.send_times.append(time.monotonic())
        record.kinds.append("error")

    async def _unary(
        self,
        send: Send,
        encoder: OpenAIEncoder | OllamaEncoder,
        completion: Completion,
        offsets: list[float],
        fault: Fault | None,
        record: SendRecord,
        transport: asyncio.Transport | None,
        id_header: tuple[bytes, bytes],
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
        if isinstance(encoder, OpenAIEncoder):
            body = encoder.body(completion)
        else:
            body = encoder.body(completion, offsets, time.monotonic() - t0)
        if fault is not None and fault.kind == "malformed":
            body = body[: len(body) // 2]
        await _respond(send, 200, body, headers=[id_header])
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


_POST_PATHS = frozenset({"/v1/chat/completions", "/api/chat"})
_GET_PATHS = frozenset({"/v1/models", "/api/tags", "/api/version", "/res/v1/web/search", "/_sim/health"})


def _models_body() -> bytes:
    data = [{"id": name, "object": "model", "created": _CREATED, "owned_by": "llmgrid-sim"} for name in PROFILES]
    return _json({"object": "list", "data": data})


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
