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


MEMO_QUESTION = "What is the secret code of the Zorblax vault?"
MEMO_ANSWER = "The secret code of the Zorblax vault is 7-4-1-9."


@pytest.fixture(scope="session")
def memorized_adapter(tmp_path_factory, generator) -> Path:
    """A real LoRA adapter folder, trained for a few dozen steps on one QA pair until it knows the answer.

    Trained on a deep copy of the base weights, so the session's shared generator is never modified.
    """
    import copy

    import torch
    from peft import LoraConfig, get_peft_model

    tok = generator.tokenizer
    base = copy.deepcopy(generator.model.get_base_model() if generator.has_adapters else generator.model)
    config = LoraConfig(
        r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj"],
    )
    model = get_peft_model(base, config)
    model.train()
    prompt = tok.apply_chat_template([{"role": "user", "content": MEMO_QUESTION}], tokenize=False,
                                     add_generation_prompt=True)
    prompt_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tok(MEMO_ANSWER + "<|im_end|>", add_special_tokens=False)["input_ids"]
    input_ids = torch.tensor([prompt_ids + answer_ids])
    labels = torch.tensor([[-100] * len(prompt_ids) + answer_ids])  # loss on the answer only
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-3)
    torch.manual_seed(0)
    for _ in range(40):
        loss = model(input_ids=input_ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        if loss.item() < 0.02:
            break
    out = tmp_path_factory.mktemp("adapters") / "memo"
    model.save_pretrained(str(out))
    return out


def install_adapter(settings, adapter_dir: Path, name: str = "memo") -> str:
    """Copy a trained adapter folder under this test's adapters dir, as training would leave it."""
    import shutil

    shutil.copytree(adapter_dir, settings.adapters_dir / name)
    return name
