"""Conversations at the source seam: a pane's own history reaches the simulator in every dialect."""

from __future__ import annotations

import httpx
import pytest

import llmgrid_nb as lg
from llmgrid_nb.conversation import ContinuedSource, Conversation, answer_message, check_messages
from llmgrid_nb.errors import ConfigError
from llmgrid_nb.sim import default_simulator
from llmgrid_nb.sources.resolve import resolve_source

HISTORY = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"},
           {"role": "assistant", "content": "hello there"}]


def received(grid: lg.Grid, source: str) -> list[list[str]]:
    """The (role, text) turns the simulator says the request of ``source`` carried."""
    rid = grid.summary.set_index("source").request_id[source]
    return httpx.get(f"{default_simulator().url}/_sim/log/{rid}").json()["transcript"]


@pytest.mark.parametrize("api", ["openai", "anthropic", "gemini", "responses"])
def test_the_history_reaches_the_server_before_the_question(api: str) -> None:
    src = ContinuedSource(resolve_source(f"sim/fast?tokens=5&api={api}"), HISTORY)
    grid = lg.run("and then?", [src], widget=False)
    assert grid.summary.status.iloc[0] == "done"
    assert received(grid, src.name) == [["system", "be brief"], ["user", "hi"], ["assistant", "hello there"],
                                        ["user", "and then?"]]


def test_each_pane_gets_its_own_history() -> None:
    a = ContinuedSource(resolve_source("sim/fast?tokens=5&seed=1"), [{"role": "user", "content": "q"},
                                                                     {"role": "assistant", "content": "A said"}])
    b = ContinuedSource(resolve_source("sim/fast?tokens=5&seed=2"), [{"role": "user", "content": "q"},
                                                                     {"role": "assistant", "content": "B said"}])
    grid = lg.run("next", [a, b], widget=False)
    assert received(grid, a.name)[1] == ["assistant", "A said"]
    assert received(grid, b.name)[1] == ["assistant", "B said"]


def test_a_run_system_prompt_is_not_sent_twice_when_the_history_has_one() -> None:
    grid = lg.run("and then?", [ContinuedSource(resolve_source("sim/fast?tokens=5"), HISTORY)], system="other",
                  widget=False)
    assert [t for t in received(grid, "sim/fast?tokens=5") if t[0] == "system"] == [["system", "be brief"]]


def test_unfinished_answers_are_sent_back_with_a_note() -> None:
    assert answer_message("full", "done") == {"role": "assistant", "content": "full"}
    assert answer_message("half", "failed", "reset").get("content") == (
        "half\n\n[this answer is incomplete: the stream failed: reset]")
    assert answer_message("", "cancelled")["content"] == "[this answer is incomplete: it was stopped]"


def test_the_next_turn_continues_each_pane_from_its_transcript() -> None:
    first = Conversation(shared=tuple(HISTORY[:1]))
    t = first.transcript("p", "q1", None, answer_message("a1", "done"))
    assert t == [{"role": "system", "content": "be brief"}, {"role": "user", "content": "q1"},
                 {"role": "assistant", "content": "a1"}]
    second = first.next({"p": t})
    assert second.turn == 2 and second.id == first.id and second.sent("p") == tuple(t)


@pytest.mark.parametrize("bad", ["hi", [{"role": "robot", "content": "x"}], [{"role": "user"}],
                                 [{"role": "user", "content": 3}], [["user", "x"]]])
def test_messages_that_are_not_role_content_dicts_are_refused(bad: object) -> None:
    with pytest.raises(ConfigError, match="messages"):
        check_messages(bad)
