"""Ollama's ``/api/chat`` NDJSON stream over httpx, keeping Ollama's own server timings."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from ..config import ollama_base_url
from ..errors import ProviderError
from ..events import Done, Error, Event, Reasoning, Status, Token, ToolCall, Usage
from ..lines import LineDecoder
from ..rx_stamps import receive_time
from .base import Prompt, SourceOptions, StreamContext
from .http_errors import describe_error_object, error_from_response, translate_transport_error
from .openai_sse import count
from .http_stream import DirectSource
from .payloads import decode_payload

__all__ = ["OLLAMA_TIMINGS", "Ollama", "OllamaLineParser"]

#: Ollama's final-line timings (nanoseconds on the wire), kept in seconds in the summary.
OLLAMA_TIMINGS = ("total_duration", "load_duration", "prompt_eval_duration", "eval_duration")


class OllamaLineParser:
    """Turn NDJSON lines of ``/api/chat`` into events. No I/O."""

    __slots__ = ("source", "finish_reason", "done", "_calls")

    def __init__(self, source: str) -> None:
        self.source = source
        self.finish_reason: str | None = None
        self.done = False
        self._calls = 0

    def feed(self, line: str, t: float) -> list[Event]:
        """Parse one line received at ``t``."""
        if not line.strip():
            return []
        return decode_payload(self.source, line, t, self._parse, unit="line")

    def _parse(self, obj: dict[str, Any], t: float) -> list[Event]:
        if obj.get("error") is not None:
            raise ProviderError(f"Ollama reported an error: {describe_error_object(obj) or obj['error']}",
                                retryable=True, kind="stream_error")
        out: list[Event] = []
        message = obj.get("message") or {}
        thinking = message.get("thinking")
        if thinking and isinstance(thinking, str):
            out.append(Reasoning(self.source, t, thinking))
        content = message.get("content")
        if content and isinstance(content, str):
            out.append(Token(self.source, t, content))
        for call in message.get("tool_calls") or ():
            fn = call.get("function") or {}
            args = fn.get("arguments", {})
            self._calls += 1
            out.append(ToolCall(self.source, t, str(call.get("id") or f"call_{self._calls}"),
                                str(fn.get("name", "")), args if isinstance(args, str) else json.dumps(args)))
        if obj.get("done"):
            self.done = True
            self.finish_reason = str(obj.get("done_reason") or "stop")
            out.append(self._usage(obj, t))
            out.append(Done(self.source, t, self.finish_reason))
        return out

    def _usage(self, obj: Mapping[str, Any], t: float) -> Usage:
        server: dict[str, float] = {}
        for key in OLLAMA_TIMINGS:
            if count(obj.get(key)) is not None:
                server[key.replace("_duration", "_duration_s")] = obj[key] / 1e9
        for key in ("eval_count", "prompt_eval_count"):
            if count(obj.get(key)) is not None:
                server[key] = float(obj[key])
        return Usage(self.source, t, count(obj.get("prompt_eval_count")), count(obj.get("eval_count")), None, server)


class Ollama(DirectSource):
    """A model served by Ollama, streamed from ``/api/chat`` (base from OLLAMA_HOST)."""

    route = "direct-ollama"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        name: str | None = None,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        self.model = model
        self._base_url = base_url
        self.name = name or f"ollama/{model}"
        self.options = SourceOptions(system, temperature, max_tokens, dict(extra_body or {}))

    @property
    def base_url(self) -> str:
        """Ollama's base URL (without ``/api``)."""
        return (self._base_url or ollama_base_url()).rstrip("/")

    def request_body(self, prompt: Prompt) -> dict[str, Any]:
        """The JSON body of the streaming request (sampling options go under ``options``)."""
        p = prompt.merged(self.options)
        options: dict[str, Any] = {}
        if p.temperature is not None:
            options["temperature"] = p.temperature
        if p.max_tokens is not None:
            options["num_predict"] = p.max_tokens
        params = dict(p.params)
        options.update(params.pop("options", {}) or {})
        body: dict[str, Any] = {"model": self.model, "messages": p.messages(), "stream": True}
        if options:
            body["options"] = options
        body.update(params)
        return body

    async def stream(self, prompt: Prompt, ctx: StreamContext) -> AsyncIterator[Event]:
        """Send the request and yield events as NDJSON lines are parsed."""
        url = self.base_url + "/api/chat"
        client = ctx.client(url)
        parser = OllamaLineParser(ctx.name)
        timeout = httpx.Timeout(ctx.connect_timeout, read=None, pool=None)
        ctx.request_started()
        try:
            async with client.stream("POST", url, json=self.request_body(prompt), timeout=timeout) as resp:
                ctx.note_response(resp.headers)
                if resp.status_code >= 400:
                    raise await error_from_response(resp)
                ctype = resp.headers.get("content-type", "")
                if "html" in ctype:
                    raise ProviderError(f"expected NDJSON but the server sent {ctype.split(';')[0]}"
                                        f" (HTTP {resp.status_code})", kind="protocol")
                yield Status(ctx.name, ctx.now(), "waiting")
                lines = LineDecoder()
                async for raw in resp.aiter_bytes():
                    t = ctx.activity(receive_time(resp))
                    for line in lines.decode(raw):
                        ctx.first_message(t)
                        for ev in parser.feed(line, t):
                            yield ev
                    if parser.done:
                        break
                else:
                    for line in lines.flush():
                        for ev in parser.feed(line, ctx.now()):
                            yield ev
                if lines.replaced:
                    yield Error(ctx.name, ctx.now(), "the stream contained invalid UTF-8 (replaced by U+FFFD)",
                                recoverable=True, fatal=False, error_type="parse")
                if not parser.done:
                    raise ProviderError("the stream ended before Ollama's final done line",
                                        retryable=True, kind="truncated")
        except httpx.HTTPError as exc:
            raise translate_transport_error(exc, url) from None
