"""One pooled httpx client per host, reused across runs (a new client costs 30-40 ms)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

import httpx

from . import rx_stamps

__all__ = ["ClientPool", "host_key", "is_loopback_url"]


def host_key(url: str) -> str:
    """``scheme://host:port`` of a URL: the unit of pooling and of per-host concurrency."""
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname}:{port}"


def is_loopback_url(url: str) -> bool:
    """True when the URL's host is localhost or a loopback address."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _stamped_transport(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    from .rx_transport import transport  # httpcore: imported with the first client, not with us

    return transport(limits)


class ClientPool:
    """Lazily created AsyncClients keyed by host; lives on the engine loop."""

    def __init__(self) -> None:
        self._clients: dict[str, httpx.AsyncClient] = {}

    def client_for(self, url: str) -> httpx.AsyncClient:
        """The client for ``url``'s host, created on first use."""
        # Plain-HTTP hosts: chunk arrival times from the kernel's receive stamps (rx_stamps).
        stamped = urlsplit(url).scheme == "http" and rx_stamps.enabled()
        key = host_key(url) + (" rx-stamped" if stamped else "")
        client = self._clients.get(key)
        if client is None or client.is_closed:
            limits = httpx.Limits(max_connections=None, max_keepalive_connections=256)
            client = httpx.AsyncClient(
                timeout=httpx.Timeout(10.0, read=None),
                limits=limits,
                transport=_stamped_transport(limits) if stamped else None,
                # Proxies from the environment apply to remote hosts, never to loopback.
                trust_env=not is_loopback_url(url),
                follow_redirects=False,
            )
            self._clients[key] = client
        return client

    async def aclose(self) -> None:
        """Close every client (at engine shutdown)."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()
