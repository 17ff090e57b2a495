"""The Source protocol, the prompt every source receives, and the per-stream context."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..events import Event

if TYPE_CHECKING:
    import httpx

    from ..clients import ClientPool

__all__ = ["Prompt", "Source", "SourceOptions", "StreamContext", "choice_name"]


def choice_name(name: str, index: int) -> str:
    """The pane of choice ``index`` (> 0) of a stream of several choices (``n > 1``): ``name[index]``."""
    return f"{name}[{index}]"


@dataclass(frozen=True, slots=True)
class SourceOptions:
    """Request options a source may carry; a value left None falls back to the run's."""

    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    extra_body: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Prompt:
    """The query of one run, with the run-level request options."""

    text: str
    system: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    #: For resuming a broken stream: the answer so far, sent as an assistant prefill to continue.
    assistant_prefix: str = ""
    #: The conversation before this prompt (role/content messages, system included), oldest first.
    history: tuple[Mapping[str, str], ...] = ()

    def merged(self, options: SourceOptions) -> Prompt:
        """This prompt with a source's own options taking precedence."""
        return Prompt(
            self.text,
            options.system if options.system is not None else self.system,
            options.temperature if options.temperature is not None else self.temperature,
            options.max_tokens if options.max_tokens is not None else self.max_tokens,
            {**self.params, **options.extra_body},
            self.assistant_prefix,
            self.history,
        )

    def continued(self, prefix: str) -> Prompt:
        """The same request, asking the model to continue ``prefix`` (a partial answer)."""
        return dataclasses.replace(self, assistant_prefix=prefix)

    def with_history(self, history: tuple[Mapping[str, str], ...]) -> Prompt:
        """The same request as the next turn of the conversation ``history``."""
        return dataclasses.replace(self, history=history)

    def messages(self) -> list[dict[str, str]]:
        """The chat messages: the system message (the run's, unless the history has its own),
        the conversation so far, the prompt, and an optional prefill."""
        has_system = any(m["role"] == "system" for m in self.history)
        msgs = [{"role": "system", "content": self.system}] if self.system and not has_system else []
        msgs.extend({"role": m["role"], "content": m["content"]} for m in self.history)
        msgs.append({"role": "user", "content": self.text})
        if self.assistant_prefix:
            msgs.append({"role": "assistant", "content": self.assistant_prefix})
        return msgs


class StreamContext:
    """What the multiplexer gives a source for one stream: the clock, clients, limits.

    A source calls ``activity()`` for every network read (any bytes, keep-alives included),
    which stamps the read and feeds the stall watchdog, and ``first_message(t)`` once the first
    wire message of the response has been parsed (that defines TTFB).
    """

    __slots__ = ("name", "_t0", "_pool", "connect_timeout", "t_request", "t_first_message",
                 "last_activity", "attempt", "request_id", "peers", "keep_origin")

    def __init__(self, name: str, t0: float, pool: ClientPool, connect_timeout: float) -> None:
        self.name = name
        self._t0 = t0
        self._pool = pool
        self.connect_timeout = connect_timeout
        self.t_request: float | None = None
        self.t_first_message: float | None = None
        self.last_activity = 0.0
        self.attempt = 0
        #: The provider's id for the request (x-request-id and similar headers), if it sent one.
        self.request_id: str | None = None
        #: For sources that synthesise other panes' answers: a view of the other streams.
        self.peers: Any = None
        #: Set while resuming a broken stream: latencies keep counting from the first request.
        self.keep_origin = False

    def now(self) -> float:
        """Seconds since the run started, on the shared monotonic clock."""
        return time.monotonic() - self._t0

    def request_started(self) -> float:
        """Mark the moment the request of this attempt is sent; every latency counts from it

        (except when resuming a broken stream: then the first request stays the origin)."""
        t = self.now()
        self.last_activity = t
        if not self.keep_origin:
            self.t_request = t
            self.t_first_message = None
        return t

    def activity(self, received_at: float | None = None) -> float:
        """Stamp a network read: returns its time and resets the stall watchdog.

        ``received_at`` is when the kernel received the bytes (``rx_stamps.receive_time``), used
        when it is known and plausible (within this attempt, not in the future); else now."""
        now = time.monotonic()
        if received_at is not None and self._t0 + self.last_activity <= received_at <= now:
            now = received_at
        t = now - self._t0
        self.last_activity = t
        return t

    def first_message(self, t: float) -> None:
        """Record the arrival time of the first parsed message of the response (TTFB)."""
        if self.t_first_message is None:
            self.t_first_message = t

    def note_response(self, headers: Mapping[str, str]) -> None:
        """Keep the provider's request id from the response headers, for support and fidelity."""
        for key in ("x-sim-request-id", "x-request-id", "request-id"):
            value = headers.get(key)
            if value:
                self.request_id = value
                return

    def client(self, url: str) -> httpx.AsyncClient:
        """The pooled client for ``url``'s host, shared across runs."""
        return self._pool.client_for(url)

    def nested(self) -> StreamContext:
        """A context for a sub-request of this stream (a pipeline's search or synthesis call).

        It shares the clock, clients and name; its network reads keep this stream's stall
        watchdog fed, but its request start does not move this stream's TTFB/TTFT origin.
        """
        return _NestedContext(self)


class _NestedContext(StreamContext):
    __slots__ = ("_parent",)

    def __init__(self, parent: StreamContext) -> None:
        super().__init__(parent.name, parent._t0, parent._pool, parent.connect_timeout)
        self._parent = parent

    def activity(self, received_at: float | None = None) -> float:
        t = self._parent.activity(received_at)
        self.last_activity = t
        return t

    def first_message(self, t: float) -> None:
        super().first_message(t)
        self._parent.first_message(t)


@runtime_checkable
class Source(Protocol):
    """A way of talking to one model: yields typed events for one prompt.

    ``name`` is the pane label (made unique per run by the multiplexer), ``model`` the
    provider's model id, ``route`` how it is reached ("direct-openai", "direct-ollama",
    "litellm", "sim", ...). ``host`` is the host key whose concurrency limit applies, or None.
    """

    name: str
    model: str
    route: str

    @property
    def host(self) -> str | None: ...

    def validate(self) -> None:
        """Raise ConfigError for problems that can be found before any request is sent."""

    def stream(self, prompt: Prompt, ctx: StreamContext) -> AsyncIterator[Event]: ...


# Optional parts of a source, looked up with getattr: ``async prepare()`` (slow set-up before the
# run's clock starts), ``resumable`` (False where the API answers a prefill anew), and
# ``choice_count(prompt)`` (how many choices one request streams; each beyond the first is a pane
# of its own, named by ``choice_name``, whose events the source yields under that name).
