"""Incremental line splitting for streamed bodies: bytes in, complete text lines out.

No I/O: a source feeds it each network read. Handles LF, CRLF and lone CR line ends (also
when a CRLF pair or a UTF-8 sequence is split across reads), decodes UTF-8 with replacement
characters as the event-stream spec requires, and caps the length of a line that never ends.
"""

from __future__ import annotations

import codecs

from .errors import StreamParseError

__all__ = ["DEFAULT_MAX_LINE_CHARS", "LineDecoder"]

#: A line longer than this raises StreamParseError instead of growing the buffer forever.
DEFAULT_MAX_LINE_CHARS = 16 * 1024 * 1024


class LineDecoder:
    """Split a byte stream into text lines, one ``decode()`` per network read."""

    __slots__ = ("_utf8", "_parts", "_size", "_pending_cr", "max_line_chars", "replaced")

    def __init__(self, max_line_chars: int = DEFAULT_MAX_LINE_CHARS) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._parts: list[str] = []
        self._size = 0
        self._pending_cr = False
        self.max_line_chars = max_line_chars
        #: True once any invalid UTF-8 was replaced by U+FFFD (sources report it as a warning).
        self.replaced = False

    def decode(self, chunk: bytes) -> list[str]:
        """Feed one read; return the lines it completed, without their line ends."""
        text = self._utf8.decode(chunk)
        return self._split(text) if text else []

    def flush(self) -> list[str]:
        """End of stream: return the unterminated last line, if any."""
        text = self._utf8.decode(b"", final=True)
        lines = self._split(text) if text else []
        if self._parts:
            lines.append("".join(self._parts))
            self._parts.clear()
            self._size = 0
        return lines

    def _split(self, text: str) -> list[str]:
        if "\ufffd" in text:
            self.replaced = True
        if self._pending_cr:
            self._pending_cr = False
            if text[0] == "\n":
                text = text[1:]
                if not text:
                    return []
        if "\r" in text:
            self._pending_cr = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" not in text:
            self._append_partial(text)
            return []
        lines = text.split("\n")
        if self._parts:
            self._parts.append(lines[0])
            lines[0] = "".join(self._parts)
            self._parts.clear()
            self._size = 0
        tail = lines.pop()
        if tail:
            self._append_partial(tail)
        for line in lines:
            if len(line) > self.max_line_chars:
                raise self._too_long(len(line))
        return lines

    def _append_partial(self, text: str) -> None:
        self._parts.append(text)
        self._size += len(text)
        if self._size > self.max_line_chars:
            size = self._size
            self._parts.clear()
            self._size = 0
            raise self._too_long(size)

    def _too_long(self, size: int) -> StreamParseError:
        return StreamParseError(
            f"a line of the response exceeded {self.max_line_chars:,} characters ({size:,} so far);"
            " the server is not sending line-delimited data"
        )
