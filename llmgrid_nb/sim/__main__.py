"""``python -m llmgrid_nb.sim``: run the simulator and announce its URL on stdout."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from .app import SimApp
from .server import bind_socket, serve

logger = logging.getLogger(__name__)

READY_PREFIX = "LLMGRID_SIM_READY"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m llmgrid_nb.sim", description="LLM provider simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--brave-rate",
        type=float,
        default=float(os.environ.get("LLMGRID_SIM_BRAVE_RATE", "1")),
        help="Brave requests per second per token (0 disables; env LLMGRID_SIM_BRAVE_RATE)",
    )
    parser.add_argument("--exit-with-parent", action="store_true", help="exit when the parent process dies")
    return parser.parse_args(argv)


async def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        await asyncio.sleep(1.0)
    logger.warning("parent process %d is gone, exiting", parent)
    os._exit(0)


async def _main(args: argparse.Namespace) -> None:
    sock = bind_socket(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host

    def ready() -> None:
        sys.stdout.write(f"{READY_PREFIX} http://{shown}:{port}\n")
        sys.stdout.flush()

    watcher = asyncio.ensure_future(_watch_parent(os.getppid())) if args.exit_with_parent else None
    try:
        await serve(SimApp(brave_rate=args.brave_rate), sock, ready)
    finally:
        if watcher is not None:
            watcher.cancel()


def main(argv: list[str] | None = None) -> int:
    """Run until SIGTERM or SIGINT."""
    args = _parse_args(argv)
    try:
        asyncio.run(_main(args))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
