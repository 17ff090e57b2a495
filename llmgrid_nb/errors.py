"""The llmgrid_nb error hierarchy: every error a user sees is one of these."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "LLMGridError",
    "ProviderError",
    "StreamParseError",
    "StreamTimeout",
]


class LLMGridError(Exception):
    """Base class of every error raised by llmgrid_nb."""


class ConfigError(LLMGridError, ValueError):
    """Bad input or configuration, reported before any request is sent."""


class StreamParseError(LLMGridError):
    """A response body that does not follow its wire format (SSE or NDJSON)."""


class ProviderError(LLMGridError):
    """A provider failed a request or a stream.

    ``retryable`` says whether repeating the request could help (connect errors, 429, 5xx);
    ``retry_after`` is the server's requested delay in seconds, when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retryable: bool = False,
        retry_after: float | None = None,
        kind: str = "provider",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.retryable = retryable
        self.retry_after = retry_after
        self.kind = kind

    def __reduce__(self):  # keep keyword state through pickling (multiprocessing, Ray)
        return (_rebuild_provider_error, (self.message, self.status_code, self.retryable,
                                          self.retry_after, self.kind))


def _rebuild_provider_error(message, status_code, retryable, retry_after, kind):  # type: ignore[no-untyped-def]
    return ProviderError(message, status_code=status_code, retryable=retryable,
                         retry_after=retry_after, kind=kind)


class StreamTimeout(ProviderError):
    """A stream exceeded one of its time limits (first token, stall, total)."""
