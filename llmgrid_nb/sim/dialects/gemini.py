"""Gemini ``models/{model}:streamGenerateContent`` and ``:generateContent``: parsing, errors, CRLF SSE chunks."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

from ..formats import Frame
from ..generation import Completion
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

__all__ = ["GEMINI_FAULTS", "Gemini", "GeminiEncoder", "gemini_error", "gemini_route", "partial_args"]

# Google's canonical status for each HTTP status it uses.
_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
}
# fault kind -> (status, message); ``{model}`` is filled in.
GEMINI_FAULTS: dict[str, tuple[int, str]] = {
    "http_400": (400, "The input token count (1048577) exceeds the maximum number of tokens allowed (1048576)."),
    "http_401": (
        401,
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
        "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project.",
    ),
    "http_403": (403, "The caller does not have permission"),
    "http_404": (
        404,
        "models/{model} is not found for API version v1beta, or is not supported for generateContent. "
        "Call ListModels to see the list of available models and their supported methods.",
    ),
    "http_429": (429, "Resource has been exhausted (e.g. check quota)."),
    "http_500": (
        500,
        "An internal error has occurred. Please retry or report in "
        "https://developers.generativeai.google/guide/troubleshooting",
    ),
    "http_502": (502, "The service is currently unavailable."),
    "http_503": (503, "The model is overloaded. Please try again later."),
}
_FINISH = {"stop": "STOP", "tool_calls": "STOP", "length": "MAX_TOKENS"}
_PREFIXES = ("/v1beta/models/", "/v1/models/")
_METHODS = {"streamGenerateContent": True, "generateContent": False}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _google_json(value: object, indent: int | None = None) -> bytes:
    # Google writes a space after colons but none after commas.
    return json.dumps(value, ensure_ascii=False, indent=indent, separators=(",", ": ")).encode()


def gemini_error(status: int, message: str, indent: int | None = 2) -> bytes:
    """Google's error body, ``{"error": {code, message, status}}`` (indented, as its HTTP errors are)."""
    return _google_json({"error": {"code": status, "message": message, "status": _STATUSES[status]}}, indent)


def gemini_route(path: str, query: str, dialect: Gemini) -> Route | None:
    """The route for a Gemini model path, or None.

    ``path`` is already percent-decoded (ASGI's ``scope["path"]``), so the model name may hold
    ``?``, ``&``, ``=``, ``/`` and ``:``; the method is what follows the last colon.
    """
    prefix = next((p for p in _PREFIXES if path.startswith(p)), None)
    if prefix is None:
        return None
    model, sep, method = path[len(prefix) :].rpartition(":")
    if not sep or not model or method not in _METHODS:
        return None
    sse = "alt=sse" in query.split("&")
    return Route(dialect, model=model, stream=_METHODS[method], sse=sse)


def _path(keys: list[str | int]) -> str:
    out = "$"
    for key in keys:
        if isinstance(key, int):
            out += f"[{key}]"
        elif _IDENTIFIER.match(key):
            out += "." + key
        else:
            out += "['" + key.replace("\\", "\\\\").replace("'", "\\'") + "']"
    return out


def _annotated(value: Any, keys: list[str | int], out: list[tuple[str, tuple[Any, ...] | None]]) -> None:
    """``json.dumps(value)`` as segments, each with the partial-argument event its last character completes."""
    if isinstance(value, dict) and value:
        out.append(("{", None))
        for n, (key, item) in enumerate(value.items()):
            out.append(((", " if n else "") + json.dumps(key) + ": ", None))
            _annotated(item, [*keys, key], out)
        out.append(("}", None))
    elif isinstance(value, list) and value:
        out.append(("[", None))
        for n, item in enumerate(value):
            if n:
                out.append((", ", None))
            _annotated(item, [*keys, n], out)
        out.append(("]", None))
    elif isinstance(value, (dict, list)):
        out.append((json.dumps(value), ("empty", keys, value)))
    elif isinstance(value, str):
        path = _path(keys)
        out.append(('"', None))
        out.extend((json.dumps(ch)[1:-1], ("char", path, ch)) for ch in value)
        out.append(('"', ("end", path)))
    else:
        out.append((json.dumps(value), ("scalar", _path(keys), value)))


def _scalar(path: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {"jsonPath": path, "nullValue": None}
    if isinstance(value, bool):
        return {"jsonPath": path, "boolValue": value}
    return {"jsonPath": path, "numberValue": value}


def partial_args(arguments: str, fragments: list[str]) -> tuple[list[list[dict[str, Any]]], dict[str, Any]]:
    """The ``partialArgs`` each fragment of the JSON text ``arguments`` completes, and the empty containers.

    A string streams as ``stringValue`` pieces with ``willContinue`` and ends with a piece
    without it (``""`` when its closing quote arrives alone), as Vertex AI streams function
    call arguments; numbers, booleans and nulls arrive whole with the fragment that ends them.
    Empty objects and lists have no partial form, so they go in the call's ``args``.
    """
    value = json.loads(arguments)
    segments: list[tuple[str, tuple[Any, ...] | None]] = []
    _annotated(value, [], segments)
    if "".join(s for s, _ in segments) != arguments:
        raise ValueError("arguments are not in json.dumps form")
    events: list[tuple[Any, ...] | None] = []
    for text, event in segments:
        events.extend([None] * (len(text) - 1) + [event])
    whole: dict[str, Any] = {}
    out: list[list[dict[str, Any]]] = []
    pos = 0
    for fragment in fragments:
        args: list[dict[str, Any]] = []
        for event in events[pos : pos + len(fragment)]:
            if event is None:
                continue
            if event[0] == "char":
                if args and args[-1]["jsonPath"] == event[1] and args[-1].get("willContinue"):
                    args[-1]["stringValue"] += event[2]
                else:
                    args.append({"jsonPath": event[1], "stringValue": event[2], "willContinue": True})
            elif event[0] == "end":
                if args and args[-1]["jsonPath"] == event[1] and args[-1].get("willContinue"):
                    del args[-1]["willContinue"]
                else:
                    args.append({"jsonPath": event[1], "stringValue": ""})
            elif event[0] == "scalar":
                args.append(_scalar(event[1], event[2]))
            elif event[1]:
                target = whole
                for key in event[1][:-1]:
                    target = target.setdefault(key, {})
                target[event[1][-1]] = event[2]
        out.append(args)
        pos += len(fragment)
    return out, whole


def _parts(content: Any) -> list[dict[str, Any]]:
    parts = content.get("parts") if isinstance(content, dict) else None
    return [p for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _turns(body: dict[str, Any]) -> list[dict[str, Any]]:
    """``systemInstruction`` and ``contents`` as OpenAI-shaped turns (``model`` is the assistant)."""
    turns: list[dict[str, Any]] = []
    system = _parts(body.get("systemInstruction"))
    if system:
        turns.append({"role": "system", "content": system})
    for content in body["contents"]:
        parts = _parts(content)
        role = content.get("role", "user") if isinstance(content, dict) else "user"
        if parts and all("functionResponse" in p for p in parts):
            role = "tool"
        turns.append({"role": "assistant" if role == "model" else role, "content": [p for p in parts if "text" in p]})
    return turns


class Gemini:
    """The Gemini dialect: the model and streaming mode come from the URL, the rest from ``generationConfig``."""

    name = "gemini"
    stream_content_type = b"text/event-stream"

    def parse(self, raw: bytes, route: Route) -> ChatRequest:
        """Contents, systemInstruction, generationConfig (maxOutputTokens, seed, thinkingConfig) and tools."""
        body = load_object(raw, "Invalid JSON payload received. Unexpected token.")
        assert route.model is not None
        if not isinstance(body.get("contents"), list) or not body["contents"]:
            raise BadRequest(400, "* GenerateContentRequest.contents: contents is not specified\n")
        options = options_for(route.model, GEMINI_FAULTS["http_404"][1].replace("{model}", "{name}"))
        config = field_object(body, "generationConfig")
        limit = check_limit(
            config.get("maxOutputTokens"),
            "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), {value!r}",
        )
        tools = [
            {"name": d.get("name"), "parameters": d.get("parameters", d.get("parametersJsonSchema"))}
            for tool in body.get("tools") or []
            if isinstance(tool, dict)
            for d in tool.get("functionDeclarations") or []
            if isinstance(d, dict)
        ]
        return ChatRequest(
            model=route.model,
            options=options,
            messages=_turns(body),
            seed=resolve_seed(options, config.get("seed")),
            stream=bool(route.stream),
            max_tokens=limit,
            tools=tools or None,
            body=body,
        )

    def error_body(self, error: BadRequest, request_id: str) -> bytes:
        """``{"error": {code, message, status}}``."""
        return gemini_error(error.status, error.message)

    def http_fault(self, kind: str, model: str, request_id: str) -> tuple[int, bytes]:
        """The status and body from ``GEMINI_FAULTS``."""
        status, message = GEMINI_FAULTS[kind]
        return status, gemini_error(status, message.format(model=model))

    def headers(self, request_id: str) -> Headers:
        """None: Google's request ids are not part of its responses."""
        return []

    def encoder(self, request: ChatRequest, request_id: str, wall_ns: int, route: Route) -> GeminiEncoder:
        """Chunks as SSE (``alt=sse``) or as the elements of one streamed JSON array."""
        response_id = base64.urlsafe_b64encode(bytes.fromhex(request_id)[:17]).decode().rstrip("=")
        return GeminiEncoder(model=request.options.model, response_id=response_id, sse=route.sse)


class GeminiEncoder:
    """``GenerateContentResponse`` chunks, one per piece, each with the running ``usageMetadata``.

    Thoughts are parts with ``"thought": true``. A function call streams as Vertex AI streams
    arguments: a part with the name and ``willContinue``, parts of ``partialArgs``, and an
    empty ``functionCall`` that ends it. The last chunk has ``finishReason`` and the totals.
    With ``sse`` each chunk is a ``data:`` event ended by CRLF CRLF, as Google sends them;
    without, the chunks are the elements of one JSON array streamed as it is written.
    """

    def __init__(self, *, model: str, response_id: str, sse: bool) -> None:
        self.model = model
        self.response_id = response_id
        self.sse = sse
        self._tail = b',"modelVersion": ' + _google_json(model) + b',"responseId": ' + _google_json(response_id) + b"}"

    def _frame(self, chunk: bytes, first: bool = False) -> bytes:
        if self.sse:
            return b"data: " + chunk + b"\r\n\r\n"
        return (b"[" if first else b",\r\n") + chunk

    def _chunk(self, parts: bytes, usage: dict[str, Any] | None = None, finish: str | None = None) -> bytes:
        candidate = b'{"content": {"parts": [' + parts + b'],"role": "model"}'
        if finish is not None:
            candidate += b',"finishReason": "' + finish.encode() + b'"'
        usage_json = b',"usageMetadata": ' + _google_json(usage) if usage is not None else b""
        return b'{"candidates": [' + candidate + b',"index": 0}]' + usage_json + self._tail

    def content(self, text: str) -> bytes:
        """One chunk with a text part."""
        return self._frame(self._chunk(b'{"text": ' + _google_json(text) + b"}"))

    def raw_content(self, text: bytes) -> bytes:
        """A text part whose string holds ``text`` unescaped."""
        return self._frame(self._chunk(b'{"text": "' + text + b'"}'))

    def malformed(self) -> bytes:
        """A chunk that is not JSON."""
        return self._frame(b"{not json")

    def error(self) -> bytes:
        """The error object Google sends in place of a chunk when generation fails mid-stream."""
        return self._frame(gemini_error(503, GEMINI_FAULTS["http_503"][1], indent=None))

    @staticmethod
    def _usage(completion: Completion, candidates: int, thoughts: int) -> dict[str, Any]:
        prompt = completion.prompt_tokens
        usage: dict[str, Any] = {"promptTokenCount": prompt}
        if candidates:
            usage["candidatesTokenCount"] = candidates
        usage["totalTokenCount"] = prompt + candidates + thoughts
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        return usage

    def _signature(self, completion: Completion) -> str:
        digest = hashlib.sha512((self.response_id + completion.reasoning).encode()).digest()
        return base64.b64encode(digest * 2).decode()

    def _call_args(self, completion: Completion) -> dict[str, Any]:
        call = completion.tool_call
        assert call is not None
        try:
            args = json.loads("".join(p.text for p in completion.pieces if p.kind == "tool_call"))
        except ValueError:
            return {}
        return args if isinstance(args, dict) else {}

    def frames(self, completion: Completion, offsets: list[float]) -> list[Frame]:
        """One chunk per piece, then the finishing chunk; in array mode the closing bracket."""
        pieces = completion.pieces
        call = completion.tool_call
        fragments = [p.text for p in pieces if p.kind == "tool_call"][1:]
        args_by_fragment, whole = partial_args(call.arguments, fragments) if call is not None else ([], {})
        out: list[Frame] = []
        candidates = thoughts = 0
        fragment = 0
        for i, piece in enumerate(pieces):
            if piece.kind == "reasoning":
                thoughts += 1
                part = b'{"text": ' + _google_json(piece.text) + b',"thought": true}'
            else:
                candidates += 1
                if piece.kind == "content":
                    part = b'{"text": ' + _google_json(piece.text) + b"}"
                elif fragment == 0 and (i == 0 or pieces[i - 1].kind != "tool_call"):
                    assert call is not None
                    head: dict[str, Any] = {"name": call.name}
                    if whole:
                        head["args"] = whole
                    head["willContinue"] = True
                    fragment = 1
                    part = _google_json({"functionCall": head, "thoughtSignature": self._signature(completion)})
                else:
                    args = args_by_fragment[fragment - 1]
                    fragment += 1
                    call_part = {"partialArgs": args, "willContinue": True} if args else {"willContinue": True}
                    part = _google_json({"functionCall": call_part})
            chunk = self._chunk(part, self._usage(completion, candidates, thoughts))
            out.append(Frame(offsets[i], piece.kind, self._frame(chunk, first=not out)))
        end = offsets[len(pieces) - 1] if pieces else offsets[0]
        last = b'{"functionCall": {}}' if call is not None else b'{"text": ""}'
        usage = self._usage(completion, candidates, thoughts)
        finish = self._chunk(last, usage, _FINISH.get(completion.finish_reason, "STOP"))
        out.append(Frame(end, "finish", self._frame(finish, first=not out)))
        if not self.sse:
            out.append(Frame(end, "done", b"]"))
        return out

    def body(self, completion: Completion, offsets: list[float], total_s: float) -> bytes:
        """The non-streamed ``GenerateContentResponse``: the whole parts, indented as Google sends it."""
        parts: list[dict[str, Any]] = []
        if completion.reasoning:
            parts.append({"text": completion.reasoning, "thought": True})
        if completion.content:
            parts.append({"text": completion.content})
        if completion.tool_call is not None:
            call = {"name": completion.tool_call.name, "args": self._call_args(completion)}
            parts.append({"functionCall": call, "thoughtSignature": self._signature(completion)})
        candidates = sum(1 for p in completion.pieces if p.kind != "reasoning")
        value = {
            "candidates": [
                {
                    "content": {"parts": parts, "role": "model"},
                    "finishReason": _FINISH.get(completion.finish_reason, "STOP"),
                    "index": 0,
                }
            ],
            "usageMetadata": self._usage(completion, candidates, completion.reasoning_tokens),
            "modelVersion": self.model,
            "responseId": self.response_id,
        }
        return _google_json(value, indent=2)
