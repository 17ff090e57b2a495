"""OpenAI-compatible chat completions streamed over SSE with httpx: the fast direct path.

Serves OpenAI itself, Azure, Groq, DeepSeek, OpenRouter, vLLM, llama.cpp, LM Studio, a LiteLLM
proxy and the simulator. ``OpenAIChunkParser`` is the pure part (server-sent event in, events
out) so it is tested without a network; ``OpenAICompatible`` gives the shared HTTP shell
(``http_stream``) its request.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from ..config import Secret
from ..errors import ProviderError
from ..events import Done, Error, Event, Reasoning, Refusal, Token, ToolCall, Usage
from ..sse import ServerSentEvent
from .base import Prompt, SourceOptions, StreamContext, choice_name
from .http_errors import describe_error_object
from .payloads import decode_payload
from .http_stream import DirectSource, StreamRequest, empty_answer, resolve_key, stream_events

__all__ = ["OpenAIChunkParser", "OpenAICompatible", "count", "server_figures"]


def count(value: object) -> int | None:
    """A token count from a provider's JSON: a non-negative int, or None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


class OpenAIChunkParser:
    """Turn the payloads of a chat.completion.chunk stream into events. No I/O.

    A stream of several choices (``n > 1``) interleaves them: with ``choices=n`` each choice
    ``i > 0`` gets its own pane (``choice_name(source, i)``) and its own events; choices beyond
    what was asked for are dropped with one warning, never mixed into another's text. Tool calls
    arrive as fragments keyed by ``index``; they are assembled and emitted as one ToolCall when
    the choice finishes (or the stream ends). ``delta.refusal`` is a Refusal, and the finish
    reason then reads ``refusal``. Provider timings and cost (llama.cpp's ``timings``, Groq's
    ``x_groq``, OpenRouter's ``usage.cost``) go into Usage.server. An ``{"error": ...}`` payload
    raises ProviderError: a stream that carried an error is never a complete answer, and neither
    is one that ends with no content and no finish reason (a busy llama.cpp server's reply).
    """

    __slots__ = ("source", "finish_reason", "_tools", "done", "messages", "got_content",
                 "_refused", "_other_choices", "_had_tools", "_failure", "_choices")

    def __init__(self, source: str, *, choices: int = 1) -> None:
        self.source = source
        #: Decoders of the choices after the first, each streaming to its own pane.
        self._choices = {i: OpenAIChunkParser(choice_name(source, i)) for i in range(1, choices)}
        self.finish_reason: str | None = None
        self._tools: dict[int, list[Any]] = {}
        #: ``data: [DONE]`` arrived.
        self.done = False
        #: Payloads parsed so far (for describing a reply that carried nothing).
        self.messages = 0
        #: Any text or reasoning arrived (else an ending with no finish reason is no answer).
        self.got_content = False
        self._refused = False
        self._other_choices: set[int] = set()
        self._had_tools = False
        self._failure: ProviderError | None = None

    def message(self, event: ServerSentEvent, t: float) -> list[Event]:
        """Parse one server-sent event received at ``t``."""
        data = event.data
        if data == "[DONE]":
            self.done = True
        if self._failure is not None:
            raise self._failure
        if self.done:
            return []
        self.messages += 1
        return decode_payload(self.source, data, t, self._parse)

    def feed(self, data: str, t: float) -> list[Event]:
        """Parse one ``data`` payload received at ``t`` (as ``message`` does)."""
        return self.message(ServerSentEvent("message", data), t)

    def unary(self, body: bytes, t: float) -> list[Event]:
        """A whole non-streamed ``chat.completion`` body: its events, then the end."""
        events = self.feed(body.decode("utf-8", errors="replace"), t)
        self.done = True
        return events + self.finish(t)

    def _parse(self, obj: dict[str, Any], t: float) -> list[Event]:
        if obj.get("error") is not None:
            message = describe_error_object(obj) or "the provider sent an error"
            failure = ProviderError(f"the provider reported an error mid-stream: {message}",
                                    retryable=True, kind="stream_error")
            if not obj.get("usage"):
                raise failure
            # OpenRouter reports the usage (and cost) of the failed generation in the error chunk:
            # keep it, and fail at the next message or the end.
            self._failure = failure
            return [self._usage(obj["usage"], t)]
        out: list[Event] = []
        for choice in obj.get("choices") or ():
            index = choice.get("index") or 0
            pane = self if index == 0 else self._choices.get(index)
            if pane is None:
                if index not in self._other_choices:
                    self._other_choices.add(index)
                    if len(self._other_choices) == 1:
                        out.append(Error(self.source, t, "the response has more choices than were asked for (n): "
                                         "the extra ones are dropped", recoverable=False, fatal=False,
                                         error_type="choices"))
                continue
            delta = choice.get("delta") or choice.get("message") or {}
            for key, value in delta.items():  # one pass: most deltas hold one or two keys
                if not value:
                    continue
                if key == "content":
                    if isinstance(value, str):
                        pane.got_content = True
                        out.append(Token(pane.source, t, value))
                elif key == "reasoning_content" or key == "reasoning":
                    if isinstance(value, str):
                        pane.got_content = True
                        out.append(Reasoning(pane.source, t, value))
                elif key == "refusal":
                    if isinstance(value, str):
                        pane._refused = True
                        out.append(Refusal(pane.source, t, value))
                elif key == "tool_calls":
                    pane.add_tool_fragments(value)
            finish = choice.get("finish_reason")
            if finish:
                pane.finish_reason = "refusal" if pane._refused and finish == "stop" else str(finish)
                out.extend(pane.drain_tools(t))
        usage = obj.get("usage")
        if usage or "timings" in obj or "x_groq" in obj:
            groq, timings = obj.get("x_groq"), obj.get("timings")
            ev = self._usage(usage or (groq or {}).get("usage") or {}, t, groq, timings)
            if self._choices:  # completion_tokens counts every choice: no pane has its own count
                out.append(Usage(self.source, t, ev.prompt_tokens, None, None, ev.server))
                out.extend(Usage(c.source, t, ev.prompt_tokens) for c in self._choices.values())
            else:
                out.append(ev)
        return out

    def finish(self, t: float) -> list[Event]:
        """End of stream: pending tool calls and Done, or an error if it was not an answer."""
        if self._failure is not None:
            raise self._failure
        out = self.drain_tools(t)
        if self.finish_reason is None:
            if not self.done:
                raise ProviderError(
                    "the stream ended before the response was complete (no finish_reason, no [DONE])",
                    retryable=True, kind="truncated")
            if self.got_content or self._refused or out or self._had_tools:
                # llama-cpp-python's server ends a stream a newer request interrupted this way.
                raise ProviderError(
                    "the server ended the answer with [DONE] but no finish_reason: it was cut short",
                    retryable=True, kind="truncated")
        if not (self.got_content or self._refused or out or self._had_tools):
            empty = empty_answer(self.finish_reason, f"{self.messages} message(s)"
                                 + (" then [DONE]" if self.done else ""))
            if empty is not None:
                raise empty
        out.append(Done(self.source, t, self.finish_reason))
        for other in self._choices.values():
            other.done = self.done
            out.extend(other.finish(t))
        return out

    def add_tool_fragments(self, fragments: Sequence[Mapping[str, Any]]) -> None:
        """Add streamed tool-call fragments (id, name, argument pieces) keyed by their index."""
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
        """The assembled tool calls so far, in index order, as ToolCall events."""
        calls = [ToolCall(self.source, t, cid, name, "".join(args))
                 for _, (cid, name, args) in sorted(self._tools.items())]
        self._had_tools = self._had_tools or bool(calls)
        self._tools.clear()
        return calls

    def _usage(self, usage: Mapping[str, Any], t: float, groq: Any = None, timings: Any = None) -> Usage:
        details = usage.get("completion_tokens_details") or {}
        return Usage(self.source, t, count(usage.get("prompt_tokens")), count(usage.get("completion_tokens")),
                     count(details.get("reasoning_tokens")), server_figures(usage, groq, timings))


def server_figures(usage: Mapping[str, Any], groq: Any, timings: Any) -> dict[str, float]:
    """The provider's own timings and cost from a chunk: llama.cpp's ``timings`` under their own
    names, Groq's ``x_groq.usage`` times (seconds), OpenRouter's ``usage.cost`` (USD) and the
    cached prompt tokens (``prompt_tokens_details.cached_tokens``)."""
    out: dict[str, float] = {}
    if isinstance(timings, dict):
        out.update((k, float(v)) for k, v in timings.items() if _number(v))
    groq_usage = groq.get("usage") if isinstance(groq, dict) else None
    if isinstance(groq_usage, dict):
        for key in ("queue_time", "prompt_time", "completion_time", "total_time"):
            if _number(groq_usage.get(key)):
                out[f"{key}_s"] = float(groq_usage[key])
    if _number(usage.get("cost")):
        out["cost_usd"] = float(usage["cost"])
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if count(cached):  # billed at the cache-read rate
        out["cache_read_tokens"] = float(cached)
    return out


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class OpenAICompatible(DirectSource):
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

    @property
    def base_url(self) -> str:
        """The API base, ending before ``/chat/completions``."""
        return self._base_url

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

    def choice_count(self, prompt: Prompt) -> int:
        """How many choices the request asks for (``n``): each beyond the first gets its own pane."""
        n = prompt.merged(self.options).params.get("n")
        return n if isinstance(n, int) and not isinstance(n, bool) and n > 1 else 1

    def stream(self, prompt: Prompt, ctx: StreamContext) -> AsyncIterator[Event]:
        """Send the request and yield events as the SSE stream is parsed."""
        parser = OpenAIChunkParser(ctx.name, choices=self.choice_count(prompt))
        return stream_events(self.request(prompt), parser, ctx)

    def request(self, prompt: Prompt) -> StreamRequest:
        """The streaming request for ``prompt`` (raises ProviderError when a key is missing)."""
        key = resolve_key(self._api_key, self.key_env)
        headers = {"Accept": "text/event-stream", **self.headers}
        if key is not None:
            headers["Authorization"] = f"Bearer {key.get()}"
        return StreamRequest(self.base_url.rstrip("/") + "/chat/completions", self.request_body(prompt),
                             headers, self.key_env, key)
