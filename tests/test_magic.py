"""%llmgrid in an in-process IPython shell: parsing, interpolation, errors, binding."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

import llmgrid_nb as lg
from llmgrid_nb.magic import interpolate, parse_params


@pytest.fixture
def ip() -> Iterator[InteractiveShell]:
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "llmgrid_nb")
    yield shell
    shell.run_line_magic("unload_ext", "llmgrid_nb")
    shell.user_ns.pop("_llmgrid", None)


def test_bare_prompt_runs_and_binds_the_grid(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("llmgrid", "--no-widget -m sim/fast?tokens=8,sim/steady?tokens=5 Explain SSE briefly")
    grid = ip.user_ns["_llmgrid"]
    assert isinstance(grid, lg.Grid) and grid.prompt == "Explain SSE briefly"
    assert set(grid.statuses.values()) == {"done"}
    out = capsys.readouterr().out
    assert "── sim/fast?tokens=8 · done" in out and grid.texts["sim/fast?tokens=8"].strip()[:20] in out


def test_quoted_prompt_and_out_variable(ip: InteractiveShell) -> None:
    ip.run_line_magic("llmgrid", '"How do SSE reconnects work?" -m sim/fast?tokens=3 --no-widget -o g1')
    assert ip.user_ns["g1"] is ip.user_ns["_llmgrid"]
    assert ip.user_ns["g1"].prompt == "How do SSE reconnects work?"


def test_cell_magic_takes_options_on_the_first_line(ip: InteractiveShell) -> None:
    ip.user_ns["topic"] = "SSE"
    ip.run_cell_magic("llmgrid", "-m sim/fast?tokens=3 --no-widget --system 'be brief' -t 0.2",
                      "Explain {topic} in {{two}} sentences")
    grid = ip.user_ns["_llmgrid"]
    assert grid.prompt == "Explain SSE in {two} sentences"


def test_interpolation_from_the_namespace() -> None:
    ns = {"name": "SSE", "items": ["a", "b"]}
    assert interpolate("About {name} and {items[1]} {{literal}}", ns) == "About SSE and b {literal}"
    with pytest.raises(UsageError, match=r"\{missing\} in the prompt is not defined"):
        interpolate("About {missing}", ns)


def test_params_are_json_when_possible() -> None:
    assert parse_params(["top_p=0.9", "stop=[\"\\n\"]", "user=alice", "seed=3"]) == {
        "top_p": 0.9, "stop": ["\n"], "user": "alice", "seed": 3}
    with pytest.raises(UsageError, match="key=value"):
        parse_params(["novalue"])


@pytest.mark.parametrize(("line", "message"), [
    ("--no-such-option hi", "unrecognized arguments"),
    ("-m sim/bogus hi", "unknown simulator profile"),
    ("-m sim/fast", "no prompt"),
    ("-t hot hi", "invalid float value"),
    ("-m sim/fast --timeout -3 hi", "timeout must be a positive number"),
    ("-m sim/fast -o 1bad hi", "takes a variable name"),
])
def test_user_errors_are_one_line_usage_errors(ip: InteractiveShell, line: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        ip.run_line_magic("llmgrid", line)


def test_help_prints_usage(ip: InteractiveShell, capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("llmgrid", "--help")
    out = capsys.readouterr().out
    assert "--models" in out and "--background" in out and "--no-widget" in out
    assert "--continue" in out and "--continue-from NAME" in out


def test_missing_key_shows_in_its_pane_not_as_a_traceback(ip: InteractiveShell, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    ip.run_line_magic("llmgrid", "--no-widget -m gpt-4o-mini,sim/fast?tokens=3 hi")
    grid = ip.user_ns["_llmgrid"]
    assert grid.statuses == {"gpt-4o-mini": "failed", "sim/fast?tokens=3": "done"}
    assert "[error] no API key: set OPENAI_API_KEY or pass api_key=" in capsys.readouterr().out


def test_api_base_and_key_env_build_openai_compatible_sources(ip: InteractiveShell,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from llmgrid_nb.sim import default_simulator

    monkeypatch.setenv("MY_PROXY_KEY", "proxy-secret-value")
    base = default_simulator().openai_base
    ip.run_line_magic("llmgrid", f"--no-widget -m fast?tokens=4,litellm:openai/fast?tokens=4 --api-base {base} "
                                 "--api-key-env MY_PROXY_KEY hi")
    grid = ip.user_ns["_llmgrid"]
    assert set(grid.statuses.values()) == {"done"}, grid.summary.error.tolist()
    assert list(grid.summary.route) == ["direct-openai", "litellm"]
    assert "proxy-secret-value" not in repr(grid.summary.to_dict()) + repr(grid.events)


def test_background_returns_at_once(ip: InteractiveShell) -> None:
    ip.run_line_magic("llmgrid", "--no-widget --background -m sim/steady?tokens=30&rate=30 hi")
    grid = ip.user_ns["_llmgrid"]
    assert not grid.done
    grid.wait(10)
    assert grid.statuses == {"sim/steady?tokens=30&rate=30": "done"}


def test_apostrophe_in_a_bare_prompt(ip: InteractiveShell) -> None:
    ip.run_line_magic("llmgrid", "--no-widget -m sim/fast?tokens=2 What's SSE?")
    assert ip.user_ns["_llmgrid"].prompt == "What's SSE?"


def sent(grid: lg.Grid, source: str) -> list[list[str]]:
    """The (role, text) turns the simulator received for ``source``'s request."""
    import httpx

    from llmgrid_nb.sim import default_simulator

    rid = grid.summary.set_index("source").request_id[source]
    return httpx.get(f"{default_simulator().url}/_sim/log/{rid}").json()["transcript"]


def test_c_continues_the_last_grid_and_takes_no_word_of_a_bare_prompt(ip: InteractiveShell) -> None:
    ip.run_line_magic("llmgrid", "--no-widget -m sim/fast?tokens=4,sim/fast?tokens=7 What is SSE?")
    first = ip.user_ns["_llmgrid"]
    ip.run_line_magic("llmgrid", "--no-widget -c why is that?")
    second = ip.user_ns["_llmgrid"]
    assert second.prompt == "why is that?" and second.turn == 2 and second.previous is first
    assert second.sources == first.sources and second.conversation_id == first.conversation_id
    for pane in first.sources:
        assert sent(second, pane) == [["user", "What is SSE?"], ["assistant", first.texts[pane]],
                                      ["user", "why is that?"]]
    ip.run_line_magic("llmgrid", '--no-widget --continue --system "be brief" -o third "And {{retries}}?"')
    third = ip.user_ns["third"]
    assert third is ip.user_ns["_llmgrid"] and third.turn == 3 and third.prompt == "And {retries}?"
    assert sent(third, "sim/fast?tokens=4")[0] == ["system", "be brief"]


def test_C_continues_a_named_grid_and_the_cell_magic_takes_the_prompt_from_its_body(ip: InteractiveShell) -> None:
    ip.run_line_magic("llmgrid", "--no-widget -m sim/fast?tokens=4 -o g1 What is SSE?")
    ip.run_line_magic("llmgrid", "--no-widget -m sim/fast?tokens=3 something else")
    ip.user_ns["topic"] = "reconnects"
    ip.run_cell_magic("llmgrid", "--no-widget -C g1 -o g2", "And {topic}?\nIn two lines.")
    g2 = ip.user_ns["g2"]
    assert g2.previous is ip.user_ns["g1"] and g2.prompt == "And reconnects?\nIn two lines." and g2.turn == 2
    assert sent(g2, "sim/fast?tokens=4")[:2] == [["user", "What is SSE?"], ["assistant", ip.user_ns["g1"].texts["sim/fast?tokens=4"]]]
    ip.user_ns["mine"] = lg.run("What is SSE?", ["sim/fast?tokens=2"], widget=False)  # any variable holding a Grid
    ip.run_cell_magic("llmgrid", "--no-widget --continue-from mine", "Go on")
    assert ip.user_ns["_llmgrid"].previous is ip.user_ns["mine"]


def test_a_follow_up_without_a_grid_to_continue_is_a_one_line_usage_error(ip: InteractiveShell) -> None:
    with pytest.raises(UsageError, match="no grid to continue"):
        ip.run_line_magic("llmgrid", "--no-widget -c why?")


@pytest.mark.parametrize(("line", "message"), [
    ("-C nowhere why?", "no variable named 'nowhere'"),
    ("-C number why?", "number is not a Grid"),
    ("-C 2x why?", "takes the name of a variable"),
    ("-c -C g why?", "give one of them"),
    ("-c -m sim/fast why?", "-m/--models cannot change them"),
    ("-c --api-base http://x/v1 why?", "--api-base cannot change them"),
    ("-C search why?", "no model panes"),
    ("-C running why?", "still streaming"),
    ("-c", "no prompt"),
])
def test_follow_up_mistakes_are_one_line_usage_errors(ip: InteractiveShell, line: str, message: str) -> None:
    ip.user_ns["number"] = 3
    ip.user_ns["g"] = ip.user_ns["_llmgrid"] = lg.run("q", ["sim/fast?tokens=2"], widget=False)
    ip.user_ns["search"] = lg.run("q", [lg.Brave()], widget=False)
    ip.user_ns["running"] = lg.start("q", ["sim/steady?tokens=60&rate=30"], widget=False)
    try:
        with pytest.raises(UsageError, match=message) as info:
            ip.run_line_magic("llmgrid", "--no-widget " + line)
        assert "\n" not in str(info.value)
    finally:
        ip.user_ns["running"].cancel()
        ip.user_ns["running"].wait(10)


def test_blind_prints_letters_and_its_follow_up_keeps_them(ip: InteractiveShell,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    ip.run_line_magic("llmgrid", "--blind --no-widget -m sim/fast?tokens=8,sim/steady?tokens=8&rate=300 Explain SSE")
    first = ip.user_ns["_llmgrid"]
    out = capsys.readouterr().out
    assert first.blind and "── Model A · done" in out and "── Model B · done" in out
    assert "sim/" not in out
    ip.run_line_magic("llmgrid", "-c --no-widget and then")
    second = ip.user_ns["_llmgrid"]
    out = capsys.readouterr().out
    assert second.labels == first.labels and out.startswith("Turn 2 of conversation") and "sim/" not in out
    second.vote("B")
    assert second.voted is not None and second.voted.winner == first.labels["Model B"]
