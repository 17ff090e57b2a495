"""The JSON payload every dialect's decoder reads, parsed once, the same way: a payload that is
not JSON, not an object or not of the shape the dialect expects is skipped with a warning that
says why and quotes its start; the stream goes on. No I/O."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..events import Error, Event

__all__ = ["decode_payload", "skipped"]

#: What a decoder's parse step may raise on a payload of unexpected shape.
SHAPE_ERRORS = (TypeError, AttributeError, KeyError, IndexError, ValueError)


def skipped(source: str, t: float, what: str, data: str) -> Error:
    """The non-fatal warning for a payload that was skipped (``what`` says why)."""
    return Error(source, t, f"skipped {what}: {data[:80]!r}", recoverable=True, fatal=False, error_type="parse")


def decode_payload(source: str, data: str, t: float, parse: Callable[[dict[str, Any], float], list[Event]],
                   unit: str = "event") -> list[Event]:
    """``parse(obj, t)`` of the JSON object in ``data``, or the warning that skips it."""
    try:
        obj = json.loads(data)
    except ValueError:
        return [skipped(source, t, f"a malformed {unit}", data)]
    if not isinstance(obj, dict):
        return [skipped(source, t, f"{'an' if unit[0] in 'aeiou' else 'a'} {unit} that is not a JSON object", data)]
    try:
        return parse(obj, t)
    except SHAPE_ERRORS:
        return [skipped(source, t, f"{'an' if unit[0] in 'aeiou' else 'a'} {unit} of unexpected shape", data)]
