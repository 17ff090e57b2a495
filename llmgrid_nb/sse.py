"""The server-sent events decoder, written to the WHATWG event-stream spec. No I/O.

Bytes go in chunk by chunk; complete events come out. Comments (``:`` lines, keep-alives) are
skipped; ``event``, ``data``, ``id`` and ``retry`` fields are honoured; multi-line data is
joined with LF; a field value loses one leading space only. An event that is not terminated
by a blank line before the stream ends is discarded, as the spec says (``discarded`` is set so
the caller can report it).
"""

from __future__ import annotations

from typing import NamedTuple

from .lines import DEFAULT_MAX_LINE_CHARS, LineDecoder

__all__ = ["SSEDecoder", "ServerSentEvent"]


class ServerSentEvent(NamedTuple):
    """One dispatched event: its type, its data, and the stream's last id and retry.

    A named tuple rather than a frozen dataclass: one is made per chunk, and it costs half."""

    event: str
    data: str
    id: str = ""
    retry: int | None = None


class SSEDecoder:
    """Turn a byte stream into ServerSentEvents, one ``decode()`` per network read."""

    __slots__ = ("_lines", "_data", "_event", "_last_id", "_retry", "discarded")

    def __init__(self, max_line_chars: int = DEFAULT_MAX_LINE_CHARS) -> None:
        self._lines = LineDecoder(max_line_chars)
        self._data: list[str] = []
        self._event = ""
        self._last_id = ""
        self._retry: int | None = None
        self.discarded = False

    @property
    def replaced_invalid_utf8(self) -> bool:
        """True once invalid UTF-8 in the stream was replaced by U+FFFD."""
        return self._lines.replaced

    def decode(self, chunk: bytes) -> list[ServerSentEvent]:
        """Feed one read; return the events it completed."""
        out: list[ServerSentEvent] = []
        for line in self._lines.decode(chunk):
            if line[:6] == "data: ":  # the line nearly every chunk is made of, without the parsing
                self._data.append(line[6:])
                continue
            event = self._feed(line)
            if event is not None:
                out.append(event)
        return out

    def flush(self) -> list[ServerSentEvent]:
        """End of stream: process a last unterminated line; an unfinished event is discarded."""
        out: list[ServerSentEvent] = []
        for line in self._lines.flush():
            event = self._feed(line)
            if event is not None:
                out.append(event)
        if self._data:
            self.discarded = True
            self._data = []
        self._event = ""
        return out

    def _feed(self, line: str) -> ServerSentEvent | None:
        if not line:
            if not self._data:
                self._event = ""
                return None
            event = ServerSentEvent(self._event or "message", "\n".join(self._data),
                                    self._last_id, self._retry)
            self._data = []
            self._event = ""
            return event
        if line[0] == ":":
            return None
        name, _, value = line.partition(":")
        if value and value[0] == " ":
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self._last_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self._retry = int(value)
        return None
