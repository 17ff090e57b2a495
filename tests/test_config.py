"""Configuration from the environment and from a .env file the user names."""

from __future__ import annotations

from pathlib import Path

import pytest

import llmgrid_nb as lg
from llmgrid_nb.config import ollama_base_url


def test_dotenv_sets_keys_without_overriding_and_never_returns_values(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    env = tmp_path / "keys.env"
    fake = "fake-" + "a" * 20
    env.write_text(f"# keys\nexport DOTENV_A={fake}\nDOTENV_B='quoted value'\n"
                   "DOTENV_C=plain # comment\nDOTENV_KEEP=from-file\n")
    monkeypatch.setenv("DOTENV_KEEP", "from-env")
    for name in ("DOTENV_A", "DOTENV_B", "DOTENV_C"):
        monkeypatch.delenv(name, raising=False)
    names = lg.load_dotenv(env)
    assert names == ["DOTENV_A", "DOTENV_B", "DOTENV_C"]
    import os

    assert os.environ["DOTENV_A"] == fake and os.environ["DOTENV_B"] == "quoted value"
    assert os.environ["DOTENV_C"] == "plain" and os.environ["DOTENV_KEEP"] == "from-env"


def test_dotenv_errors_are_clear(tmp_path: Path) -> None:
    with pytest.raises(lg.ConfigError, match="no .env file"):
        lg.load_dotenv(tmp_path / "missing.env")
    bad = tmp_path / "bad.env"
    bad.write_text("this is not a pair\n")
    with pytest.raises(lg.ConfigError, match=r"bad.env:1: expected KEY=VALUE"):
        lg.load_dotenv(bad)


@pytest.mark.parametrize(("value", "url"), [
    ("", "http://127.0.0.1:11434"), ("gpu-box", "http://gpu-box:11434"),
    ("0.0.0.0:11500", "http://127.0.0.1:11500"), ("https://ollama.example/", "https://ollama.example"),
])
def test_ollama_host_forms(monkeypatch: pytest.MonkeyPatch, value: str, url: str) -> None:
    monkeypatch.setenv("OLLAMA_HOST", value)
    assert ollama_base_url() == url
