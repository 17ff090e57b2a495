"""Content enrichment: fetch result pages safely and extract their main text.

Fetching is guarded against server-side request forgery: only http/https, every redirect hop
re-checked, and hosts that resolve to private, loopback, link-local or reserved addresses are
refused unless allowed (the loopback simulator is allowed by host:port). Bodies are capped in
bytes and extracted text in characters, so memory stays bounded whatever a page sends.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import httpx

from ..clients import host_key
from .base import StreamContext

__all__ = ["FetchError", "Page", "extract_text", "fetch_page", "check_url", "key_sentences"]

_DROP = ("script", "style", "noscript", "nav", "header", "footer", "aside", "form", "iframe", "svg",
         "button", "[role=dialog]", "[aria-hidden=true]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
_WORD = re.compile(r"[a-z0-9]{3,}")
_STOP = frozenset("the and for are but not you all any can had her was one our out has how why what "
                  "when who which with this that from they will would there their does into your".split())


class FetchError(Exception):
    """A page could not be fetched or used; the message says why."""


@dataclass(frozen=True, slots=True)
class Page:
    """A fetched page's main text (capped) and how long it took."""

    url: str
    title: str
    text: str
    bytes_read: int
    seconds: float


def _ip_is_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved
                or ip.is_multicast or ip.is_unspecified)


async def check_url(url: str, *, allowed_hosts: Collection[str] = (), allow_private: bool = False) -> None:
    """Raise FetchError unless ``url`` is http(s) and its host resolves only to public addresses."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise FetchError(f"refused {parts.scheme or 'schemeless'} URL (only http and https are fetched)")
    host = parts.hostname
    if not host:
        raise FetchError("refused a URL without a host")
    if host_key(url) in allowed_hosts or allow_private:
        return
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, parts.port or 443, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise FetchError(f"cannot resolve {host}: {exc.strerror or exc}") from None
        addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for ip in addresses:
        if not _ip_is_public(ip):
            raise FetchError(f"refused {host}: it resolves to a non-public address ({ip}); "
                             "pass allow_private=True to fetch from your own network")


def extract_text(html: str, *, max_chars: int = 20_000) -> tuple[str, str]:
    """(title, main text) of an HTML page: the article or main element, without boilerplate."""
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = title_node.text(strip=True) if title_node else ""
    for selector in _DROP:
        for node in tree.css(selector):
            node.decompose()
    root = tree.css_first("article") or tree.css_first("main") or tree.body
    if root is None:
        return title, ""
    blocks = [n.text(separator=" ", strip=True) for n in root.css("h1, h2, h3, h4, p, li, pre, blockquote")]
    text = "\n".join(b for b in blocks if b) or root.text(separator=" ", strip=True)
    text = re.sub(r"[ \t]+", " ", text)
    return title, text[:max_chars]


def key_sentences(text: str, query: str, *, n: int = 2) -> str:
    """The ``n`` sentences of ``text`` that share most words with ``query``, in page order.

    Sentences are split within each block (paragraph, list item), and short blocks such as
    headings and bylines are skipped, so a finding never starts with a page's title.
    """
    wanted = {w for w in _WORD.findall(query.lower()) if w not in _STOP}
    sentences = [s.strip() for block in text.split("\n") if len(block) >= 60
                 for s in _SENTENCE.split(block) if len(s.strip()) > 20]
    if not sentences:
        return text[:300]
    scored = sorted(range(len(sentences)),
                    key=lambda i: (-len(wanted & set(_WORD.findall(sentences[i].lower()))), i))
    return " ".join(sentences[i] for i in sorted(scored[:n]))


async def fetch_page(
    ctx: StreamContext,
    url: str,
    *,
    allowed_hosts: Collection[str] = (),
    allow_private: bool = False,
    max_bytes: int = 2_000_000,
    max_chars: int = 20_000,
    timeout: float = 10.0,
    max_redirects: int = 3,
) -> Page:
    """Fetch ``url`` (following checked redirects) and extract its main text, within limits."""
    t0 = ctx.now()
    try:
        return await asyncio.wait_for(
            _fetch(ctx, url, allowed_hosts, allow_private, max_bytes, max_chars, max_redirects, t0), timeout)
    except asyncio.TimeoutError:
        raise FetchError(f"timed out after {timeout:g} s") from None


async def _fetch(ctx: StreamContext, url: str, allowed_hosts: Collection[str], allow_private: bool,
                 max_bytes: int, max_chars: int, max_redirects: int, t0: float) -> Page:
    current = url
    for _ in range(max_redirects + 1):
        await check_url(current, allowed_hosts=allowed_hosts, allow_private=allow_private)
        client = ctx.client(current)
        try:
            async with client.stream("GET", current, headers={"Accept": "text/html,text/plain;q=0.9"},
                                     timeout=httpx.Timeout(ctx.connect_timeout, read=10.0)) as resp:
                if resp.is_redirect and resp.headers.get("location"):
                    current = urljoin(current, resp.headers["location"])
                    continue
                if resp.status_code >= 400:
                    raise FetchError(f"HTTP {resp.status_code}")
                ctype = resp.headers.get("content-type", "")
                if ctype and not ctype.startswith(("text/html", "text/plain", "application/xhtml")):
                    raise FetchError(f"not a web page ({ctype.split(';')[0]})")
                body = bytearray()
                async for part in resp.aiter_bytes():
                    ctx.activity()
                    body += part
                    if len(body) >= max_bytes:
                        break
        except httpx.HTTPError as exc:
            raise FetchError(str(exc) or type(exc).__name__) from None
        html = bytes(body[:max_bytes]).decode(resp.charset_encoding or "utf-8", errors="replace")
        if ctype.startswith("text/plain"):
            title, text = "", html[:max_chars]
        else:
            title, text = extract_text(html, max_chars=max_chars)
        if not text.strip():
            raise FetchError("no readable text on the page")
        return Page(url, title, text, len(body), ctx.now() - t0)
    raise FetchError(f"more than {max_redirects} redirects")
