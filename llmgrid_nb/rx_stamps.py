"""Kernel receive timestamps: when the bytes of a chunk reached this machine, not when our loop
got round to reading them.

A chunk's arrival time used to be taken when the engine loop read the socket. Whatever delays
that read (a busy kernel, the widget's sends, another process on the same cores) was then
measured as the model's latency. On Linux the kernel stamps every received packet
(``SO_TIMESTAMPNS``) and hands the stamp over with the bytes (``recvmsg``), so plain-HTTP
connections (the simulator, Ollama, vLLM or any server on ``http://``) record the time the
packet arrived, however late it is read.

``rx_transport`` is an httpcore network backend whose streams read with ``recvmsg`` and keep
the stamp of their last read (``received_at``, on ``time.monotonic``'s clock). This module says
whether it is on (``enabled``) and gives a source that stamp (``receive_time(response)``, asked
right after each read); it imports nothing heavy, httpcore loads with the first client. TLS
connections keep httpx's own transport and the loop's read time (decrypting under our own
socket reads is not worth its risk).

The stamps fix any delay shorter than the gap between a stream's chunks. When the loop falls
further behind, several chunks wait in the socket, the kernel merges queued packets and keeps
the newest stamp (measured: peeking one byte of a backlog returns the last packet's time), so
they all get the stamp of the last one: still never later than the loop's own clock.

Set ``LLMGRID_KERNEL_TIMESTAMPS=0`` to measure with the loop's read time everywhere.
"""

from __future__ import annotations

import os
import socket
import struct
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import httpx

__all__ = ["ANCILLARY_SPACE", "SO_TIMESTAMPNS", "TIMESPEC", "enabled", "receive_time"]

# SO_TIMESTAMPNS(_OLD) on Linux's generic socket ABI (the machines below; a few others number it
# differently): 64-bit timespecs on a 64-bit build. Python does not export the constant.
SO_TIMESTAMPNS = 35
TIMESPEC = struct.Struct("qq")
ANCILLARY_SPACE = socket.CMSG_SPACE(TIMESPEC.size) if hasattr(socket, "CMSG_SPACE") else 0
_SUPPORTED = (sys.platform == "linux" and struct.calcsize("P") == 8 and ANCILLARY_SPACE > 0
              and os.uname().machine in ("x86_64", "aarch64", "arm64", "riscv64", "ppc64le", "s390x"))


def enabled() -> bool:
    """Whether plain-HTTP connections use kernel receive timestamps here."""
    return _SUPPORTED and os.environ.get("LLMGRID_KERNEL_TIMESTAMPS", "1").strip().lower() not in (
        "0", "false", "no", "off")


def receive_time(response: httpx.Response) -> float | None:
    """When the bytes last read for ``response`` reached the machine (``time.monotonic`` seconds),
    or None when its connection does not know (TLS, another transport, no stamp)."""
    stamp = getattr(response.extensions.get("network_stream"), "received_at", None)
    return stamp if isinstance(stamp, float) else None
