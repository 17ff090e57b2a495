"""Terminal IPython (no front end that renders widgets) shows the answers as text by default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_magic_in_terminal_ipython_prints_the_answers(tmp_path: Path) -> None:
    script = tmp_path / "grid.ipy"
    script.write_text('%load_ext llmgrid_nb\n%llmgrid "How do SSE reconnects work?" -m "sim/fast?tokens=30&seed=4"\n'
                      "print('TEXT=' + repr(_llmgrid.texts['sim/fast?tokens=30&seed=4'][:40]))\n")
    env = {k: v for k, v in os.environ.items() if k not in ("JPY_PARENT_PID", "LLMGRID_MODELS")}
    env["IPYTHONDIR"] = str(tmp_path / "ipython")
    out = subprocess.run([sys.executable, "-m", "IPython", "--no-banner", "--colors=NoColor", str(script)],
                         capture_output=True, text=True, timeout=120, env=env, check=True).stdout
    assert "GridWidget(" not in out
    assert "── sim/fast?tokens=30&seed=4 · done · TTFT" in out
    start = out.split("TEXT=")[1].strip().strip("'\"")
    assert start[:20] in out.split("TEXT=")[0]  # the answer itself is printed, not only the figures
