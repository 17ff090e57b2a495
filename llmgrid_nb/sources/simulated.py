"""Simulator profiles as sources: the one place where sources meet ``sim/``.

``sim/<profile>[?options]`` streams from the loopback simulator in any dialect it speaks:
``api=openai`` (the default: Chat Completions SSE), ``api=anthropic`` (Messages SSE),
``api=gemini`` (streamGenerateContent SSE) or ``api=responses`` (the Responses API), each
through the same direct source a real provider of that dialect uses.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl

from ..errors import ConfigError
from ..events import Event
from .base import Prompt, Source, StreamContext

__all__ = ["SIM_APIS", "Simulated", "simulator_url"]

#: The dialects the simulator speaks, by the ``api=`` option's value.
SIM_APIS = ("openai", "anthropic", "gemini", "responses")


def simulator_url() -> str:
    """The running simulator's base URL (started on first use)."""
    from ..sim import default_simulator

    return default_simulator().url


def _api_option(profile: str) -> str:
    _, _, query = profile.partition("?")
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key == "api":
            return value
    return "openai"


class Simulated:
    """A simulator profile (``sim/<profile>``), served by the loopback simulator over real HTTP."""

    route = "sim"

    def __init__(self, profile: str, *, name: str | None = None, **options: Any) -> None:
        self.profile = profile
        self.model = profile
        self.name = name or f"sim/{profile}"
        self.api = _api_option(profile)
        self._options = options
        self._dialect: Source | None = None

    def __repr__(self) -> str:
        return f"Simulated(profile={self.profile!r}, name={self.name!r})"

    @property
    def host(self) -> str | None:
        return "sim"

    @property
    def resumable(self) -> bool:
        """Whether a broken stream may be continued: as the real API of this dialect allows."""
        return getattr(self.dialect(), "resumable", True)

    def choice_count(self, prompt: Prompt) -> int:
        """How many choices one request streams (``n``), as this dialect's real API would."""
        count = getattr(self.dialect(), "choice_count", None)
        return count(prompt) if count is not None else 1

    @property
    def base_url(self) -> str:
        """The simulator's base URL in this dialect's form."""
        url = simulator_url()
        return url + "/v1" if self.api in ("openai", "responses") else url

    def dialect(self) -> Source:
        """The direct source of this profile's dialect, pointed at the simulator."""
        if self._dialect is None:
            self._dialect = self._make_dialect()
        return self._dialect

    def _make_dialect(self) -> Source:
        base, opts = self.base_url, self._options
        if self.api == "anthropic":
            from .anthropic import Anthropic

            return Anthropic(self.profile, base_url=base, api_key="sim-no-key", name=self.name, **opts)
        if self.api == "gemini":
            from .gemini import Gemini

            return Gemini(self.profile, base_url=base + "/v1beta", api_key="sim-no-key", name=self.name, **opts)
        if self.api == "responses":
            from .openai_responses import OpenAIResponses

            return OpenAIResponses(self.profile, base_url=base, api_key="sim-no-key", name=self.name, **opts)
        from .openai_sse import OpenAICompatible

        return OpenAICompatible(self.profile, base, name=self.name, **opts)

    async def prepare(self) -> None:
        """Start the shared simulator (a subprocess) before the run's clock starts."""
        await asyncio.get_running_loop().run_in_executor(None, simulator_url)

    def validate(self) -> None:
        """Check the profile and its options against the simulator's own parser."""
        from ..sim.profiles import PROFILES, UnknownModelError, parse_model

        if self.api not in SIM_APIS:
            raise ConfigError(f"{self.name}: api={self.api!r} is not a dialect the simulator speaks; "
                              f"choose one of {', '.join(SIM_APIS)}")
        try:
            parse_model(self.profile)
        except UnknownModelError:
            raise ConfigError(f"{self.name}: unknown simulator profile; choose one of "
                              f"{', '.join('sim/' + p for p in PROFILES)}") from None
        except ValueError as exc:
            raise ConfigError(f"{self.name}: bad simulator option: {exc}") from None

    def stream(self, prompt: Prompt, ctx: StreamContext) -> AsyncIterator[Event]:
        """Stream from the simulator through the dialect's own source."""
        return self.dialect().stream(prompt, ctx)
