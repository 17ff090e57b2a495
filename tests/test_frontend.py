"""Which front end sent the running code, and whether it renders widgets (``llmgrid_nb.frontend``).

The rule is checked three ways: on the requests each client was seen to send (recorded from a
real JupyterLab 4, Notebook 7, nbclient and jupyter console; nbclassic's and VS Code's from their
source), on a real kernel sent each of those shapes through jupyter_client, and end to end: a
real ``jupyter console`` on a pseudo-terminal prints the text report, a notebook executed by
``jupyter nbconvert --execute`` keeps the widget and its static output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmgrid_nb.frontend import renders_widgets, request_renders_widgets

REPO = Path(__file__).resolve().parents[1]


def _request(msg_id: str, session: str, *, metadata: dict[str, Any], allow_stdin: bool) -> dict[str, Any]:
    return {"header": {"msg_id": msg_id, "msg_type": "execute_request", "session": session, "username": "",
                       "version": "5.2"},
            "metadata": metadata,
            "content": {"silent": False, "store_history": True, "user_expressions": {}, "allow_stdin": allow_stdin,
                        "stop_on_error": True}}


#: The execute_request of each client as ipykernel received it (ids and dates aside).
REQUESTS = {
    "JupyterLab 4.6": (_request("1bbfd6f4-bd45-481e-844c-e99638f44041", "dad1fdf6-56c2-4848-831b-3feaac267305",
                                metadata={"trusted": False, "deletedCells": [], "recordTiming": False,
                                          "cellId": "29fd6368"}, allow_stdin=True), True),
    "Notebook 7": (_request("838efb87-650a-469f-a24c-2ade7e669fa8", "018bdf25-9b98-40cd-bc49-1debe234b99d",
                            metadata={"trusted": False, "deletedCells": [], "recordTiming": False,
                                      "cellId": "0b66ff8d"}, allow_stdin=True), True),
    "VS Code (source)": (_request("5b6c5a1e-6f1d-4c57-9a0e-6d3c2f1c9b10", "7f0e4c1a-2b3d-4e5f-8a9b-0c1d2e3f4a5b",
                                  metadata={"cellId": "vscode-notebook-cell:/home/u/a.ipynb#W0sZmlsZQ%3D%3D"},
                                  allow_stdin=True), True),
    "nbclient 0.11": (_request("b37b964d-949b8298276c2e1c19b2b45c_7762_2", "b37b964d-949b8298276c2e1c19b2b45c",
                               metadata={}, allow_stdin=False), True),
    "nbclassic (source)": (_request("9d1e8f2c-3b4a-4c5d-8e6f-7a8b9c0d1e2f", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                                    metadata={}, allow_stdin=True), True),
    "jupyter console 6.6": (_request("ca92f854-98079306295d57b994f78fbb_7702_1", "ca92f854-98079306295d57b994f78fbb",
                                     metadata={}, allow_stdin=True), False),
    "jupyter_client 6.x": (_request("ca92f854-98079306295d57b994f78fbb_12", "ca92f854-98079306295d57b994f78fbb",
                                    metadata={}, allow_stdin=True), False),
}


@pytest.mark.parametrize("client", REQUESTS)
def test_each_client_gets_what_it_can_show(client: str) -> None:
    request, widget = REQUESTS[client]
    assert request_renders_widgets(request) is widget


def test_without_evidence_the_widget_is_shown() -> None:
    assert request_renders_widgets(None) is True
    assert request_renders_widgets({}) is True
    assert request_renders_widgets({"header": {"msg_type": "comm_msg"}}) is True


def test_no_kernel_means_no_widget() -> None:
    assert renders_widgets() is False  # pytest: no IPython kernel here


def _kernel_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMGRID_", "JPY_", "JUPYTER_"))}
    pythonpath = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update(PYTHONPATH=os.pathsep.join([*pythonpath, str(REPO)]), LITELLM_LOCAL_MODEL_COST_MAP="True",
               IPYTHONDIR=str(tmp_path / "ipython"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"), PYTHONUNBUFFERED="1")
    return env


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A real ipykernel and a jupyter_client client connected to it (stdin channel included)."""
    jupyter_client = pytest.importorskip("jupyter_client")
    for key, value in _kernel_env(tmp_path).items():
        monkeypatch.setenv(key, value)
    km, kc = jupyter_client.manager.start_new_kernel(kernel_name="python3")
    try:
        yield kc
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def _stdout_of(kc: Any, msg_id: str) -> str:
    """What the request ``msg_id`` printed, once the kernel is idle again."""
    out = []
    while True:
        msg = kc.get_iopub_msg(timeout=60)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream":
            out.append(msg["content"]["text"])
        elif msg["msg_type"] == "error":
            raise AssertionError("\n".join(msg["content"]["traceback"]))
        elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return "".join(out)


CHECK = "from llmgrid_nb.frontend import renders_widgets; print(renders_widgets())"


def _send_as(kc: Any, *, js_client: bool, metadata: dict[str, Any], allow_stdin: bool) -> str:
    """Send CHECK as a given client would: its message id's form, its metadata, its allow_stdin."""
    content = {"code": CHECK, "silent": False, "store_history": True, "user_expressions": {},
               "allow_stdin": allow_stdin, "stop_on_error": True}
    header = kc.session.msg_header("execute_request")
    if js_client:  # @jupyterlab/services and nbclassic make UUID message ids
        header["msg_id"] = str(uuid.uuid4())
    msg = kc.session.msg("execute_request", content, header=header, metadata=metadata)
    kc.shell_channel.send(msg)
    return _stdout_of(kc, msg["header"]["msg_id"]).strip()


def test_a_real_kernel_tells_the_clients_apart(kernel: Any) -> None:
    # jupyter console sends exactly this: KernelClient.execute with its stdin channel open.
    msg_id = kernel.execute(CHECK)
    assert kernel.allow_stdin is True
    assert _stdout_of(kernel, msg_id).strip() == "False"
    # nbclient: the same client, stdin not allowed.
    assert _stdout_of(kernel, kernel.execute(CHECK, allow_stdin=False)).strip() == "True"
    lab = {"trusted": False, "deletedCells": [], "recordTiming": False, "cellId": "29fd6368"}
    assert _send_as(kernel, js_client=True, metadata=lab, allow_stdin=True) == "True"
    assert _send_as(kernel, js_client=True, metadata={}, allow_stdin=True) == "True"  # nbclassic
    # A cellId wins even from jupyter_client (a notebook front end written in Python).
    assert _send_as(kernel, js_client=False, metadata={"cellId": "c1"}, allow_stdin=True) == "True"


def test_jupyter_console_prints_the_text_report_not_a_widget(tmp_path: Path) -> None:
    pexpect = pytest.importorskip("pexpect")
    pytest.importorskip("jupyter_console")
    child = pexpect.spawn(sys.executable, ["-m", "jupyter", "console", "--simple-prompt"], env=_kernel_env(tmp_path),
                          encoding="utf-8", timeout=90, dimensions=(50, 160))
    try:
        child.expect(r"In \[1\]: ")
        child.sendline("%load_ext llmgrid_nb")
        child.expect(r"In \[2\]: ")
        child.sendline('%llmgrid "How do SSE reconnects work?" -m "sim/fast?tokens=20&seed=2"')
        child.expect(r"In \[3\]: ")
        shown = child.before
        child.sendline(CHECK)
        child.expect(r"In \[4\]: ")
        check = child.before
        child.sendline("exit")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert "GridWidget(" not in shown
    assert "── sim/fast?tokens=20&seed=2 · done · TTFT" in shown
    assert "\x1b[1A" not in shown  # the kernel's stdout is not the terminal: no live view
    assert check.strip().splitlines()[-1].strip() == "False"


def test_a_notebook_executed_by_nbconvert_keeps_the_widget_and_its_static_output(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("nbconvert")
    cells = ["%load_ext llmgrid_nb", '%llmgrid "How do SSE reconnects work?" -m "sim/fast?tokens=20&seed=2"', CHECK]
    path = tmp_path / "grid.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute", "--inplace",
                    str(path)], check=True, env=_kernel_env(tmp_path), capture_output=True, timeout=300)
    done = nbformat.read(path, as_version=4)
    bundles = [o for o in done.cells[1].outputs if o.get("output_type") in ("display_data", "execute_result")]
    assert bundles, json.dumps(done.cells[1].outputs)[:2000]
    data = bundles[-1]["data"]
    assert "application/vnd.jupyter.widget-view+json" in data
    assert {"text/html", "text/markdown", "text/plain"} <= set(data)
    assert not any(o.get("name") == "stdout" and "── sim/fast" in o.get("text", "") for o in done.cells[1].outputs)
    assert done.cells[2].outputs[0]["text"].strip() == "True"
