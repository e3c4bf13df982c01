"""Shared fixtures: every test gets its own data dir; the real models load once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from ragft.config import Settings  # noqa: E402


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch) -> Path:
    """Point RAGFT_DATA_DIR at a fresh temp folder so no test sees another's store or adapters."""
    d = tmp_path / "data"
    monkeypatch.setenv("RAGFT_DATA_DIR", str(d))
    for key in ("CHROMA_HOST", "CHROMA_PORT", "RAGFT_BASE_MODEL", "RAGFT_EMBED_MODEL"):
        monkeypatch.delenv(key, raising=False)
    return d


@pytest.fixture
def settings(data_dir) -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def embedder():
    """The real embedded all-MiniLM-L6-v2, loaded once."""
    from ragft.models import load_embedder

    return load_embedder()


@pytest.fixture(scope="session")
def generator():
    """The real embedded SmolLM2-135M-Instruct, loaded once for the whole session."""
    from ragft.models import load_generator

    return load_generator()


@pytest.fixture
def engine(settings, embedder, generator):
    """An engine on this test's data dir, sharing the session's models (never reloaded per test)."""
    from ragft.engine import Engine

    e = Engine(settings)
    e._embedder = embedder
    e._generator = generator
    return e
