"""Running the simulator in a child process and the process-wide default instance."""

from __future__ import annotations

import atexit
import logging
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Mapping

__all__ = ["SimServer", "default_simulator", "start_simulator"]

logger = logging.getLogger(__name__)

_READY = "LLMGRID_SIM_READY "
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


class SimServer:
    """A handle on a running simulator: its URLs, and ``stop()`` if this process started it."""

    def __init__(self, url: str, process: subprocess.Popen[bytes] | None = None) -> None:
        self.url = url.rstrip("/")
        self._process = process
        self._lock = threading.Lock()

    @property
    def openai_base(self) -> str:
        """Base URL for OpenAI-compatible clients."""
        return self.url + "/v1"

    @property
    def ollama_base(self) -> str:
        """Base URL for Ollama clients."""
        return self.url

    @property
    def pid(self) -> int | None:
        """The child's process id, or None for an external simulator."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        """Whether the child is still alive (always True for an external simulator)."""
        return self._process is None or self._process.poll() is None

    def stop(self, timeout: float = 3.0) -> None:
        """SIGTERM the child, kill it after ``timeout`` seconds, and reap it; a no-op for external ones."""
        with self._lock:
            process = self._process
            if process is None or process.returncode is not None:
                return
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    logger.warning("simulator %s ignored SIGTERM, killing it", self.url)
                    process.kill()
                    process.wait()
            if process.stdout is not None:
                process.stdout.close()

    def __enter__(self) -> SimServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        kind = f"pid={self._process.pid}" if self._process is not None else "external"
        return f"SimServer(url={self.url!r}, {kind})"


def start_simulator(port: int = 0, *, env: Mapping[str, str] | None = None, timeout: float = 15) -> SimServer:
    """Start ``python -m llmgrid_nb.sim`` and return once it accepts connections.

    ``env`` adds variables to the child's environment (e.g. ``LLMGRID_SIM_BRAVE_RATE``).
    Raises RuntimeError with the child's stderr if it exits or times out before it is ready.
    """
    child_env = dict(os.environ)
    child_env.update(env or {})
    path = child_env.get("PYTHONPATH")
    child_env["PYTHONPATH"] = _PACKAGE_PARENT + (os.pathsep + path if path else "")
    stderr = tempfile.TemporaryFile()
    cmd = [sys.executable, "-m", "llmgrid_nb.sim", "--port", str(port), "--exit-with-parent"]
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, stdin=subprocess.DEVNULL, env=child_env)
    try:
        url = _read_ready(process, timeout)
    except BaseException:
        if process.poll() is None:
            process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
        stderr.seek(0)
        detail = stderr.read().decode(errors="replace").strip()
        stderr.close()
        raise RuntimeError(f"simulator did not start (exit code {process.returncode}): {detail}") from None
    stderr.close()  # the child keeps its own descriptor to the (now unlinked) file
    logger.debug("simulator ready at %s (pid %d)", url, process.pid)
    return SimServer(url, process)


def _read_ready(process: subprocess.Popen[bytes], timeout: float) -> str:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            if not selector.select(remaining):
                continue
            data = os.read(process.stdout.fileno(), 4096)
            if not data:
                raise EOFError
            buffer += data
            for line in buffer.decode(errors="replace").splitlines():
                if line.startswith(_READY):
                    return line[len(_READY) :].strip()


_default: SimServer | None = None
_default_lock = threading.Lock()


def default_simulator() -> SimServer:
    """The process-wide simulator, started on first use and stopped at exit.

    If ``LLMGRID_SIM_URL`` is set, a handle on that server is returned and nothing is started.
    """
    global _default
    with _default_lock:
        if _default is not None and _default.running:
            return _default
        external = os.environ.get("LLMGRID_SIM_URL")
        if external:
            _default = SimServer(external)
        else:
            _default = start_simulator()
            atexit.register(_default.stop)
        return _default
