"""Latency profiles of the simulated models, the model-name options, and the chunk schedule."""

from __future__ import annotations

import dataclasses
import math
import random
from dataclasses import dataclass
from urllib.parse import parse_qsl

__all__ = [
    "API_KINDS",
    "FAULT_KINDS",
    "PROFILES",
    "Fault",
    "OptionError",
    "Profile",
    "SimOptions",
    "UnknownModelError",
    "parse_model",
    "schedule",
]

FAULT_KINDS = frozenset(
    {
        "http_400",
        "http_401",
        "http_403",
        "http_404",
        "http_429",
        "http_500",
        "http_502",
        "http_503",
        "reset",
        "stall",
        "drip",
        "no_done",
        "malformed",
        "huge_line",
        "invalid_utf8",
        "html",
        "error_chunk",
    }
)

# Which endpoint a client should call for a model; the server answers every dialect on its own path.
API_KINDS = frozenset({"openai", "anthropic", "gemini", "responses"})


@dataclass(frozen=True, slots=True)
class Profile:
    """How one simulated model behaves: when it starts, how fast it streams, what it says.

    ``jitter`` is relative (0.1 means every interval is scaled by a factor in [0.9, 1.1]).
    A profile with ``burst`` streams groups of that many tokens at ``rate`` separated by
    pauses drawn from ``pause``. ``failure_rate`` > 0 makes some requests fail (flaky).
    """

    name: str
    ttft: float
    rate: float
    jitter: float
    tokens: int
    kind: str = "text"
    reasoning_tokens: int = 0
    burst: tuple[int, int] | None = None
    pause: tuple[float, float] | None = None
    failure_rate: float = 0.0
    description: str = ""


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("fast", 0.05, 200.0, 0.1, 120, description="quick start, 200 tok/s"),
        Profile("steady", 0.3, 50.0, 0.03, 120, description="0.3 s TTFT, 50 tok/s, low jitter"),
        Profile("slow", 2.0, 15.0, 0.2, 80, description="2 s TTFT, 15 tok/s"),
        Profile(
            "bursty",
            0.4,
            500.0,
            0.05,
            120,
            burst=(5, 15),
            pause=(0.2, 0.6),
            description="bursts of 5-15 tokens, then 0.2-0.6 s pauses",
        ),
        Profile(
            "reasoning",
            0.5,
            60.0,
            0.15,
            90,
            kind="reasoning",
            reasoning_tokens=50,
            description="reasoning deltas first, then the answer",
        ),
        Profile("tools", 0.4, 80.0, 0.1, 40, kind="tools", description="calls a tool"),
        Profile(
            "flaky",
            0.3,
            50.0,
            0.1,
            120,
            failure_rate=0.4,
            description="about 40% of requests fail in one of several ways",
        ),
        Profile("instant", 0.0, 0.0, 0.0, 60, description="everything at once, for tests"),
    )
}


class UnknownModelError(LookupError):
    """The model name names no simulator profile."""


class OptionError(ValueError):
    """A model-name option is malformed."""


@dataclass(frozen=True, slots=True)
class Fault:
    """A failure to inject into one response; ``after`` counts token chunks sent before it."""

    kind: str
    after: int = 3
    retry_after: str | None = "1"
    stall_s: float = 30.0
    drip_s: float = 1.0


@dataclass(frozen=True, slots=True)
class SimOptions:
    """A parsed model name: the profile with overrides applied, plus seed, fault and flags.

    ``api`` (``openai``, ``anthropic``, ``gemini``, ``responses``) tells a client which
    endpoint to call; None leaves the choice to the client. ``price_in`` and ``price_out`` are a
    fake price in USD per million tokens, for cost tests and demos (``cost_source`` then reads
    "simulated"). The server ignores both.
    """

    model: str
    profile: Profile
    seed: int | None = None
    fault: Fault | None = None
    xss: bool = False
    fault_defaults: Fault = Fault("")
    api: str | None = None
    price_in: float | None = None
    price_out: float | None = None


_PROFILE_OVERRIDES = {"ttft": float, "rate": float, "jitter": float, "tokens": int, "reasoning": int}


def parse_model(model: str) -> SimOptions:
    """Parse ``[sim/]name[:tag][?opt=value&...]`` into options; raise on unknown names or bad values."""
    base, _, query = model.partition("?")
    name = base.removeprefix("sim/")
    name = name.split(":", 1)[0]
    profile = PROFILES.get(name)
    if profile is None:
        raise UnknownModelError(base)
    options = dict(parse_qsl(query, keep_blank_values=True))
    try:
        overrides: dict[str, object] = {}
        for key, conv in _PROFILE_OVERRIDES.items():
            if key in options:
                field = "reasoning_tokens" if key == "reasoning" else key
                overrides[field] = conv(options[key])
        if any(isinstance(v, (int, float)) and v < 0 for v in overrides.values()):
            raise OptionError(f"negative value in model options of {model!r}")
        if overrides:
            profile = dataclasses.replace(profile, **overrides)  # type: ignore[arg-type]
        seed = int(options["seed"]) if "seed" in options else None
        fault_defaults = _parse_fault(options)
        fault = fault_defaults if fault_defaults.kind else None
    except ValueError as exc:
        raise OptionError(f"bad option in model {model!r}: {exc}") from None
    xss = options.get("xss", "0") not in ("", "0", "false")
    api = options.get("api")
    if api is not None and api not in API_KINDS:
        raise OptionError(f"unknown api {api!r} in model {model!r}; one of {', '.join(sorted(API_KINDS))}")
    price_in, price_out = (_price(options, key, model) for key in ("price_in", "price_out"))
    return SimOptions(
        model=base, profile=profile, seed=seed, fault=fault, xss=xss, fault_defaults=fault_defaults, api=api,
        price_in=price_in, price_out=price_out,
    )


def _price(options: dict[str, str], key: str, model: str) -> float | None:
    """A declared price (USD per million tokens): a finite number >= 0, or absent."""
    if key not in options:
        return None
    try:
        value = float(options[key])
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise OptionError(f"{key} in model {model!r} must be a price in USD per million tokens (a number >= 0), "
                          f"got {options[key]!r}")
    return value


def _parse_fault(options: dict[str, str]) -> Fault:
    kind = options.get("fault", "")
    if kind and kind not in FAULT_KINDS:
        raise OptionError(f"unknown fault {kind!r}; one of {', '.join(sorted(FAULT_KINDS))}")
    retry_after: str | None = options.get("retry_after", "1")
    if retry_after == "none":
        retry_after = None
    elif retry_after is not None:
        float(retry_after)
    return Fault(
        kind=kind,
        after=int(options.get("after", 3)),
        retry_after=retry_after,
        stall_s=float(options.get("stall_s", 30.0)),
        drip_s=float(options.get("drip_s", 1.0)),
    )


def schedule(profile: Profile, n_tokens: int, seed: int) -> list[float]:
    """Offsets in seconds from request receipt at which each of ``n_tokens`` token chunks is due.

    Pure and deterministic for (profile, n_tokens, seed): the server sleeps until
    ``t_request + offset`` for every chunk, so errors never accumulate.
    """
    rng = random.Random(f"{profile.name}|{seed}")
    jitter = profile.jitter

    def jittered(value: float) -> float:
        return value * (1.0 + jitter * rng.uniform(-1.0, 1.0)) if jitter else value

    interval = 1.0 / profile.rate if profile.rate > 0 else 0.0
    t = jittered(profile.ttft)
    offsets: list[float] = []
    if profile.burst is not None and profile.pause is not None:
        lo, hi = profile.burst
        left_in_burst = rng.randint(lo, hi)
        for i in range(n_tokens):
            if i:
                if left_in_burst == 0:
                    t += rng.uniform(*profile.pause)
                    left_in_burst = rng.randint(lo, hi)
                else:
                    t += jittered(interval)
            left_in_burst -= 1
            offsets.append(t)
        return offsets
    for i in range(n_tokens):
        if i:
            t += jittered(interval)
        offsets.append(t)
    return offsets
