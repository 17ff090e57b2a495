"""A loopback HTTP server that imitates LLM providers and Brave Search.

It speaks OpenAI Chat Completions (``/v1/chat/completions``), OpenAI Responses
(``/v1/responses``), Anthropic Messages (``/v1/messages``), Gemini
(``/v1beta/models/{model}:streamGenerateContent?alt=sse`` and ``:generateContent``) and
Ollama (``/api/chat``), every profile and fault in each (see ``dialects``). Deterministic for
a seed and precise in timing; the default backend for demos, tests and benchmarks. Start it
with ``start_simulator()`` or ``default_simulator()``, or run ``python -m llmgrid_nb.sim``.

Models are profiles (``fast``, ``steady``, ``slow``, ``bursty``, ``reasoning``, ``tools``,
``flaky``, ``instant``), optionally prefixed ``sim/`` or tagged ``:latest``, with query-string
options that override anything: ``steady?tokens=10&ttft=0.1&rate=100&jitter=0&seed=3``,
``reasoning?reasoning=20``, ``fast?xss=1``, and faults such as
``fast?fault=reset&after=4``, ``fault=stall&stall_s=2``, ``fault=http_429&retry_after=none``,
``fault=drip&drip_s=0.01`` (see ``profiles.FAULT_KINDS``). ``api=openai|anthropic|gemini|responses``
tells a client which endpoint to call for the model; the server ignores it.
"""

from __future__ import annotations

from .process import SimServer, default_simulator, start_simulator
from .profiles import PROFILES, Profile, parse_model, schedule

__all__ = ["PROFILES", "Profile", "SimServer", "default_simulator", "parse_model", "schedule", "start_simulator"]
