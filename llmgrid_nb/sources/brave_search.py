"""The Brave Web Search API client: documented parameters, errors, rate-limit pacing, caching.

``GET /res/v1/web/search`` with ``X-Subscription-Token``. The free plan allows 1 request/s and
documents no Retry-After, so requests are paced client-side from the ``X-RateLimit-Remaining``
and ``X-RateLimit-Reset`` headers (per-second value first), and a 429 is waited out and retried
instead of raised. Identical queries are cached for the session.
"""

from __future__ import annotations

import asyncio
import html
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..config import Secret, env_key
from ..errors import ConfigError, ProviderError
from .base import StreamContext
from .http_errors import translate_transport_error

__all__ = ["BRAVE_KEY_ENV", "BRAVE_URL", "BraveResult", "SearchResponse", "brave_key", "search",
           "strip_tags"]

BRAVE_URL = "https://api.search.brave.com"
BRAVE_KEY_ENV = ("BRAVE_API_KEY", "BRAVE_SEARCH_API_KEY")
_TAG = re.compile(r"<[^>]+>")
_cache: dict[tuple[str, tuple[tuple[str, str], ...]], SearchResponse] = {}
_pace: dict[str, float] = {}  # per key: monotonic time before which the next request must wait


def brave_key(api_key: str | Secret | None = None) -> Secret | None:
    """The Brave key: the argument, else BRAVE_API_KEY, else BRAVE_SEARCH_API_KEY."""
    if isinstance(api_key, str):
        return Secret(api_key)
    return api_key or env_key(BRAVE_KEY_ENV)


def strip_tags(text: str) -> str:
    """Plain text from a description with ``<strong>`` decorations and entities."""
    return html.unescape(_TAG.sub("", text))


@dataclass(frozen=True, slots=True)
class BraveResult:
    """One web result; ``description`` keeps the API's HTML (render it sanitised), ``text`` is plain."""

    rank: int
    title: str
    url: str
    description: str
    age: str = ""
    page_age: str = ""
    site: str = ""
    extra_snippets: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        """The description and extra snippets as plain text (for prompts)."""
        return " ".join(strip_tags(s) for s in (self.description, *self.extra_snippets) if s)


@dataclass(frozen=True, slots=True)
class SearchResponse:
    """The parsed ``query`` block and web results of one search."""

    original: str
    altered: str | None
    more_results_available: bool
    results: tuple[BraveResult, ...]
    cached: bool = False
    rate_limit: Mapping[str, str] = field(default_factory=dict)


def validate_params(q: str, count: int, offset: int) -> None:
    """The documented limits: q up to 400 characters, count 1-20, offset 0-9."""
    if not q.strip():
        raise ConfigError("the search query is empty")
    if len(q) > 400:
        raise ConfigError(f"the search query has {len(q)} characters; Brave allows at most 400")
    if not 1 <= count <= 20:
        raise ConfigError(f"count must be 1-20, got {count}")
    if not 0 <= offset <= 9:
        raise ConfigError(f"offset must be 0-9 (pages), got {offset}")


def _first_number(header: str | None) -> float | None:
    if not header:
        return None
    try:
        return float(header.split(",")[0].strip())
    except ValueError:
        return None


def _parse(payload: Mapping[str, Any]) -> tuple[str, str | None, bool, tuple[BraveResult, ...]]:
    query = payload.get("query") or {}
    raw = ((payload.get("web") or {}).get("results")) or []
    results = []
    for i, r in enumerate(raw, 1):
        if not isinstance(r, Mapping) or not r.get("url"):
            continue
        meta = r.get("meta_url") or {}
        profile = r.get("profile") or {}
        results.append(BraveResult(
            rank=i, title=str(r.get("title", "")), url=str(r["url"]), description=str(r.get("description", "")),
            age=str(r.get("age", "") or ""), page_age=str(r.get("page_age", "") or ""),
            site=str(profile.get("name") or meta.get("hostname") or ""),
            extra_snippets=tuple(str(s) for s in r.get("extra_snippets") or ()),
        ))
    return (str(query.get("original", "")), query.get("altered"),
            bool(query.get("more_results_available", False)), tuple(results))


def _error_message(response: httpx.Response) -> tuple[str, str]:
    """(code, message) from Brave's ErrorResponse, or a description of the body."""
    try:
        err = response.json().get("error") or {}
        code = str(err.get("code") or "")
        detail = str(err.get("detail") or err.get("message") or "")
        return code, detail or response.text[:200]
    except ValueError:
        return "", response.text[:200]


async def search(
    ctx: StreamContext,
    q: str,
    *,
    base_url: str = BRAVE_URL,
    key: Secret,
    count: int = 10,
    offset: int = 0,
    params: Mapping[str, Any] | None = None,
    use_cache: bool = True,
    max_rate_limit_waits: int = 5,
) -> SearchResponse:
    """One web search, paced by the rate-limit headers, retried after a 429, cached."""
    validate_params(q, count, offset)
    query: dict[str, str] = {"q": q, "count": str(count), "offset": str(offset)}
    for name, value in (params or {}).items():
        if value is not None:
            query[name] = str(value).lower() if isinstance(value, bool) else str(value)
    cache_key = (base_url, tuple(sorted(query.items())))
    if use_cache and cache_key in _cache:
        hit = _cache[cache_key]
        return SearchResponse(hit.original, hit.altered, hit.more_results_available, hit.results, True,
                              hit.rate_limit)
    url = base_url.rstrip("/") + "/res/v1/web/search"
    headers = {"Accept": "application/json", "Accept-Encoding": "gzip", "X-Subscription-Token": key.get()}
    client = ctx.client(url)
    pace_key = f"{base_url}|{hash(key.get())}"
    for _ in range(max_rate_limit_waits + 1):
        wait = _pace.get(pace_key, 0.0) - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            response = await client.get(url, params=query, headers=headers,
                                        timeout=httpx.Timeout(ctx.connect_timeout, read=30.0))
        except httpx.HTTPError as exc:
            raise translate_transport_error(exc, url) from None
        ctx.first_message(ctx.activity())
        remaining = _first_number(response.headers.get("x-ratelimit-remaining"))
        reset = _first_number(response.headers.get("x-ratelimit-reset"))
        if remaining is not None and remaining <= 0:
            _pace[pace_key] = time.monotonic() + max(reset or 1.0, 0.05)
        if response.status_code == 429:
            code, detail = _error_message(response)
            if code == "QUOTA_LIMITED":
                raise ProviderError(f"Brave Search quota exhausted (HTTP 429 {code}): {detail}",
                                    status_code=429, kind="rate_limit")
            _pace[pace_key] = time.monotonic() + max(reset or 1.0, 0.05)
            continue
        if response.status_code >= 400:
            code, detail = _error_message(response)
            if code == "SUBSCRIPTION_TOKEN_INVALID":
                message = f"Brave Search rejected the key (HTTP {response.status_code} {code}): {detail}; check BRAVE_API_KEY"
            else:
                message = f"Brave Search error (HTTP {response.status_code} {code or 'error'}): {detail}"
            raise ProviderError(key.redact(message), status_code=response.status_code,
                                retryable=response.status_code >= 500, kind="search")
        try:
            original, altered, more, results = _parse(response.json())
        except ValueError:
            raise ProviderError("Brave Search answered with something that is not JSON", kind="protocol") from None
        limits = {k: v for k, v in response.headers.items() if k.lower().startswith("x-ratelimit-")}
        result = SearchResponse(original, altered, more, results, False, limits)
        if use_cache:
            _cache[cache_key] = result
        return result
    raise ProviderError(f"Brave Search kept answering 429 RATE_LIMITED after {max_rate_limit_waits} waits",
                        status_code=429, retryable=True, kind="rate_limit")
