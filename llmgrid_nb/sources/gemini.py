"""Google's Gemini API (``streamGenerateContent?alt=sse``) over the shared HTTP shell.

``GeminiDecoder`` is the pure part (server-sent event in, events out) so it is tested without a
network; ``Gemini`` gives ``http_stream`` its request: the key goes in the ``x-goog-api-key``
header, never in the URL, so it cannot leak through logged URLs or error messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from ..config import Secret
from ..errors import ConfigError, ProviderError
from ..events import Done, Error, Event, Reasoning, Token, ToolCall, Usage
from ..sse import ServerSentEvent
from .base import Prompt, SourceOptions, StreamContext
from .http_errors import describe_error_object, google_retry_delay
from .payloads import decode_payload
from .http_stream import DirectSource, StreamRequest, empty_answer, resolve_key, stream_events
from .openai_sse import count

__all__ = ["Gemini", "GeminiDecoder", "KEY_ENV", "finish_reason", "json_path_segments", "stream_error"]

#: Where the key is read from when none is given, in order (Google's SDKs read both).
KEY_ENV = ("GEMINI_API_KEY", "GOOGLE_API_KEY")

_FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_RECITATION": "content_filter",
}
_RETRYABLE_STATUSES = frozenset({"UNAVAILABLE", "RESOURCE_EXHAUSTED", "INTERNAL", "DEADLINE_EXCEEDED"})
_RETRYABLE_CODES = frozenset({429, 500, 502, 503, 504})
# One step of an RFC 9535 normalized path: .name, [index], ['name'] or ["name"].
_PATH_STEP = re.compile(r"""\.([^.\[\]'"]+)|\[(\d+)\]|\['((?:[^'\\]|\\.)*)'\]|\["((?:[^"\\]|\\.)*)"\]""")
# An argument array index beyond this is a corrupt path, not an argument (it would allocate).
_MAX_INDEX = 100_000
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|.)")
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


def finish_reason(reason: str, had_tool_calls: bool) -> str:
    """Gemini's ``finishReason`` in our vocabulary (``stop``, ``length``, ``content_filter``,
    ``tool_calls``); any other reason is kept, lowercased."""
    mapped = _FINISH_REASONS.get(reason) or reason.lower()
    return "tool_calls" if mapped == "stop" and had_tool_calls else mapped


@lru_cache(maxsize=512)
def json_path_segments(path: str) -> tuple[str | int, ...] | None:
    """The keys and indexes of a streamed argument's JSON path (``$.a.b[0]['c d']``), or None.

    Gemini's ``partialArgs[].jsonPath`` is an RFC 9535 path; the same path repeats for every
    fragment of a string, hence the cache.
    """
    if path.startswith("$"):
        pos = 1
    else:  # a bare "a.b", as some proxies send it
        path, pos = "." + path, 0
    out: list[str | int] = []
    end = len(path)
    while pos < end:
        m = _PATH_STEP.match(path, pos)
        if m is None:
            return None
        name, index, single, double = m.groups()
        if index is not None:
            if int(index) > _MAX_INDEX:
                return None
            out.append(int(index))
        elif name is not None:
            out.append(name)
        else:
            quoted = single if single is not None else double
            out.append(_ESCAPE.sub(_unescape, quoted) if "\\" in quoted else quoted)
        pos = m.end()
    return tuple(out) if out else None


def _lookup(node: dict[str, Any] | list[Any], key: str | int) -> Any:
    if isinstance(node, list):
        return node[key] if isinstance(key, int) and key < len(node) else None
    return node.get(key if isinstance(key, str) else str(key))


def _assign(node: dict[str, Any] | list[Any], key: str | int, value: Any) -> None:
    if isinstance(node, dict):
        node[key if isinstance(key, str) else str(key)] = value
    elif isinstance(key, int):  # a list is only ever reached with an index (see _put)
        if key >= len(node):
            node.extend([None] * (key + 1 - len(node)))
        node[key] = value


def _unescape(m: re.Match[str]) -> str:
    code = m[1]
    return chr(int(code[1:], 16)) if len(code) == 5 else _ESCAPES.get(code, code)


def _put(root: dict[str, Any], segments: tuple[str | int, ...], value: Any) -> None:
    """Set ``value`` at ``segments`` in ``root``, creating the objects and arrays on the way."""
    node: dict[str, Any] | list[Any] = root
    last = len(segments) - 1
    for i, key in enumerate(segments):
        if i == last:
            _assign(node, key, value)
            return
        child = _lookup(node, key)
        want_list = isinstance(segments[i + 1], int)
        if not isinstance(child, list if want_list else dict):
            child = [] if want_list else {}
            _assign(node, key, child)
        node = child


class _StreamedCall:
    """A function call whose arguments arrive as ``partialArgs`` fragments (Vertex / Gemini 3
    ``streamFunctionCallArguments``): values by JSON path, strings in pieces."""

    __slots__ = ("name", "id", "args", "strings")

    def __init__(self) -> None:
        self.name = ""
        self.id = ""
        self.args: dict[str, Any] = {}
        #: Pieces of each string argument by path, joined once when the call completes.
        self.strings: dict[str, tuple[tuple[str | int, ...], list[str]]] = {}

    def apply(self, fragment: Mapping[str, Any]) -> None:
        """Add one ``PartialArg``: a string piece to append, or a number, bool or null to set."""
        path = fragment.get("jsonPath")
        if not isinstance(path, str):
            return
        piece = fragment.get("stringValue")
        if isinstance(piece, str):
            slot = self.strings.get(path)
            if slot is None:
                segments = json_path_segments(path)
                if segments is None:
                    return
                slot = self.strings[path] = (segments, [])
                _put(self.args, segments, "")  # hold the key's place: arguments keep their order
            slot[1].append(piece)
            return
        if "numberValue" in fragment:
            value = fragment["numberValue"]
        elif "boolValue" in fragment:
            value = fragment["boolValue"]
        elif "nullValue" in fragment:
            value = None
        else:
            return
        segments = json_path_segments(path)
        if segments is not None:
            self.strings.pop(path, None)
            _put(self.args, segments, value)

    def arguments(self) -> dict[str, Any]:
        """The assembled arguments object."""
        for segments, pieces in self.strings.values():
            _put(self.args, segments, "".join(pieces))
        self.strings.clear()
        return self.args


class GeminiDecoder:
    """Turn the ``data:`` payloads of a ``streamGenerateContent`` stream into events. No I/O.

    Only candidate 0 is the answer. Parts: ``text`` is a Token, or Reasoning when ``thought``
    is true; a ``functionCall`` is a ToolCall as soon as it is complete, whether it came whole
    (``args``) or streamed (a part with ``name`` and ``willContinue``, then ``partialArgs``
    fragments, ending with a part without ``willContinue``, an empty ``functionCall``, the
    finish reason or the end of the stream). The last ``usageMetadata`` that carries counts is
    the usage (earlier chunks carry running or empty figures). Gemini has no end-of-stream
    marker, so ``done`` stays false and a stream without ``finishReason`` is truncated. A
    blocked prompt and an in-band ``{"error": ...}`` raise ProviderError.
    """

    __slots__ = ("source", "done", "finish_reason", "messages", "got_content", "_usage", "_open",
                 "_calls", "_seen_ids", "_other_candidates")

    def __init__(self, source: str) -> None:
        self.source = source
        #: Gemini sends no end marker: reading goes on until the server closes the stream.
        self.done = False
        self.finish_reason: str | None = None
        #: Payloads parsed so far (for describing a reply that carried nothing).
        self.messages = 0
        #: Any text or thought arrived.
        self.got_content = False
        self._usage: Mapping[str, Any] | None = None
        self._open: _StreamedCall | None = None
        self._calls = 0
        self._seen_ids: set[str] = set()
        self._other_candidates = False

    def message(self, event: ServerSentEvent, t: float) -> list[Event]:
        """Parse one server-sent event received at ``t``."""
        return self.feed(event.data, t) if event.data else []

    def unary(self, body: bytes, t: float) -> list[Event]:
        """A whole non-streamed answer (one response object or a JSON array of them), then the end."""
        text = body.decode("utf-8", errors="replace")
        out: list[Event] = []
        try:
            obj = json.loads(text)
        except ValueError:
            obj = None
        items = obj if isinstance(obj, list) else [obj]
        for item in items:  # one response object, or a JSON array of them
            out.extend(self.feed(json.dumps(item) if item is not None else text, t))
        return out + self.finish(t)

    def feed(self, data: str, t: float) -> list[Event]:
        """Parse one ``data`` payload received at ``t``."""
        self.messages += 1
        return decode_payload(self.source, data, t, self._parse)

    def _parse(self, obj: dict[str, Any], t: float) -> list[Event]:
        if obj.get("error") is not None:
            raise stream_error(obj)
        out: list[Event] = []
        usage = obj.get("usageMetadata")
        # Vertex sends ``{"trafficType": ...}`` alone until the last chunk: that is no figure.
        if usage and ("promptTokenCount" in usage or "candidatesTokenCount" in usage
                      or "thoughtsTokenCount" in usage):
            self._usage = usage
        candidates = obj.get("candidates")
        if not candidates:
            feedback = obj.get("promptFeedback")
            reason = feedback.get("blockReason") if feedback else None
            if reason:
                detail = feedback.get("blockReasonMessage")
                raise ProviderError(f"Gemini blocked the prompt: {reason}" + (f" ({detail})" if detail else ""),
                                    kind="blocked")
            return out
        for candidate in candidates:
            if candidate.get("index", 0):
                if not self._other_candidates:
                    self._other_candidates = True
                    out.append(Error(self.source, t, "the response has several candidates (candidateCount > 1):"
                                     " the pane shows candidate 0, the others are dropped",
                                     recoverable=False, fatal=False, error_type="choices"))
                continue
            content = candidate.get("content")
            for part in (content.get("parts") or ()) if content else ():
                text = part.get("text")
                if text and isinstance(text, str):
                    self.got_content = True
                    out.append(Reasoning(self.source, t, text) if part.get("thought") is True
                               else Token(self.source, t, text))
                    continue
                call = part.get("functionCall")
                if call is not None:
                    self._function_call(call, out, t)
            reason = candidate.get("finishReason")
            if reason:
                if self._open is not None:
                    self._close(out, t)
                self.finish_reason = finish_reason(str(reason), self._calls > 0)
        return out

    def _function_call(self, fc: Mapping[str, Any], out: list[Event], t: float) -> None:
        fragments = fc.get("partialArgs")
        more = fc.get("willContinue") is True
        name = fc.get("name")
        call = self._open
        if not fragments and not more:
            if name:  # a whole call; one without arguments carries no ``args`` at all
                if call is not None:
                    self._close(out, t)
                args = fc.get("args")
                self._emit(str(fc.get("id") or ""), str(name), args if isinstance(args, dict) else {}, out, t)
                return
            if call is None:  # the end marker ``{}`` of a call already closed
                return
        else:
            if name and call is not None and call.name:  # a new call while one was left open
                self._close(out, t)
                call = None
            if call is None:
                call = self._open = _StreamedCall()
            if name:
                call.name = str(name)
        if fc.get("id"):
            call.id = str(fc["id"])
        args = fc.get("args")
        if isinstance(args, dict) and args:
            call.args.update(args)
        for fragment in fragments or ():
            call.apply(fragment)
        if not more:
            self._close(out, t)

    def _close(self, out: list[Event], t: float) -> None:
        call = self._open
        self._open = None
        if call is not None:
            self._emit(call.id, call.name, call.arguments(), out, t)

    def _emit(self, call_id: str, name: str, args: Mapping[str, Any], out: list[Event], t: float) -> None:
        if call_id:
            if call_id in self._seen_ids:  # the same call sent again (with its thought signature)
                return
            self._seen_ids.add(call_id)
        self._calls += 1
        out.append(ToolCall(self.source, t, call_id or f"call_{self._calls}", name,
                            json.dumps(args, ensure_ascii=False)))

    def finish(self, t: float) -> list[Event]:
        """End of stream: a call still open, then Usage and Done, or an error if it was no answer."""
        out: list[Event] = []
        if self._open is not None:
            self._close(out, t)
        if self.finish_reason is None:
            raise ProviderError("the stream ended before Gemini's finishReason", retryable=True,
                                kind="truncated")
        if not (self.got_content or self._calls):
            empty = empty_answer(self.finish_reason, f"{self.messages} message(s)")
            if empty is not None:
                raise empty
        usage = self._usage
        if usage is not None:
            thoughts = count(usage.get("thoughtsTokenCount"))
            out.append(Usage(self.source, t, count(usage.get("promptTokenCount")),
                             (count(usage.get("candidatesTokenCount")) or 0) + (thoughts or 0), thoughts))
        out.append(Done(self.source, t, self.finish_reason))
        return out


def stream_error(obj: Mapping[str, Any]) -> ProviderError:
    """The ProviderError of an in-band ``{"error": {"code", "message", "status"}}`` payload."""
    err = obj.get("error")
    message = describe_error_object(obj, "Gemini") or "Gemini sent an error"
    code = err.get("code") if isinstance(err, dict) else None
    status = err.get("status") if isinstance(err, dict) else None
    code = code if isinstance(code, int) and not isinstance(code, bool) else None
    retryable = code in _RETRYABLE_CODES or (isinstance(status, str) and status in _RETRYABLE_STATUSES)
    return ProviderError(message, status_code=code, retry_after=google_retry_delay(err), retryable=retryable,
                         kind="stream_error")


def _merged(base: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` on top, objects merged key by key (``generationConfig``, ...)."""
    out = dict(base)
    for key, value in extra.items():
        old = out.get(key)
        out[key] = _merged(old, value) if isinstance(old, dict) and isinstance(value, Mapping) else value
    return out


class Gemini(DirectSource):
    """A model behind Google's Gemini API (or a proxy speaking it), streamed directly.

    ``api_key`` may be a string or Secret; without one, ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``
    is used, and the stream fails with a message naming them when neither is set. Thoughts are
    asked for (``includeThoughts``) so the pane shows the model's reasoning; models that cannot
    think reject that with HTTP 400: pass ``include_thoughts=False`` for them.
    ``thinking_budget`` is Gemini's ``thinkingBudget`` (-1 dynamic, 0 off); ``extra_body`` is
    merged on top of the request body, objects key by key.
    """

    route = "direct-gemini"
    #: Gemini does not continue a trailing model turn as a prefill, so a broken stream is not resumed.
    resumable = False

    def __init__(
        self,
        model: str,
        *,
        base_url: str = "https://generativelanguage.googleapis.com/v1beta",
        api_key: str | Secret | None = None,
        name: str | None = None,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        thinking_budget: int | None = None,
        include_thoughts: bool = True,
    ) -> None:
        self.model = model
        self._base_url = base_url
        self._api_key = Secret(api_key) if isinstance(api_key, str) else api_key
        self.name = name or f"gemini/{model}"
        self.options = SourceOptions(system, temperature, max_tokens, dict(extra_body or {}))
        self.thinking_budget = thinking_budget
        self.include_thoughts = include_thoughts

    @property
    def base_url(self) -> str:
        """The API base, ending before ``/models/...``."""
        return self._base_url

    @property
    def host(self) -> str | None:
        from ..clients import host_key

        return host_key(self.base_url)

    @property
    def url(self) -> str:
        """The streaming endpoint: the model id percent-encoded (``models/`` prefix dropped)."""
        model = self.model[len("models/"):] if self.model.startswith("models/") else self.model
        return f"{self._base_url.rstrip('/')}/models/{quote(model, safe='')}:streamGenerateContent?alt=sse"

    def validate(self) -> None:
        """Check the base URL and the thinking budget before anything is sent."""
        super().validate()
        budget = self.thinking_budget
        if budget is not None and (not isinstance(budget, int) or isinstance(budget, bool) or budget < -1):
            raise ConfigError(f"{self.name}: thinking_budget must be an integer: -1 (dynamic), 0 (off) "
                              f"or a token count, got {budget!r}")

    def request_body(self, prompt: Prompt) -> dict[str, Any]:
        """The JSON body of the streaming request."""
        p = prompt.merged(self.options)
        contents: list[dict[str, Any]] = []
        system: list[dict[str, str]] = []
        for msg in p.messages():
            role, text = msg["role"], msg["content"]
            if role == "system":
                system.append({"text": text})
            else:  # an assistant prefix (resuming a broken stream) is a trailing "model" turn
                contents.append({"role": "model" if role == "assistant" else "user", "parts": [{"text": text}]})
        body: dict[str, Any] = {"contents": contents}
        if system:
            body["systemInstruction"] = {"parts": system}
        config: dict[str, Any] = {}
        if p.temperature is not None:
            config["temperature"] = p.temperature
        if p.max_tokens is not None:
            config["maxOutputTokens"] = p.max_tokens
        thinking: dict[str, Any] = {}
        if self.include_thoughts and self.thinking_budget != 0:  # no thoughts to include when off
            thinking["includeThoughts"] = True
        if self.thinking_budget is not None:
            thinking["thinkingBudget"] = self.thinking_budget
        if thinking:
            config["thinkingConfig"] = thinking
        if config:
            body["generationConfig"] = config
        return _merged(body, p.params) if p.params else body

    def stream(self, prompt: Prompt, ctx: StreamContext) -> AsyncIterator[Event]:
        """Send the request and yield events as the SSE stream is parsed."""
        return stream_events(self.request(prompt), GeminiDecoder(ctx.name), ctx)

    def request(self, prompt: Prompt) -> StreamRequest:
        """The streaming request for ``prompt`` (raises ProviderError when no key is found)."""
        key = resolve_key(self._api_key, KEY_ENV)
        headers = {"Accept": "text/event-stream"}
        if key is not None:
            headers["x-goog-api-key"] = key.get()
        return StreamRequest(self.url, self.request_body(prompt), headers, KEY_ENV, key, provider="Gemini")
