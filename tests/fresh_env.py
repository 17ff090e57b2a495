"""A fresh environment as a new user gets one: a copy of the repository's files (tracked and not
ignored, like a clone), a new virtualenv with only what the steps install, and logged, timed steps."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def repository_files() -> list[Path]:
    """The files a clone would have: tracked plus untracked-but-not-ignored (work in progress)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=ROOT, capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        ignored = {".git", ".venv", "node_modules", "static", "__pycache__", ".pytest_cache", ".hypothesis"}
        return [p.relative_to(ROOT) for p in ROOT.rglob("*")
                if p.is_file() and not ignored & set(p.relative_to(ROOT).parts)]
    return [Path(name) for name in out.decode().split("\0") if name and (ROOT / name).is_file()]


def copy_repository(dest: Path) -> None:
    for rel in repository_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, target)


class Steps:
    """Runs each build step with its output in a log file, and times it."""

    def __init__(self, cwd: Path, env: dict[str, str], logs: Path) -> None:
        self.cwd, self.env, self.logs = cwd, env, logs
        self.times: dict[str, float] = {}
        logs.mkdir()

    def run(self, name: str, cmd: list[str], *, cwd: Path | None = None) -> str:
        log = self.logs / f"{len(self.times):02d}-{name}.log"
        start = time.monotonic()
        with log.open("w") as out:
            proc = subprocess.run(cmd, cwd=cwd or self.cwd, env=self.env, stdout=out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.times[name] = time.monotonic() - start
        text = log.read_text(errors="replace")
        assert proc.returncode == 0, f"{name} failed ({' '.join(cmd)}); last output:\n{text[-4000:]}"
        return text


def fresh_env(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A new virtualenv under ``tmp_path`` and the environment of a fresh container for it."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "JUPYTER_PATH", "LLMGRID_LOG", "LLMGRID_MODELS")}
    env.update({
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "VIRTUAL_ENV": str(venv),
        # Kernel specs, settings and IPython profiles of this environment only, as in a fresh container.
        "JUPYTER_DATA_DIR": str(tmp_path / "jupyter-data"),
        "JUPYTER_CONFIG_DIR": str(tmp_path / "jupyter-config"),
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    })
    return venv, env
