"""Any provider LiteLLM knows (Anthropic, Gemini, Bedrock, ...), via ``acompletion(stream=True)``.

litellm is imported lazily, in a worker thread, only when a LiteLLM source is prepared, with
its start-up network fetches and noisy prints switched off first. Measured here it costs
~100x more CPU per chunk than the direct paths, so those stay the default wherever the
endpoint speaks OpenAI's SSE or Ollama's NDJSON.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import ModuleType
from typing import Any

from ..config import Secret, env_key
from ..engine import relay_isolated
from ..errors import ProviderError
from ..events import Event, Reasoning, Status, Token, Usage
from .base import Prompt, SourceOptions, StreamContext
from .openai_sse import OpenAIChunkParser

__all__ = ["LiteLLM", "import_litellm"]

_lock = threading.Lock()
_module: ModuleType | None = None


def import_litellm() -> ModuleType:
    """Import and configure litellm once: offline cost map, no debug prints, no HF downloads."""
    global _module
    with _lock:
        if _module is None:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            os.environ.setdefault("LITELLM_LOG", "ERROR")
            import litellm

            litellm.suppress_debug_info = True
            litellm.disable_hf_tokenizer_download = True
            litellm.telemetry = False
            # The first real call in a process imports ~0.9 s of modules (measured here), holding
            # the GIL; pay that now, off the clock, against a throwaway loopback endpoint.
            try:
                asyncio.run(_warm_up(litellm))
            except Exception:  # a failed warm-up only costs the first real call its set-up time
                pass
            _module = litellm
        return _module


_WARM_UP_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nConnection: close\r\n\r\n"
    b'data: {"id":"w","object":"chat.completion.chunk","created":0,"model":"w",'
    b'"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
)


async def _warm_up(litellm: ModuleType) -> None:
    """One streamed OpenAI-compatible call against a canned loopback server."""

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(_WARM_UP_RESPONSE)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        response = await litellm.acompletion(
            model="openai/llmgrid-warmup", messages=[{"role": "user", "content": "hi"}], stream=True,
            api_base=f"http://127.0.0.1:{port}/v1", api_key="none", num_retries=0, timeout=10)
        async for _ in response:
            pass
    finally:
        server.close()
        await server.wait_closed()


def _translate(exc: Exception, litellm: ModuleType, secret: Secret | None) -> ProviderError:
    """A litellm exception as a ProviderError, by exception class and status code."""
    ex = litellm.exceptions
    status = getattr(exc, "status_code", None)
    message = str(getattr(exc, "message", "") or exc) or type(exc).__name__
    if secret is not None:
        message = secret.redact(message)
    message = message.splitlines()[0][:500]
    if isinstance(exc, (ex.AuthenticationError, ex.PermissionDeniedError)) or status in (401, 403):
        return ProviderError(f"authentication failed (HTTP {status}): {message}", status_code=status, kind="auth")
    if isinstance(exc, ex.RateLimitError) or status == 429:
        return ProviderError(f"rate limited (HTTP 429): {message}", status_code=429, retryable=True,
                             kind="rate_limit")
    if isinstance(exc, ex.NotFoundError) or status == 404:
        return ProviderError(f"not found (HTTP 404): {message}", status_code=404, kind="not_found")
    if isinstance(exc, ex.Timeout):
        return ProviderError(f"timed out: {message}", status_code=status, retryable=True, kind="timeout")
    if isinstance(exc, ex.APIConnectionError):
        return ProviderError(f"connection failed: {message}", status_code=None, retryable=True, kind="connect")
    if isinstance(exc, ex.BadRequestError):
        return ProviderError(f"request rejected (HTTP {status}): {message}", status_code=status,
                             kind="bad_request")
    if isinstance(status, int) and status >= 500:
        return ProviderError(f"server error (HTTP {status}): {message}", status_code=status, retryable=True,
                             kind="server")
    return ProviderError(f"{type(exc).__name__}: {message}", status_code=status, kind="provider")


class LiteLLM:
    """A model reached through LiteLLM; ``model`` is a LiteLLM model string."""

    route = "litellm"

    def __init__(
        self,
        model: str,
        *,
        api_base: str | Callable[[], str] | None = None,
        api_key: str | Secret | None = None,
        key_env: Sequence[str] = (),
        name: str | None = None,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        self.model = model
        self._api_base = api_base
        self._api_key = Secret(api_key) if isinstance(api_key, str) else api_key
        self.key_env = tuple(key_env)
        self.name = name or model
        self.options = SourceOptions(system, temperature, max_tokens, dict(extra_body or {}))

    def __repr__(self) -> str:
        return f"LiteLLM(model={self.model!r}, name={self.name!r})"

    @property
    def api_base(self) -> str | None:
        """The API base passed to LiteLLM, if any."""
        return self._api_base() if callable(self._api_base) else self._api_base

    @property
    def host(self) -> str | None:
        return None

    def validate(self) -> None:
        """Nothing can be checked without importing litellm; errors show in the pane."""

    async def prepare(self) -> None:
        """Import litellm in a worker thread before the run's clock starts."""
        await asyncio.get_running_loop().run_in_executor(None, import_litellm)
        if callable(self._api_base):
            await asyncio.get_running_loop().run_in_executor(None, self._api_base)

    async def stream(self, prompt: Prompt, ctx: StreamContext) -> AsyncIterator[Event]:
        """Run the LiteLLM stream on its own loop thread and relay its events to this loop.

        LiteLLM does blocking work inside its coroutines; isolated on ``llmgrid-litellm`` it
        cannot stall the direct streams running on the engine loop.
        """
        async for ev in relay_isolated(lambda: self._stream_here(prompt, ctx)):
            yield ev

    async def _stream_here(self, prompt: Prompt, ctx: StreamContext) -> AsyncIterator[Event]:
        """Call ``litellm.acompletion(stream=True)`` and yield events per chunk."""
        litellm = import_litellm()
        p = prompt.merged(self.options)
        key = self._api_key or (env_key(self.key_env) if self.key_env else None)
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": p.messages(),
            "stream": True,
            "stream_options": {"include_usage": True},
            "num_retries": 0,
            "max_retries": 0,
        }
        if self.api_base:
            kwargs["api_base"] = self.api_base
        if key is not None:
            kwargs["api_key"] = key.get()
        if p.temperature is not None:
            kwargs["temperature"] = p.temperature
        if p.max_tokens is not None:
            kwargs["max_tokens"] = p.max_tokens
        kwargs.update(p.params)
        parser = OpenAIChunkParser(ctx.name)
        ctx.request_started()
        try:
            response = await litellm.acompletion(**kwargs)
            headers = (getattr(response, "_hidden_params", None) or {}).get("additional_headers") or {}
            ctx.note_response({k.removeprefix("llm_provider-"): str(v) for k, v in headers.items()})
            yield Status(ctx.name, ctx.now(), "waiting")
            async for chunk in response:
                t = ctx.activity()
                ctx.first_message(t)
                for ev in self._events(chunk, parser, t):
                    yield ev
        except ProviderError:
            raise
        except Exception as exc:  # litellm raises its own and its providers' exception types
            raise _translate(exc, litellm, key) from None
        parser.done = True
        for ev in parser.finish(ctx.now()):
            yield ev

    @staticmethod
    def _events(chunk: Any, parser: OpenAIChunkParser, t: float) -> list[Event]:
        out: list[Event] = []
        source = parser.source
        choices = getattr(chunk, "choices", None) or ()
        if choices:
            choice = choices[0]
            delta = getattr(choice, "delta", None)
            if delta is not None:
                reasoning = getattr(delta, "reasoning_content", None)
                if reasoning:
                    parser.got_content = True
                    out.append(Reasoning(source, t, reasoning))
                content = getattr(delta, "content", None)
                if content:
                    parser.got_content = True
                    out.append(Token(source, t, content))
                calls = getattr(delta, "tool_calls", None)
                if calls:
                    parser.add_tool_fragments([
                        {"index": getattr(c, "index", 0), "id": getattr(c, "id", None),
                         "function": {"name": getattr(c.function, "name", None),
                                      "arguments": getattr(c.function, "arguments", None)}}
                        for c in calls])
            finish = getattr(choice, "finish_reason", None)
            if finish:
                parser.finish_reason = finish
                out.extend(parser.drain_tools(t))
        usage = getattr(chunk, "usage", None)
        if usage:
            details = getattr(usage, "completion_tokens_details", None)
            out.append(Usage(source, t, getattr(usage, "prompt_tokens", None),
                             getattr(usage, "completion_tokens", None),
                             getattr(details, "reasoning_tokens", None) if details else None))
        return out
