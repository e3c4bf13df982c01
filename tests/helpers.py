"""Helpers shared by the tests: a fake embedder for the store's logic, and small file and adapter makers."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

WORD = re.compile(r"[a-z0-9]+")


class FakeEmbedder:
    """A tiny deterministic embedder with the one method ragft calls (``encode``), as simonw/llm's tests use.

    Each word is hashed to one of ``dim`` slots, so texts that share words are close and texts that share none are
    orthogonal: enough for the store's logic (ids, records, replacement, quotas, search order by word overlap) in
    milliseconds. Retrieval quality is tested on the real MiniLM.
    """

    def __init__(self, dim: int = 384):
        self.dim = dim
        self.calls = 0

    def encode(self, texts, normalize_embeddings: bool = True, convert_to_numpy: bool = True, **_):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in WORD.findall(text.lower()):
                slot = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=4).digest(), "little") % self.dim
                out[row, slot] += 1.0
            out[row, -1] += 1e-3  # never the zero vector (cosine needs a length)
        if normalize_embeddings:
            out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out


def write(folder: Path, name: str, text: str) -> Path:
    """A file ``name`` in ``folder`` holding ``text``."""
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def fake_adapter(folder: Path, run: dict | None = None) -> Path:
    """An adapter folder as `adapters.list_adapters` sees one (config + weights file), with a run record."""
    from ragft.adapters import RUN_FILE

    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"")
    (folder / RUN_FILE).write_text(json.dumps(run or {}))
    return folder


def tiny_cross_encoder(folder: Path, texts: list[str], labels: list[str] | None = None) -> Path:
    """A BERT cross-encoder with random weights over ``texts``' words, saved as a folder (this machine cannot
    download a real one). ``labels``: its classes (an NLI model's "contradiction", "entailment", ...); one score
    without."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    from ragft.keywords import words

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + sorted({w for t in texts for w in words(t)})
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.txt").write_text("\n".join(vocab))
    BertTokenizer(str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    names = labels or ["LABEL_0"]
    config = BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, num_labels=len(names), id2label=dict(enumerate(names)),
                        label2id={n: i for i, n in enumerate(names)})
    BertForSequenceClassification(config).save_pretrained(folder)
    return folder
