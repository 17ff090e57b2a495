"""A tiny loopback HTTP server that sends scripted bytes with scripted pauses.

For wire-level edge cases the simulator does not produce: exact line endings, reads split
mid-UTF-8, keep-alive comments, bodies that stop abruptly. Real sockets, no patching.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Script:
    """What to answer: a status line, headers, and body pieces sent with pauses between them."""

    body: Sequence[bytes | float] = ()
    status: str = "200 OK"
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "text/event-stream"})
    abort: bool = False  # reset the connection (RST) instead of closing it cleanly
    hold: bool = False  # after the body, keep the connection open until the client closes it


class ScriptedServer:
    """Serve one Script per connection, in order; records when each client hung up."""

    def __init__(self) -> None:
        self.scripts: list[Script] = []
        self.requests: list[bytes] = []
        self.closed_at: list[float] = []
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                part = conn.recv(65536)
                if not part:
                    return
                data += part
            head, _, rest = data.partition(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            while len(rest) < length:
                rest += conn.recv(65536)
            self.requests.append(head + b"\r\n\r\n" + rest)
            script = self.scripts.pop(0) if self.scripts else Script(status="500 No Script")
            headers = {**script.headers, "Connection": "close"}
            try:
                conn.sendall(f"HTTP/1.1 {script.status}\r\n".encode()
                             + b"".join(f"{k}: {v}\r\n".encode() for k, v in headers.items()) + b"\r\n")
                for piece in script.body:
                    if isinstance(piece, float):
                        time.sleep(piece)
                    else:
                        conn.sendall(piece)
                if script.abort:
                    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    return
                if script.hold:
                    # Keep the socket open, silent, until the client hangs up (a stall).
                    while not self._stop and conn.recv(65536) != b"":
                        pass
            except OSError:
                pass
            finally:
                self.closed_at.append(time.monotonic())

    def close(self) -> None:
        self._stop = True
        self._sock.close()
