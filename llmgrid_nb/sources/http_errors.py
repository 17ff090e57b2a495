"""The one boundary where httpx exceptions and HTTP error responses become ProviderErrors."""

from __future__ import annotations

import email.utils
import json
import ssl
import time
from collections.abc import Sequence
from typing import TypeVar

import httpx

from ..config import Secret
from ..errors import ProviderError

__all__ = ["describe_error_object", "error_from_response", "google_retry_delay", "parse_retry_after",
           "translate_transport_error"]

_MAX_ERROR_BODY = 64 * 1024
E = TypeVar("E", bound=BaseException)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _provider_message(body: bytes, content_type: str, provider: str = "") -> tuple[str, object]:
    """The provider's own error text from a JSON error body (or a description of the body),
    and the parsed body (None when it is not JSON)."""
    text = body.decode("utf-8", errors="replace").strip()
    if "html" in content_type or text[:15].lower().startswith(("<!doctype", "<html")):
        return "the server answered with an HTML page, not the API's JSON", None
    try:
        obj = json.loads(text)
    except ValueError:
        return text[:300] or "(empty body)", None
    return describe_error_object(obj, provider) or text[:300], obj


def google_retry_delay(err: object) -> float | None:
    """Seconds from a ``google.rpc.RetryInfo`` detail (``"retryDelay": "34.4s"``): Google says
    how long to wait in the error body, not in a Retry-After header."""
    for detail in _details(err):
        delay = detail.get("retryDelay")
        if isinstance(delay, str) and delay.endswith("s"):
            try:
                return max(0.0, float(delay[:-1]))
            except ValueError:
                return None
    return None


def _details(err: object) -> list[dict[str, object]]:
    details = err.get("details") if isinstance(err, dict) else None
    return [d for d in details if isinstance(d, dict)] if isinstance(details, list) else []


def _bad_key(obj: object) -> bool:
    """Google answers a bad API key with HTTP 400 INVALID_ARGUMENT, reason API_KEY_INVALID."""
    err = obj.get("error") if isinstance(obj, dict) else None
    return any(d.get("reason") == "API_KEY_INVALID" for d in _details(err))


def describe_error_object(obj: object, provider: str = "") -> str:
    """A one-line message from the error shapes providers use (OpenAI, Ollama, Brave, ...).

    With ``provider`` named, the provider's error type leads, as it says it: Anthropic's
    ``error.type`` ("Anthropic overloaded_error: Overloaded"), Google's ``error.status``.
    """
    if isinstance(obj, dict):
        err = obj.get("error", obj)
        if isinstance(err, str):
            return err
        if isinstance(err, dict):
            for key in ("message", "detail", "msg"):
                if isinstance(err.get(key), str):
                    if provider:
                        etype = err.get("type") or err.get("status") or err.get("code")
                        label = f"{provider} {etype}" if isinstance(etype, str) and etype else provider
                        return f"{label}: {err[key]}"
                    return err[key]
        for key in ("message", "detail"):
            if isinstance(obj.get(key), str):
                return obj[key]
    return ""


async def error_from_response(
    response: httpx.Response, *, key_env: Sequence[str] = (), secret: Secret | None = None,
    provider: str = "",
) -> ProviderError:
    """Read (a bounded part of) an error response and describe it so a user can act."""
    body = b""
    async for part in response.aiter_bytes():
        body += part
        if len(body) >= _MAX_ERROR_BODY:
            break
    status = response.status_code
    detail, obj = _provider_message(body, response.headers.get("content-type", ""), provider)
    if secret is not None:
        detail = secret.redact(detail)
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if retry_after is None and isinstance(obj, dict):
        retry_after = google_retry_delay(obj.get("error"))
    if status in (401, 403) or (status == 400 and _bad_key(obj)):
        hint = f"; check {' or '.join(key_env)}" if key_env else "; check the API key"
        message = f"authentication failed (HTTP {status}): {detail}{hint}"
        kind = "auth"
    elif status == 404:
        message = f"not found (HTTP 404): {detail}"
        kind = "not_found"
    elif status == 429:
        wait = f"; retry after {retry_after:g} s" if retry_after is not None else ""
        message = f"rate limited (HTTP 429): {detail}{wait}"
        kind = "rate_limit"
    elif status >= 500:
        message = f"server error (HTTP {status}): {detail}"
        kind = "server"
    else:
        message = f"request rejected (HTTP {status}): {detail}"
        kind = "bad_request"
    return ProviderError(
        message,
        status_code=status,
        retryable=status == 429 or status >= 500,
        retry_after=retry_after,
        kind=kind,
    )


def _cause(exc: BaseException, kind: type[E]) -> E | None:
    """The ``kind`` exception behind a transport error, following the exception chain."""
    seen: BaseException | None = exc
    for _ in range(6):
        if seen is None:
            return None
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def translate_transport_error(exc: httpx.HTTPError, url: str) -> ProviderError:
    """A transport-level httpx error as a ProviderError that says what happened."""
    where = httpx.URL(url)
    host = f"{where.host}:{where.port}" if where.port else where.host
    reason = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout):
        return ProviderError(f"timed out connecting to {host}", retryable=True, kind="connect")
    if isinstance(exc, httpx.ConnectError):
        tls = _cause(exc, ssl.SSLError)
        if tls is not None:
            return ProviderError(f"TLS error talking to {host}: {getattr(tls, 'reason', None) or tls}",
                                 retryable=False, kind="tls")
        return ProviderError(f"cannot connect to {host}: {reason}", retryable=True, kind="connect")
    if isinstance(exc, httpx.RemoteProtocolError):
        return ProviderError(f"the connection to {host} broke mid-response: {reason}",
                             retryable=True, kind="reset")
    if isinstance(exc, httpx.ReadError):
        reset = not str(exc) or _cause(exc, ConnectionResetError) is not None
        detail = " by the server" if reset else f": {exc}"
        return ProviderError(f"the connection to {host} was reset{detail}", retryable=True, kind="reset")
    if isinstance(exc, httpx.TimeoutException):
        return ProviderError(f"timed out talking to {host}: {reason}", retryable=True, kind="timeout")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return ProviderError(f"unsupported URL {url!r}: {reason}", kind="config")
    return ProviderError(f"HTTP error talking to {host}: {reason}", retryable=True, kind="transport")
