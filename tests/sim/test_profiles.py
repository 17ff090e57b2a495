"""Pure parts: model-name options, schedules, tokens and the corpus."""

from __future__ import annotations

import pytest

from llmgrid_nb.sim import PROFILES, parse_model, schedule
from llmgrid_nb.sim.corpus import TOPICS, answer_tokens, pick_topic, tokenize
from llmgrid_nb.sim.faults import FlakyPicker
from llmgrid_nb.sim.profiles import OptionError, UnknownModelError


def test_model_name_accepts_prefix_tag_and_options() -> None:
    opts = parse_model("sim/steady:latest?tokens=10&ttft=0.1&rate=100&jitter=0&seed=3")
    assert opts.profile.name == "steady"
    assert (opts.profile.tokens, opts.profile.ttft, opts.profile.rate, opts.profile.jitter) == (10, 0.1, 100.0, 0.0)
    assert opts.seed == 3
    assert opts.fault is None
    assert opts.model == "sim/steady:latest"


def test_fault_options_are_parsed() -> None:
    fault = parse_model("fast?fault=http_429&retry_after=none").fault
    assert fault is not None and fault.kind == "http_429" and fault.retry_after is None
    fault = parse_model("fast?fault=stall&after=5&stall_s=0.5").fault
    assert fault is not None and (fault.after, fault.stall_s) == (5, 0.5)


def test_unknown_profile_and_bad_options_are_rejected() -> None:
    with pytest.raises(UnknownModelError):
        parse_model("gpt-17")
    with pytest.raises(OptionError):
        parse_model("fast?tokens=many")
    with pytest.raises(OptionError):
        parse_model("fast?fault=explode")


@pytest.mark.parametrize("api", ["openai", "anthropic", "gemini", "responses"])
def test_api_option_names_the_endpoint(api: str) -> None:
    opts = parse_model(f"sim/fast?api={api}&tokens=5")
    assert opts.api == api and opts.model == "sim/fast" and opts.profile.tokens == 5


def test_api_option_defaults_to_none_and_rejects_unknown_values() -> None:
    assert parse_model("fast").api is None
    with pytest.raises(OptionError, match="unknown api 'bedrock'"):
        parse_model("fast?api=bedrock")
    with pytest.raises(OptionError):
        parse_model("fast?api=")


def test_schedule_is_deterministic_and_increasing() -> None:
    profile = PROFILES["steady"]
    a = schedule(profile, 50, 7)
    assert a == schedule(profile, 50, 7)
    assert a != schedule(profile, 50, 8)
    assert all(x <= y for x, y in zip(a, a[1:]))
    assert a[0] == pytest.approx(0.3, rel=0.04)
    gaps = [y - x for x, y in zip(a, a[1:])]
    assert all(0.02 * 0.96 <= g <= 0.02 * 1.04 for g in gaps)


def test_schedule_without_jitter_is_exact() -> None:
    profile = parse_model("fast?ttft=0.5&rate=10&jitter=0").profile
    assert schedule(profile, 3, 0) == pytest.approx([0.5, 0.6, 0.7])


def test_bursty_schedule_has_bursts_and_pauses() -> None:
    offsets = schedule(PROFILES["bursty"], 120, 1)
    gaps = [y - x for x, y in zip(offsets, offsets[1:])]
    pauses = [g for g in gaps if g >= 0.2]
    assert pauses and all(g <= 0.6 for g in pauses)
    assert sum(1 for g in gaps if g < 0.01) > 60


def test_tokens_join_back_to_the_text() -> None:
    text = "Server-Sent Events stream tokens.\n\n- one\n- two\n\n```python\nx = 1\n```"
    pieces = tokenize(text)
    assert "".join(pieces) == text
    assert pieces[:4] == ["Server", "-", "Sent", " Events"]


def test_topic_is_picked_by_keywords() -> None:
    assert pick_topic("How do I retry with exponential backoff?").key == "reliability"
    assert pick_topic("Explain the asyncio event loop").key == "asyncio"
    assert pick_topic("Tell me about giraffes").key == "general"


def test_answer_is_prose_and_deterministic() -> None:
    a = answer_tokens("what is a jupyter kernel", 2, 200)
    assert a == answer_tokens("what is a jupyter kernel", 2, 200)
    assert len(a) == 200
    text = "".join(a)
    assert text.startswith("## Working in Jupyter notebooks")
    assert "lorem" not in text.lower()


def test_every_topic_has_enough_words_and_some_markdown() -> None:
    assert len(TOPICS) >= 12
    for topic in TOPICS:
        assert sum(len(b.split()) for b in topic.blocks) >= 150, topic.key
    blocks = [b for t in TOPICS for b in t.blocks]
    assert any(b.startswith("```") for b in blocks)
    assert any("\n- " in b or b.startswith("- ") for b in blocks)


def test_flaky_picker_is_deterministic_per_profile_and_seed() -> None:
    profile = PROFILES["flaky"]
    first, second = FlakyPicker(), FlakyPicker()
    run_a = [first.pick(profile, 4) for _ in range(50)]
    run_b = [second.pick(profile, 4) for _ in range(50)]
    assert run_a == run_b
    failures = sum(f is not None for f in run_a)
    assert 10 <= failures <= 30
    assert {f.kind for f in run_a if f} <= {"http_500", "http_429", "reset", "stall", "malformed"}


def test_public_api_is_sorted_and_importable() -> None:
    import llmgrid_nb.sim as sim

    assert sim.__all__ == sorted(sim.__all__)
    assert {"PROFILES", "SimServer", "start_simulator", "default_simulator", "schedule"} <= set(sim.__all__)
    assert all(hasattr(sim, name) for name in sim.__all__)
