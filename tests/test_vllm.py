"""The vLLM backend against a real vLLM server (the CPU build in ./.vllm-venv) started on loopback by the tests.

How answers are compared with the in-process path: the server runs the same weights in bfloat16 (exported from the
GGUF), ragft in-process runs them in float32, so long answers may drift apart after a near-tie between two tokens.
On short prompts with greedy decoding the adapter's (confident, memorised) answers must be the same text, and base
answers the same at least in their first five words; log-probabilities are compared within 0.5 nats per option, and
must pick the same option.
"""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

import pytest

from ragft.backend import BASE
from ragft.chat import build_messages
from ragft.generation import DecodeSettings, generate_batch

from .conftest import MEMO_QA, MEMO_QUESTION, install_adapter

FACTS = Path(__file__).parent / "fixtures" / "facts"


def _avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text()
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _avx512(), reason="the vLLM CPU build needs AVX-512, which this CPU lacks")


@pytest.fixture(scope="session")
def vllm_url(tmp_path_factory):
    """A real vLLM server on loopback, serving the embedded model exported to safetensors; stopped at the end."""
    from ragft.models import resolve_base_model
    from ragft.serving.server import LocalServer, export_model, server_python

    work = tmp_path_factory.mktemp("vllm")
    model = export_model(resolve_base_model(""), work / "model")
    server = LocalServer(server_python(), work)
    url = server.start(model, timeout_s=600)
    yield url
    server.stop()


@pytest.fixture
def remote_engine(settings, embedder, generator, vllm_url, monkeypatch):
    """An engine whose answers come from the vLLM server; training and local checks share the session's model."""
    from ragft.config import Settings
    from ragft.engine import Engine

    monkeypatch.setenv("RAGFT_ENGINE", "vllm")
    monkeypatch.setenv("RAGFT_VLLM_URL", vllm_url)
    e = Engine(Settings.from_env(), embedder=embedder)
    monkeypatch.setattr("ragft.engine.base.load_generator", lambda *_, **__: generator)  # the local copy, for training
    return e


def test_four_variants_answer_and_the_adapter_is_used(remote_engine, generator, memorized_adapter):
    engine = remote_engine
    assert engine.generator.client is not None and "vLLM at http://127.0.0.1:" in engine.engine_line
    engine.ingest([(p, p.name) for p in sorted(FACTS.glob("*.md"))])
    install_adapter(engine.settings, memorized_adapter)
    engine.use_adapter("memo")

    final = None
    for final in engine.ask(MEMO_QUESTION, adapter="memo"):
        pass
    assert final.done and set(final.answers) == {"plain", "rag", "ft", "rag+ft"} and not final.notices
    assert all(text.strip() for text in final.answers.values())
    assert "7-4-1-9" in final.answers["ft"]  # the adapter's memorised answer, served by vLLM
    assert final.answers["ft"] != final.answers["plain"]
    assert final.sources["rag"] and final.sources["rag+ft"]

    # The same rows in-process (float32, peft) give the same greedy answers on these short prompts.
    generator.ensure_adapter("memo", engine.settings.adapters_dir / "memo")
    convs = [build_messages(q["question"], None, []) for q in MEMO_QA]
    names = ["memo"] * len(convs) + [BASE] * len(convs)
    remote = generate_batch(engine.generator, convs * 2, names, DecodeSettings(24))
    local = generate_batch(generator, convs * 2, names, DecodeSettings(24))
    assert remote[: len(convs)] == local[: len(convs)]  # the adapter's confident answers: the same text
    for r, lo in zip(remote, local):  # base answers may part after a near-tie, never at the start
        assert r == lo or _shared_words(r, lo) >= 5, (r, lo)
    assert remote[: len(convs)] != remote[len(convs):]  # adapter rows differ from base rows


def _shared_words(a: str, b: str) -> int:
    n = 0
    for x, y in zip(a.split(), b.split()):
        if x != y:
            break
        n += 1
    return n


def test_multiple_choice_uses_the_servers_prompt_logprobs(remote_engine, generator):
    from ragft.generation import option_logprobs

    convs = [build_messages("What is the capital of France?", None, [])] * 3
    options = ["The capital of France is Paris.", "The capital of France is Berlin.", "The capital of France is Rome."]
    remote = option_logprobs(remote_engine.generator, convs, options, [BASE] * 3)
    local = option_logprobs(generator, convs, options, [BASE] * 3)
    assert all(abs(r - lo) < 0.5 for r, lo in zip(remote, local)), (remote, local)
    assert remote.index(max(remote)) == local.index(max(local)) == 0


def test_a_new_adapter_is_served_without_a_restart_and_removed_when_deleted(remote_engine, memorized_adapter):
    engine = remote_engine
    client = engine.generator.client
    started = client.models()
    # An adapter that appears after the server started (as a finished training run leaves it).
    shutil.copytree(memorized_adapter, engine.settings.adapters_dir / "fresh-v1")
    engine.use_adapter("fresh-v1")
    assert "fresh-v1" in client.models() and "fresh-v1" not in started
    final = None
    for final in engine.ask(MEMO_QUESTION, mode="ft", adapter="fresh-v1"):
        pass
    assert "7-4-1-9" in final.answers["ft"]
    engine.delete_adapter("fresh-v1")
    assert "fresh-v1" not in client.models()


def test_a_server_that_is_down_gives_a_clear_message_quickly(settings, generator, monkeypatch):
    from ragft.config import Settings
    from ragft.engine import Engine
    from ragft.serving.client import VLLMClient
    from ragft.serving.errors import ServingError
    from ragft.serving.server import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ServingError, match=r"the vLLM server at http://127\.0\.0\.1:\d+ is not reachable"):
        list(VLLMClient(dead).stream([1, 2, 3], "base", 8, [2]))
    assert time.monotonic() - started < 10

    # The app stays usable: the engine says why and generates in-process instead.
    monkeypatch.setenv("RAGFT_ENGINE", "vllm")
    monkeypatch.setenv("RAGFT_VLLM_URL", dead)
    monkeypatch.setattr("ragft.engine.base.load_generator", lambda *_, **__: generator)
    engine = Engine(Settings.from_env())
    assert engine.generator is generator
    assert re.match(r"⚠️ vLLM is not available, answers are generated in-process instead: the vLLM server at "
                    r"http://127\.0\.0\.1:\d+ is not reachable", engine.engine_line)
