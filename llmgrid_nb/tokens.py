"""Offline token counting with the tiktoken encodings that litellm bundles.

Used only when a provider reports no usage. Never triggers a download: the encodings are
read from litellm's package data (found without importing litellm); if they or tiktoken are
missing, counting is unavailable and callers fall back to the chunk count.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["count_tokens", "encoding_name_for"]

log = logging.getLogger(__name__)
_lock = threading.Lock()
_encodings: dict[str, Any] = {}
_O200K_PREFIXES = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o")


def encoding_name_for(model: str) -> str:
    """o200k_base for OpenAI's newer models, cl100k_base for everything else (approximate)."""
    bare = model.rsplit("/", 1)[-1].lower()
    return "o200k_base" if bare.startswith(_O200K_PREFIXES) else "cl100k_base"


def _bundled_cache_dir() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "litellm_core_utils" / "tokenizers"
    return path if path.is_dir() else None


def _encoding(name: str) -> Any | None:
    with _lock:
        if name in _encodings:
            return _encodings[name]
        enc = None
        cache = _bundled_cache_dir()
        if cache is not None and importlib.util.find_spec("tiktoken") is not None:
            os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(cache))
            try:
                import tiktoken

                enc = tiktoken.get_encoding(name)
            except Exception as exc:  # a missing bundled file must not break a run
                log.debug("tokenizer %s unavailable: %s", name, exc)
        _encodings[name] = enc
        return enc


def count_tokens(texts: Sequence[str], model: str = "") -> list[int] | None:
    """Token counts of each text, or None when no offline tokenizer is available."""
    enc = _encoding(encoding_name_for(model))
    if enc is None:
        return None
    return [len(enc.encode_ordinary(t)) if t else 0 for t in texts]
