"""Drive a real JupyterLab or Jupyter Notebook 7 in headless Chromium: start the server, open notebooks, run cells.

Notebook 7 is built from JupyterLab's components on the same jupyter_server: its notebook page
has the same panel, cells, prompts, kernel indicator and toolbar buttons, so one driver serves
both; a ``Frontend`` holds what differs (the app to start, its config class, the notebook URL).
Shared by the browser tests (through ``conftest.py``) and ``benchmarks/bench_browser.py``.
Everything the server writes (settings, workspaces, runtime files, notebooks, the JSON the cells
dump) lives under one temporary directory, so nothing of the user's Jupyter setup leaks in.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


__all__ = [
    "ARTIFACTS",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "JUPYTERLAB",
    "NOTEBOOK7",
    "PANEL",
    "RECORDER_JS",
    "REPO",
    "Frontend",
    "JupyterServer",
    "LabNotebook",
    "NotebookPage",
    "Unavailable",
    "launch_chromium",
    "open_notebook",
    "start_jupyter",
    "start_lab",
    "utf16_len",
]

REPO = Path(__file__).resolve().parents[2]
#: Screenshots and figures the suite and the benchmark leave behind (gitignored).
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM = Path(os.environ.get("LLMGRID_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
#: The notebook in front; restored or closed tabs stay in the DOM hidden and confuse selectors.
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"

#: Settings for a quiet, deterministic UI: no news or update toasts, and every cell kept in the
#: DOM (no windowing) so cells further down can be located and screenshotted. Notebook 7 reads
#: the same plugins' settings (its notebook is JupyterLab's notebook extension).
SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false", "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}

#: Injected before any page script: a log of every pane's data-status / data-text-length change
#: and of every pane put into the page (``added``), and of clicks on Stop and Interrupt.
#: Times are ``performance.now()`` ms (``wall``: the same as epoch ms, comparable with the kernel's
#: ``time.time()`` on this machine); ``grid`` numbers the ``.llmgrid-root`` a pane belongs to.
#: ``watch``/``seen``: the widget and display messages the page received that hold a given text.
RECORDER_JS = """
(() => {
  const grids = new WeakMap();
  let nextGrid = 0;
  const gridOf = (el) => {
    const root = el.closest('.llmgrid-root');
    if (!root) return -1;
    if (!grids.has(root)) grids.set(root, nextGrid++);
    return grids.get(root);
  };
  const lg = { panes: [], clicks: [], watch: null, seen: [] };
  lg.reset = () => { lg.panes = []; lg.clicks = []; lg.watch = null; lg.seen = []; };
  // Kernel messages as the page receives them: with ``watch`` set, every frame of a widget or
  // display message (comm_open, comm_msg, display_data, update_display_data) holding that text.
  const decoder = new TextDecoder();
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', (e) => {
        if (!lg.watch) return;
        const text = typeof e.data === 'string' ? e.data
          : e.data instanceof ArrayBuffer ? decoder.decode(e.data) : '';
        if (!text.includes(lg.watch)) return;
        const kind = /comm_open|comm_msg|update_display_data|display_data/.exec(text);
        if (kind) lg.seen.push({ kind: kind[0], at: text.indexOf(lg.watch),
                                 around: text.slice(Math.max(0, text.indexOf(lg.watch) - 120), text.indexOf(lg.watch) + 60) });
      });
    }
  };
  const push = (t, el, added) => lg.panes.push({
    t, wall: performance.timeOrigin + t, grid: gridOf(el), id: el.dataset.paneId, added,
    status: el.dataset.status, len: Number(el.dataset.textLength) });
  new MutationObserver((mutations) => {
    const t = performance.now();
    for (const m of mutations) {
      if (m.type === 'attributes') {
        if (m.target instanceof HTMLElement && m.target.classList.contains('llmgrid-pane')) push(t, m.target, false);
        continue;
      }
      // A pane (or a whole grid) put into the page already carries its state: log that too.
      for (const n of m.addedNodes) {
        if (!(n instanceof HTMLElement)) continue;
        if (n.classList.contains('llmgrid-pane')) push(t, n, true);
        else if (n.classList.contains('llmgrid-root') || n.querySelector('.llmgrid-root')) {
          for (const p of n.querySelectorAll('.llmgrid-pane')) push(t, p, true);
        }
      }
    }
  }).observe(document, { subtree: true, childList: true, attributes: true,
                         attributeFilter: ['data-status', 'data-text-length'] });
  document.addEventListener('click', (e) => {
    const target = e.target instanceof Element
      ? e.target.closest(".llmgrid-stop, .llmgrid-pane-stop, [data-command='notebook:interrupt-kernel']")
      : null;
    if (!target) return;
    const pane = target.closest('.llmgrid-pane');
    const what = target.getAttribute('data-command')
      || (target.classList.contains('llmgrid-pane-stop') ? 'pane-stop' : 'stop');
    lg.clicks.push({ t: performance.now(), what, pane: pane ? pane.dataset.paneId : null });
  }, true);
  window.__lg = lg;
})();
"""


class Unavailable(RuntimeError):
    """A prerequisite of the browser suite (Chromium, JupyterLab, Notebook 7) is not installed."""


@dataclass(frozen=True, slots=True)
class Frontend:
    """What differs between the JupyterLab-built interfaces the driver serves and opens."""

    #: As the user knows it, for messages.
    name: str
    #: The package whose ``python -m`` starts the server with this interface.
    module: str
    #: The config class that takes ``user_settings_dir`` and ``workspaces_dir``.
    app_class: str
    #: Where a notebook opens, ``{name}`` its path under the root dir.
    notebook_url: str


#: ``?reset``: no restored tabs (they start extra kernels and add hidden duplicate cells).
JUPYTERLAB = Frontend("JupyterLab", "jupyterlab", "LabApp", "/lab/tree/{name}?reset")
#: One notebook per browser page: nothing is restored, and the page is the notebook.
NOTEBOOK7 = Frontend("Jupyter Notebook 7", "notebook", "JupyterNotebookApp", "/notebooks/{name}")


def utf16_len(text: str) -> int:
    """``text.length`` as JavaScript counts it (UTF-16 code units), to compare with the DOM."""
    return len(text.encode("utf-16-le")) // 2


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class JupyterServer:
    """A running ``jupyter lab`` or ``jupyter notebook`` subprocess and where it keeps its files."""

    frontend: Frontend
    url: str
    root: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def log_tail(self, n: int = 40) -> str:
        """The last lines the server logged (for failure messages)."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def shutdown_kernels(self) -> None:
        """Shut down every kernel the server runs (a closed tab leaves its kernel running)."""
        with urllib.request.urlopen(self.url + "/api/kernels", timeout=5) as resp:
            kernels = json.load(resp)
        for kernel in kernels:
            req = urllib.request.Request(f"{self.url}/api/kernels/{kernel['id']}", method="DELETE")
            with contextlib.suppress(urllib.error.URLError, OSError):
                urllib.request.urlopen(req, timeout=10).close()

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server (it shuts its kernels down), kill it if it does not exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def start_lab(base: Path, *, env: Mapping[str, str] | None = None, timeout: float = 90.0) -> JupyterServer:
    """Start ``jupyter lab`` (see ``start_jupyter``)."""
    return start_jupyter(JUPYTERLAB, base, env=env, timeout=timeout)


def start_jupyter(frontend: Frontend, base: Path, *, env: Mapping[str, str] | None = None,
                  timeout: float = 90.0) -> JupyterServer:
    """Start the server of ``frontend`` on a free loopback port with its dirs under ``base``; wait until it answers.

    No token, no password and no XSRF check (the suite's REST calls send no ``_xsrf``); the
    kernels it starts see this checkout of ``llmgrid_nb`` (``PYTHONPATH``), no cost-map download
    from LiteLLM, and ``env`` on top.
    """
    if importlib.util.find_spec(frontend.module) is None:
        raise Unavailable(f"{frontend.name} is not installed in {sys.executable} "
                          f"(no module {frontend.module!r}): pip install -e '.[test]'")
    dirs = {name: base / name for name in ("root", "settings", "workspaces", "config", "runtime", "ipython")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    for rel, value in SETTINGS.items():
        path = dirs["settings"] / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))

    child_env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMGRID_", "JUPYTER_"))}
    pythonpath = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    child_env.update({
        "PYTHONPATH": os.pathsep.join([*pythonpath, str(REPO)]),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "JUPYTER_CONFIG_DIR": str(dirs["config"]),
        "JUPYTER_RUNTIME_DIR": str(dirs["runtime"]),
        "IPYTHONDIR": str(dirs["ipython"]),
        "PYTHONUNBUFFERED": "1",
    })
    child_env.update(env or {})
    port = _free_port()
    cmd = [
        sys.executable, "-m", frontend.module, "--allow-root", "--no-browser",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
        f"--ServerApp.root_dir={dirs['root']}",
        f"--{frontend.app_class}.user_settings_dir={dirs['settings']}",
        f"--{frontend.app_class}.workspaces_dir={dirs['workspaces']}",
    ]
    log_path = base / f"{frontend.module}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=child_env, cwd=dirs["root"], start_new_session=True)
    server = JupyterServer(frontend, f"http://127.0.0.1:{port}", dirs["root"], log_path, process)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{frontend.name} exited with code {process.returncode}:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url + "/api/status", timeout=2) as resp:
                if resp.status == 200:
                    return server
        except (urllib.error.URLError, OSError):
            pass
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"{frontend.name} did not answer within {timeout:.0f} s:\n{server.log_tail()}")
        time.sleep(0.25)


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium through Playwright (``playwright install`` cannot download here)."""
    if not CHROMIUM.is_file():
        raise Unavailable(f"Chromium not found at {CHROMIUM}: apt-get install -y chromium "
                          "(or set LLMGRID_CHROMIUM to its path)")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)


class NotebookPage:
    """One notebook open in the server's interface, whose cells are addressed by the keys they were written with."""

    def __init__(self, page: Any, server: JupyterServer, name: str, cells: Mapping[str, str]) -> None:
        self.page = page
        self.server = server
        self.name = name
        self.keys = list(cells)
        #: Uncaught page errors and console errors, for failure messages.
        self.errors: list[str] = []
        #: The uncaught page errors themselves (Playwright ``Error``: ``message``, ``stack``).
        self.page_errors: list[Any] = []
        page.on("pageerror", self._page_error)
        page.on("console", lambda msg: self.errors.append(f"console.{msg.type}: {msg.text[:500]}")
                if msg.type == "error" else None)
        import nbformat  # with jupyter_server; imported here so collecting without it still works

        nb = nbformat.v4.new_notebook(
            cells=[nbformat.v4.new_code_cell(src) for src in cells.values()],
            metadata={"kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)",
                                     "language": "python"},
                      "language_info": {"name": "python"}},
        )
        nbformat.write(nb, str(server.root / name))

    def _page_error(self, exc: Any) -> None:
        self.page_errors.append(exc)
        self.errors.append(f"pageerror: {exc}")

    @property
    def panel(self) -> Any:
        return self.page.locator(PANEL)

    def open(self, timeout: float = 60.0) -> NotebookPage:
        """Open the notebook and wait for an idle kernel."""
        url = self.server.url + self.server.frontend.notebook_url.format(name=self.name)
        self.page.goto(url, timeout=timeout * 1000)
        cells = self.panel.locator(".jp-Notebook .jp-Cell")
        deadline = time.monotonic() + timeout
        while cells.count() != len(self.keys):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name} showed {cells.count()} of {len(self.keys)} cells")
            time.sleep(0.1)
        self.wait_idle(timeout)
        return self

    def cell(self, key: str) -> Any:
        return self.panel.locator(".jp-Notebook .jp-Cell").nth(self.keys.index(key))

    def grid(self, key: str) -> Any:
        """The ``.llmgrid-root`` in that cell's output."""
        return self.cell(key).locator(".jp-OutputArea .llmgrid-root")

    def output_text(self, key: str) -> str:
        return str(self.cell(key).locator(".jp-OutputArea").inner_text())

    def kernel_status(self) -> str | None:
        return self.panel.locator(".jp-Notebook-ExecutionIndicator").get_attribute("data-status")

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Wait until the kernel is started and idle.

        The indicator also says "idle" for a notebook whose kernel has not started yet ("No
        Kernel" in the toolbar); a Shift+Enter then runs nothing, so that state does not count.
        """
        self.page.wait_for_function(
            """panel => {
              const p = document.querySelector(panel);
              const status = p?.querySelector('.jp-Notebook-ExecutionIndicator')?.getAttribute('data-status');
              const name = p?.querySelector('.jp-Toolbar-kernelName')?.textContent ?? '';
              return status === 'idle' && name.trim() !== '' && name.trim() !== 'No Kernel';
            }""",
            arg=PANEL, timeout=timeout * 1000, polling=50,
        )

    def prompt(self, key: str) -> str:
        return str(self.cell(key).locator(".jp-InputPrompt").first.inner_text()).strip()

    def run(self, key: str, *, wait: bool = True, timeout: float = 60.0) -> None:
        """Select the cell and press Shift+Enter, as a user would; by default wait until it finished."""
        before = self.prompt(key)
        try:
            self.cell(key).locator(".jp-InputArea-editor").click(timeout=10_000)
        except Exception as exc:
            raise RuntimeError(f"cannot select cell {key!r}; dialogs: {self.dialogs()}") from exc
        self.page.keyboard.press("Shift+Enter")
        deadline = time.monotonic() + 10
        while self.prompt(key) == before:  # "[*]:" as soon as the request is sent
            if time.monotonic() > deadline:
                raise TimeoutError(f"cell {key!r} did not start (prompt {before!r}); dialogs: {self.dialogs()}")
            time.sleep(0.05)
        if wait:
            self.wait_finished(key, timeout)

    def wait_finished(self, key: str, timeout: float = 60.0) -> None:
        """Wait until the cell's prompt shows an execution count (``[n]:``), i.e. it ran."""
        deadline = time.monotonic() + timeout
        while not re.fullmatch(r"\[\d+\]:", self.prompt(key)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"cell {key!r} still running after {timeout:.0f} s "
                                   f"(prompt {self.prompt(key)!r})")
            time.sleep(0.05)

    def interrupt(self) -> None:
        """Click the toolbar's interrupt button."""
        self.panel.locator("jp-button[data-command='notebook:interrupt-kernel']").click()

    def read_json(self, name: str, timeout: float = 30.0) -> Any:
        """A JSON file a cell wrote into the server's root (written atomically by the cell)."""
        path = self.server.root / name
        deadline = time.monotonic() + timeout
        while not path.exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {name} after {timeout:.0f} s; cell outputs:\n{self.all_outputs()}")
            time.sleep(0.05)
        return json.loads(path.read_text())

    def dialogs(self) -> list[str]:
        """The text of every open dialog (one in the way of a click explains a failure)."""
        return [str(t) for t in self.page.locator(".jp-Dialog").all_inner_texts()]

    def all_outputs(self) -> str:
        """Every cell's output as text, open dialogs and page errors, for failure messages."""
        lines = [f"[{key}] {self.output_text(key)[:2000]}" for key in self.keys]
        lines += [f"[dialog] {d}" for d in self.dialogs()]
        lines += [f"[page] {e}" for e in self.errors[-20:]]
        return "\n".join(lines)


#: The name ``benchmarks/bench_browser.py`` imports.
LabNotebook = NotebookPage


@contextlib.contextmanager
def open_notebook(browser: Any, server: JupyterServer, name: str, cells: Mapping[str, str], *,
                  viewport: Mapping[str, int] | None = None) -> Iterator[NotebookPage]:
    """A fresh browser context with the recorder, one notebook opened in it; closed afterwards."""
    context = browser.new_context(viewport=dict(viewport or {"width": 1400, "height": 1000}))
    context.add_init_script(RECORDER_JS)
    try:
        page = context.new_page()
        yield NotebookPage(page, server, name, cells).open()
    finally:
        context.close()
        with contextlib.suppress(urllib.error.URLError, OSError):
            server.shutdown_kernels()
