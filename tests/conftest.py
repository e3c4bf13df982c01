"""Shared fixtures: every test gets its own data dir; the real models load once per test session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from ragft.config import Settings  # noqa: E402


@pytest.fixture(autouse=True)
def data_dir(tmp_path, monkeypatch, request) -> Path:
    """Point RAGFT_DATA_DIR at a fresh temp folder so no test sees another's store or adapters.

    Training runs on a thread of the process that asks for it (``RAGFT_TRAIN_PROCESSES=0``: the same trainer, without
    the ~15 s of a new process importing torch and loading the model), but in tests marked ``train_processes``,
    which train as the app does by default, in ``accelerate launch``'s processes."""
    d = tmp_path / "data"
    monkeypatch.setenv("RAGFT_DATA_DIR", str(d))
    for key in ("CHROMA_HOST", "CHROMA_PORT", "RAGFT_BASE_MODEL", "RAGFT_EMBED_MODEL", "RAGFT_TRAIN_PROCESSES"):
        monkeypatch.delenv(key, raising=False)
    if not request.node.get_closest_marker("train_processes"):
        monkeypatch.setenv("RAGFT_TRAIN_PROCESSES", "0")
    return d


@pytest.fixture
def settings(data_dir) -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def embedder():
    """The real embedded all-MiniLM-L6-v2, loaded once."""
    from ragft.models import load_embedder

    return load_embedder()


_LOADED: dict = {}  # the session's models, once loaded (the autouse fixture below cleans up after each test)


@pytest.fixture(scope="session")
def generator():
    """The real embedded SmolLM2-135M-Instruct, loaded once for the whole session."""
    from ragft.models import load_generator

    _LOADED["generator"] = load_generator()
    return _LOADED["generator"]


@pytest.fixture(autouse=True)
def unload_adapters():
    """After each test, take the adapters it loaded off the shared generator, so no test sees another's (and the
    model is the plain base model again)."""
    yield
    if gen := _LOADED.get("generator"):
        for name in gen.loaded_adapters:
            gen.unload_adapter(name)


@pytest.fixture
def engine(settings, embedder, request):
    """An engine on this test's data dir, sharing the session's models (never reloaded per test). The generator
    loads when a test first uses it, so store-only tests stay in the fast tier."""
    from ragft.engine import Engine

    return Engine(settings, embedder=embedder, generator=lambda: request.getfixturevalue("generator"))


@pytest.fixture
def fake_engine(settings):
    """An engine whose embedder is `helpers.FakeEmbedder` (milliseconds, no model): for the store's logic."""
    from ragft.engine import Engine

    from .helpers import FakeEmbedder

    return Engine(settings, embedder=FakeEmbedder(), generator=_no_generator)


def _no_generator():
    raise AssertionError("this test runs without a language model: use the `engine` fixture")


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


# The fast tier (`make test-fast`): no browser, no language model, no training, no subprocess. One rule: a test is
# `slow` when it uses one of these fixtures (each loads a model, trains, or starts a process), or when it says so
# with ``@pytest.mark.slow`` and why (a subprocess, a kill, the language model through `engine`). Its name never
# decides. Every test under tests/e2e/ is `e2e` (a browser and the running app).
SLOW_FIXTURES = {"memorized_adapter", "vllm_url", "generator", "facts_engine", "small_disk", "client"}


# Run first: the ZeroGPU tests fork the test process, as ``spaces.GPU`` forks the app's. Late in a run that process
# holds threads left by earlier tests (Chroma clients, Gradio servers, training runs), and a fork copies any lock
# one of them held at that moment, held for good: twice a worker stuck for minutes in a plain Python line (CI, and
# here after 35 minutes of tests); run alone, never. First, they run as if alone.
FORKS_THE_TEST_PROCESS = {"test_zero_gpu.py"}


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: item.path.name not in FORKS_THE_TEST_PROCESS)
    for item in items:
        if "/e2e/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.e2e)
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
