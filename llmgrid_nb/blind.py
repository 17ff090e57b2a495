"""Blind comparison: each model pane shown as "Model A", "Model B", ... in shuffled order, with
nothing that names its model (name, model id, route, cost, provider names in error messages)
leaving the kernel until the user has voted.

A ``Blinding`` is the mapping for one conversation (every turn keeps its labels). The widget sink,
the terminal view, the static outputs and the text report use it to disguise what they show;
``grid.summary`` keeps the real names.
"""

from __future__ import annotations

import itertools
import random
import re
import string
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["HIDDEN", "Blinding"]

#: What stands in for a name in a disguised message.
HIDDEN = "[hidden]"
#: Words that give a model's maker away in an error message (besides its own name and route).
_MAKERS = ("openai", "gpt", "azure", "anthropic", "claude", "gemini", "google", "vertex", "groq", "ollama",
           "deepseek", "openrouter", "mistral", "llama", "qwen", "litellm", "simulator", "sim")
#: The search and master panes' labels: what they are, not what model serves them.
_EXTRA_LABELS = {"search": "Search", "master": "Synthesis"}


def _letters() -> Iterator[str]:
    """A, B, ..., Z, AA, AB, ...: as many as there are panes."""
    for width in itertools.count(1):
        for letters in itertools.product(string.ascii_uppercase, repeat=width):
            yield "".join(letters)


@dataclass(frozen=True)
class Blinding:
    """Which pane is which letter: ``ids`` maps every pane's real name to its id on the wire
    ("A", "B", ... for model panes, "search" / "master" for the others), ``labels`` to what it is
    shown as ("Model A", "Search", ...)."""

    ids: Mapping[str, str]
    labels: Mapping[str, str]
    #: Every name, model id and route that must not reach the browser, longest first.
    secrets: tuple[str, ...] = ()

    @classmethod
    def shuffled(cls, model_panes: Sequence[str], extra_panes: Mapping[str, str] | None = None, *,
                 secrets: Sequence[str] = (), seed: int | None = None) -> Blinding:
        """Letters for ``model_panes`` in a random order; ``extra_panes`` maps the search and master
        panes to their kind ("search", "master")."""
        order = list(model_panes)
        random.Random(seed).shuffle(order)
        return cls({}, {}).with_panes(order, extra_panes, secrets=secrets)

    def with_panes(self, model_panes: Sequence[str], extra_panes: Mapping[str, str] | None = None, *,
                   secrets: Sequence[str] = ()) -> Blinding:
        """This blinding with any pane it lacks added (the next letter; a follow-up keeps the
        letters of the turns before it)."""
        ids, labels = dict(self.ids), dict(self.labels)
        letters = (letter for letter in _letters() if letter not in ids.values())
        for name in model_panes:
            if name not in ids:
                ids[name] = next(letters)
                labels[name] = f"Model {ids[name]}"
        for name, kind in (extra_panes or {}).items():
            if name in ids:
                continue
            wire, n = kind, 1
            while wire in ids.values():
                n += 1
                wire = f"{kind}-{n}"
            ids[name] = wire
            labels[name] = _EXTRA_LABELS.get(kind, kind.title()) + ("" if n == 1 else f" {n}")
        words = {s for s in [*self.secrets, *secrets, *ids] if len(s) > 1}
        for s in list(words):  # a name's parts give it away too: "anthropic/claude-x" -> "claude-x"
            words.update(p for p in re.split(r"[/:@?#\[\]]", s) if len(p) > 2)
        return Blinding(ids, labels, tuple(sorted(words, key=len, reverse=True)))

    @property
    def order(self) -> list[str]:
        """The real names in display order: Model A, Model B, ..., then the other panes."""
        models = sorted((n for n in self.ids if self.labels[n].startswith("Model ")),
                        key=lambda n: (len(self.ids[n]), self.ids[n]))
        return [*models, *(n for n in self.ids if not self.labels[n].startswith("Model "))]

    def source_of(self, wire_id_or_label: str) -> str | None:
        """The real pane behind an id ("A") or a label ("Model A", any case), or None."""
        key = wire_id_or_label.strip().casefold()
        for name in self.ids:
            if key in (self.ids[name].casefold(), self.labels[name].casefold()):
                return name
        return None

    def redact(self, text: str) -> str:
        """``text`` with every name, model id, route and model maker replaced by ``[hidden]``."""
        if not text:
            return text
        for secret in self.secrets:
            text = re.sub(re.escape(secret), HIDDEN, text, flags=re.IGNORECASE)
        return re.sub(r"\b(" + "|".join(_MAKERS) + r")\b", HIDDEN, text, flags=re.IGNORECASE)

    def disguise_answers(self, answers: Sequence[tuple[str, str, str, str | None]]
                         ) -> list[tuple[str, str, str, str | None]]:
        """(name, status, text, error) answers by label in display order, errors redacted: what a
        blind run's synthesiser is given, so that its citations [n] follow the panes shown."""
        rank = {name: i for i, name in enumerate(self.order)}
        ordered = sorted(answers, key=lambda a: rank.get(a[0], len(rank)))
        return [(self.labels.get(n, HIDDEN), status, text, self.redact(error) if error else error)
                for n, status, text, error in ordered]

    def frames(self, summary: pd.DataFrame, chunks: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The run's frames as a blind view may show them: panes by label in display order, no
        model, route or cost, errors redacted (for the static outputs before the vote)."""
        import pandas as pd

        rank = {name: i for i, name in enumerate(self.order)}
        s = summary.copy()
        s = s.iloc[sorted(range(len(s)), key=lambda i: rank.get(str(s["source"].iloc[i]), len(rank)))]
        s["source"] = [self.labels.get(str(n), HIDDEN) for n in s["source"]]
        for column in ("model", "route", "cost_source", "price_source"):
            if column in s.columns:
                s[column] = pd.Series([pd.NA] * len(s), index=s.index, dtype="string")
        for column in ("cost_usd", "input_cost_usd", "output_cost_usd"):
            if column in s.columns:
                s[column] = float("nan")
        if "error" in s.columns:
            s["error"] = [self.redact(e) if isinstance(e, str) else e for e in s["error"]]
        c = chunks.copy()
        c["source"] = [self.labels.get(str(n), HIDDEN) for n in c["source"]]
        for column in ("model", "route"):
            if column in c.columns:
                c[column] = pd.Series([pd.NA] * len(c), index=c.index, dtype="string")
        return s.reset_index(drop=True), c
