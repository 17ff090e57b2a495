"""A plain ``pip install .`` (no extras) runs every shipped notebook, charts and Parquet included.

The way a new user installs the package: a copy of the repository, a fresh virtualenv, ``pip
install .`` (which builds the widget's JavaScript), then the notebooks under nbval with only the
test runner added. Slow (a few minutes: every dependency is installed and the widget is built).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fresh_env import Steps, copy_repository, fresh_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

#: The test runner only (with the plugins the repository's strict pytest config names): nothing the
#: notebooks themselves need.
RUNNER = ["pytest>=8", "nbval>=0.11", "pytest-timeout>=2.3", "pytest-asyncio>=0.23"]


def test_plain_install_runs_every_notebook(tmp_path: Path) -> None:
    started = time.monotonic()
    repo = tmp_path / "repo"
    copy_repository(repo)
    venv, env = fresh_env(tmp_path)
    python = str(venv / "bin" / "python")
    steps = Steps(repo, env, tmp_path / "logs")
    steps.run("install", [python, "-m", "pip", "install", "."])
    steps.run("charts-and-parquet", [python, "-I", "-c", "import matplotlib, pyarrow, llmgrid_nb"], cwd=tmp_path)
    steps.run("runner", [python, "-m", "pip", "install", *RUNNER])
    report = steps.run("notebooks", [python, "-m", "pytest", "--nbval-lax", "-p", "no:cacheprovider", "notebooks/"])
    assert " passed" in report.splitlines()[-1] and "failed" not in report.splitlines()[-1], report[-2000:]
    print("plain install and notebooks:", ", ".join(f"{k} {v:.0f} s" for k, v in steps.times.items()),
          f"— total {time.monotonic() - started:.0f} s")
