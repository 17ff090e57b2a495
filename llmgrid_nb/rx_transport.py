"""The httpcore network backend behind kernel receive timestamps (see ``rx_stamps``): plain TCP
connections read with ``recvmsg``, each read keeping the kernel's stamp of its last packet."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any, Iterable

import httpcore
import httpx
from httpcore._exceptions import map_exceptions
from httpcore._utils import is_socket_readable

from .rx_stamps import ANCILLARY_SPACE, SO_TIMESTAMPNS, TIMESPEC

__all__ = ["KernelStampedBackend", "KernelStampedStream", "transport"]

# asyncio.TimeoutError is TimeoutError from Python 3.11 on; TimeoutError is also an OSError.
_CONNECT_ERRORS = {asyncio.TimeoutError: httpcore.ConnectTimeout, TimeoutError: httpcore.ConnectTimeout,
                   OSError: httpcore.ConnectError}
_READ_ERRORS = {asyncio.TimeoutError: httpcore.ReadTimeout, TimeoutError: httpcore.ReadTimeout,
                OSError: httpcore.ReadError}
_WRITE_ERRORS = {asyncio.TimeoutError: httpcore.WriteTimeout, TimeoutError: httpcore.WriteTimeout,
                 OSError: httpcore.WriteError}


class KernelStampedStream(httpcore.AsyncNetworkStream):
    """A plain TCP connection read with ``recvmsg``, keeping the kernel stamp of the last read."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        #: Kernel receive time of the last read that returned bytes (``time.monotonic`` seconds).
        self.received_at: float | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        with map_exceptions(_READ_ERRORS):
            while True:
                try:
                    data, ancillary, _flags, _addr = self._sock.recvmsg(max_bytes, ANCILLARY_SPACE)
                except (BlockingIOError, InterruptedError):
                    await _wait(self._sock, timeout, readable=True)
                    continue
                if ancillary:
                    self._stamp(ancillary)
                return data

    def _stamp(self, ancillary: list[tuple[int, int, bytes]]) -> None:
        for level, kind, payload in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(payload) >= TIMESPEC.size:
                sec, nsec = TIMESPEC.unpack_from(payload)
                # The stamp is on the wall clock: move it to the monotonic clock via the offset
                # between the two now (a step of the wall clock between packet and read would
                # shift it, so it is clamped into what the monotonic clock allows).
                mono_ns = time.monotonic_ns()
                offset_ns = time.clock_gettime_ns(time.CLOCK_REALTIME) - mono_ns
                stamp_ns = min(sec * 1_000_000_000 + nsec - offset_ns, mono_ns)
                stamp = stamp_ns / 1e9
                self.received_at = stamp if self.received_at is None else max(stamp, self.received_at)
                return

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        with map_exceptions(_WRITE_ERRORS):
            view = memoryview(buffer)
            while view:
                try:
                    sent = self._sock.send(view)
                except (BlockingIOError, InterruptedError):
                    await _wait(self._sock, timeout, readable=False)
                    continue
                view = view[sent:]

    async def aclose(self) -> None:
        self._sock.close()

    async def start_tls(self, ssl_context: Any, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("kernel-stamped connections are plain HTTP only")

    def get_extra_info(self, info: str) -> Any:
        if info == "socket":
            return self._sock
        if info == "client_addr":
            return self._sock.getsockname()
        if info == "server_addr":
            return self._sock.getpeername()
        if info == "is_readable":
            return is_socket_readable(self._sock)
        return None


async def _wait(sock: socket.socket, timeout: float | None, *, readable: bool) -> None:
    """Until ``sock`` is readable (or writable), or TimeoutError after ``timeout`` seconds."""
    loop = asyncio.get_running_loop()
    ready = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    fd = sock.fileno()
    (loop.add_reader if readable else loop.add_writer)(fd, wake)
    try:
        await asyncio.wait_for(ready, timeout)
    finally:
        (loop.remove_reader if readable else loop.remove_writer)(fd)


class KernelStampedBackend(httpcore.AsyncNetworkBackend):
    """Opens :class:`KernelStampedStream` connections (asyncio only, like the engine loop)."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        with map_exceptions(_CONNECT_ERRORS):
            return await asyncio.wait_for(self._connect(loop, host, port, local_address, socket_options),
                                          timeout)

    async def _connect(self, loop: asyncio.AbstractEventLoop, host: str, port: int,
                       local_address: str | None, socket_options: Iterable[Any] | None) -> KernelStampedStream:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        error: OSError = OSError(f"no address for {host}")
        for family, kind, proto, _name, address in infos:
            sock = socket.socket(family, kind, proto)
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as asyncio's own sockets
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                for option in socket_options or ():
                    sock.setsockopt(*option)
                if local_address:
                    sock.bind((local_address, 0))
                await loop.sock_connect(sock, address)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            except BaseException:
                sock.close()
                raise
            return KernelStampedStream(sock)
        raise error

    async def connect_unix_socket(self, path: str, timeout: float | None = None,
                                  socket_options: Iterable[Any] | None = None) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("kernel-stamped connections are TCP only")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def transport(limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose plain-HTTP connections carry kernel receive timestamps."""
    result = httpx.AsyncHTTPTransport(limits=limits)
    # httpx builds its pool with httpcore's default backend and has no argument for another one:
    # the same pool, with ours (httpx is pinned to a range where _pool is this pool).
    result._pool = httpcore.AsyncConnectionPool(
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        network_backend=KernelStampedBackend(),
    )
    return result
