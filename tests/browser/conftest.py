"""Session fixtures of the real-browser suite: one simulator, one Chromium, and a JupyterLab and a Notebook 7 server.

Every test in this folder is marked ``browser``. When Chromium, JupyterLab or Notebook 7 is
missing the tests skip locally but fail under ``CI=true``: a browser suite that silently skips
hides failures.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest
from browser.jupyterlab_driver import (
    ARTIFACTS,
    JUPYTERLAB,
    NOTEBOOK7,
    Frontend,
    JupyterServer,
    Unavailable,
    launch_chromium,
    start_jupyter,
)

from llmgrid_nb.sim import SimServer, start_simulator

HERE = Path(__file__).resolve().parent


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"{reason} (CI=true: the browser suite must run here, not skip)", pytrace=False)
    pytest.skip(reason)


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.browser)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.fixture(autouse=True)
def _screenshot_on_failure(request: pytest.FixtureRequest) -> Iterator[None]:
    """Keep a screenshot of the page a failed test left behind, in test-artifacts/failures/."""
    yield
    if not request.node.stash.get(_CALL_FAILED, False):
        return
    nb = request.node.funcargs.get("nb")
    if nb is not None:
        out = ARTIFACTS / "failures" / f"{request.node.name}.png"
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            nb.page.screenshot(path=str(out), full_page=True)
        except Exception as exc:  # the page may be gone; the failure itself matters more
            print(f"no failure screenshot: {exc}")


@pytest.fixture(scope="session")
def sim() -> Iterator[SimServer]:
    """One simulator for every kernel of the session (they reach it through LLMGRID_SIM_URL)."""
    with start_simulator() as server:
        yield server


def _serve(frontend: Frontend, tmp_path_factory: pytest.TempPathFactory, sim: SimServer) -> Iterator[JupyterServer]:
    try:
        server = start_jupyter(frontend, tmp_path_factory.mktemp(frontend.module), env={"LLMGRID_SIM_URL": sim.url})
    except Unavailable as exc:
        _unavailable(str(exc))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory, sim: SimServer) -> Iterator[JupyterServer]:
    """``jupyter lab`` on a free loopback port, no token, temp dirs; terminated (then killed) at the end."""
    yield from _serve(JUPYTERLAB, tmp_path_factory, sim)


@pytest.fixture(scope="session")
def notebook7(tmp_path_factory: pytest.TempPathFactory, sim: SimServer) -> Iterator[JupyterServer]:
    """``jupyter notebook`` (Notebook 7) the same way; started only when its tests run."""
    yield from _serve(NOTEBOOK7, tmp_path_factory, sim)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's) driven by Playwright's sync API."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed: pip install -e '.[test]'")
    with sync_playwright() as pw:
        try:
            chromium = launch_chromium(pw)
        except Unavailable as exc:
            _unavailable(str(exc))
        try:
            yield chromium
        finally:
            chromium.close()
