"""What every direct HTTP source does, written once: send the request, read the event stream
with kernel receive stamps, hand each message to the dialect's pure decoder, translate failures.

A dialect module (``openai_sse``, ``anthropic``, ``gemini``, ``openai_responses``) supplies a
``StreamRequest`` (URL, JSON body, headers) and a decoder object (``EventDecoder``): server-sent
events in, our events out, no I/O. This module owns the socket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from ..config import Secret, env_key
from ..errors import ConfigError, ProviderError
from ..events import Error, Event, Status
from ..rx_stamps import receive_time
from ..sse import ServerSentEvent, SSEDecoder
from .base import StreamContext
from .http_errors import error_from_response, translate_transport_error

__all__ = ["DirectSource", "EventDecoder", "StreamRequest", "empty_answer", "resolve_key", "stream_events"]


@dataclass(frozen=True, slots=True)
class StreamRequest:
    """One streaming POST: where, what, and how to describe its failures.

    ``provider`` names the API in error messages ("Anthropic overloaded_error: Overloaded");
    ``key_env`` is named when authentication fails; ``secret`` is redacted from any message.
    """

    url: str
    body: Mapping[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)
    key_env: tuple[str, ...] = ()
    secret: Secret | None = None
    provider: str = ""


class EventDecoder(Protocol):
    """A dialect's pure decoder: each server-sent ``message``, then ``finish`` at the end.

    ``done`` turns true once the dialect's own end marker arrived (``[DONE]``, ``message_stop``,
    ``response.completed``): reading stops there. ``finish`` raises ProviderError when what
    arrived is not a complete answer. ``unary`` (optional) decodes a whole non-streamed JSON body.
    """

    done: bool

    def message(self, event: ServerSentEvent, t: float) -> list[Event]: ...

    def finish(self, t: float) -> list[Event]: ...


class DirectSource:
    """What the direct HTTP sources share: the host key their concurrency limit uses, a repr
    that never shows a key, and the check of their base URL."""

    name: str
    model: str
    base_url: str

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={self.base_url!r}, name={self.name!r})"

    @property
    def host(self) -> str | None:
        from ..clients import host_key

        return host_key(self.base_url)

    def validate(self) -> None:
        """Check the base URL before anything is sent."""
        if not self.base_url.startswith(("http://", "https://")):
            raise ConfigError(f"{self.name}: base_url must start with http:// or https://, got {self.base_url!r}")


def empty_answer(finish_reason: str | None, what_arrived: str) -> ProviderError | None:
    """The failure of a stream that ended with no content at all, or None if it is an answer.

    No text, reasoning, refusal or tool call and no finish reason, or a plain ``stop``, is not
    a success (a busy server's reply, a dropped generation): it is retried like any failure
    before the first token. A ``length`` or ``content_filter`` finish explains an empty answer
    and stands. ``what_arrived`` says what the server did send, for the message.
    """
    if finish_reason not in (None, "stop"):
        return None
    reason = f"finish_reason {finish_reason}" if finish_reason else "no finish reason"
    return ProviderError(f"the server sent no answer: {what_arrived}, no content and {reason}"
                         " (a busy or overloaded server does this)", retryable=True, kind="empty")


def resolve_key(api_key: Secret | None, key_env: Sequence[str]) -> Secret | None:
    """The key to send: the one given, else the first set variable of ``key_env``.

    With ``key_env`` named but none of its variables set, fail with a message naming them.
    """
    if api_key is not None:
        return api_key
    if not key_env:
        return None
    key = env_key(key_env)
    if key is None:
        raise ProviderError(f"no API key: set {' or '.join(key_env)} or pass api_key=", kind="config")
    return key


async def stream_events(request: StreamRequest, decoder: EventDecoder, ctx: StreamContext) -> AsyncIterator[Event]:
    """POST ``request`` and yield the decoder's events as the response streams in.

    Each network read is stamped (the kernel's receive time on plain HTTP), the first parsed
    message marks TTFB, and httpx failures and HTTP error statuses become ProviderErrors that
    quote the provider. A server that answers with one JSON body instead of a stream is decoded
    whole when the decoder can (``unary``).
    """
    url = request.url
    client = ctx.client(url)
    timeout = httpx.Timeout(ctx.connect_timeout, read=None, pool=None)
    ctx.request_started()
    try:
        async with client.stream("POST", url, json=request.body, headers=request.headers,
                                 timeout=timeout) as resp:
            ctx.note_response(resp.headers)
            if resp.status_code >= 400:
                raise await error_from_response(resp, key_env=request.key_env, secret=request.secret,
                                                provider=request.provider)
            ctype = resp.headers.get("content-type", "")
            if "text/event-stream" not in ctype:
                for ev in await _unary(resp, ctype, decoder, ctx):
                    yield ev
                return
            yield Status(ctx.name, ctx.now(), "waiting")
            sse = SSEDecoder()
            async for raw in resp.aiter_bytes():
                t = ctx.activity(receive_time(resp))
                for message in sse.decode(raw):
                    ctx.first_message(t)
                    for ev in decoder.message(message, t):
                        yield ev
                    if decoder.done:
                        break
                if decoder.done:
                    break
            else:
                t = ctx.now()
                for message in sse.flush():
                    ctx.first_message(t)
                    for ev in decoder.message(message, t):
                        yield ev
            if sse.replaced_invalid_utf8:
                yield Error(ctx.name, ctx.now(), "the stream contained invalid UTF-8 (replaced by U+FFFD)",
                            recoverable=True, fatal=False, error_type="parse")
            for ev in decoder.finish(ctx.now()):
                yield ev
    except httpx.HTTPError as exc:
        raise translate_transport_error(exc, url) from None


async def _unary(resp: httpx.Response, ctype: str, decoder: EventDecoder, ctx: StreamContext) -> list[Event]:
    """A server that ignored ``stream`` and sent one JSON body, or sent something else."""
    body = await resp.aread()
    t = ctx.activity()
    unary = getattr(decoder, "unary", None)
    if "json" not in ctype or unary is None:
        kind = ctype.split(";")[0] or "no content type"
        raise ProviderError(f"expected an event stream but the server sent {kind} (HTTP {resp.status_code})",
                            kind="protocol")
    ctx.first_message(t)
    events: list[Event] = unary(body, t)
    return events
