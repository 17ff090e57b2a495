"""The Binder image, rebuilt as closely as this machine allows, runs every notebook.

mybinder.org builds the image with repo2docker: a fresh clone of the repository, binder/runtime.txt's
Python with repo2docker's base environment (which puts Node 20 on PATH), ``pip install --no-cache-dir
-r binder/requirements.txt``, then ``chmod +x binder/postBuild && ./binder/postBuild`` from the
repository root with the environment's bin/ first on PATH. repo2docker itself cannot run here (it
needs a Docker engine, and the network reaches only package registries), so this test replays those
steps: a copy of the repository's files (tracked and not ignored, like a clone), a fresh virtualenv
in a temporary directory, the same pip and postBuild commands, then
``python -m pytest --nbval-lax notebooks/`` in that environment, against the installed package.
Slow (several minutes: it downloads and installs every dependency and builds the widget).
"""

from __future__ import annotations

import stat
import sys
import time
from pathlib import Path

import pytest
from fresh_env import Steps, copy_repository, fresh_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parent.parent
#: What the notebooks are run with; not part of the Binder image (pins as in pyproject's test extra).
TEST_TOOLS = ["pytest>=8", "nbval>=0.11", "pytest-asyncio>=0.23", "pytest-timeout>=2.3"]


def test_binder_build_runs_every_notebook(tmp_path: Path) -> None:
    started = time.monotonic()
    repo = tmp_path / "repo"
    copy_repository(repo)
    assert (repo / "binder" / "postBuild").is_file() and (repo / "notebooks" / "01_quickstart.ipynb").is_file()
    assert not (repo / "llmgrid_nb" / "static" / "widget.js").exists()  # a clone has no built bundle

    runtime = (repo / "binder" / "runtime.txt").read_text().strip()
    here = f"python-{sys.version_info.major}.{sys.version_info.minor}"
    if runtime != here:
        print(f"note: Binder uses {runtime}; this machine builds with {here}")

    venv, env = fresh_env(tmp_path)
    python = str(venv / "bin" / "python")
    steps = Steps(repo, env, tmp_path / "logs")

    # repo2docker: ${KERNEL_PYTHON_PREFIX}/bin/pip install --no-cache-dir -r "binder/requirements.txt"
    steps.run("requirements", [python, "-m", "pip", "install", "--no-cache-dir", "-r", "binder/requirements.txt"])
    # repo2docker: chmod +x binder/postBuild && ./binder/postBuild  (cwd: the repository)
    post_build = repo / "binder" / "postBuild"
    post_build.chmod(post_build.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    output = steps.run("postBuild", ["./binder/postBuild"])
    assert "postBuild: llmgrid_nb" in output

    # The package is installed (not just importable from the checkout), with its widget bundle.
    where = steps.run("import", [python, "-I", "-c",
                                 "import llmgrid_nb, pathlib; p = pathlib.Path(llmgrid_nb.__file__).parent; "
                                 "print(p); print((p / 'static' / 'widget.js').stat().st_size)"],
                      cwd=tmp_path).split()
    assert Path(where[0]).is_relative_to(venv) and int(where[1]) > 10_000
    versions = steps.run("versions", [python, "-c",
                                      "import jupyterlab, ipywidgets, anywidget; "
                                      "print(jupyterlab.__version__, ipywidgets.__version__, anywidget.__version__)"],
                         cwd=tmp_path).split()
    lab, widgets, anywidget = (tuple(int(x) for x in v.split(".")[:2]) for v in versions[:3])
    assert (4, 2) <= lab < (5, 0) and (8, 1) <= widgets < (9, 0) and (0, 9) <= anywidget < (0, 12)
    assert not (repo / "js" / "node_modules").exists()

    steps.run("test-tools", [python, "-m", "pip", "install", *TEST_TOOLS])
    report = steps.run("notebooks", [python, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "notebooks/"])
    assert " passed" in report.splitlines()[-1], report[-2000:]

    total = time.monotonic() - started
    print("binder build and notebooks:", ", ".join(f"{k} {v:.0f} s" for k, v in steps.times.items()),
          f"— total {total:.0f} s")
