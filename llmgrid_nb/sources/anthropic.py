"""Anthropic's Messages API streamed over SSE (``/v1/messages``): the native Claude path.

``AnthropicDecoder`` is the pure part (server-sent event in, events out); ``Anthropic`` gives the
shared HTTP shell (``http_stream``) its request. Thinking streams as reasoning, tool input as
JSON fragments assembled per content block, and an ``event: error`` says what Anthropic said.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ..config import Secret
from ..errors import ConfigError, ProviderError
from ..events import Done, Event, Reasoning, Token, ToolCall, Usage
from ..sse import ServerSentEvent
from .base import Prompt, SourceOptions, StreamContext
from .payloads import decode_payload
from .http_stream import DirectSource, StreamRequest, empty_answer, resolve_key, stream_events
from .openai_sse import count

__all__ = ["ANTHROPIC_VERSION", "Anthropic", "AnthropicDecoder", "DEFAULT_MAX_TOKENS"]

ANTHROPIC_VERSION = "2023-06-01"
#: The Messages API requires ``max_tokens``; this is used when neither the source nor the run sets
#: one (thinking budgets are added on top, since the budget counts against it).
DEFAULT_MAX_TOKENS = 4096
#: Anthropic's stop reasons in our finish-reason vocabulary (others pass through as they are).
STOP_REASONS = {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
                "refusal": "refusal", "model_context_window_exceeded": "length"}
#: In-band error types worth retrying before the first token.
_RETRYABLE = frozenset({"overloaded_error", "api_error", "rate_limit_error", "timeout_error"})


class AnthropicDecoder:
    """Turn Messages API stream events into our events. No I/O.

    Content blocks are tracked by ``index``: ``text_delta`` is answer text, ``thinking_delta``
    reasoning, ``signature_delta`` is ignored, ``input_json_delta`` fragments become one ToolCall
    when their block stops (or the stream ends: a ``max_tokens`` cut mid-JSON keeps the partial
    arguments). Usage: the prompt side (input plus cache tokens) from ``message_start``, output
    tokens cumulative from ``message_delta``. A stream is complete once ``message_delta``
    carried a stop reason; ``message_stop`` ends the reading.
    """

    __slots__ = ("source", "done", "finish_reason", "_blocks", "_answered", "_strip_lead", "_input",
                 "_cache", "_output", "messages")

    def __init__(self, source: str, *, strip_leading_space: bool = False) -> None:
        self.source = source
        #: ``message_stop`` arrived.
        self.done = False
        self.finish_reason: str | None = None
        self._blocks: dict[int, list[Any]] = {}  # index -> [id, name, fragments] of tool_use blocks
        self._answered = False
        #: Resuming a prefill that ended in white space (the API refuses it, so it was stripped):
        #: the continuation's leading white space is already in the text.
        self._strip_lead = strip_leading_space
        self._input: int | None = None
        self._cache: dict[str, float] = {}
        self._output: int | None = None
        self.messages = 0

    def message(self, event: ServerSentEvent, t: float) -> list[Event]:
        """Parse one server-sent event received at ``t``."""
        self.messages += 1
        return decode_payload(self.source, event.data, t,
                              lambda obj, t: self._dispatch(str(obj.get("type") or event.event), obj, t))

    def _dispatch(self, kind: str, obj: dict[str, Any], t: float) -> list[Event]:
        if kind == "content_block_delta":
            return self._delta(obj["index"], obj["delta"], t)
        if kind == "content_block_start":
            block = obj["content_block"]
            if block.get("type") in ("tool_use", "server_tool_use"):
                self._blocks[obj["index"]] = [str(block.get("id") or ""), str(block.get("name") or ""), []]
            elif block.get("type") == "text" and block.get("text"):
                return self._text(block["text"], t)
            return []
        if kind == "content_block_stop":
            return self._close_block(obj.get("index"), t)
        if kind == "message_delta":
            stop = (obj.get("delta") or {}).get("stop_reason")
            if stop:
                self.finish_reason = STOP_REASONS.get(stop, str(stop))
            return self._usage(obj.get("usage"), t)
        if kind == "message_start":
            return self._usage((obj.get("message") or {}).get("usage"), t)
        if kind == "message_stop":
            self.done = True
            return []
        if kind == "error":
            raise self._error(obj)
        return []  # ping, and event types newer than this decoder

    def _delta(self, index: int, delta: Mapping[str, Any], t: float) -> list[Event]:
        dtype = delta.get("type")
        if dtype == "text_delta":
            return self._text(delta.get("text"), t)
        if dtype == "thinking_delta":
            thinking = delta.get("thinking")
            if thinking and isinstance(thinking, str):
                self._answered = True
                return [Reasoning(self.source, t, thinking)]
        elif dtype == "input_json_delta":
            block = self._blocks.get(index)
            if block is not None and delta.get("partial_json"):
                block[2].append(str(delta["partial_json"]))
        return []  # signature_delta, citations_delta

    def _text(self, text: object, t: float) -> list[Event]:
        if not text or not isinstance(text, str):
            return []
        if self._strip_lead:
            self._strip_lead = False
            text = text.lstrip()
            if not text:
                return []
        self._answered = True
        return [Token(self.source, t, text)]

    def _close_block(self, index: object, t: float) -> list[Event]:
        block = self._blocks.pop(index, None) if isinstance(index, int) else None
        if block is None:
            return []
        self._answered = True
        return [ToolCall(self.source, t, block[0], block[1], "".join(block[2]) or "{}")]

    def _usage(self, usage: Any, t: float) -> list[Event]:
        if not isinstance(usage, dict):
            return []
        if count(usage.get("input_tokens")) is not None:
            self._input = usage["input_tokens"]
        for key in ("cache_creation_input_tokens", "cache_read_input_tokens"):
            if count(usage.get(key)) is not None:
                self._cache[key.replace("_input_tokens", "_tokens")] = float(usage[key])
        if count(usage.get("output_tokens")) is not None:
            self._output = usage["output_tokens"]
        prompt = None if self._input is None else self._input + int(sum(self._cache.values()))
        return [Usage(self.source, t, prompt, self._output, None, dict(self._cache))]

    def _error(self, obj: Mapping[str, Any]) -> ProviderError:
        err = obj.get("error") if isinstance(obj.get("error"), dict) else obj
        etype = str(err.get("type") or "error")
        message = str(err.get("message") or "the stream reported an error")
        return ProviderError(f"Anthropic {etype}: {message}", retryable=etype in _RETRYABLE, kind="stream_error")

    def finish(self, t: float) -> list[Event]:
        """End of stream: blocks left open (a cut mid-tool-JSON), then Done, or an error."""
        out: list[Event] = []
        for index in sorted(self._blocks):
            out.extend(self._close_block(index, t))
        if self.finish_reason is None:
            raise ProviderError("the stream ended before Anthropic's stop reason (no message_delta, no "
                                "message_stop)", retryable=True, kind="truncated")
        if not self._answered:
            empty = empty_answer(self.finish_reason, f"{self.messages} event(s)")
            if empty is not None:
                raise empty
        out.append(Done(self.source, t, self.finish_reason))
        return out

    def unary(self, body: bytes, t: float) -> list[Event]:
        """A whole non-streamed ``message`` object: its content blocks, usage and stop reason."""
        self.done = True
        obj = json.loads(body.decode("utf-8", errors="replace"))
        if obj.get("type") == "error":
            raise self._error(obj)
        out: list[Event] = self._usage(obj.get("usage"), t)
        for index, block in enumerate(obj.get("content") or ()):
            btype = block.get("type")
            if btype == "text":
                out.extend(self._text(block.get("text"), t))
            elif btype == "thinking" and block.get("thinking"):
                self._answered = True
                out.append(Reasoning(self.source, t, block["thinking"]))
            elif btype == "tool_use":
                self._answered = True
                out.append(ToolCall(self.source, t, str(block.get("id") or ""), str(block.get("name") or ""),
                                    json.dumps(block.get("input") or {})))
        stop = obj.get("stop_reason")
        self.finish_reason = STOP_REASONS.get(stop, str(stop)) if stop else "stop"
        return out + self.finish(t)


class Anthropic(DirectSource):
    """A Claude model over Anthropic's Messages API, streamed directly (key: ANTHROPIC_API_KEY).

    ``thinking_budget`` turns extended thinking on with that many budget tokens (shown as the
    pane's reasoning); ``max_tokens`` defaults to DEFAULT_MAX_TOKENS (plus the budget).
    """

    route = "direct-anthropic"
    key_env = ("ANTHROPIC_API_KEY",)

    def __init__(
        self,
        model: str,
        *,
        base_url: str = "https://api.anthropic.com",
        api_key: str | Secret | None = None,
        name: str | None = None,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        thinking_budget: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        self._api_key = Secret(api_key) if isinstance(api_key, str) else api_key
        self.name = name or f"anthropic/{model}"
        self.options = SourceOptions(system, temperature, max_tokens, dict(extra_body or {}))
        self.thinking_budget = thinking_budget
        self.headers = dict(headers or {})

    def validate(self) -> None:
        """Check the base URL and the thinking budget before anything is sent."""
        super().validate()
        if self.thinking_budget is not None and self.thinking_budget < 1024:
            raise ConfigError(f"{self.name}: thinking_budget must be at least 1024 tokens (Anthropic's minimum)")

    def request_body(self, prompt: Prompt) -> dict[str, Any]:
        """The JSON body of the streaming request: system apart, a resume prefill as the last turn."""
        p = prompt.merged(self.options)
        messages: list[dict[str, Any]] = []
        system: list[str] = []
        for msg in p.messages():
            if msg["role"] == "system":
                system.append(msg["content"])
            else:
                messages.append({"role": msg["role"], "content": msg["content"]})
        if messages and messages[-1]["role"] == "assistant":
            # The API refuses a final assistant turn that ends in white space.
            messages[-1]["content"] = messages[-1]["content"].rstrip()
        budget = self.thinking_budget
        max_tokens = p.max_tokens if p.max_tokens is not None else DEFAULT_MAX_TOKENS + (budget or 0)
        body: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens, "messages": messages, "stream": True}
        if system:
            body["system"] = "\n\n".join(system)
        if p.temperature is not None:
            body["temperature"] = p.temperature
        if budget is not None:
            body["thinking"] = {"type": "enabled", "budget_tokens": budget}
        body.update(p.params)
        return body

    def request(self, prompt: Prompt) -> StreamRequest:
        """The streaming request for ``prompt`` (raises ProviderError when the key is missing)."""
        key = resolve_key(self._api_key, self.key_env)
        assert key is not None
        headers = {"Accept": "text/event-stream", "anthropic-version": ANTHROPIC_VERSION,
                   "x-api-key": key.get(), **self.headers}
        return StreamRequest(self.base_url + "/v1/messages", self.request_body(prompt), headers,
                             self.key_env, key, provider="Anthropic")

    def stream(self, prompt: Prompt, ctx: StreamContext) -> AsyncIterator[Event]:
        """Send the request and yield events as the Messages stream is parsed."""
        decoder = AnthropicDecoder(ctx.name, strip_leading_space=prompt.assistant_prefix[-1:].isspace())
        return stream_events(self.request(prompt), decoder, ctx)
