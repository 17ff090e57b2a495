"""Fault selection (explicit or flaky) and how a fault rewrites a planned stream of frames."""

from __future__ import annotations

import random
import threading
from dataclasses import replace

from .formats import TOKEN_KINDS, Encoder, Frame
from .profiles import Fault, Profile

__all__ = ["FLAKY_FAULTS", "FlakyPicker", "HTTP_FAULTS", "STREAM_END_KINDS", "apply_fault"]

HTTP_FAULTS = frozenset(
    {"http_400", "http_401", "http_403", "http_404", "http_429", "http_500", "http_502", "http_503"}
)
FLAKY_FAULTS = ("http_500", "http_429", "reset", "stall", "malformed")
STREAM_END_KINDS = frozenset({"finish", "usage", "done"})
_HUGE = 1024 * 1024


class FlakyPicker:
    """Deterministic failures for flaky profiles: one counter per (profile, seed), so a retry gets the next outcome."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def pick(self, profile: Profile, seed: int, defaults: Fault | None = None) -> Fault | None:
        """The fault for the next request of ``profile`` with ``seed``, or None for success.

        ``defaults`` carries the model-name fault options (``stall_s``, ``retry_after``, ...).
        """
        if profile.failure_rate <= 0:
            return None
        with self._lock:
            n = self._counts.get((profile.name, seed), 0)
            self._counts[(profile.name, seed)] = n + 1
        rng = random.Random(f"flaky|{profile.name}|{seed}|{n}")
        if rng.random() >= profile.failure_rate:
            return None
        kind = rng.choice(FLAKY_FAULTS)
        after = rng.randint(2, 10)
        return replace(defaults or Fault(kind), kind=kind, after=after)


def _cut_index(frames: list[Frame], after: int) -> int:
    """Index just past the ``after``-th token frame (or past the last token frame if fewer)."""
    seen = 0
    last_token = 0
    for i, frame in enumerate(frames):
        if frame.kind in TOKEN_KINDS:
            if seen == after:
                return i
            seen += 1
            last_token = i + 1
    return last_token


def apply_fault(frames: list[Frame], fault: Fault, encoder: Encoder) -> list[Frame]:
    """The frames of a stream suffering ``fault`` (HTTP-level faults and ``drip`` are the sender's job)."""
    kind = fault.kind
    cut = _cut_index(frames, fault.after)
    if kind != "no_done" and not any(f.kind in TOKEN_KINDS for f in frames[cut:]):
        return frames  # "after N chunks" is never reached by a shorter answer (e.g. a continuation)
    at = frames[cut - 1].offset if cut else frames[0].offset
    # A dying connection shows when the next chunk would have been due.
    next_due = frames[cut].offset if cut < len(frames) else at
    if kind == "reset":
        return frames[:cut] + [Frame(next_due, "reset", b"")]
    if kind == "error_chunk":
        return frames[:cut] + [Frame(next_due, "error", encoder.error())]
    if kind == "malformed":
        return frames[:cut] + [Frame(at, "malformed", encoder.malformed())] + frames[cut:]
    if kind == "huge_line":
        words = ("lorem ipsum " * (_HUGE // 12 + 1))[:_HUGE]
        return frames[:cut] + [Frame(at, "huge_line", encoder.content(words))] + frames[cut:]
    if kind == "stall":
        later = [replace(f, offset=f.offset + fault.stall_s) for f in frames[cut:]]
        return frames[:cut] + later
    if kind == "no_done":
        return [f for f in frames if f.kind not in STREAM_END_KINDS]
    if kind == "invalid_utf8":
        out = list(frames)
        for i in range(cut, len(out)):
            if out[i].kind == "content":
                out[i] = Frame(out[i].offset, "invalid_utf8", encoder.raw_content(b"bad \xff\xfe bytes"))
                break
        return out
    return frames
