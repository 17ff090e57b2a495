"""The seam between the server and a provider's wire dialect: a parsed request, request errors, the protocol."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..formats import Encoder
from ..profiles import OptionError, SimOptions, UnknownModelError, parse_model

__all__ = [
    "BadRequest",
    "ChatRequest",
    "Dialect",
    "Headers",
    "Route",
    "check_limit",
    "field_object",
    "load_object",
    "options_for",
    "resolve_seed",
]

Headers = list[tuple[bytes, bytes]]


class BadRequest(Exception):
    """A chat request that must be answered with an error status in the dialect's error shape.

    ``type_`` is the dialect's own error type when it has one for the case (OpenAI's
    ``invalid_request_error``, Anthropic's ``not_found_error``); None lets the dialect derive
    it from ``status``.
    """

    def __init__(
        self, status: int, message: str, type_: str | None = None, code: str | None = None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param


@dataclass(frozen=True, slots=True)
class Route:
    """What the URL says about a chat request: the dialect, and for Gemini the model and streaming mode."""

    dialect: Dialect
    model: str | None = None
    stream: bool | None = None
    sse: bool = True


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """One chat request in the simulator's terms, whichever dialect it arrived in.

    ``messages`` are the turns in OpenAI's shape (``role`` of system, user, assistant or
    tool; ``content`` a string or a list of parts with ``text``), which is what generation
    reads; ``tools`` are function declarations with ``name`` and ``parameters``.
    """

    model: str
    options: SimOptions
    messages: list[dict[str, Any]]
    seed: int
    stream: bool
    max_tokens: int | None
    tools: list[dict[str, Any]] | None = None
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def user_turns(self) -> int:
        """How many user turns the request carried."""
        return sum(1 for m in self.messages if m.get("role") == "user")

    @property
    def transcript(self) -> list[tuple[str, str]]:
        """(role, text) of every turn the request carried, in the dialect-free shape, so a test
        can check that a conversation's history reached the server as it was sent."""
        out = []
        for m in self.messages:
            content = m.get("content")
            if isinstance(content, list):
                content = "".join(str(p.get("text") or "") for p in content if isinstance(p, dict))
            out.append((str(m.get("role")), content if isinstance(content, str) else ""))
        return out


class Dialect(Protocol):
    """One provider's wire protocol: request parsing, error bodies and headers, and its encoder."""

    name: str
    stream_content_type: bytes

    def parse(self, raw: bytes, route: Route) -> ChatRequest:
        """The request in ``raw``; raises ``BadRequest`` with the provider's status and message."""
        ...

    def error_body(self, error: BadRequest, request_id: str) -> bytes:
        """The provider's error body for a rejected request."""
        ...

    def http_fault(self, kind: str, model: str, request_id: str) -> tuple[int, bytes]:
        """Status and body the provider sends for the HTTP-level fault ``kind`` (``http_429``, ...)."""
        ...

    def headers(self, request_id: str) -> Headers:
        """Headers the provider sends on every response (its request id)."""
        ...

    def encoder(self, request: ChatRequest, request_id: str, wall_ns: int, route: Route) -> Encoder:
        """The encoder for this request's response; ``wall_ns`` is the request's wall-clock time."""
        ...


def load_object(raw: bytes, invalid_json: str) -> dict[str, Any]:
    """The JSON object in ``raw``, or a 400 with ``invalid_json`` as the message."""
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadRequest(400, invalid_json) from None
    if not isinstance(body, dict):
        raise BadRequest(400, "request body must be a JSON object")
    return body


def field_object(body: dict[str, Any], name: str) -> dict[str, Any]:
    """``body[name]`` if it is a JSON object, else an empty one (optional settings objects)."""
    value = body.get(name)
    return value if isinstance(value, dict) else {}


def options_for(model: str, unknown: str, *, code: str | None = None) -> SimOptions:
    """Parsed model options; an unknown profile is a 404 whose message is ``unknown`` with ``{name}`` filled in."""
    try:
        return parse_model(model)
    except UnknownModelError as exc:
        raise BadRequest(404, unknown.format(name=exc.args[0]), code=code) from None
    except OptionError as exc:
        raise BadRequest(400, str(exc)) from None


def resolve_seed(options: SimOptions, field_value: object) -> int:
    """The model-name seed, else the request's own seed field, else the profile's default."""
    if options.seed is not None:
        return options.seed
    if isinstance(field_value, int) and not isinstance(field_value, bool):
        return field_value
    # Without a seed, each profile has its own default, so side-by-side panes differ.
    return sum(options.profile.name.encode()) % 7


def check_limit(value: object, message: str, *, minimum: int = 0) -> int | None:
    """A token limit: None, or an integer of at least ``minimum``; else a 400 with ``message``."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise BadRequest(400, message.format(value=value))
    return value
