"""The Brave Search knowledge aggregator: search, enrich, analyse, synthesise — as one source.

Its events (source ``brave``) flow through the same multiplexer and metrics as any model:
``Progress`` stages, a ``SearchResult`` per result as soon as the response is parsed, per-page
``InterimAnalysis`` (the page's most relevant sentences), ``batch_complete`` progress with batch
size and processing time, non-fatal ``Error`` events for pages that could not be used, then a
streamed ``FinalSynthesis`` grounded in the extracted text with numbered citations ``[n]``
that refer to the results in the order they were emitted. With no Brave key it uses the
simulator's emulator and says so (route ``simulated``); it never pretends to be the real API.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

from ..config import Secret
from ..errors import ConfigError, ProviderError
from ..events import Error, Event, InterimAnalysis, Progress, SearchResult
from .base import Prompt, Source, StreamContext
from .brave_search import BRAVE_URL, BraveResult, brave_key, search, strip_tags, validate_params
from .enrich import FetchError, Page, fetch_page, key_sentences
from .synthesis import stream_synthesis

__all__ = ["Brave", "grounded_prompt"]

SYNTHESIS_SYSTEM = (
    "You answer questions from web search results. Use only the numbered sources given. "
    "Cite every claim with its source number in square brackets, like [1] or [2][3]. "
    "If the sources disagree or do not answer the question, say so."
)


def grounded_prompt(question: str, results: list[BraveResult], pages: dict[str, Page], *,
                    per_source_chars: int = 1500) -> str:
    """The synthesis prompt: the question, then every result numbered as it was shown."""
    lines = [f"Question: {question}", "", "Sources:"]
    for i, r in enumerate(results, 1):
        page = pages.get(r.url)
        body = (page.text if page else r.text)[:per_source_chars]
        lines.append(f"[{i}] {strip_tags(r.title)} — {r.url}\n{body}\n")
    lines.append("Answer the question in a few short paragraphs, citing sources as [n].")
    return "\n".join(lines)


class Brave:
    """The knowledge aggregator pane: Brave web search + page enrichment + a grounded synthesis."""

    pane_kind = "search"
    model = "brave-web-search"

    def __init__(
        self,
        *,
        synthesis_model: str | Source | None = None,
        count: int = 8,
        top_k: int = 4,
        api_key: str | Secret | None = None,
        base_url: str | None = None,
        country: str | None = None,
        search_lang: str | None = None,
        safesearch: str | None = None,
        freshness: str | None = None,
        extra_snippets: bool | None = None,
        text_decorations: bool | None = None,
        params: dict[str, Any] | None = None,
        rewrite_model: str | Source | None = None,
        cache: bool = True,
        allow_private: bool = False,
        max_page_chars: int = 20_000,
        max_page_bytes: int = 2_000_000,
        page_timeout: float = 10.0,
        per_host: int = 2,
        batch_size: int = 2,
        name: str = "brave",
    ) -> None:
        self.synthesis_model = synthesis_model
        self.count = count
        self.top_k = top_k
        self._api_key = Secret(api_key) if isinstance(api_key, str) else api_key
        self._base_url = base_url
        self.search_params: dict[str, Any] = {
            "country": country, "search_lang": search_lang, "safesearch": safesearch,
            "freshness": freshness, "extra_snippets": extra_snippets, "text_decorations": text_decorations,
            **(params or {}),
        }
        self.rewrite_model = rewrite_model
        self.cache = cache
        self.allow_private = allow_private
        self.max_page_chars = max_page_chars
        self.max_page_bytes = max_page_bytes
        self.page_timeout = page_timeout
        self.per_host = per_host
        self.batch_size = batch_size
        self.name = name

    def __repr__(self) -> str:
        return f"Brave(route={self.route!r}, count={self.count}, top_k={self.top_k})"

    @property
    def simulated(self) -> bool:
        """True when no Brave key is set: the simulator's emulator answers."""
        return self._base_url is None and brave_key(self._api_key) is None

    @property
    def route(self) -> str:
        return "simulated" if self.simulated else "brave-api"

    @property
    def host(self) -> str | None:
        return None

    def _synth(self) -> Source:
        from .resolve import resolve_source

        model = self.synthesis_model or "sim/steady?tokens=90&rate=90"
        return resolve_source(model)

    def validate(self) -> None:
        """Check the limits and the synthesis model before anything is sent."""
        if not 1 <= self.count <= 20:
            raise ConfigError(f"brave: count must be 1-20, got {self.count}")
        if not 0 <= self.top_k <= self.count:
            raise ConfigError(f"brave: top_k must be 0..count, got {self.top_k}")
        self._synth().validate()

    async def prepare(self) -> None:
        """Start the simulator (when simulated) and prepare the synthesis source, off the clock."""
        loop = asyncio.get_running_loop()
        if self.simulated:
            from ..sim import default_simulator

            await loop.run_in_executor(None, default_simulator)
        synth = self._synth()
        if hasattr(synth, "prepare"):
            await synth.prepare()

    def _target(self) -> tuple[str, Secret, tuple[str, ...]]:
        if self.simulated:
            from ..clients import host_key
            from ..sim import default_simulator

            url = default_simulator().url
            return url, Secret("simulated-no-key"), (host_key(url),)
        key = brave_key(self._api_key)
        if key is None:
            raise ProviderError("no Brave Search key: set BRAVE_API_KEY (or BRAVE_SEARCH_API_KEY) or pass api_key=",
                                kind="config")
        return self._base_url or BRAVE_URL, key, ()

    async def _queries(self, prompt: Prompt, ctx: StreamContext) -> list[str]:
        question = prompt.text.strip()
        if self.rewrite_model is None:
            return [question[:400]]
        from .resolve import resolve_source

        rewriter = resolve_source(self.rewrite_model)
        ask = Prompt(f"Rewrite this question into one to three short web search queries, one per line, "
                     f"nothing else:\n{question}", max_tokens=60)
        text = []
        async for ev in rewriter.stream(ask, ctx.nested()):
            if ev.kind == "token":
                text.append(ev.text)  # type: ignore[union-attr]
        lines = [ln.strip(" -*#\t").strip() for ln in "".join(text).splitlines()]
        queries = [ln[:400] for ln in lines if len(ln) > 3][:3]
        return queries or [question[:400]]

    async def stream(self, prompt: Prompt, ctx: StreamContext) -> AsyncIterator[Event]:
        """Run the pipeline, yielding events as each stage produces them."""
        ctx.request_started()
        name = ctx.name
        yield Progress(name, ctx.now(), "analysis_started", detail="simulated Brave Search" if self.simulated else "")
        base_url, key, allowed = self._target()
        queries = await self._queries(prompt, ctx)
        if self.rewrite_model is not None:
            yield Progress(name, ctx.now(), "query_analysis", detail=" | ".join(queries))
        results: list[BraveResult] = []
        seen: set[str] = set()
        for q in queries:
            validate_params(q, self.count, 0)
            yield Progress(name, ctx.now(), "searching", detail=q)
            response = await search(ctx, q, base_url=base_url, key=key, count=self.count,
                                    params=self.search_params, use_cache=self.cache)
            t = ctx.now()
            for r in response.results:
                if r.url in seen:
                    continue
                seen.add(r.url)
                r = dataclasses.replace(r, rank=len(results) + 1)
                results.append(r)
                yield SearchResult(name, t, r.rank, r.title, r.url, r.description, r.age)
            yield Progress(name, t, "search_complete", len(results), len(results),
                           detail="cached" if response.cached else "")
        pages: dict[str, Page] = {}
        async for ev in self._enrich(results[: self.top_k], prompt.text, ctx, allowed, pages):
            yield ev
        yield Progress(name, ctx.now(), "synthesizing", len(pages), len(results))
        grounded = Prompt(grounded_prompt(prompt.text, results, pages), system=SYNTHESIS_SYSTEM,
                          temperature=prompt.temperature, max_tokens=prompt.max_tokens)
        async for ev in stream_synthesis(self._synth(), grounded, ctx.nested()):
            yield ev

    async def _enrich(self, targets: list[BraveResult], question: str, ctx: StreamContext,
                      allowed: tuple[str, ...], pages: dict[str, Page]) -> AsyncIterator[Event]:
        if not targets:
            return
        name = ctx.name
        limits: dict[str, asyncio.Semaphore] = {}

        async def one(r: BraveResult) -> tuple[BraveResult, Page | None, str | None]:
            from ..clients import host_key

            sem = limits.setdefault(host_key(r.url) if "://" in r.url else r.url, asyncio.Semaphore(self.per_host))
            async with sem:
                try:
                    page = await fetch_page(ctx, r.url, allowed_hosts=allowed, allow_private=self.allow_private,
                                            max_bytes=self.max_page_bytes, max_chars=self.max_page_chars,
                                            timeout=self.page_timeout)
                    return r, page, None
                except FetchError as exc:
                    return r, None, str(exc)

        yield Progress(name, ctx.now(), "fetching", 0, len(targets))
        tasks = [asyncio.ensure_future(one(r)) for r in targets]
        done_count = ok = failed = 0
        batch: list[float] = []
        t_batch = ctx.now()
        try:
            for next_done in asyncio.as_completed(tasks):
                r, page, reason = await next_done
                done_count += 1
                t = ctx.now()
                if page is not None:
                    ok += 1
                    pages[r.url] = page
                    batch.append(page.seconds)
                    yield InterimAnalysis(name, t, f"[{r.rank}] {strip_tags(r.title)}: "
                                                   f"{key_sentences(page.text, question)}")
                else:
                    failed += 1
                    batch.append(0.0)
                    yield Error(name, t, f"could not use result [{r.rank}] {r.url}: {reason}",
                                recoverable=True, fatal=False, error_type="fetch")
                if len(batch) >= self.batch_size or done_count == len(targets):
                    yield Progress(name, t, "batch_complete", done_count, len(targets),
                                   metrics={"batch_size": float(len(batch)),
                                            "processing_time_s": t - t_batch,
                                            "max_page_s": max(batch), "pages_ok": float(ok),
                                            "pages_failed": float(failed)})
                    batch = []
                    t_batch = t
        finally:
            for task in tasks:
                task.cancel()
