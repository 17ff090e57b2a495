"""The public entry points: run (blocking), arun (awaitable), start (returns at once), and ask
(the next turn of a run's conversation, behind ``Grid.ask``)."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from .config import default_models
from .engine import get_engine
from .errors import ConfigError
from .grid import Grid
from .history import current_log, persist_run, record_run
from .multiplexer import Multiplexer, RunOptions, Sink, unique_names
from .sources.base import Prompt, Source
from .sources.brave import Brave
from .sources.master import MasterSynthesis
from .sources.resolve import resolve_source

if TYPE_CHECKING:
    from .blind import Blinding
    from .conversation import Conversation

__all__ = ["MAX_PROMPT_CHARS", "RUN_DEFAULTS", "FollowUp", "arun", "ask", "run", "start"]

log = logging.getLogger(__name__)

#: Longer prompts are refused before anything is sent (pass max_prompt_chars= to raise it).
MAX_PROMPT_CHARS = 1_000_000


#: The keyword options of run/start/arun and %llmgrid, with their defaults.
RUN_DEFAULTS: dict[str, Any] = {
    "system": None, "temperature": None, "max_tokens": None, "params": None,
    "connect_timeout": 10.0, "first_token_timeout": 60.0, "stall_timeout": 30.0,
    "timeout": 300.0, "retries": 2, "max_concurrency": 32, "stall_threshold": 1.0,
    "max_prompt_chars": MAX_PROMPT_CHARS, "sinks": (), "widget": None, "brave": None,
    "synthesize": None, "resume": False, "budget_usd": None, "messages": None, "blind": False,
}


class FollowUp(NamedTuple):
    """What the next turn of a run needs: its model sources (as given, without their history),
    the options it was started with (``messages`` aside: the conversation holds them), and what
    starts it (``start_follow_up``: the Grid asks through it, importing nothing above itself)."""

    models: tuple[Source, ...]
    settings: Mapping[str, Any]
    start: Callable[..., Grid]


class Plan(NamedTuple):
    """A run checked and resolved, before anything is sent."""

    prompt: Prompt
    options: RunOptions
    #: What the multiplexer streams: the model panes (each with its history) then the extra panes.
    sources: list[Source]
    #: The model sources as given, for the next turn.
    models: tuple[Source, ...]
    conversation: Conversation


def _check_positive(name: str, value: float | None, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0 or math.isnan(value):
        raise ConfigError(f"{name} must be a positive number of seconds, got {value!r}")


def _options(connect_timeout: float, first_token_timeout: float | None, stall_timeout: float | None,
             timeout: float | None, retries: int, max_concurrency: int, stall_threshold: float,
             resume: bool = False) -> RunOptions:
    _check_positive("connect_timeout", connect_timeout, allow_none=False)
    _check_positive("first_token_timeout", first_token_timeout)
    _check_positive("stall_timeout", stall_timeout)
    _check_positive("timeout", timeout)
    _check_positive("stall_threshold", stall_threshold, allow_none=False)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise ConfigError(f"retries must be a whole number >= 0, got {retries!r}")
    if not isinstance(max_concurrency, int) or isinstance(max_concurrency, bool) or max_concurrency < 1:
        raise ConfigError(f"max_concurrency must be a whole number >= 1, got {max_concurrency!r}")
    return RunOptions(connect_timeout, first_token_timeout, stall_timeout, timeout, retries,
                      max_concurrency, stall_threshold, resume=bool(resume))


def _prompt(prompt: str, system: str | None, temperature: float | None, max_tokens: int | None,
            params: Mapping[str, Any] | None, max_prompt_chars: int) -> Prompt:
    if not isinstance(prompt, str):
        raise ConfigError(f"the prompt must be a string, got {type(prompt).__name__}")
    if not prompt.strip():
        raise ConfigError("the prompt is empty")
    if len(prompt) > max_prompt_chars:
        raise ConfigError(f"the prompt has {len(prompt):,} characters, more than the limit of "
                          f"{max_prompt_chars:,}; pass max_prompt_chars= to allow it")
    if temperature is not None and (not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2):
        raise ConfigError(f"temperature must be between 0 and 2, got {temperature!r}")
    if max_tokens is not None and (not isinstance(max_tokens, int) or isinstance(max_tokens, bool)
                                   or max_tokens < 1):
        raise ConfigError(f"max_tokens must be a whole number >= 1, got {max_tokens!r}")
    return Prompt(prompt, system, temperature, max_tokens, dict(params or {}))


def _sources(models: Sequence[str | Source] | str | None) -> list[Source]:
    if models is None:
        models = default_models()
    if isinstance(models, str):
        models = [m for m in models.split(",")]
    models = list(models)
    if not models:
        raise ConfigError("no models given: pass models=[...], e.g. ['sim/fast', 'sim/steady']")
    sources = [resolve_source(m) for m in models]
    for src in sources:
        src.validate()
    return sources


def _extra_panes(models: list[Source], brave: bool | Brave | None,
                 synthesize: str | Source | None) -> list[Source]:
    """The aggregator and master panes requested for a run, validated."""
    extra: list[Source] = []
    if brave:
        if not isinstance(brave, Brave):
            first = models[0]
            synth: str | Source = "sim/steady?tokens=120&rate=120" if first.route == "sim" else first
            brave = Brave(synthesis_model=synth)
        extra.append(brave)
    if synthesize:
        extra.append(synthesize if isinstance(synthesize, MasterSynthesis) else MasterSynthesis(synthesize))
    for src in extra:
        src.validate()
    return extra


def _in_kernel() -> bool:
    """True where a front end that renders widgets sent the running code (``frontend.py``)."""
    from .frontend import renders_widgets

    return renders_widgets()


def start(
    prompt: str,
    models: Sequence[str | Source] | str | None = None,
    *,
    system: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    params: Mapping[str, Any] | None = None,
    connect_timeout: float = 10.0,
    first_token_timeout: float | None = 60.0,
    stall_timeout: float | None = 30.0,
    timeout: float | None = 300.0,
    retries: int = 2,
    max_concurrency: int = 32,
    stall_threshold: float = 1.0,
    max_prompt_chars: int = MAX_PROMPT_CHARS,
    sinks: Sequence[Sink] = (),
    widget: bool | None = None,
    brave: bool | Brave | None = None,
    synthesize: str | Source | None = None,
    resume: bool = False,
    budget_usd: float | None = None,
    messages: Sequence[Mapping[str, str]] | None = None,
    blind: bool = False,
) -> Grid:
    """Validate everything, start the run on the engine and return its Grid at once.

    ``widget`` shows the live grid of panes (default: only inside a Jupyter kernel).
    ``brave=True`` (or ``lg.Brave(...)``) adds the Brave Search knowledge aggregator pane
    (simulated when no BRAVE_API_KEY is set); ``synthesize="<model>"`` adds the master view,
    which streams one answer reconciling the others once they finish. ``resume=True``: when a
    stream breaks after tokens arrived (reset, stall, truncation), re-request with the partial
    answer as an assistant prefill and stitch the continuation on (``resumed`` column).
    ``budget_usd``: refuse to start (ConfigError, nothing sent) when the run's worst case, every
    pane's output limit at its output price plus its prompt at its input price (LiteLLM's
    bundled prices), is over it. ``messages``: a prior chat history (OpenAI-style
    ``{"role", "content"}`` dicts, system included) sent to every model pane before ``prompt``;
    the run is turn 1 of a conversation that ``grid.ask`` continues. ``blind=True``: the widget
    labels the model panes "Model A", "Model B", ... in shuffled order and sends nothing naming
    them (names, models, routes, costs, makers in error messages) until ``grid.vote(...)`` or a
    click on its vote buttons; the DataFrames keep the real names. Its follow-ups stay blind.
    """
    return _start(prompt, models, system=system, temperature=temperature, max_tokens=max_tokens,
                  params=params, connect_timeout=connect_timeout,
                  first_token_timeout=first_token_timeout, stall_timeout=stall_timeout,
                  timeout=timeout, retries=retries, max_concurrency=max_concurrency,
                  stall_threshold=stall_threshold, max_prompt_chars=max_prompt_chars, sinks=sinks,
                  widget=widget, brave=brave, synthesize=synthesize, resume=resume, budget_usd=budget_usd,
                  messages=messages, blind=blind, stoppable=True)


def _start(prompt: str, models: Sequence[str | Source] | str | None, *, system: str | None,
           temperature: float | None, max_tokens: int | None, params: Mapping[str, Any] | None,
           connect_timeout: float, first_token_timeout: float | None, stall_timeout: float | None,
           timeout: float | None, retries: int, max_concurrency: int, stall_threshold: float,
           max_prompt_chars: int, sinks: Sequence[Sink], widget: bool | None, brave: bool | Brave | None,
           synthesize: str | Source | None, resume: bool, stoppable: bool, record: bool = True,
           budget_usd: float | None = None, messages: Sequence[Mapping[str, str]] | None = None,
           conversation: Conversation | None = None, previous: Grid | None = None, blind: bool = False) -> Grid:
    plan = _plan(prompt, models, system=system, temperature=temperature, max_tokens=max_tokens,
                 params=params, connect_timeout=connect_timeout,
                 first_token_timeout=first_token_timeout, stall_timeout=stall_timeout,
                 timeout=timeout, retries=retries, max_concurrency=max_concurrency,
                 stall_threshold=stall_threshold, max_prompt_chars=max_prompt_chars, brave=brave,
                 synthesize=synthesize, resume=resume, budget_usd=budget_usd, messages=messages,
                 conversation=conversation)
    conv = plan.conversation
    engine = get_engine()
    all_sinks = list(sinks)
    grid_widget = widget_sink = None
    if widget or (widget is None and _in_kernel()):
        from .widget import GridWidget, WidgetSink

        grid_widget = GridWidget()
        earlier = previous._turns() if previous is not None else None
        widget_sink = WidgetSink(grid_widget, stoppable=stoppable, turn=conv.turn, earlier=earlier)
        all_sinks.append(widget_sink)
    # A first turn's run id is its conversation's id: the turns of one conversation join on it.
    run_id = conv.id if conv.turn == 1 else uuid.uuid4().hex[:12]
    mux = Multiplexer(run_id, plan.prompt, plan.sources, plan.options, engine.pool, all_sinks)
    mux.recorder.conversation_id, mux.recorder.turn = conv.id, conv.turn
    blinding = _blind(mux, previous) if blind else None
    if blinding is not None:
        for sink in all_sinks:  # the views that disguise a blind run (the widget, the terminal view)
            if hasattr(sink, "blinding"):
                sink.blinding = blinding
    if blinding is not None and widget_sink is not None:
        # Once an earlier turn was voted on, the names are known: the follow-up shows them.
        widget_sink.hidden = not (previous is not None and previous._voted_so_far())
    log_path = current_log()
    settings = {"system": system, "temperature": temperature, "max_tokens": max_tokens, "params": params,
                "connect_timeout": connect_timeout, "first_token_timeout": first_token_timeout,
                "stall_timeout": stall_timeout, "timeout": timeout, "retries": retries,
                "max_concurrency": max_concurrency, "stall_threshold": stall_threshold,
                "max_prompt_chars": max_prompt_chars, "sinks": sinks, "widget": widget, "brave": brave,
                "synthesize": synthesize, "resume": resume, "budget_usd": budget_usd, "blind": blind}
    grid = Grid(mux, engine, None, conversation=conv, follow_up=FollowUp(plan.models, settings, start_follow_up),
                previous=previous, blinding=blinding, widget_sink=widget_sink)

    async def _main() -> None:
        try:
            await mux.run()
        finally:
            if record:
                record_run(grid)
                if log_path is not None:
                    asyncio.get_running_loop().run_in_executor(None, _persist, grid, log_path)

    if grid_widget is not None:
        from .display import FinalDisplay

        grid.widget = grid_widget
        grid_widget.on_stop(grid._stop_clicked)
        grid_widget.on_vote(grid._vote_clicked)
        grid.final_display = FinalDisplay(grid_widget)
    grid._future = engine.submit(_main())
    if stoppable and grid.final_display is not None:
        # Nobody waits for a run that returned at once: its output is updated when it ends.
        final = grid.final_display
        grid._future.add_done_callback(lambda _: threading.Thread(target=final.finish, args=(grid,),
                                                                   name="llmgrid-final-display").start())
    return grid


def _blind(mux: Multiplexer, previous: Grid | None) -> Blinding:
    """A blind run's letters: a follow-up keeps its conversation's, a first turn shuffles anew.
    The master pane is handed the answers by letter; every name, model and route is a secret."""
    from .blind import Blinding

    slots = mux.slots
    models = [n for n, slot in slots.items() if getattr(slot.source, "pane_kind", "model") == "model"]
    extra = {n: str(getattr(slot.source, "pane_kind", "model")) for n, slot in slots.items() if n not in models}
    secrets = [str(v) for slot in slots.values() for v in (slot.source.model, slot.source.route) if v]
    base = previous._blinding if previous is not None else None
    blinding = base.with_panes(models, extra, secrets=secrets) if base is not None \
        else Blinding.shuffled(models, extra, secrets=secrets)
    for slot in slots.values():
        if hasattr(slot.source, "disguised"):
            slot.source = slot.source.disguised(blinding)
    return blinding


def _plan(prompt: str, models: Sequence[str | Source] | str | None, *, system: str | None,
          temperature: float | None, max_tokens: int | None, params: Mapping[str, Any] | None,
          connect_timeout: float, first_token_timeout: float | None, stall_timeout: float | None,
          timeout: float | None, retries: int, max_concurrency: int, stall_threshold: float,
          max_prompt_chars: int, brave: bool | Brave | None, synthesize: str | Source | None, resume: bool,
          budget_usd: float | None, messages: Sequence[Mapping[str, str]] | None = None,
          conversation: Conversation | None = None, **_ignored: Any) -> Plan:
    """Check a run's input, resolve its sources and its budget: everything before anything is sent.

    Each model pane is sent its own history (``conversation``; a first turn's is ``messages``);
    the search and master panes only this turn's question. The budget counts every pane's prompt
    with the longest history of the run, a bound for each.
    """
    from .conversation import ContinuedSource, Conversation, check_messages
    from .cost import check_budget, validate_budget

    p = _prompt(prompt, system, temperature, max_tokens, params, max_prompt_chars)
    options = _options(connect_timeout, first_token_timeout, stall_timeout, timeout, retries,
                       max_concurrency, stall_threshold, resume)
    if conversation is None:
        conversation = Conversation(shared=check_messages(messages))
    elif messages is not None:
        raise ConfigError("messages= gives a first question its history; a follow-up continues each pane's own")
    if budget_usd is not None:
        validate_budget(budget_usd)
    models_ = _sources(models)
    extra = _extra_panes(models_, brave, synthesize)
    names = unique_names([*models_, *extra])
    sent = [conversation.sent(name) for name in names[:len(models_)]]
    longest = max(sent, key=lambda h: sum(len(m["content"]) for m in h), default=())
    check_budget(budget_usd, [*models_, *extra], names, p.with_history(longest))
    streamed: list[Source] = [ContinuedSource(src, h) if h else src for src, h in zip(models_, sent)]
    return Plan(p, options, [*streamed, *extra], tuple(models_), conversation)


def _persist(grid: Grid, path: Path) -> None:
    try:
        persist_run(grid, path)
    except Exception:
        log.exception("could not append run %s to the run log", grid.run_id)


def run(prompt: str, models: Sequence[str | Source] | str | None = None, *,
        background: bool = False, **options: Any) -> Grid:
    """Stream ``prompt`` to every model at once and return the finished Grid.

    Works in scripts and in notebooks whose loop is already running (the streams run on the
    engine thread). ``background=True`` returns at once (and keeps the widget's Stop button
    live); ``grid.wait()`` or ``await grid`` later. A KeyboardInterrupt while waiting cancels
    every stream (partial results are kept in ``lg.history()``) and is re-raised. Options:
    see ``start``.
    """
    unknown = set(options) - set(RUN_DEFAULTS)
    if unknown:
        raise TypeError(f"run() got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    grid = _start(prompt, models, **{**RUN_DEFAULTS, **options}, stoppable=background)
    if not background:
        grid.wait()
    return grid


async def arun(prompt: str, models: Sequence[str | Source] | str | None = None, **options: Any) -> Grid:
    """``run`` as a coroutine: awaits the same engine work without blocking the caller's loop."""
    grid = start(prompt, models, **options)
    await grid
    return grid


def ask(grid: Grid, prompt: str, *, background: bool = False, **options: Any) -> Grid:
    """The next turn of ``grid``'s conversation (``Grid.ask``): finished, unless ``background``."""
    new = start_follow_up(grid, prompt, options, stoppable=background)
    if not background:
        new.wait()
    return new


def start_follow_up(grid: Grid, prompt: str, options: Mapping[str, Any], *, stoppable: bool) -> Grid:
    """Start the next turn of ``grid``'s conversation with ``options`` over its own; return at once.

    ``system`` among the options replaces every pane's system message, since a pane's history
    (which holds the system message it was sent) otherwise keeps its own."""
    unknown = set(options) - set(RUN_DEFAULTS)
    if unknown:
        raise TypeError(f"ask() got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    if "messages" in options:
        raise ConfigError("messages= gives a first question its history; a follow-up continues each pane's own")
    conversation, follow = grid._next_turn()
    if "system" in options:
        conversation = conversation.with_system(options["system"])
    settings = {**RUN_DEFAULTS, **follow.settings, **options}
    return _start(prompt, list(follow.models), **settings, stoppable=stoppable, conversation=conversation,
                  previous=grid)
