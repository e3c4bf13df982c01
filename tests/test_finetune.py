"""Training data checks (fast), then real LoRA training runs on the embedded model (a few steps each)."""

from __future__ import annotations

import json
import time

import pytest

from ragft.adapters import RUN_FILE, next_version_name, read_run, zip_adapter
from ragft.finetune import (
    IGNORE,
    DataSpec,
    Example,
    TrainConfig,
    TrainingDataError,
    load_qa_file,
    qa_examples,
    raft_examples,
    tokenize,
)
from ragft.generation import DecodeSettings
from ragft.jobs import JobBusyError

from .conftest import MEMO_QA


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def final(stream):
    for result in stream:
        pass
    return result


# --- QA files ---------------------------------------------------------------------------------------------------
def test_qa_file_reads_both_formats(tmp_path):
    p = write(tmp_path, "qa.jsonl", "\n".join([
        json.dumps({"question": " Q1? ", "answer": "A1.", "source": "a.txt"}),
        "",
        json.dumps({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "Q2?"},
                                 {"role": "assistant", "content": "A2."}]}),
    ]))
    assert load_qa_file(p) == [
        {"question": "Q1?", "answer": "A1.", "source": "a.txt"},
        {"question": "Q2?", "answer": "A2."},
    ]


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "qa.jsonl: no questions"),
        ('{"question": "q", "answer": "a"}\nnot json', "qa.jsonl line 2: not valid JSON"),
        ('["q", "a"]', "qa.jsonl line 1: expected a JSON object, got list"),
        ('{"question": "q"}', "qa.jsonl line 1: missing or empty 'answer'"),
        ('{"text": "q"}', "qa.jsonl line 1: missing or empty 'question' and 'answer'"),
        ('{"messages": "hi"}', "qa.jsonl line 1: 'messages' must be a list of {role, content} objects"),
        ('{"messages": [{"role": "user", "content": "q"}]}', "qa.jsonl line 1: 'messages' must have a user turn"),
    ],
)
def test_bad_qa_files_are_rejected_naming_the_problem(tmp_path, text, message):
    with pytest.raises(TrainingDataError) as err:
        load_qa_file(write(tmp_path, "qa.jsonl", text))
    assert str(err.value).startswith(message)


def test_binary_qa_file_is_rejected(tmp_path):
    p = tmp_path / "qa.jsonl"
    p.write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(TrainingDataError, match="not a UTF-8 text file"):
        load_qa_file(p)


def test_config_validation_says_what_is_allowed():
    with pytest.raises(ValueError, match="rank must be 1..256"):
        TrainConfig(rank=0)
    with pytest.raises(ValueError, match="pick at least one target module"):
        TrainConfig(target_modules=())


def test_version_names_never_reuse_a_folder(tmp_path):
    assert next_version_name(tmp_path, "notes") == "notes-v1"
    (tmp_path / "notes-v1").mkdir()
    assert next_version_name(tmp_path, "notes") == "notes-v2"
    with pytest.raises(ValueError, match="use letters, digits"):
        next_version_name(tmp_path, "../evil")


# --- tokenizing and RAFT on the real tokenizer and store ----------------------------------------------------------
def test_qa_loss_is_on_the_answer_only(generator):
    t = tokenize(qa_examples([{"question": "Q?", "answer": "Blue."}])[0], generator.tokenizer, 384)
    trained = [i for i, label in zip(t["input_ids"], t["labels"]) if label != IGNORE]
    assert generator.tokenizer.decode(trained) == "Blue." + generator.tokenizer.eos_token
    assert t["labels"][0] == IGNORE


def test_document_text_is_learned_whole(generator):
    t = tokenize(Example(text="Quib is the moon."), generator.tokenizer, 384)
    assert t["labels"] == t["input_ids"]


@pytest.fixture
def docs_engine(settings, embedder, generator, tmp_path):
    from ragft.engine import Engine

    e = Engine(settings, embedder=embedder, generator=generator)
    facts = {
        "vault.txt": "The Zorblax vault is guarded by a robot named Pim. Its door is bright teal.",
        "moon.txt": "The moon of Zorblax is named Quib. It orbits every 12 days.",
        "phone.txt": "The glimmerphone was invented by Ada Trent in 1931.",
        "river.txt": "The river Ostrel flows north into the Grey Sea.",
    }
    e.ingest([(write(tmp_path, n, t), n) for n, t in facts.items()])
    return e


@pytest.mark.parametrize("no_gold, expect_gold", [(0.0, True), (1.0, False)])
def test_raft_context_has_gold_among_distractors(docs_engine, no_gold, expect_gold):
    records = [{"question": "Who guards the Zorblax vault?", "answer": "Pim."}]
    ex = raft_examples(records, docs_engine.store, TrainConfig(raft_distractors=2, raft_no_gold=no_gold))[0]
    prompt = ex.messages[-1]["content"]
    assert ("robot named Pim" in prompt) is expect_gold
    shown = sum(h.text in prompt for h in docs_engine.store.all_chunks())
    assert shown == (3 if expect_gold else 2)  # gold + 2 distractors, or distractors only
    assert prompt.endswith("Question: Who guards the Zorblax vault?") and ex.answer == "Pim."


def test_raft_needs_documents(settings, embedder):
    from ragft.engine import Engine

    e = Engine(settings, embedder=embedder)
    with pytest.raises(TrainingDataError, match="RAFT needs stored documents"):
        raft_examples([{"question": "q", "answer": "a"}], e.store, TrainConfig())


# --- real training runs -----------------------------------------------------------------------------------------
def test_memorising_lowers_the_loss_and_the_fine_tuned_pane_answers_it(engine, memorized_adapter):
    run = read_run(memorized_adapter)
    losses = [loss for _, loss in run.losses]
    assert (run.status, run.steps, run.planned_steps, run.name) == ("done", 20, 20, "memo")
    assert losses[-1] < losses[0] / 10  # it learned the pairs
    from .conftest import install_adapter

    install_adapter(engine.settings, memorized_adapter)
    result = final(engine.ask(MEMO_QA[1]["question"], "all", "memo", DecodeSettings(max_new_tokens=24)))
    assert "robot named Pim" in result.answers["ft"]
    assert "robot named Pim" not in result.answers["plain"]


@pytest.mark.parametrize("source", ["docs", "qa", "raft"])
def test_each_data_source_trains_a_loadable_adapter_that_changes_answers(docs_engine, tmp_path, source):
    qa = write(tmp_path, "qa.jsonl", "\n".join(json.dumps(r) for r in MEMO_QA))
    spec = DataSpec(source, None if source == "docs" else qa)
    name = docs_engine.start_training(spec, TrainConfig(max_steps=6, batch_size=2, learning_rate=2e-3), source)
    state = docs_engine.jobs.wait(300)
    assert (state.kind, state.name, state.status) == ("train", name, "done"), state.message
    assert state.message == f"saved {name} after 6 of 6 steps" and len(state.losses) == 6
    assert name == f"{source}-v1" and docs_engine.adapters() == [name]
    assert read_run(docs_engine.settings.adapters_dir / name).source == source
    question = "Who guards the Zorblax vault?"
    result = final(docs_engine.ask(question, "all", name, DecodeSettings(max_new_tokens=16)))
    assert result.answers["ft"] != result.answers["plain"]


def test_bad_data_is_refused_before_any_job_starts(docs_engine, tmp_path):
    bad = write(tmp_path, "qa.jsonl", '{"question": "q"}')
    with pytest.raises(TrainingDataError, match="qa.jsonl line 1: missing or empty 'answer'"):
        docs_engine.start_training(DataSpec("qa", bad), TrainConfig(max_steps=1))
    with pytest.raises(ValueError, match="rank must be 1..256"):
        docs_engine.start_training(DataSpec("docs"), TrainConfig(rank=0))
    assert docs_engine.jobs.state.status == "idle" and docs_engine.adapters() == []


def test_one_run_at_a_time_and_cancel_keeps_a_usable_adapter(docs_engine):
    runner = docs_engine.jobs
    name = docs_engine.start_training(DataSpec("docs"), TrainConfig(max_steps=500, batch_size=1))
    with pytest.raises(JobBusyError, match=rf"a training run \({name}\) is already going"):
        docs_engine.start_training(DataSpec("docs"), TrainConfig(max_steps=5))
    with pytest.raises(ValueError, match="is being trained: cancel the run first"):
        docs_engine.delete_adapter(name)
    deadline = time.time() + 120
    while runner.state.step < 2 and time.time() < deadline:
        time.sleep(0.2)
    assert docs_engine.adapters() == []  # nothing half-written is listed while it runs
    chat = final(docs_engine.ask("Hi?", "plain", None, DecodeSettings(max_new_tokens=4)))
    assert chat.answers["plain"] and runner.state.active  # chat keeps working while it trains
    at_cancel = runner.state.step
    assert runner.cancel()
    state = runner.wait(60)
    # it stops at the end of the step it is in (the progress file seen here may lag a step or two)
    assert state.status == "cancelled" and 2 <= at_cancel <= state.step <= at_cancel + 5
    assert docs_engine.adapters() == [name]
    adapter_dir = docs_engine.settings.adapters_dir / name
    assert read_run(adapter_dir).status == "cancelled"
    assert sorted(p.name for p in docs_engine.settings.adapters_dir.iterdir()) == [name]  # no leftovers
    assert final(docs_engine.ask("Hi?", "ft", name, DecodeSettings(max_new_tokens=4))).answers["ft"]


def test_adapters_zip_and_delete(engine, memorized_adapter, tmp_path):
    import zipfile

    from .conftest import install_adapter

    install_adapter(engine.settings, memorized_adapter)
    engine.use_adapter("memo")
    archive = zip_adapter(engine.settings.adapters_dir, "memo", tmp_path / "zips")
    assert {"memo/adapter_config.json", f"memo/{RUN_FILE}"} <= set(zipfile.ZipFile(archive).namelist())
    engine.delete_adapter("memo")
    assert engine.adapters() == [] and "memo" not in engine.generator.loaded_adapters
    # With no adapter left the model is the plain base again (other tests' adapters may share this session's model).
    assert engine.generator.has_adapters == bool(engine.generator.loaded_adapters)
    assert final(engine.ask("Hi?", "plain", None, DecodeSettings(max_new_tokens=4))).answers["plain"]


def test_a_run_record_reads_back_typed_and_old_records_read_as_empty(tmp_path):
    from ragft.adapters import RunRecord

    run = RunRecord(name="memo-v1", status="done", steps=3, losses=[(1, 2.5), (2, 1.25)], data={"source": "qa"},
                    questions=["q?"])
    run.write(tmp_path)
    back = read_run(tmp_path)
    assert back == run and (back.source, back.final_loss) == ("qa", 1.25)
    (tmp_path / RUN_FILE).write_text('{"name": "old-v1", "status": "done", "from_the_future": 1}')
    old = read_run(tmp_path)
    assert (old.name, old.questions, old.losses, old.final_loss) == ("old-v1", None, [], None)
    (tmp_path / RUN_FILE).write_text("[1, 2]")
    assert read_run(tmp_path) is None and read_run(tmp_path / "nowhere") is None
