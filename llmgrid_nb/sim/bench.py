"""Schedule-lateness benchmark: many concurrent streams, lateness read from the server's send log.

``python -m llmgrid_nb.sim.bench --streams 100 --rate 50 --tokens 250`` starts a simulator,
opens the streams with a minimal raw-socket client (so the client costs little CPU), then
compares every token chunk's send time with ``t_request + schedule(...)``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import statistics
import sys
from dataclasses import dataclass

from .process import SimServer, start_simulator
from .profiles import parse_model, schedule

__all__ = ["LatenessReport", "measure_lateness", "main"]

logger = logging.getLogger(__name__)

_TOKEN_KINDS = ("role", "content", "reasoning", "tool_call")


@dataclass(frozen=True, slots=True)
class LatenessReport:
    """Lateness (actual send − scheduled) of token chunks, in milliseconds."""

    streams: int
    chunks: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    min_ms: float
    wall_s: float
    server_cpu_s: float | None = None

    def __str__(self) -> str:
        cpu = f", server CPU {self.server_cpu_s:.2f} s" if self.server_cpu_s is not None else ""
        return (
            f"{self.streams} streams, {self.chunks} chunks in {self.wall_s:.1f} s: lateness "
            f"p50 {self.p50_ms:.3f} ms, p99 {self.p99_ms:.3f} ms, max {self.max_ms:.3f} ms, "
            f"min {self.min_ms:.3f} ms{cpu}"
        )


def _cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of ``pid`` from /proc (Linux only)."""
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _stream(host: str, port: int, model: str, seed: int) -> str:
    body = json.dumps(
        {"model": model, "seed": seed, "stream": True, "messages": [{"role": "user", "content": "latency"}]}
    ).encode()
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    writer.write(head + body)
    raw_headers = await reader.readuntil(b"\r\n\r\n")
    request_id = ""
    for line in raw_headers.decode("latin-1").split("\r\n"):
        if line.lower().startswith("x-sim-request-id:"):
            request_id = line.split(":", 1)[1].strip()
    while await reader.read(65536):
        pass
    writer.close()
    return request_id


async def _fetch_log(host: str, port: int, request_id: str) -> dict[str, object]:
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET /_sim/log/{request_id} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = await reader.read()
    writer.close()
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


async def _run(sim: SimServer, streams: int, model: str, same_seed: bool, spread_s: float) -> LatenessReport:
    host, port_text = sim.url.removeprefix("http://").rsplit(":", 1)
    port = int(port_text)
    loop = asyncio.get_running_loop()
    start = loop.time()
    cpu_before = _cpu_seconds(sim.pid)

    async def one(i: int) -> tuple[str, int]:
        await asyncio.sleep(spread_s * i / max(1, streams))
        seed = 0 if same_seed else i
        return await _stream(host, port, model, seed), seed

    ids = await asyncio.gather(*(one(i) for i in range(streams)))
    wall = loop.time() - start
    cpu_after = _cpu_seconds(sim.pid)
    cpu = cpu_after - cpu_before if cpu_before is not None and cpu_after is not None else None
    profile = parse_model(model).profile
    lateness: list[float] = []
    for request_id, seed in ids:
        log = await _fetch_log(host, port, request_id)
        kinds = [k for k in log["kinds"] if k in _TOKEN_KINDS]  # type: ignore[union-attr]
        times = [t for t, k in zip(log["send_times"], log["kinds"]) if k in _TOKEN_KINDS]  # type: ignore[call-overload]
        offsets = schedule(profile, len(kinds) - 1, seed)
        t0 = float(log["t_request"])  # type: ignore[arg-type]
        # The role chunk is due with the first token, so it shares offsets[0].
        due = [offsets[0]] + offsets
        lateness.extend((t - (t0 + d)) * 1000 for t, d in zip(times, due))
    lateness.sort()
    q = statistics.quantiles(lateness, n=100)
    return LatenessReport(streams, len(lateness), q[49], q[98], lateness[-1], lateness[0], wall, cpu)


def measure_lateness(
    sim: SimServer, *, streams: int = 100, rate: float = 50, tokens: int = 250, jitter: float | None = None,
    same_seed: bool = False, spread_s: float = 0.0,
) -> LatenessReport:
    """Run ``streams`` concurrent streams of ``tokens`` tokens at ``rate``/s and report schedule lateness."""
    model = f"steady?rate={rate}&tokens={tokens}&ttft=0.2"
    if jitter is not None:
        model += f"&jitter={jitter}"
    return asyncio.run(_run(sim, streams, model, same_seed, spread_s))


def main(argv: list[str] | None = None) -> int:
    """Command-line entry: print the lateness figures."""
    parser = argparse.ArgumentParser(prog="python -m llmgrid_nb.sim.bench")
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--rate", type=float, default=50)
    parser.add_argument("--tokens", type=int, default=250)
    parser.add_argument("--jitter", type=float, default=None)
    parser.add_argument("--same-seed", action="store_true", help="all streams share one schedule (worst case)")
    parser.add_argument("--spread", type=float, default=0.0, help="seconds over which stream starts are spread")
    parser.add_argument("--url", default=None, help="use a running simulator instead of starting one")
    args = parser.parse_args(argv)
    sim = SimServer(args.url) if args.url else start_simulator()
    try:
        report = measure_lateness(
            sim, streams=args.streams, rate=args.rate, tokens=args.tokens, jitter=args.jitter,
            same_seed=args.same_seed, spread_s=args.spread,
        )
    finally:
        sim.stop()
    sys.stdout.write(f"{report}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
