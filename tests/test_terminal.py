"""Terminal IPython (no front end that renders widgets) shows the answers as text by default:
live in a terminal (the view's last frame stays on screen, then the text report), only the text
report on a pipe. A pty-run IPython is read back through pyte (a VT100 emulator): the tests see
the screen a user would see."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pexpect
import pyte
from scripted_server import Script, ScriptedServer

HOSTILE = "[bold red]LOUD[/bold red] \x1b[2J\x1b[H\x1b]0;pwned\x07 \x9b31m \u202eevil"


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JPY_PARENT_PID", "LLMGRID_MODELS", "TTY_INTERACTIVE",
                                                           "FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR")}
    env.update(IPYTHONDIR=str(tmp_path / "ipython"), LITELLM_LOCAL_MODEL_COST_MAP="True", TERM="xterm-256color")
    return env


def _ipython(script: Path) -> list[str]:
    return ["-m", "IPython", "--no-banner", "--colors=NoColor", str(script)]


def run_in_pty(script: Path, tmp_path: Path, *, rows: int = 200, cols: int = 120) -> tuple[bytes, list[str]]:
    """Run ``script`` with IPython on a pseudo-terminal: what it wrote, and the screen after it."""
    child = pexpect.spawn(sys.executable, _ipython(script), env=_env(tmp_path), dimensions=(rows, cols), timeout=120)
    written = child.read()
    child.close()
    assert child.exitstatus == 0, written.decode(errors="replace")[-3000:]
    screen = pyte.Screen(cols, rows)
    pyte.ByteStream(screen).feed(written)
    return written, [line.rstrip() for line in screen.display]


def test_the_magic_in_terminal_ipython_prints_the_answers(tmp_path: Path) -> None:
    script = tmp_path / "grid.ipy"
    script.write_text('%load_ext llmgrid_nb\n%llmgrid "How do SSE reconnects work?" -m "sim/fast?tokens=30&seed=4"\n'
                      "print('TEXT=' + repr(_llmgrid.texts['sim/fast?tokens=30&seed=4'][:40]))\n")
    out = subprocess.run([sys.executable, *_ipython(script)], capture_output=True, text=True, timeout=120,
                         env=_env(tmp_path), check=True).stdout
    assert "GridWidget(" not in out
    assert "── sim/fast?tokens=30&seed=4 · done · TTFT" in out
    start = out.split("TEXT=")[1].strip().strip("'\"")
    assert start[:20] in out.split("TEXT=")[0]  # the answer itself is printed, not only the figures
    # A pipe gets no live view: no table, not one escape sequence.
    assert "tok/s  answer" not in out and "panes ended" not in out
    assert "\x1b" not in out


def test_terminal_ipython_on_a_terminal_shows_the_live_view_then_the_report(tmp_path: Path) -> None:
    script = tmp_path / "grid.ipy"
    script.write_text("%load_ext llmgrid_nb\n"
                      '%llmgrid "How do SSE reconnects work?" -m "sim/steady?tokens=40&rate=60,sim/fast?tokens=20"\n'
                      '%llmgrid -c "And with a proxy in between?"\n'
                      "print('FINISHED')\n")
    written, screen = run_in_pty(script, tmp_path)
    assert b"\x1b[1A" in written and b"\x1b[2K" in written  # redrawn in place while it ran
    assert b"GridWidget(" not in written
    headers = [i for i, line in enumerate(screen) if line.split() == ["pane", "status", "TTFT", "tokens", "tok/s",
                                                                      "answer"]]
    assert len(headers) == 2, "\n".join(screen)  # one final frame per run (the first question, its follow-up)
    for turn, at in enumerate(headers, 1):
        steady, fast, footer = screen[at + 1], screen[at + 2], screen[at + 3]
        assert steady.startswith("sim/steady?tokens=40&rate=60") and " done " in steady
        assert fast.startswith("sim/fast?tokens=20") and " done " in fast
        assert footer.endswith("2 of 2 panes ended")
        # The final frame stays; the text report of that run follows it (a follow-up's says its turn).
        report = at + 4
        if turn == 2:
            assert screen[report].startswith("Turn 2 of conversation ") and screen[report + 1] == ""
            report += 2
        assert screen[report].startswith("── sim/steady?tokens=40&rate=60 · done · TTFT")
    assert screen.index("FINISHED") > headers[1]


def test_a_hostile_answer_reaches_the_terminal_as_plain_text(tmp_path: Path, scripted: ScriptedServer) -> None:
    chunks = [{"choices": [{"index": 0, "delta": {"content": d}, "finish_reason": None}]}
              for d in ("Fine so far. ", HOSTILE[:12], HOSTILE[12:])]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    body = b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"
    scripted.scripts.append(Script(body=[body]))
    script = tmp_path / "hostile.ipy"
    script.write_text("print('BEFORE-THE-RUN')\n%load_ext llmgrid_nb\n"
                      f'%llmgrid "q" -m wire --api-base {scripted.url}/v1\n')
    written, screen = run_in_pty(script, tmp_path)
    for control in (b"\x1b[2J", b"\x1b]0;pwned", "\x9b".encode(), "\u202e".encode()):
        assert control not in written
    assert "BEFORE-THE-RUN" in screen  # the screen was not cleared
    row = next(line for line in screen if line.startswith("wire "))
    assert row.endswith("[bold red]LOUD[/bold red] \\x1b[2J\\x1b[H\\x1b]0;pwned\\x07 \\x9b31m \\u202eevil")
    report = screen[screen.index(next(line for line in screen if line.startswith("── wire · done"))) + 1]
    assert report == "Fine so far. [bold red]LOUD[/bold red] \\x1b[2J\\x1b[H\\x1b]0;pwned\\x07 \\x9b31m \\u202eevil"
