"""Brave Web Search API emulation: request validation, rate limiting and result payloads."""

from __future__ import annotations

import datetime as dt
import math
import re
import time
import uuid
import zlib
from collections import deque
from dataclasses import dataclass
from html import escape
from typing import Any, Mapping
from urllib.parse import urlsplit

from .corpus import TOPICS, Topic, prose_sentences, topic_by_key, words

__all__ = ["BraveError", "BraveRateLimiter", "RateDecision", "page_title", "search_payload", "token_error"]

MONTHLY_QUOTA = 15_000
_ANGLES = (
    "A Practical Guide",
    "Explained Simply",
    "Common Pitfalls and How to Avoid Them",
    "Best Practices",
    "A Deep Dive",
    "Frequently Asked Questions",
    "Lessons from Production",
    "What You Need to Know",
    "A Beginner's Tutorial",
    "Patterns That Scale",
)
_SITES = (
    "DevNotes",
    "The Byte Journal",
    "Engineering Field Guide",
    "Stack Patterns",
    "Practical Systems",
    "Code & Context",
)
HOSTILE_URLS = (
    "http://10.0.0.5/",
    "http://169.254.169.254/latest/meta-data/",
    "http://localhost:6379/",
    "http://[::1]:8080/admin",
    "http://192.168.1.1/login",
    "file:///etc/passwd",
)
_BOOL = {"true": True, "1": True, "false": False, "0": False}


class BraveError(Exception):
    """A Brave ``ErrorResponse``: status, code, detail and meta."""

    def __init__(self, status: int, code: str, detail: str, meta: dict[str, Any]) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.meta = meta

    def payload(self) -> dict[str, Any]:
        """The JSON body Brave returns for this error."""
        return {
            "type": "ErrorResponse",
            "error": {
                "id": str(uuid.uuid4()),
                "status": self.status,
                "code": self.code,
                "detail": self.detail,
                "meta": self.meta,
            },
            "time": int(time.time()),
        }


def token_error() -> BraveError:
    """The error for a missing or invalid ``X-Subscription-Token``."""
    detail = "The provided subscription token is invalid."
    return BraveError(422, "SUBSCRIPTION_TOKEN_INVALID", detail, {"component": "authentication"})


@dataclass(frozen=True, slots=True)
class RateDecision:
    """Whether a request may proceed, and the rate-limit headers to send either way."""

    allowed: bool
    headers: tuple[tuple[bytes, bytes], ...]
    error: BraveError | None = None


class BraveRateLimiter:
    """Per-token sliding one-second window plus a monthly quota, reported like Brave's headers."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._window = max(1.0, 1.0 / rate) if rate > 0 else 1.0
        self._capacity = max(1, round(rate * self._window)) if rate > 0 else 1
        self._recent: dict[str, deque[float]] = {}
        self._monthly: dict[str, int] = {}

    def check(self, token: str, now: float, *, count: bool = True) -> RateDecision:
        """Count one request for ``token`` at monotonic ``now`` unless it is over the limit.

        With ``count=False`` nothing is counted (requests rejected before rate limiting).
        """
        recent = self._recent.get(token, deque())
        while recent and now - recent[0] >= self._window:
            recent.popleft()
        used = self._monthly.get(token, 0)
        allowed = self.rate <= 0 or len(recent) < self._capacity
        error = None
        if allowed and count:
            if self.rate > 0:
                recent.append(now)
                self._recent[token] = recent
            used += 1
            self._monthly[token] = used
        elif not allowed:
            meta = {
                "plan": "Free",
                "rate_limit": self._capacity,
                "rate_current": len(recent) + 1,
                "quota_limit": MONTHLY_QUOTA,
                "quota_current": used,
                "component": "rate_limiter",
            }
            error = BraveError(429, "RATE_LIMITED", "Request rate limit exceeded for plan.", meta)
        remaining = max(0, self._capacity - len(recent)) if self.rate > 0 else self._capacity
        reset = math.ceil(self._window - (now - recent[0])) if recent else 0
        limit = self._capacity
        headers = (
            (b"x-ratelimit-limit", f"{limit}, {MONTHLY_QUOTA}".encode()),
            (b"x-ratelimit-policy", f"{limit};w={int(self._window)}, {MONTHLY_QUOTA};w=2592000".encode()),
            (b"x-ratelimit-remaining", f"{remaining}, {max(0, MONTHLY_QUOTA - used)}".encode()),
            (b"x-ratelimit-reset", f"{max(reset, 0)}, {_seconds_to_month_end()}".encode()),
        )
        return RateDecision(allowed, headers, error)


def _seconds_to_month_end() -> int:
    now = dt.datetime.now(dt.timezone.utc)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    start = dt.datetime(year, month, 1, tzinfo=dt.timezone.utc)
    return int((start - now).total_seconds())


def _validation(loc: str, type_: str, msg: str, value: object, ctx: dict[str, Any] | None = None) -> BraveError:
    err: dict[str, Any] = {"type": type_, "loc": ["query", loc], "msg": msg, "input": value}
    if ctx:
        err["ctx"] = ctx
    return BraveError(422, "VALIDATION", "Unable to validate request parameter(s)", {"errors": [err]})


def _int_param(params: Mapping[str, str], name: str, default: int, lo: int, hi: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        msg = "Input should be a valid integer, unable to parse string as an integer"
        raise _validation(name, "int_parsing", msg, raw) from None
    if value < lo:
        raise _validation(name, "greater_than_equal", f"Input should be greater than or equal to {lo}", raw, {"ge": lo})
    if value > hi:
        raise _validation(name, "less_than_equal", f"Input should be less than or equal to {hi}", raw, {"le": hi})
    return value


def _bool_param(params: Mapping[str, str], name: str, default: bool) -> bool:
    raw = params.get(name)
    if raw is None:
        return default
    if raw.lower() not in _BOOL:
        raise _validation(name, "bool_parsing", "Input should be a valid boolean, unable to interpret input", raw)
    return _BOOL[raw.lower()]


def _ranked_topics(query: str) -> list[Topic]:
    qwords = words(query)
    scored = sorted(
        ((len(t.keywords & qwords), i, t) for i, t in enumerate(TOPICS) if t.keywords),
        key=lambda x: (-x[0], x[1]),
    )
    relevant = [t for score, _, t in scored if score > 0]
    return relevant or [t for _, _, t in scored] + [topic_by_key("general")]


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def page_title(slug: str) -> tuple[Topic, int, str, str]:
    """Topic, article number, title and site name that a page slug stands for."""
    key, _, rest = slug.partition("-")
    number_text, _, _ = rest.partition("-")
    topic = topic_by_key(key)
    number = int(number_text) if number_text.isdigit() else zlib.crc32(slug.encode()) % 100
    angle = _ANGLES[number % len(_ANGLES)]
    return topic, number, f"{topic.title}: {angle}", _SITES[(number + len(topic.key)) % len(_SITES)]


def _highlight(text: str, qwords: set[str]) -> str:
    body = escape(text, quote=True).replace("'", "&#x27;")
    useful = sorted((w for w in qwords if len(w) > 1), key=len, reverse=True)
    if not useful:
        return body
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in useful) + r")\b", re.IGNORECASE)
    return pattern.sub(r"<strong>\1</strong>", body)


def _date(seed: int) -> dt.datetime:
    return dt.datetime(2023, 1, 1) + dt.timedelta(days=seed % 700, hours=seed % 24)


def _human_date(when: dt.datetime) -> str:
    return f"{when:%B} {when.day}, {when.year}"


def _result(
    topic: Topic, number: int, base_url: str, qwords: set[str], decorate: bool, snippets: bool, lang: str
) -> dict[str, Any]:
    _, _, title, site = page_title(f"{topic.key}-{number}")
    slug = f"{topic.key}-{number}-{_slugify(title.split(': ', 1)[1])}"
    url = f"{base_url}/pages/{slug}"
    sentences = prose_sentences(topic)
    best = max(
        range(len(sentences)),
        key=lambda i: (len(words(sentences[i]) & qwords), -((i - number) % len(sentences))),
    )
    start = (best + number) % len(sentences) if number else best
    description = sentences[start]
    if len(description) < 120:
        description += " " + sentences[(start + 1) % len(sentences)]
    result: dict[str, Any] = {
        "title": title,
        "url": url,
        "is_source_local": False,
        "is_source_both": False,
        "description": _highlight(description, qwords) if decorate else description,
        "page_age": _date(zlib.crc32(slug.encode())).strftime("%Y-%m-%dT%H:%M:%S"),
        "age": _human_date(_date(zlib.crc32(slug.encode()))),
        "profile": {},
        "language": lang,
        "family_friendly": True,
        "type": "search_result",
        "subtype": "generic",
        "is_live": False,
        "meta_url": {},
    }
    if snippets:
        extra = [sentences[(start + k) % len(sentences)] for k in range(2, 6)]
        result["extra_snippets"] = [_highlight(s, qwords) if decorate else s for s in extra]
    _fill_site(result, url, site)
    return result


def _fill_site(result: dict[str, Any], url: str, site: str) -> None:
    parts = urlsplit(url)
    netloc = parts.netloc
    hostname = parts.hostname or ""
    path = " › ".join(p for p in parts.path.split("/") if p)
    favicon = f"{parts.scheme}://{netloc}/favicon.ico" if netloc else ""
    result["profile"] = {"name": site, "url": url, "long_name": netloc or url, "img": favicon}
    result["meta_url"] = {
        "scheme": parts.scheme,
        "netloc": netloc,
        "hostname": hostname,
        "favicon": favicon,
        "path": f"› {path}" if path else "",
    }


def _hostile_result(url: str, index: int, decorate: bool) -> dict[str, Any]:
    text = "Internal administration interface. Sign in to continue."
    result: dict[str, Any] = {
        "title": f"Admin console {index}",
        "url": url,
        "is_source_local": False,
        "is_source_both": False,
        "description": f"<strong>Internal</strong> {text[9:]}" if decorate else text,
        "page_age": "2024-01-01T00:00:00",
        "age": "January 1, 2024",
        "profile": {},
        "language": "en",
        "family_friendly": True,
        "type": "search_result",
        "subtype": "generic",
        "is_live": False,
        "meta_url": {},
    }
    _fill_site(result, url, "intranet")
    return result


#: Hostile markup in titles and descriptions (``sim_xss=1``), for sanitiser tests.
SNIPPET_XSS_TITLE = '<img src=x onerror="window.__llmgrid_xss=1">'
SNIPPET_XSS = ('<script>window.__llmgrid_xss=1</script><svg onload="window.__llmgrid_xss=1"></svg>'
               '<a href="javascript:window.__llmgrid_xss=1">click</a> ')


def search_payload(params: Mapping[str, str], base_url: str) -> dict[str, Any]:
    """The Brave ``/res/v1/web/search`` response for query ``params``; raises BraveError on bad input.

    Result URLs point at ``base_url/pages/...`` (the simulator itself); ``sim_hostile=1``
    replaces the first results with private or odd addresses for SSRF tests; ``sim_xss=1``
    puts hostile markup in titles and descriptions; ``sim_pages=big`` links ~200 KB pages.
    """
    q = params.get("q")
    if q is None or not q.strip():
        if q is None:
            raise _validation("q", "missing", "Field required", q)
        raise _validation("q", "string_too_short", "String should have at least 1 character", q)
    if len(q) > 400:
        raise _validation("q", "string_too_long", "String should have at most 400 characters", q, {"max_length": 400})
    count = _int_param(params, "count", 20, 1, 20)
    offset = _int_param(params, "offset", 0, 0, 9)
    decorate = _bool_param(params, "text_decorations", True)
    snippets = _bool_param(params, "extra_snippets", False)
    safesearch = params.get("safesearch", "moderate")
    if safesearch not in ("off", "moderate", "strict"):
        expected = "'off', 'moderate' or 'strict'"
        raise _validation("safesearch", "enum", f"Input should be {expected}", safesearch, {"expected": expected})
    country = params.get("country", "US")
    if not (country.upper() == "ALL" or re.fullmatch(r"[A-Za-z]{2}", country)):
        raise _validation("country", "enum", "Input should be a valid country code", country)
    lang = params.get("search_lang", "en")
    if not re.fullmatch(r"[a-z]{2}(-[a-z]{2,4})?", lang):
        raise _validation("search_lang", "enum", "Input should be a valid language code", lang)
    hostile = _bool_param(params, "sim_hostile", False)
    xss = _bool_param(params, "sim_xss", False)
    pages = "/pages/big/" if params.get("sim_pages") == "big" else "/pages/"

    qwords = words(q)
    ranked = _ranked_topics(q)
    results: list[dict[str, Any]] = []
    for i in range(count):
        g = offset * count + i
        if hostile and g < len(HOSTILE_URLS):
            results.append(_hostile_result(HOSTILE_URLS[g], g, decorate))
            continue
        topic = ranked[g % len(ranked)]
        result = _result(topic, g // len(ranked), base_url, qwords, decorate, snippets, lang)
        result["url"] = result["url"].replace("/pages/", pages, 1)
        if xss:
            result["title"] = SNIPPET_XSS_TITLE + result["title"]
            result["description"] = SNIPPET_XSS + result["description"]
        results.append(result)
    query: dict[str, Any] = {"original": q}
    normalized = " ".join(q.split())
    if normalized != q:
        query["altered"] = normalized
    query.update(
        {
            "show_strict_warning": False,
            "is_navigational": False,
            "is_news_breaking": False,
            "spellcheck_off": True,
            "country": country.lower(),
            "bad_results": False,
            "should_fallback": False,
            "postal_code": "",
            "city": "",
            "header_country": "",
            "more_results_available": offset < 9,
            "state": "",
        }
    )
    return {
        "type": "search",
        "query": query,
        "mixed": {
            "type": "mixed",
            "main": [{"type": "web", "index": i, "all": False} for i in range(len(results))],
            "top": [],
            "side": [],
        },
        "web": {"type": "search", "results": results, "family_friendly": safesearch != "off"},
    }


