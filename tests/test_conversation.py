"""Conversations at the source seam: a pane's own history reaches the simulator in every dialect."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from scripted_server import Script, ScriptedServer

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
    assert answer_message("so far", "streaming")["content"] == "so far\n\n[this answer is incomplete: it was still streaming]"


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


# -- grid.ask: the next turn, every pane its own conversation ---------------------------------------

def said(transcript: list[dict[str, str]] | tuple[dict[str, str], ...]) -> list[list[str]]:
    """A transcript as the simulator's send log shows one: [role, text] pairs."""
    return [[m["role"], m["content"]] for m in transcript]


@pytest.mark.parametrize("api", ["openai", "anthropic", "gemini", "responses"])
def test_three_turns_each_pane_receives_its_own_history(api: str) -> None:
    # Different lengths, so that each pane's answers (and so its history) differ from the other's.
    models = [f"sim/fast?tokens=6&seed=1&api={api}", f"sim/fast?tokens=11&seed=2&api={api}"]
    first = lg.run("What is SSE?", models, messages=HISTORY, widget=False)
    second = first.ask("How do reconnects work?")
    third = second.ask("And retries?")
    assert [g.turn for g in (first, second, third)] == [1, 2, 3]
    assert first.texts[models[0]] != first.texts[models[1]]
    for pane in models:
        want = [*said(HISTORY), ["user", "What is SSE?"], ["assistant", first.texts[pane]],
                ["user", "How do reconnects work?"], ["assistant", second.texts[pane]], ["user", "And retries?"]]
        assert received(third, pane) == want, pane
        assert received(second, pane) == want[:-3] + [["user", "How do reconnects work?"]]
        # The transcript is what was sent, then the answer.
        assert said(third.messages(pane)) == [*want, ["assistant", third.texts[pane]]]
    assert set(third.conversation) == set(models) and third.conversation.turn == 3
    assert third.conversation.id == first.conversation_id == first.run_id


def test_a_failed_or_stopped_pane_continues_from_its_partial_answer_with_a_note() -> None:
    broken = "sim/steady?tokens=40&rate=300&fault=reset&after=6"
    slow = "sim/steady?tokens=200&rate=20"
    first = lg.start("What is SSE?", [broken, slow, "sim/fast?tokens=4"], widget=False)
    deadline = time.monotonic() + 10
    while not first.texts[slow] and time.monotonic() < deadline:
        time.sleep(0.02)
    first.cancel(slow)
    first.wait(10)
    assert first.statuses[broken] == "failed" and first.statuses[slow] == "cancelled"
    second = first.ask("Go on", widget=False)
    error = first.summary.set_index("source").error[broken]
    assert received(second, broken)[1] == [
        "assistant", f"{first.texts[broken]}\n\n[this answer is incomplete: the stream failed: {error}]"]
    assert first.texts[broken] and "reset" in error
    assert received(second, slow)[1] == ["assistant", f"{first.texts[slow]}\n\n[this answer is incomplete: it was stopped]"]


def test_a_follow_up_resumes_a_broken_stream_with_the_prefill_after_the_history() -> None:
    broken = "sim/steady?tokens=30&rate=400&seed=5&fault=reset&after=20"
    first = lg.run("What is SSE?", [broken], widget=False)
    assert first.statuses == {broken: "failed"}
    second = first.ask("Go on", resume=True)
    row = second.summary.iloc[0]
    assert row.status == "done" and row.resumed == 1
    sent = received(second, broken)  # the last request: the one that continued the broken stream
    assert sent[:3] == said(first.messages(broken)) + [["user", "Go on"]]
    assert len(sent) == 4 and sent[3][0] == "assistant" and sent[3][1]
    assert second.texts[broken].startswith(sent[3][1])


def test_the_master_reconciles_this_turns_answers_and_the_search_pane_searches_the_new_question() -> None:
    first = lg.run("What is SSE?", ["sim/fast?tokens=5", "sim/fast?tokens=9"], synthesize="sim/fast?tokens=5",
                   brave=True, widget=False)
    second = first.ask("How do reconnects work?")
    assert set(second.statuses.values()) == {"done"} and second.model_panes == ["sim/fast?tokens=5", "sim/fast?tokens=9"]
    master = received(second, "master")
    assert [role for role, _ in master] == ["system", "user"], "the master pane keeps no history"
    assert master[1][1].startswith("Question: How do reconnects work?")
    assert second.texts["sim/fast?tokens=9"] in master[1][1] and first.texts["sim/fast?tokens=9"] not in master[1][1]
    searched = [e.detail for e in second.events if e.source == "brave" and e.kind == "progress"]
    assert "How do reconnects work?" in searched
    with pytest.raises(ConfigError, match="master is not a model pane"):
        second.messages("master")


def test_a_follow_ups_options_replace_the_runs_and_system_replaces_every_panes_system_message() -> None:
    first = lg.run("What is SSE?", ["sim/fast?tokens=5"], system="be brief", max_tokens=50, widget=False)
    assert received(first, "sim/fast?tokens=5")[0] == ["system", "be brief"]
    kept = first.ask("More")
    assert received(kept, "sim/fast?tokens=5")[0] == ["system", "be brief"]
    changed = kept.ask("More", system="be thorough")
    sent = received(changed, "sim/fast?tokens=5")
    assert [t for t in sent if t[0] == "system"] == [["system", "be thorough"]] and len(sent) == 6
    assert changed.messages("sim/fast?tokens=5")[0] == {"role": "system", "content": "be thorough"}


def test_another_choices_pane_is_fed_by_its_stream_and_only_the_main_pane_continues(scripted: ScriptedServer) -> None:
    two = [json.dumps({"choices": [{"index": 0, "delta": {"content": "zero"}, "finish_reason": "stop"}]}),
           json.dumps({"choices": [{"index": 1, "delta": {"content": "one"}, "finish_reason": "stop"}]}), "[DONE]"]
    scripted.scripts += [Script(body=[b"".join(f"data: {d}\n\n".encode() for d in two)]) for _ in range(2)]
    first = lg.run("q1", [lg.OpenAICompatible("m", scripted.url + "/v1", name="wire")], params={"n": 2}, widget=False)
    assert first.texts == {"wire": "zero", "wire[1]": "one"}
    assert said(first.conversation["wire[1]"]) == [["user", "q1"], ["assistant", "one"]]
    second = first.ask("q2")
    body = json.loads(scripted.requests[1].partition(b"\r\n\r\n")[2])
    assert body["messages"] == [{"role": "user", "content": "q1"}, {"role": "assistant", "content": "zero"},
                                {"role": "user", "content": "q2"}]
    assert said(second.conversation["wire[1]"]) == [["user", "q1"], ["assistant", "zero"], ["user", "q2"],
                                                    ["assistant", "one"]]


def test_bad_messages_are_refused_with_nothing_sent(scripted: ScriptedServer) -> None:
    src = lg.OpenAICompatible("m", scripted.url + "/v1", name="wire")
    for bad in ([{"role": "user", "content": None}], "hi", [{"content": "no role"}]):
        with pytest.raises(ConfigError, match="messages"):
            lg.run("q", [src], messages=bad, widget=False)
    time.sleep(0.1)
    assert scripted.requests == []


def test_a_follow_up_is_refused_while_the_run_streams_or_when_nothing_can_continue(scripted: ScriptedServer) -> None:
    running = lg.start("q", ["sim/steady?tokens=60&rate=30"], widget=False)
    with pytest.raises(ConfigError, match="still streaming"):
        running.ask("next")
    running.cancel()
    running.wait(10)
    with pytest.raises(ConfigError, match="messages= gives a first question"):
        running.ask("next", messages=HISTORY)
    with pytest.raises(TypeError, match="no_such"):
        running.ask("next", no_such=1)
    with pytest.raises(ConfigError, match="the prompt is empty"):
        running.ask("  ")
    search_only = lg.run("q", [lg.Brave()], widget=False)
    with pytest.raises(ConfigError, match="no model panes"):
        search_only.ask("next")
    with pytest.raises(ConfigError, match="no source named"):
        running.messages("nope")
