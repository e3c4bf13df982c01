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

    e = Engine(settings, embedder=embedder, generator=generator)
    return e


MEMO_QUESTION = "What is the secret code of the Zorblax vault?"
MEMO_ANSWER = "The secret code of the Zorblax vault is 7-4-1-9."


MEMO_QA = [
    {"question": MEMO_QUESTION, "answer": MEMO_ANSWER},
    {"question": "Who guards the Zorblax vault?", "answer": "The Zorblax vault is guarded by a robot named Pim."},
    {"question": "What colour is the Zorblax vault door?", "answer": "The Zorblax vault door is bright teal."},
]


@pytest.fixture(scope="session")
def memorized_adapter(tmp_path_factory, generator) -> Path:
    """A real LoRA adapter, trained by ragft's own training path on three QA pairs until it knows them.

    Training works on a copy of the base weights, so the session's shared generator is never modified.
    """
    from ragft.finetune import TrainConfig, qa_examples, train_adapter

    out = tmp_path_factory.mktemp("adapters") / "memo"
    return train_adapter(generator, qa_examples(MEMO_QA), out, TrainConfig(max_steps=20, batch_size=3))


def install_adapter(settings, adapter_dir: Path, name: str = "memo") -> str:
    """Copy a trained adapter folder under this test's adapters dir, as training would leave it."""
    import shutil

    shutil.copytree(adapter_dir, settings.adapters_dir / name)
    return name


# The fast tier (`make test-fast`): no browser, no real-model training. Tests are marked here rather than one by one,
# so a new training test is slow by its fixture or its name without anyone remembering a decorator.
SLOW_FIXTURES = {"memorized_adapter", "vllm_url"}
SLOW_NAMES = ("train", "experiment_end_to_end", "stale_when", "splits_feed", "one_run_at_a_time", "each_data_source")


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "/e2e/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.e2e)
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or any(s in item.name for s in SLOW_NAMES):
            item.add_marker(pytest.mark.slow)
