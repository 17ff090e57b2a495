"""Relaying a model's stream as a synthesis: the shared last step of the aggregator and master view."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ..events import Done, Error, Event, FinalSynthesis, Reasoning, Status, Usage
from .base import Prompt, Source, StreamContext

__all__ = ["stream_synthesis"]


async def stream_synthesis(model: Source, prompt: Prompt, ctx: StreamContext) -> AsyncIterator[Event]:
    """Stream ``model``'s answer to ``prompt`` as FinalSynthesis events of ``ctx.name``, then Done.

    Reasoning, usage, status changes and warnings pass through; a failure raises as usual.
    """
    finish = None
    async for ev in model.stream(prompt, ctx):
        if ev.kind == "token":
            yield FinalSynthesis(ctx.name, ev.t_s, ev.text)  # type: ignore[union-attr]
        elif isinstance(ev, (Reasoning, Usage, Status)) or (isinstance(ev, Error) and not ev.fatal):
            yield ev
        elif isinstance(ev, Done):
            finish = ev.finish_reason
    yield Done(ctx.name, ctx.now(), finish)
