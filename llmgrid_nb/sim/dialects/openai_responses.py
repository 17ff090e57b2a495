"""OpenAI Responses (``/v1/responses``): request parsing and the numbered semantic SSE events."""

from __future__ import annotations

import time
from typing import Any, Callable

from ..formats import Frame, json_bytes, runs_of_kind, sse_event
from ..generation import Completion
from ..sendlog import SendRecord
from .base import (
    BadRequest,
    ChatRequest,
    Headers,
    Route,
    check_limit,
    field_object,
    load_object,
    options_for,
    resolve_seed,
)
from .openai_chat import OPENAI_FAULTS, openai_error

__all__ = ["OpenAIResponses", "ResponsesEncoder"]

_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"


def _content(value: Any) -> Any:
    return value if isinstance(value, (str, list)) else ""


def _turns(body: dict[str, Any]) -> list[dict[str, Any]]:
    """``instructions`` and ``input`` as OpenAI-shaped turns; tool outputs are tool turns."""
    turns: list[dict[str, Any]] = []
    if isinstance(body.get("instructions"), str):
        turns.append({"role": "system", "content": body["instructions"]})
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "message":
            role = "system" if item.get("role") == "developer" else item.get("role")
            turns.append({"role": role, "content": _content(item.get("content"))})
        elif kind == "function_call_output":
            turns.append({"role": "tool", "content": _content(item.get("output"))})
        elif kind == "function_call":
            turns.append({"role": "assistant", "content": ""})
    return turns


class OpenAIResponses:
    """The Responses dialect: ``input`` and ``instructions`` in, typed events numbered by ``sequence_number``."""

    name = "responses"
    stream_content_type = b"text/event-stream; charset=utf-8"

    def parse(self, raw: bytes, route: Route) -> ChatRequest:
        """Model, input (string or items), instructions, ``max_output_tokens`` (at least 16), stream, tools."""
        body = load_object(
            raw,
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
            "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.",
        )
        model = body.get("model")
        if not isinstance(model, str) or not model:
            message = "Missing required parameter: 'model'."
            raise BadRequest(400, message, code="missing_required_parameter", param="model")
        if not isinstance(body.get("input", ""), (str, list)):
            raise BadRequest(400, "Invalid type for 'input': expected one of a string or array.", param="input")
        limit = body.get("max_output_tokens")
        if isinstance(limit, int) and not isinstance(limit, bool) and limit < 16:
            raise BadRequest(
                400,
                f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= 16, but got {limit} "
                "instead.",
                code="integer_below_min_value",
                param="max_output_tokens",
            )
        limit = check_limit(limit, "Invalid type for 'max_output_tokens': expected an integer, but got {value!r}.")
        options = options_for(
            model, "The model '{name}' does not exist or you do not have access to it.", code="model_not_found"
        )
        tools = [t for t in body.get("tools") or [] if isinstance(t, dict) and t.get("type", "function") == "function"]
        return ChatRequest(
            model=model,
            options=options,
            messages=_turns(body),
            seed=resolve_seed(options, None),
            stream=body.get("stream") is True,
            max_tokens=limit,
            tools=tools or None,
            body=body,
        )

    def error_body(self, error: BadRequest, request_id: str) -> bytes:
        """``{"error": {message, type, param, code}}``, as for Chat Completions."""
        return openai_error(error.message, error.type or "invalid_request_error", error.code, error.param)

    def http_fault(self, kind: str, model: str, request_id: str) -> tuple[int, bytes]:
        """The status and body from the Chat Completions table: one API, one set of errors."""
        status, message, type_, code = OPENAI_FAULTS[kind]
        return status, openai_error(message.format(model=model), type_, code)

    def headers(self, request_id: str) -> Headers:
        """``x-request-id``."""
        return [(b"x-request-id", ("req_" + request_id).encode())]

    def encoder(self, request: ChatRequest, request_id: str, wall_ns: int, route: Route) -> ResponsesEncoder:
        """Events for response ``resp_...``, echoing the request's settings as the real API does."""
        created = wall_ns // 1_000_000_000
        return ResponsesEncoder(request_id=request_id, created=created, model=request.options.model, body=request.body)


class ResponsesEncoder:
    """Responses stream events: an output item per run of reasoning, text or function-call pieces.

    Every event carries a ``sequence_number``; it is assigned as the event is sent, so one a
    fault inserts (an error, a huge delta) still continues the count. A length cut ends with
    ``response.incomplete`` instead of ``response.completed``.
    """

    def __init__(self, *, request_id: str, created: int, model: str, body: dict[str, Any]) -> None:
        suffix = request_id + request_id[:16]
        self.response_id = "resp_" + suffix
        self.ids = {"reasoning": "rs_" + suffix, "content": "msg_" + suffix, "tool_call": "fc_" + suffix}
        self.created = created
        self.model = model
        self.request = body
        self._sequence = 0
        self._text_index = 0

    def _event(self, type_: str, **fields: Any) -> Callable[[SendRecord], bytes]:
        head = b'{"type":"' + type_.encode() + b'",'
        rest = json_bytes(fields)[1:-1]

        def render(record: SendRecord) -> bytes:
            sequence = self._sequence
            self._sequence += 1
            return sse_event(type_.encode(), head + rest + b',"sequence_number":%d}' % sequence)

        return render

    def _text_delta(self, delta: bytes) -> Callable[[SendRecord], bytes]:
        head = b'{"type":"response.output_text.delta","content_index":0,"delta":'
        tail = b',"item_id":"' + self.ids["content"].encode() + b'","logprobs":[],"output_index":%d' % self._text_index

        def render(record: SendRecord) -> bytes:
            sequence = self._sequence
            self._sequence += 1
            return sse_event(b"response.output_text.delta", head + delta + tail + b',"sequence_number":%d}' % sequence)

        return render

    def content(self, text: str) -> Callable[[SendRecord], bytes]:
        """One ``response.output_text.delta``."""
        return self._text_delta(json_bytes(text))

    def raw_content(self, text: bytes) -> Callable[[SendRecord], bytes]:
        """An ``output_text.delta`` whose string holds ``text`` unescaped."""
        return self._text_delta(b'"' + text + b'"')

    def malformed(self) -> bytes:
        """An ``output_text.delta`` event whose data is not JSON."""
        return b"event: response.output_text.delta\ndata: {not json\n\n"

    def error(self) -> Callable[[SendRecord], bytes]:
        """The ``error`` event and the ``response.failed`` after it, as OpenAI ends a stream that failed."""
        detail = {"type": "server_error", "code": "server_error", "message": _SERVER_ERROR, "param": None}
        error = self._event("error", error=detail)
        failed = self._event(
            "response.failed",
            response=self._response("failed", [], None, error={"code": "server_error", "message": _SERVER_ERROR}),
        )
        return lambda record: error(record) + failed(record)

    def _response(
        self,
        status: str,
        output: list[dict[str, Any]],
        usage: dict[str, Any] | None,
        *,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        body = self.request
        reasoning = field_object(body, "reasoning")
        done = status in ("completed", "incomplete")
        return {
            "id": self.response_id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "background": False,
            "completed_at": int(time.time()) if done else None,
            "error": error,
            "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
            "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"),
            "max_tool_calls": None,
            "model": self.model,
            "output": output,
            "parallel_tool_calls": True,
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
            "service_tier": "default" if done else "auto",
            "store": body.get("store", True),
            "temperature": body.get("temperature", 1.0),
            "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": body.get("tool_choice", "auto"),
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p", 1.0),
            "truncation": "disabled",
            "usage": usage,
            "user": None,
            "metadata": body.get("metadata") or {},
        }

    @staticmethod
    def _usage(completion: Completion) -> dict[str, Any]:
        return {
            "input_tokens": completion.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": completion.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": completion.reasoning_tokens},
            "total_tokens": completion.prompt_tokens + completion.completion_tokens,
        }

    def _items(self, completion: Completion) -> list[dict[str, Any]]:
        """The finished output items."""
        items: list[dict[str, Any]] = []
        status = "incomplete" if completion.finish_reason == "length" else "completed"
        for kind, first, last in runs_of_kind(completion.pieces):
            text = "".join(p.text for p in completion.pieces[first : last + 1])
            item_id = self.ids[kind]
            if kind == "reasoning":
                items.append({"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}]})
            elif kind == "content":
                part = {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
                message = {"id": item_id, "type": "message", "status": status, "content": [part], "role": "assistant"}
                items.append(message)
            else:
                call = completion.tool_call
                assert call is not None
                items.append(
                    {
                        "id": item_id,
                        "type": "function_call",
                        "status": status,
                        "arguments": text,
                        "call_id": call.id,
                        "name": call.name,
                    }
                )
        return items

    def frames(self, completion: Completion, offsets: list[float]) -> list[Frame]:
        """created, in_progress, each item's added/deltas/done events, then completed or incomplete."""
        pieces = completion.pieces
        at = offsets[0]
        out = [
            Frame(at, "start", self._event("response.created", response=self._response("in_progress", [], None))),
            Frame(at, "start", self._event("response.in_progress", response=self._response("in_progress", [], None))),
        ]
        items = self._items(completion)

        def frame(offset: float, kind_: str, type_: str, **fields: Any) -> None:
            out.append(Frame(offset, kind_, self._event(type_, **fields)))

        for index, ((kind, first, last), item) in enumerate(zip(runs_of_kind(pieces), items)):
            at, end = offsets[first], offsets[last]
            item_id = item["id"]
            if kind == "reasoning":
                summary = item["summary"][0]
                frame(at, "block_start", "response.output_item.added", item={**item, "summary": []}, output_index=index)
                part = {"type": "summary_text", "text": ""}
                ids = {"item_id": item_id, "output_index": index}
                frame(at, "block_start", "response.reasoning_summary_part.added", **ids, part=part, summary_index=0)
                for i in range(first, last + 1):
                    text = pieces[i].text
                    frame(offsets[i], kind, "response.reasoning_summary_text.delta", delta=text, **ids, summary_index=0)
                text = summary["text"]
                frame(end, "block_stop", "response.reasoning_summary_text.done", **ids, summary_index=0, text=text)
                frame(end, "block_stop", "response.reasoning_summary_part.done", **ids, part=summary, summary_index=0)
            elif kind == "content":
                self._text_index = index
                part = item["content"][0]
                added = {**item, "status": "in_progress", "content": []}
                frame(at, "block_start", "response.output_item.added", item=added, output_index=index)
                ids = {"content_index": 0, "item_id": item_id}
                empty = {**part, "text": ""}
                frame(at, "block_start", "response.content_part.added", **ids, output_index=index, part=empty)
                for i in range(first, last + 1):
                    out.append(Frame(offsets[i], kind, self.content(pieces[i].text)))
                text = part["text"]
                frame(end, "block_stop", "response.output_text.done", **ids, logprobs=[], output_index=index, text=text)
                frame(end, "block_stop", "response.content_part.done", **ids, output_index=index, part=part)
            else:
                # The tool run starts with an empty piece: its frame announces the call.
                added = {**item, "status": "in_progress", "arguments": ""}
                frame(at, kind, "response.output_item.added", item=added, output_index=index)
                ids = {"item_id": item_id, "output_index": index}
                for i in range(first + 1, last + 1):
                    text = pieces[i].text
                    frame(offsets[i], kind, "response.function_call_arguments.delta", delta=text, **ids)
                frame(end, "block_stop", "response.function_call_arguments.done", arguments=item["arguments"], **ids)
            frame(end, "block_stop", "response.output_item.done", item=item, output_index=index)
        end = offsets[len(pieces) - 1] if pieces else offsets[0]
        status = "incomplete" if completion.finish_reason == "length" else "completed"

        def final(record: SendRecord) -> bytes:
            # Built at send time, so ``completed_at`` is when the stream completed.
            response = self._response(status, items, self._usage(completion))
            return self._event("response." + status, response=response)(record)

        out.append(Frame(end, "done", final))
        return out

    def body(self, completion: Completion, offsets: list[float], total_s: float) -> bytes:
        """The non-streamed ``response`` object."""
        status = "incomplete" if completion.finish_reason == "length" else "completed"
        return json_bytes(self._response(status, self._items(completion), self._usage(completion)))
