"""Serving the simulator app with uvicorn on an already bound socket."""

from __future__ import annotations

import asyncio
import logging
import socket
from typing import Any, Callable

import uvicorn

from .app import SimApp, Transports

__all__ = ["bind_socket", "make_server", "protocol_class", "serve"]

logger = logging.getLogger(__name__)


def protocol_class(transports: Transports) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (httptools if installed, else h11) that records transports by client address."""
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    base: Any = AutoHTTPProtocol

    class SimHTTPProtocol(base):  # type: ignore[misc, valid-type]
        """Registers its transport so the app can abort the connection for reset faults."""

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if self.client is not None:
                transports[self.client] = transport

        def connection_lost(self, exc: Exception | None) -> None:
            if self.client is not None and transports.get(self.client) is self.transport:
                del transports[self.client]
            super().connection_lost(exc)

    return SimHTTPProtocol


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket; ``port=0`` picks a free port."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def make_server(app: SimApp) -> uvicorn.Server:
    """A uvicorn server for ``app``: asyncio loop, no access log, quick graceful shutdown."""
    config = uvicorn.Config(
        app,
        loop="asyncio",
        http=protocol_class(app.transports),
        ws="none",
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
        backlog=2048,
    )
    return uvicorn.Server(config)


async def serve(app: SimApp, sock: socket.socket, on_ready: Callable[[], None] | None = None) -> None:
    """Serve ``app`` on ``sock`` until the server is told to exit; call ``on_ready`` once accepting."""
    server = make_server(app)
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
            return
        await asyncio.sleep(0.005)
    if on_ready is not None:
        on_ready()
    await task
