"""Quotas of the workspace (RAGFT_MAX_DOCUMENTS, RAGFT_MAX_STORE_MB, RAGFT_MAX_ADAPTERS): past one, the action is
refused with the numbers before anything is written, and a replacement counts once."""

from __future__ import annotations

import dataclasses

import pytest

from ragft.engine import QuotaError

from .helpers import write


def _write(folder, name, text):
    return write(folder, name, text), name  # an upload: (file, its name)


def test_the_document_count_quota(engine, tmp_path):
    engine.settings = dataclasses.replace(engine.settings, max_documents=2)
    files = [_write(tmp_path, f"doc{i}.txt", f"Document {i} says the tide was {i} metres.") for i in range(3)]
    reports = engine.ingest(files)
    assert [r.ok for r in reports] == [True, True, False]
    assert reports[2].message == ("doc2.txt: the store holds 2 documents, the limit (RAGFT_MAX_DOCUMENTS); delete "
                                  "some first")
    assert [d.name for d in engine.store.documents()] == ["doc0.txt", "doc1.txt"]
    changed = _write(tmp_path, "doc1.txt", "Document 1 now says the tide was 9 metres.")
    assert engine.ingest([changed])[0].status == "replaced"  # a new version of a stored file is not one more
    engine.store.delete("doc0.txt")
    assert engine.ingest([files[2]])[0].ok  # room again


def test_the_store_size_quota(engine, tmp_path):
    engine.settings = dataclasses.replace(engine.settings, max_store_mb=1)
    small = _write(tmp_path, "small.txt", "A short note about the harbour. " * 1000)  # ~32 KB
    big = _write(tmp_path, "big.txt", "The harbour log goes on and on. " * 31_000)  # ~1 MB
    assert engine.ingest([small])[0].ok
    [report] = engine.ingest([big])
    assert not report.ok and "would hold 1.0 MB of files, over its 1 MB limit (RAGFT_MAX_STORE_MB)" in report.message
    assert [d.name for d in engine.store.documents()] == ["small.txt"]


def test_the_adapter_quota_is_checked_before_training(engine, tmp_path):
    from ragft.finetune import DataSpec, TrainConfig

    engine.settings = dataclasses.replace(engine.settings, max_adapters=1)
    folder = engine.settings.adapters_dir / "old"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}")
    (folder / "adapter_model.safetensors").write_bytes(b"")
    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "Q?", "answer": "A."}\n')
    with pytest.raises(QuotaError, match=r"^1 adapters are saved and this run would add 1; the limit is 1 "):
        engine.start_training(DataSpec("qa", qa), TrainConfig(max_steps=1))
    assert engine.jobs.state.status == "idle" and engine.adapters() == ["old"]
