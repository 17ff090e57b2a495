"""The real model server, started once per session for the ``realserver`` tests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from realserver.llamacpp_server import INSTALL_HINT, LlamaServer, ServerNotReady, find_gguf


@pytest.fixture(scope="session")
def llamacpp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """llama-cpp-python serving SmolLM2-135M on a free loopback port, stopped at the end.

    Missing packages skip the tests locally but fail them under CI (``CI=true``), so a CI
    machine that lost the install cannot pass by skipping.
    """
    gguf = find_gguf()
    if gguf is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(INSTALL_HINT, pytrace=False)
        pytest.skip(INSTALL_HINT)
    server = LlamaServer(gguf, tmp_path_factory.mktemp("llamacpp") / "server.log")
    try:
        server.start()
    except ServerNotReady as exc:
        server.stop()
        pytest.fail(str(exc), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def llamacpp_url(llamacpp_server: LlamaServer) -> str:
    """The running server's API base, ``http://127.0.0.1:<port>/v1``."""
    return llamacpp_server.base_url
