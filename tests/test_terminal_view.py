"""The live terminal view: every pane drawn while the run streams, the final frame left on screen,
hostile answers shown as plain text, drawn a few times a second whatever the chunk rate, and rich
never needed to import the package.

Frames are drawn on a rich Console writing into a buffer as a terminal would get them, and read
back through pyte (a VT100 emulator), so the tests see the screen, not the bytes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pyte
import pytest
from rich.console import Console
from scripted_server import Script, ScriptedServer

import llmgrid_nb as lg
from llmgrid_nb.terminal_view import TerminalView, live_view_sinks, plain_text

HOSTILE = "[bold red]LOUD[/bold red] :smile: \x1b[2J\x1b[H\x1b]0;pwned\x07 \x9b31m \u202eevil\r\nEND"


def terminal(width: int = 110) -> tuple[Console, io.StringIO]:
    """A console that believes it writes to an interactive terminal, and what it wrote."""
    buf = io.StringIO()
    return Console(file=buf, force_terminal=True, force_interactive=True, width=width, height=50,
                   color_system="standard", _environ={}), buf


def screen(written: str, width: int = 110, height: int = 50) -> list[str]:
    """The terminal's screen after ``written``, line by line (what a user would see)."""
    s = pyte.Screen(width, height)
    pyte.Stream(s).feed(written.replace("\n", "\r\n"))  # as a tty's driver does (ONLCR)
    return [line.rstrip() for line in s.display]


def sse(*deltas: str) -> bytes:
    chunks = [{"choices": [{"index": 0, "delta": {"content": d}, "finish_reason": None}]} for d in deltas]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


@pytest.fixture
def hostile_server(scripted: ScriptedServer) -> Iterator[ScriptedServer]:
    # The escape sequence split across two deltas, as a stream may split it.
    scripted.scripts.append(Script(body=[sse("Fine so far. ", HOSTILE[:35], HOSTILE[35:])]))
    yield scripted


def test_the_view_draws_each_pane_while_it_streams_and_leaves_the_final_frame() -> None:
    console, buf = terminal()
    view = TerminalView(console, refresh_per_second=10)
    grid = lg.run("How do SSE reconnects work?",
                  ["sim/steady?tokens=40&rate=80", "sim/fast?fault=reset&after=5&tokens=30"],
                  sinks=[view], widget=False)
    assert view.frames >= 4  # it was redrawn while the streams ran, not only at the end
    shown = "\n".join(screen(buf.getvalue()))
    lines = shown.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("pane"))
    assert lines[header].split() == ["pane", "status", "TTFT", "tokens", "tok/s", "answer"]
    steady, failed = lines[header + 1], lines[header + 2]
    assert steady.startswith("sim/steady?tokens=40&rate=80") and " done " in steady
    tail = " ".join(grid.texts["sim/steady?tokens=40&rate=80"].split())[-25:]
    assert steady.endswith(tail)  # the answer's newest text, not its start
    assert " failed " in failed and "error: the connection" in failed and "reset" in failed
    ttft = grid.summary.set_index("source").ttft_s["sim/steady?tokens=40&rate=80"]
    assert f"{ttft:.2f} s" in steady
    footer = lines[header + 3]
    assert footer.endswith(f"{int(grid.summary.output_tokens.sum()):,} tokens · 2 of 2 panes ended")
    assert "\x1b[?25h" in buf.getvalue()  # the cursor is shown again


def test_every_line_fits_the_terminal_however_long_the_names_and_answers() -> None:
    console, buf = terminal(width=72)
    view = TerminalView(console, refresh_per_second=20)
    lg.run("q", ["sim/fast?tokens=200&seed=1&" + "x=1&" * 30, "sim/fast?tokens=3"], sinks=[view], widget=False)
    frame = screen(buf.getvalue(), width=72)
    assert all(len(line) <= 72 for line in frame)
    rows = [line for line in frame if line.startswith("sim/")]
    assert len(rows) == 2 and rows[0].startswith("sim/fast?tokens=200&see…  done")  # cut, one line each


def test_a_hostile_answer_is_shown_as_plain_text(hostile_server: ScriptedServer) -> None:
    console, buf = terminal(width=200)
    view = TerminalView(console, refresh_per_second=20)
    lg.run("q", [lg.OpenAICompatible("m", hostile_server.url + "/v1", name="wire"), "sim/fast?xss=1&tokens=80"],
           sinks=[view], widget=False)
    written = buf.getvalue()
    for control in ("\x1b[2J", "\x1b[H", "\x1b]0;", "\x07", "\x9b", "\u202e"):
        assert control not in written
    wire = next(line for line in screen(written, width=200) if line.startswith("wire"))
    assert wire.endswith("[bold red]LOUD[/bold red] :smile: \\x1b[2J\\x1b[H\\x1b]0;pwned\\x07 \\x9b31m \\u202eevil END")
    xss = next(line for line in screen(written, width=200) if line.startswith("sim/fast?xss=1"))
    assert 'src="javascript:window.__llmgrid_xss=1"></iframe>' in xss


def test_a_hostile_error_message_is_shown_as_plain_text(scripted: ScriptedServer) -> None:
    body = json.dumps({"error": {"message": "quota \x1b[2J[red]gone[/red]"}}).encode()
    scripted.scripts.append(Script(status="400 Bad Request", headers={"Content-Type": "application/json"}, body=[body]))
    console, buf = terminal(width=140)
    lg.run("q", [lg.OpenAICompatible("m", scripted.url + "/v1", name="wire")], sinks=[TerminalView(console)],
           widget=False, retries=0)
    row = next(line for line in screen(buf.getvalue(), width=140) if line.startswith("wire"))
    assert " failed " in row and "\\x1b[2J[red]gone[/red]" in row and "\x1b[2J" not in buf.getvalue()


def test_plain_text_escapes_every_control_character_and_keeps_lines() -> None:
    assert plain_text("a\x1b[2Jb\tc\r\nd\re\x00\x7f\x9b\u2066") == "a\\x1b[2Jb\tc\nd\\x0de\\x00\\x7f\\x9b\\u2066"
    assert plain_text("one\ntwo\tthree", one_line=True) == "one two three"
    assert plain_text("[bold]é 日本 🙂[/bold]") == "[bold]é 日本 🙂[/bold]"


def test_frames_are_throttled_whatever_the_chunk_rate() -> None:
    console, _ = terminal()
    view = TerminalView(console, refresh_per_second=4)
    grid = lg.run("q", [f"sim/instant?tokens=4000&seed={i}" for i in range(4)], sinks=[view], widget=False)
    chunks = int(grid.summary.n_chunks.sum())
    elapsed = float(grid.summary.e2e_s.max())
    assert chunks >= 16_000
    # One frame in Live's constructor, one when it starts, ~4 a second, one when it stops.
    assert view.frames <= 4 * elapsed + 6, (view.frames, elapsed)


def test_while_streaming_only_the_rows_that_fit_are_drawn_and_the_final_frame_has_all() -> None:
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, force_interactive=True, width=110, height=12,
                      color_system=None, _environ={})
    view = TerminalView(console, refresh_per_second=10)
    models = [f"sim/steady?tokens=30&rate=60&seed={i}" for i in range(20)]
    grid = lg.start("q", models, sinks=[view], widget=False)
    time.sleep(0.4)
    frame = io.StringIO()
    Console(file=frame, width=110, color_system=None).print(view.render())  # a frame as drawn now
    live = frame.getvalue().splitlines()
    grid.wait()
    assert len(live) <= 11 and live[-1].endswith("11 more panes shown at the end"), live
    final = screen(buf.getvalue(), width=110, height=40)
    assert sum(line.startswith("sim/steady") and " done " in line for line in final) == 20


def test_a_cancelled_run_ends_with_its_panes_cancelled_on_screen() -> None:
    console, buf = terminal()
    view = TerminalView(console, refresh_per_second=10)
    grid = lg.start("q", ["sim/steady?tokens=400&rate=40"], sinks=[view], widget=False)
    time.sleep(0.6)
    grid.cancel()
    grid.wait()
    row = next(line for line in screen(buf.getvalue()) if line.startswith("sim/steady"))
    assert " cancelled " in row


def test_one_view_shows_one_run() -> None:
    console, buf = terminal()
    view = TerminalView(console)
    lg.run("q", ["sim/fast?tokens=5"], sinks=[view], widget=False)
    first = buf.getvalue()
    lg.run("q", ["sim/fast?tokens=7"], sinks=[view], widget=False)  # e.g. a follow-up's copied settings
    assert buf.getvalue() == first


@pytest.mark.parametrize("env", [{}, {"FORCE_COLOR": "1"}, {"TTY_COMPATIBLE": "1"}])
def test_no_live_view_on_a_pipe(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    read, write = os.pipe()
    with os.fdopen(write, "w") as pipe:
        os.close(read)
        monkeypatch.setattr(sys, "stdout", pipe)
        assert live_view_sinks(widget=None, background=False) == ()


def test_a_live_view_on_an_interactive_terminal_unless_told_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = os.openpty()
    with os.fdopen(slave, "w") as tty:
        monkeypatch.setattr(sys, "stdout", tty)
        monkeypatch.delenv("TTY_INTERACTIVE", raising=False)
        monkeypatch.setenv("TERM", "xterm")
        views = live_view_sinks(widget=None, background=False)
        assert len(views) == 1 and isinstance(views[0], TerminalView)
        assert live_view_sinks(widget=None, background=True) == ()  # the prompt owns the screen
        assert live_view_sinks(widget=True, background=False) == ()
        assert len(live_view_sinks(widget=False, background=False)) == 1  # --no-widget: text, live here
        monkeypatch.setenv("TTY_INTERACTIVE", "0")  # rich's switch for animations
        assert live_view_sinks(widget=None, background=False) == ()
        monkeypatch.setenv("TTY_INTERACTIVE", "1")
        monkeypatch.setenv("TERM", "dumb")
        assert live_view_sinks(widget=None, background=False) != ()  # asked for, even on a dumb terminal
    os.close(master)


def test_importing_the_package_and_its_magic_never_needs_rich() -> None:
    code = ("import sys; sys.modules['rich'] = None\n"  # as if rich were not installed
            "import llmgrid_nb, llmgrid_nb.magic, llmgrid_nb.terminal_view, llmgrid_nb.frontend\n"
            "from llmgrid_nb.terminal_view import live_view_sinks\n"
            "print(live_view_sinks(widget=False, background=False))")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "()"


def _own_rich_imports(importtime: str) -> list[str]:
    """The lines of ``-X importtime`` where a rich module is imported other than under httpx's CLI."""
    own: list[str] = []
    stack: list[tuple[int, str]] = []
    for line in importtime.splitlines()[::-1]:  # a parent is printed after its children
        if not line.startswith("import time:") or "|" not in line:
            continue
        name = line.rsplit("|", 1)[1]
        depth, module = len(name) - len(name.lstrip()), name.strip()
        while stack and stack[-1][0] >= depth:
            stack.pop()
        stack.append((depth, module))
        if module.split(".")[0] == "rich" and not any(m == "httpx._main" for _, m in stack):
            own.append(module)
    return own


def test_import_llmgrid_nb_imports_rich_only_through_httpx_cli() -> None:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", "import llmgrid_nb, llmgrid_nb.magic"],
                         capture_output=True, text=True, env=env, timeout=60, check=False)
    assert out.returncode == 0, out.stderr
    assert _own_rich_imports(out.stderr) == []



def test_a_blind_run_is_drawn_by_letter_without_costs_or_makers() -> None:
    console, buf = terminal(width=240)  # wide enough for the whole error: its maker's name is taken out
    view = TerminalView(console, refresh_per_second=10)
    models = ["sim/steady?tokens=20&rate=200&price_in=1&price_out=2", "sim/flaky?fault=http_401"]
    grid = lg.run("q", models, sinks=[view], widget=False, blind=True, retries=0)
    written = buf.getvalue()
    lines = screen(written, width=240)
    header = next(i for i, line in enumerate(lines) if line.startswith("pane"))
    rows = lines[header + 1:header + 3]
    assert [r.split()[:2] for r in rows] == [["Model", "A"], ["Model", "B"]]
    failed = rows[[grid.labels["Model A"], grid.labels["Model B"]].index(models[1])]
    assert "error: authentication failed" in failed and "[hidden]" in failed
    for secret in ("sim/", "steady", "flaky", "openai", "$"):
        assert secret not in written.lower(), secret
