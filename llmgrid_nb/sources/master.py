"""The master view: one model streams an answer that reconciles the other panes' answers."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from ..errors import ProviderError
from ..events import Event, FinalSynthesis, Status
from .base import Prompt, Source, StreamContext
from .synthesis import stream_synthesis

if TYPE_CHECKING:
    from ..blind import Blinding

__all__ = ["MasterSynthesis", "master_prompt"]

MASTER_SYSTEM = (
    "You are the master view of a side-by-side comparison of several models answering the same "
    "question. Write one answer that reconciles theirs: keep what they agree on, point out "
    "clearly where they disagree or one is wrong, and cite which answer said what with its "
    "number in square brackets, like [1] or [2][3]."
)


def master_prompt(question: str, answers: list[tuple[str, str, str, str | None]], *,
                  per_answer_chars: int = 4000) -> str:
    """The synthesis prompt: the question, then every pane's answer numbered in pane order."""
    lines = [f"Question: {question}", "", "Answers:"]
    for i, (name, status, text, error) in enumerate(answers, 1):
        note = "" if status == "done" else f" ({status}{': ' + error if error else ''}; partial)"
        lines.append(f"[{i}] {name}{note}\n{text[:per_answer_chars] or '(no answer)'}\n")
    lines.append("Write the reconciled answer, citing answers as [n].")
    return "\n".join(lines)


class MasterSynthesis:
    """A source that waits for the other panes, then streams a reconciling answer from ``model``."""

    pane_kind = "master"
    route = "master"
    waits_for_peers = True

    def __init__(self, model: str | Source, *, incremental: bool = False, name: str = "master") -> None:
        from .resolve import resolve_source

        self.synthesizer = resolve_source(model)
        self.model = self.synthesizer.model
        self.incremental = incremental
        self.name = name
        #: In a blind run: the answers go to the synthesiser as "Model A", ..., in display order.
        self.blinding: Blinding | None = None

    def disguised(self, blinding: Blinding) -> MasterSynthesis:
        """A copy for a blind run, citing the panes by their letters in the order they are shown."""
        twin = copy.copy(self)
        twin.blinding = blinding
        return twin

    def __repr__(self) -> str:
        return f"MasterSynthesis(model={self.model!r})"

    @property
    def host(self) -> str | None:
        return None

    def validate(self) -> None:
        """Validate the synthesising model."""
        self.synthesizer.validate()

    async def prepare(self) -> None:
        """Prepare the synthesising model (start the simulator, import litellm) off the clock."""
        if hasattr(self.synthesizer, "prepare"):
            await self.synthesizer.prepare()

    async def stream(self, prompt: Prompt, ctx: StreamContext) -> AsyncIterator[Event]:
        """Wait for the other panes, then stream the synthesis as FinalSynthesis events.

        With ``incremental=True`` a section is streamed each time another pane finishes,
        reconciling the answers so far; the last section covers them all. Latencies count from
        the first synthesis request.
        """
        if ctx.peers is None:
            raise ProviderError("the master view needs the other panes of its run", kind="config")
        yield Status(ctx.name, ctx.now(), "waiting", "waiting for the other panes to finish")
        if not self.incremental:
            await ctx.peers.wait()
            async for ev in self._section(prompt, ctx, ctx.peers.answers()):
                yield ev
            return
        seen: set[str] = set()
        total = len(ctx.peers.names)
        while len(seen) < total:
            ended = await ctx.peers.wait_next(seen)
            seen |= ended
            answers = ctx.peers.answers(seen)
            if not any(text for _, _, text, _ in answers):
                continue
            if ctx.t_request is not None:  # a later section: headed, and timed from the first request
                ctx.keep_origin = True
                heading = "With all answers" if len(seen) == total else f"After {len(seen)} of {total} answers"
                yield FinalSynthesis(ctx.name, ctx.now(), f"\n\n### {heading}\n\n")
            async for ev in self._section(prompt, ctx, answers, last=len(seen) == total):
                yield ev

    async def _section(self, prompt: Prompt, ctx: StreamContext, answers: list[tuple[str, str, str, str | None]],
                       *, last: bool = True) -> AsyncIterator[Event]:
        if not any(text for _, _, text, _ in answers):
            raise ProviderError("no pane produced any text to synthesise", kind="empty")
        if self.blinding is not None:
            answers = self.blinding.disguise_answers(answers)
        ask = Prompt(master_prompt(prompt.text, answers), system=MASTER_SYSTEM,
                     temperature=prompt.temperature, max_tokens=prompt.max_tokens)
        async for ev in stream_synthesis(self.synthesizer, ask, ctx):
            if ev.kind != "done" or last:
                yield ev
