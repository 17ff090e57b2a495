"""OpenAI-compatible chat completions streamed over SSE with httpx: the fast direct path.

Serves OpenAI itself, vLLM, llama.cpp, LM Studio, a LiteLLM proxy and the simulator.
``OpenAIChunkParser`` is the pure part (JSON chunk in, events out) so it is tested without
a network; ``OpenAICompatible`` wraps it with one pooled httpx stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx

from ..config import Secret, env_key
from ..errors import ConfigError, ProviderError
from ..events import Done, Error, Event, Reasoning, Status, Token, ToolCall, Usage
from ..rx_stamps import receive_time
from ..sse import SSEDecoder
from .base import Prompt, SourceOptions, StreamContext
from .http_errors import describe_error_object, error_from_response, translate_transport_error

__all__ = ["OpenAIChunkParser", "OpenAICompatible", "Simulated", "count"]


def count(value: object) -> int | None:
    """A token count from a provider's JSON: a non-negative int, or None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class OpenAIChunkParser:
    """Turn the JSON payloads of a chat.completion.chunk stream into events. No I/O.

    Tool calls arrive as fragments keyed by ``index``; they are assembled and emitted as one
    ToolCall when the choice finishes (or the stream ends). An ``{"error": ...}`` payload raises
    ProviderError: a stream that carried an error is never a complete answer.
    """

    __slots__ = ("source", "finish_reason", "_tools", "saw_usage")

    def __init__(self, source: str) -> None:
        self.source = source
        self.finish_reason: str | None = None
        self._tools: dict[int, list[Any]] = {}
        self.saw_usage = False

    def feed(self, data: str, t: float) -> list[Event]:
        """Parse one SSE ``data`` payload received at ``t``."""
        try:
            obj = json.loads(data)
        except ValueError:
            return [Error(self.source, t, f"skipped a malformed event: {data[:80]!r}",
                          recoverable=True, fatal=False, error_type="parse")]
        if not isinstance(obj, dict):
            return [Error(self.source, t, f"skipped an event that is not a JSON object: {data[:80]!r}",
                          recoverable=True, fatal=False, error_type="parse")]
        try:
            return self._parse(obj, t)
        except (TypeError, AttributeError, KeyError, IndexError, ValueError):
            return [Error(self.source, t, f"skipped an event of unexpected shape: {data[:80]!r}",
                          recoverable=True, fatal=False, error_type="parse")]

    def _parse(self, obj: dict[str, Any], t: float) -> list[Event]:
        if obj.get("error") is not None:
            message = describe_error_object(obj) or "the provider sent an error"
            raise ProviderError(f"the provider reported an error mid-stream: {message}",
                                retryable=True, kind="stream_error")
        out: list[Event] = []
        choices = obj.get("choices")
        if choices:
            choice = choices[0]
            delta = choice.get("delta") or choice.get("message") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning and isinstance(reasoning, str):
                out.append(Reasoning(self.source, t, reasoning))
            content = delta.get("content")
            if content and isinstance(content, str):
                out.append(Token(self.source, t, content))
            fragments = delta.get("tool_calls")
            if fragments:
                self.add_tool_fragments(fragments)
            finish = choice.get("finish_reason")
            if finish:
                self.finish_reason = str(finish)
                out.extend(self.drain_tools(t))
        usage = obj.get("usage")
        if usage:
            out.append(self._usage(usage, t))
        return out

    def finish(self, t: float, *, saw_done: bool) -> list[Event]:
        """End of stream: pending tool calls and Done, or an error if it was cut short."""
        out = self.drain_tools(t)
        if self.finish_reason is None and not saw_done:
            raise ProviderError(
                "the stream ended before the response was complete (no finish_reason, no [DONE])",
                retryable=True, kind="truncated")
        out.append(Done(self.source, t, self.finish_reason))
        return out

    def add_tool_fragments(self, fragments: Sequence[Mapping[str, Any]]) -> None:
        for frag in fragments:
            slot = self._tools.setdefault(int(frag.get("index", 0) or 0), ["", "", []])
            if frag.get("id"):
                slot[0] = str(frag["id"])
            fn = frag.get("function") or {}
            if fn.get("name"):
                slot[1] += str(fn["name"])
            args = fn.get("arguments")
            if args:
                slot[2].append(args if isinstance(args, str) else json.dumps(args))

    def drain_tools(self, t: float) -> list[Event]:
        calls = [ToolCall(self.source, t, cid, name, "".join(args))
                 for _, (cid, name, args) in sorted(self._tools.items())]
        self._tools.clear()
        return calls

    def _usage(self, usage: Mapping[str, Any], t: float) -> Usage:
        self.saw_usage = True
        details = usage.get("completion_tokens_details") or {}
        return Usage(self.source, t, count(usage.get("prompt_tokens")), count(usage.get("completion_tokens")),
                     count(details.get("reasoning_tokens")))


class OpenAICompatible:
    """A model behind any OpenAI-compatible ``/chat/completions`` endpoint, streamed directly.

    ``api_key`` may be a string or Secret; without one the first set variable of ``key_env``
    is used, and when ``key_env`` is given but empty of values the stream fails with a message
    naming it. Local servers (vLLM, llama.cpp, LM Studio) need no key.
    """

    route = "direct-openai"

    def __init__(
        self,
        model: str,
        base_url: str,
        *,
        api_key: str | Secret | None = None,
        key_env: Sequence[str] = (),
        name: str | None = None,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.model = model
        self._base_url = base_url
        self._api_key = Secret(api_key) if isinstance(api_key, str) else api_key
        self.key_env = tuple(key_env)
        self.name = name or model
        self.options = SourceOptions(system, temperature, max_tokens, dict(extra_body or {}))
        self.headers = dict(headers or {})

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, base_url={self._base_url!r}, name={self.name!r})"

    @property
    def base_url(self) -> str:
        """The API base, ending before ``/chat/completions``."""
        return self._base_url

    @property
    def host(self) -> str | None:
        from ..clients import host_key

        return host_key(self.base_url)

    def validate(self) -> None:
        """Check the base URL before anything is sent."""
        url = self._base_url
        if url and not url.startswith(("http://", "https://")):
            raise ConfigError(f"{self.name}: base_url must start with http:// or https://, got {url!r}")

    def _key(self) -> Secret | None:
        if self._api_key is not None:
            return self._api_key
        key = env_key(self.key_env) if self.key_env else None
        if key is None and self.key_env:
            raise ProviderError(
                f"no API key: set {' or '.join(self.key_env)} or pass api_key=", kind="config")
        return key

    def request_body(self, prompt: Prompt) -> dict[str, Any]:
        """The JSON body of the streaming request."""
        p = prompt.merged(self.options)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": p.messages(),
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if p.temperature is not None:
            body["temperature"] = p.temperature
        if p.max_tokens is not None:
            body["max_tokens"] = p.max_tokens
        body.update(p.params)
        return body

    async def stream(self, prompt: Prompt, ctx: StreamContext) -> AsyncIterator[Event]:
        """Send the request and yield events as the SSE stream is parsed."""
        key = self._key()
        url = self.base_url.rstrip("/") + "/chat/completions"
        headers = {"Accept": "text/event-stream", **self.headers}
        if key is not None:
            headers["Authorization"] = f"Bearer {key.get()}"
        body = self.request_body(prompt)
        client = ctx.client(url)
        timeout = httpx.Timeout(ctx.connect_timeout, read=None, pool=None)
        parser = OpenAIChunkParser(ctx.name)
        ctx.request_started()
        try:
            async with client.stream("POST", url, json=body, headers=headers, timeout=timeout) as resp:
                ctx.note_response(resp.headers)
                if resp.status_code >= 400:
                    raise await error_from_response(resp, key_env=self.key_env, secret=key)
                ctype = resp.headers.get("content-type", "")
                if "text/event-stream" not in ctype:
                    async for ev in self._non_streaming(resp, ctype, parser, ctx):
                        yield ev
                    return
                yield Status(ctx.name, ctx.now(), "waiting")
                decoder = SSEDecoder()
                saw_done = False
                async for raw in resp.aiter_bytes():
                    t = ctx.activity(receive_time(resp))
                    for sse in decoder.decode(raw):
                        ctx.first_message(t)
                        if sse.data == "[DONE]":
                            saw_done = True
                            break
                        for ev in parser.feed(sse.data, t):
                            yield ev
                    if saw_done:
                        break
                else:
                    for sse in decoder.flush():
                        if sse.data == "[DONE]":
                            saw_done = True
                        else:
                            for ev in parser.feed(sse.data, ctx.now()):
                                yield ev
                if decoder.replaced_invalid_utf8:
                    yield Error(ctx.name, ctx.now(), "the stream contained invalid UTF-8 (replaced by U+FFFD)",
                                recoverable=True, fatal=False, error_type="parse")
                for ev in parser.finish(ctx.now(), saw_done=saw_done):
                    yield ev
        except httpx.HTTPError as exc:
            raise translate_transport_error(exc, url) from None

    async def _non_streaming(self, resp: httpx.Response, ctype: str, parser: OpenAIChunkParser,
                             ctx: StreamContext) -> AsyncIterator[Event]:
        """A server that ignored ``stream: true`` and sent one JSON body, or sent something else."""
        body = await resp.aread()
        t = ctx.activity()
        if "json" not in ctype:
            kind = ctype.split(";")[0] or "no content type"
            raise ProviderError(
                f"expected an event stream but the server sent {kind} (HTTP {resp.status_code})",
                kind="protocol")
        ctx.first_message(t)
        for ev in parser.feed(body.decode("utf-8", errors="replace"), t):
            yield ev
        for ev in parser.finish(t, saw_done=True):
            yield ev


class Simulated(OpenAICompatible):
    """A simulator profile (``sim/<profile>``), served by the loopback simulator over real SSE."""

    route = "sim"

    def __init__(self, profile: str, *, name: str | None = None, **options: Any) -> None:
        super().__init__(profile, "", name=name or f"sim/{profile}", **options)
        self.profile = profile

    @property
    def base_url(self) -> str:
        from ..sim import default_simulator

        return default_simulator().openai_base

    @property
    def host(self) -> str | None:
        return "sim"

    async def prepare(self) -> None:
        """Start the shared simulator (a subprocess) before the run's clock starts."""
        from ..sim import default_simulator

        await asyncio.get_running_loop().run_in_executor(None, default_simulator)

    def validate(self) -> None:
        from ..sim.profiles import PROFILES, UnknownModelError, parse_model

        try:
            parse_model(self.profile)
        except UnknownModelError:
            raise ConfigError(f"{self.name}: unknown simulator profile; choose one of "
                              f"{', '.join('sim/' + p for p in PROFILES)}") from None
        except ValueError as exc:
            raise ConfigError(f"{self.name}: bad simulator option: {exc}") from None
