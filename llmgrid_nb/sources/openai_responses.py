"""OpenAI's Responses API streamed over SSE (``/v1/responses``): the native path for OpenAI and Azure.

Chat completions never stream OpenAI's reasoning; the Responses API streams a reasoning summary,
so reasoning models show their thinking in the pane. ``ResponsesDecoder`` is the pure part
(server-sent event in, events out, no I/O); ``OpenAIResponses`` gives the shared HTTP shell
(``http_stream``) its request.
"""

from __future__ import annotations

import enum
import json
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from ..config import Secret
from ..errors import ProviderError
from ..events import Done, Event, Reasoning, Refusal, Token, ToolCall, Usage
from ..sse import ServerSentEvent
from .base import Prompt, SourceOptions, StreamContext
from .payloads import decode_payload
from .http_stream import DirectSource, StreamRequest, empty_answer, resolve_key, stream_events
from .openai_sse import count, server_figures

__all__ = ["AZURE_HOST_SUFFIXES", "OpenAIResponses", "ResponsesDecoder", "is_reasoning_model"]

#: Hosts that take Azure's ``api-key`` header instead of ``Authorization: Bearer``.
AZURE_HOST_SUFFIXES = (".openai.azure.com", ".cognitiveservices.azure.com", ".azure.com")
#: ``incomplete_details.reason`` in our finish-reason vocabulary (others pass through).
INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}
#: In-band error codes worth retrying before the first token (an absent code is retried too).
_RETRYABLE = frozenset({"server_error", "rate_limit_exceeded"})
#: Events that carry nothing we show. Named by the SSE ``event:`` line, they are not even parsed:
#: ``response.created`` echoes the whole request (instructions, tools) and the ``.done`` events
#: repeat whole texts already streamed as deltas.
_UNREAD = frozenset({
    "response.created", "response.in_progress", "response.queued",
    "response.content_part.added", "response.content_part.done",
    "response.output_text.done", "response.output_text.annotation.added",
    "response.refusal.done", "response.reasoning_summary_part.added", "response.reasoning_summary_part.done",
    "response.reasoning_summary_text.done", "response.reasoning_text.done",
})
_REASONING_PREFIXES = ("o1", "o3", "o4", "gpt-5", "codex")


def is_reasoning_model(model: str) -> bool:
    """Whether OpenAI's ``model`` reasons (o-series, gpt-5, codex), so a summary can be asked for.

    The gpt-5 chat variants (``gpt-5-chat-latest``) do not reason and refuse ``reasoning``.
    """
    name = model.rsplit("/", 1)[-1].lower()
    return name.startswith(_REASONING_PREFIXES) and "-chat" not in name


class _Default(enum.Enum):
    FOR_MODEL = "auto for reasoning models, else none"


class ResponsesDecoder:
    """Turn Responses API stream events into our events. No I/O.

    Dispatch is on the payload's ``type`` (else the SSE event name). Answer text, reasoning
    (summary or raw; a new part starts after a blank line) and refusal deltas become events as
    they arrive. Function-call arguments stream as fragments keyed by output item; each call is
    one ToolCall once its arguments or its item are done. ``response.completed`` and
    ``response.incomplete`` end the stream with usage and a finish reason; ``response.failed``
    and an ``error`` event raise ProviderError. Unknown event types (annotations, hosted-tool
    progress, newer ones) and extra fields (Azure's and OpenAI's ``obfuscation`` padding) are ignored.
    """

    __slots__ = ("source", "done", "finish_reason", "messages", "_answered", "_refused", "_called",
                 "_part", "_calls", "_by_index", "_emitted")

    def __init__(self, source: str) -> None:
        self.source = source
        #: ``response.completed``, ``response.incomplete`` or ``response.failed`` arrived.
        self.done = False
        self.finish_reason: str | None = None
        #: Events received (for describing a reply that carried nothing).
        self.messages = 0
        self._answered = False
        self._refused = False
        self._called = False
        self._part: tuple[object, object] | None = None  # the reasoning part being streamed
        self._calls: dict[str, list[Any]] = {}  # item key -> [call_id, name, argument fragments]
        self._by_index: dict[object, str] = {}  # output_index -> item key
        self._emitted: set[str] = set()

    def message(self, event: ServerSentEvent, t: float) -> list[Event]:
        """Parse one server-sent event received at ``t``."""
        self.messages += 1
        if event.event in _UNREAD:
            return []
        data = event.data
        if data == "[DONE]":  # not OpenAI's, but proxies that bridge chat completions send it
            self.done = True
            return []
        return decode_payload(self.source, data, t, lambda obj, t: self._handle(obj, event.event, t))

    def _handle(self, obj: dict[str, Any], event: str, t: float) -> list[Event]:
        handler = _HANDLERS.get(obj.get("type") or event)
        return [] if handler is None else handler(self, obj, t)

    def _text(self, obj: dict[str, Any], t: float) -> list[Event]:
        delta = obj.get("delta")
        if not delta or not isinstance(delta, str):
            return []
        self._answered = True
        return [Token(self.source, t, delta)]

    def _summary(self, obj: dict[str, Any], t: float) -> list[Event]:
        return self._reasoning(obj.get("delta"), (obj.get("item_id"), obj.get("summary_index")), t)

    def _reasoning_text(self, obj: dict[str, Any], t: float) -> list[Event]:
        return self._reasoning(obj.get("delta"), (obj.get("item_id"), obj.get("content_index")), t)

    def _reasoning(self, delta: object, part: tuple[object, object], t: float) -> list[Event]:
        if not delta or not isinstance(delta, str):
            return []
        if part != self._part:
            if self._part is not None:
                delta = "\n\n" + delta
            self._part = part
        self._answered = True
        return [Reasoning(self.source, t, delta)]

    def _refusal(self, obj: dict[str, Any], t: float) -> list[Event]:
        delta = obj.get("delta")
        if not delta or not isinstance(delta, str):
            return []
        self._refused = True
        return [Refusal(self.source, t, delta)]

    def _item_added(self, obj: dict[str, Any], t: float) -> list[Event]:
        item = obj["item"]
        if item.get("type") == "function_call":
            slot = self._slot(item.get("id"), obj.get("output_index"))
            slot[0] = str(item.get("call_id") or slot[0])
            slot[1] = str(item.get("name") or slot[1])
            if item.get("arguments"):
                slot[2].append(str(item["arguments"]))
        return []

    def _arguments_delta(self, obj: dict[str, Any], t: float) -> list[Event]:
        delta = obj.get("delta")
        if delta:
            self._slot(obj.get("item_id"), obj.get("output_index"))[2].append(str(delta))
        return []

    def _arguments_done(self, obj: dict[str, Any], t: float) -> list[Event]:
        return self._close_call(obj.get("item_id"), obj.get("output_index"), obj, t)

    def _item_done(self, obj: dict[str, Any], t: float) -> list[Event]:
        item = obj["item"]
        if item.get("type") != "function_call":
            return []
        return self._close_call(item.get("id"), obj.get("output_index"), item, t)

    def _slot(self, item_id: object, index: object) -> list[Any]:
        """The call being assembled for an output item, opened on first sight."""
        key = self._key(item_id, index)
        slot = self._calls.get(key)
        if slot is None:
            slot = self._calls[key] = ["", "", []]
            self._called = True
            if index is not None:
                self._by_index[index] = key
        return slot

    def _key(self, item_id: object, index: object) -> str:
        if isinstance(item_id, str) and item_id:
            return item_id
        return self._by_index.get(index) or f"#{index}"

    def _close_call(self, item_id: object, index: object, done: Mapping[str, Any], t: float) -> list[Event]:
        """One ToolCall when a call's arguments (or its item) are done: the done event's full
        ``arguments`` when it has them, else the fragments; never twice for one item."""
        key = self._key(item_id, index)
        if key in self._emitted:
            return []
        self._called = True
        self._emitted.add(key)
        call_id, name, fragments = self._calls.pop(key, None) or ("", "", [])
        arguments = done.get("arguments")
        if not isinstance(arguments, str):
            arguments = "".join(fragments)
        return [ToolCall(self.source, t, str(done.get("call_id") or call_id or key),
                         str(done.get("name") or name), arguments)]

    def _drain_calls(self, t: float) -> list[Event]:
        """Calls whose done events never came (a proxy that sends only deltas), in arrival order."""
        out: list[Event] = []
        for key, (call_id, name, fragments) in list(self._calls.items()):
            self._emitted.add(key)
            out.append(ToolCall(self.source, t, call_id or key, name, "".join(fragments)))
        self._calls.clear()
        return out

    def _completed(self, obj: dict[str, Any], t: float) -> list[Event]:
        return self._end(obj.get("response") or {}, None, t)

    def _incomplete(self, obj: dict[str, Any], t: float) -> list[Event]:
        response = obj.get("response") or {}
        reason = (response.get("incomplete_details") or {}).get("reason")
        return self._end(response, INCOMPLETE_REASONS.get(reason, str(reason or "incomplete")), t)

    def _end(self, response: Mapping[str, Any], finish: str | None, t: float) -> list[Event]:
        """A terminal response object: pending calls, usage, and the finish reason."""
        self.done = True
        out = self._drain_calls(t)
        if finish is None:
            finish = "tool_calls" if self._called else "refusal" if self._refused else "stop"
        self.finish_reason = finish
        usage = response.get("usage")
        if isinstance(usage, dict):
            out.append(self._usage(usage, t))
        return out

    def _usage(self, usage: Mapping[str, Any], t: float) -> Usage:
        server = server_figures(usage, None, None)
        cached = count((usage.get("input_tokens_details") or {}).get("cached_tokens"))
        if cached:
            server["cache_read_tokens"] = float(cached)
        details = usage.get("output_tokens_details") or {}
        return Usage(self.source, t, count(usage.get("input_tokens")), count(usage.get("output_tokens")),
                     count(details.get("reasoning_tokens")), server)

    def _failed(self, obj: dict[str, Any], t: float) -> list[Event]:
        self.done = True
        raise _failure((obj.get("response") or {}).get("error"), "the response failed")

    def _error(self, obj: dict[str, Any], t: float) -> list[Event]:
        # OpenAI documents the fields at the top level; the API has also sent them nested.
        nested = obj.get("error")
        err = nested if isinstance(nested, dict) else {"code": obj.get("code"), "message": obj.get("message")}
        raise _failure(err, "the stream reported an error")

    def finish(self, t: float) -> list[Event]:
        """End of stream: Done with the finish reason, or an error if it was not an answer."""
        if self.finish_reason is None:
            raise ProviderError("the stream ended before response.completed", retryable=True, kind="truncated")
        if not (self._answered or self._refused or self._called):
            empty = empty_answer(self.finish_reason, f"{self.messages} event(s)")
            if empty is not None:
                raise empty
        return [Done(self.source, t, self.finish_reason)]

    def unary(self, body: bytes, t: float) -> list[Event]:
        """A whole non-streamed ``response`` object: its output items, usage and status."""
        self.done = True
        self.messages += 1
        try:
            obj = json.loads(body.decode("utf-8", errors="replace"))
            if not isinstance(obj, dict):
                raise TypeError
            out: list[Event] = []
            for item in obj.get("output") or ():
                out.extend(self._output_item(item, t))
        except (TypeError, AttributeError, KeyError, IndexError, ValueError):
            raise ProviderError(f"the server sent JSON that is not a response object: {body[:80]!r}",
                                retryable=True, kind="protocol") from None
        status = obj.get("status")
        if status == "failed" or (status is None and obj.get("error")):
            raise _failure(obj.get("error"), "the response failed")
        if status == "completed":
            out.extend(self._end(obj, None, t))
        elif status == "incomplete":
            out.extend(self._incomplete({"response": obj}, t))
        return out + self.finish(t)

    def _output_item(self, item: Mapping[str, Any], t: float) -> list[Event]:
        kind = item.get("type")
        out: list[Event] = []
        if kind == "message":
            for part in item.get("content") or ():
                if part.get("type") == "output_text":
                    out.extend(self._text({"delta": part.get("text")}, t))
                elif part.get("type") == "refusal":
                    out.extend(self._refusal({"delta": part.get("refusal")}, t))
        elif kind == "reasoning":
            item_id = item.get("id")
            for i, part in enumerate(item.get("summary") or ()):
                out.extend(self._reasoning(part.get("text"), (item_id, i), t))
            for i, part in enumerate(item.get("content") or ()):
                out.extend(self._reasoning(part.get("text"), (item_id, f"c{i}"), t))
        elif kind == "function_call":
            key = str(item.get("id") or f"#{len(self._emitted)}")
            self._called = True
            self._emitted.add(key)
            arguments = item.get("arguments")
            out.append(ToolCall(self.source, t, str(item.get("call_id") or key), str(item.get("name") or ""),
                                arguments if isinstance(arguments, str) else json.dumps(arguments or {})))
        return out


def _failure(err: object, fallback: str) -> ProviderError:
    """An in-band error as OpenAI said it: "OpenAI <code>: <message>"."""
    err = err if isinstance(err, dict) else {}
    code = err.get("code") or None
    label = code or err.get("type")
    message = str(err.get("message") or fallback)
    return ProviderError(f"OpenAI {label}: {message}" if label else f"OpenAI: {message}",
                         retryable=code is None or code in _RETRYABLE, kind="stream_error")


_HANDLERS: dict[str, Callable[[ResponsesDecoder, dict[str, Any], float], list[Event]]] = {
    "response.output_text.delta": ResponsesDecoder._text,
    "response.reasoning_summary_text.delta": ResponsesDecoder._summary,
    "response.reasoning_text.delta": ResponsesDecoder._reasoning_text,
    "response.refusal.delta": ResponsesDecoder._refusal,
    "response.function_call_arguments.delta": ResponsesDecoder._arguments_delta,
    "response.function_call_arguments.done": ResponsesDecoder._arguments_done,
    "response.output_item.added": ResponsesDecoder._item_added,
    "response.output_item.done": ResponsesDecoder._item_done,
    "response.completed": ResponsesDecoder._completed,
    "response.incomplete": ResponsesDecoder._incomplete,
    "response.failed": ResponsesDecoder._failed,
    "error": ResponsesDecoder._error,
}


class OpenAIResponses(DirectSource):
    """A model behind OpenAI's (or Azure's) ``/responses`` endpoint, streamed directly.

    Key: ``api_key`` (str or Secret), else OPENAI_API_KEY (AZURE_OPENAI_API_KEY or AZURE_API_KEY
    on Azure hosts, sent as ``api-key``). For reasoning models a reasoning summary is requested
    by default (``reasoning_summary="auto"``; None asks for none), so the pane shows the thinking.
    """

    route = "direct-openai-responses"
    #: The Responses API answers anew instead of continuing an assistant prefill: no resume.
    resumable = False

    def __init__(
        self,
        model: str,
        *,
        base_url: str = "https://api.openai.com/v1",
        api_key: str | Secret | None = None,
        name: str | None = None,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        reasoning_effort: str | None = None,
        reasoning_summary: str | None | _Default = _Default.FOR_MODEL,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.model = model
        self.base_url = base_url
        self._api_key = Secret(api_key) if isinstance(api_key, str) else api_key
        self.name = name or f"openai/responses/{model}"
        self.options = SourceOptions(system, temperature, max_tokens, dict(extra_body or {}))
        self.reasoning_effort = reasoning_effort
        self.reasoning_summary = (("auto" if is_reasoning_model(model) else None)
                                  if reasoning_summary is _Default.FOR_MODEL else reasoning_summary)
        self.headers = dict(headers or {})
        self._key_env: tuple[str, ...] | None = None

    @property
    def azure(self) -> bool:
        """Whether the base URL is an Azure host (``api-key`` auth, Azure's key variables)."""
        return (urlsplit(self.base_url).hostname or "").endswith(AZURE_HOST_SUFFIXES)

    @property
    def key_env(self) -> tuple[str, ...]:
        """The variables the key is read from when ``api_key`` is not given (settable, as
        ``--api-key-env`` does)."""
        if self._key_env is not None:
            return self._key_env
        return ("AZURE_OPENAI_API_KEY", "AZURE_API_KEY") if self.azure else ("OPENAI_API_KEY",)

    @key_env.setter
    def key_env(self, names: tuple[str, ...]) -> None:
        self._key_env = tuple(names)

    @property
    def url(self) -> str:
        """``{base_url}/responses``, keeping a query string (Azure's ``?api-version=``)."""
        parts = urlsplit(self.base_url)
        return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/responses"))

    def request_body(self, prompt: Prompt) -> dict[str, Any]:
        """The JSON body of the streaming request: the system text as ``instructions``."""
        p = prompt.merged(self.options)
        messages = p.messages()
        body: dict[str, Any] = {
            "model": self.model,
            "input": [m for m in messages if m["role"] != "system"],
            "stream": True,
        }
        system = [m["content"] for m in messages if m["role"] == "system"]
        if system:
            body["instructions"] = "\n\n".join(system)
        if p.max_tokens is not None:
            body["max_output_tokens"] = p.max_tokens
        if p.temperature is not None:
            body["temperature"] = p.temperature
        reasoning = {key: value for key, value in (("effort", self.reasoning_effort),
                                                   ("summary", self.reasoning_summary)) if value}
        if reasoning:
            body["reasoning"] = reasoning
        body.update(p.params)
        return body

    def request(self, prompt: Prompt) -> StreamRequest:
        """The streaming request for ``prompt`` (raises ProviderError when the key is missing)."""
        key_env = () if self._api_key is not None else self.key_env
        key = resolve_key(self._api_key, key_env)
        assert key is not None
        auth = {"api-key": key.get()} if self.azure else {"Authorization": f"Bearer {key.get()}"}
        headers = {"Accept": "text/event-stream", **self.headers, **auth}
        return StreamRequest(self.url, self.request_body(prompt), headers, key_env, key, provider="OpenAI")

    def stream(self, prompt: Prompt, ctx: StreamContext) -> AsyncIterator[Event]:
        """Send the request and yield events as the Responses stream is parsed."""
        return stream_events(self.request(prompt), ResponsesDecoder(ctx.name), ctx)
