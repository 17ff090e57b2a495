"""Ground truth of what the simulator sent and when, kept for the last requests."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SendLog", "SendRecord"]


@dataclass(slots=True)
class SendRecord:
    """The send times of one response, filled in while it streams.

    ``t_request`` and ``send_times`` are ``time.monotonic()`` values (CLOCK_MONOTONIC is
    shared by all processes on Linux, so a client on the same machine can compare them
    with its own receive times). Each send time is taken right after the chunk was handed
    to the transport, which writes it to the socket at once. ``user_turns`` counts the user
    messages the request carried, whichever dialect it came in, and ``transcript`` every turn's
    (role, text).
    """

    request_id: str
    model: str
    profile: str
    t_request: float
    fault: str | None = None
    send_times: list[float] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    user_turns: int = 0
    transcript: list[tuple[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """The record as the ``/_sim/log/<id>`` endpoint returns it."""
        return {
            "request_id": self.request_id,
            "model": self.model,
            "profile": self.profile,
            "t_request": self.t_request,
            "send_times": list(self.send_times),
            "kinds": list(self.kinds),
            "fault": self.fault,
            "user_turns": self.user_turns,
            "transcript": [list(turn) for turn in self.transcript],
        }


class SendLog:
    """A bounded map from request id to record; the oldest records are dropped first."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self._records: OrderedDict[str, SendRecord] = OrderedDict()

    def add(self, record: SendRecord) -> None:
        """Keep ``record``, evicting the oldest one beyond capacity."""
        self._records[record.request_id] = record
        if len(self._records) > self._capacity:
            self._records.popitem(last=False)

    def get(self, request_id: str) -> SendRecord | None:
        """The record for ``request_id`` if it is still kept."""
        return self._records.get(request_id)

    def __len__(self) -> int:
        return len(self._records)
