"""Evaluation: judging and bookkeeping on hand-made cases, then the real four-variant runs on a fixture corpus of
invented facts (answers no model can know without the documents) with the real models and the real store."""

from __future__ import annotations

import csv
import json
import threading
import time
from pathlib import Path

import pytest

from ragft import metrics
from ragft.adapters import RunRecord
from ragft.cli import format_table
from ragft.evaluate import (
    EvalConfig,
    gold_matcher,
    judge,
    option_reply,
    training_overlap,
)
from ragft.jobs import JobBusyError
from ragft.models import NoAdapterError
from ragft.questions import QAItem, phrasings
from ragft.results import Answer, EvalResult, QuestionResult, VariantTiming
from ragft.store import Hit

from .conftest import MEMO_QA

FACTS = Path(__file__).parent / "fixtures" / "facts"


# --- judging and bookkeeping (no models) ---------------------------------------------------------------------------
def test_judge_open_and_multiple_choice():
    item = QAItem("Fill in the blank: The code is ____.", "7-4-1-9", "vault.md", 0)
    hits = [Hit("vault.md", 0, 0.9, "The code is 7-4-1-9."), Hit("moon.md", 0, 0.5, "Quib.")]
    a = judge("The code is 7-4-1-9.", item, hits)
    assert (a.correct, a.exact, a.contains, a.recall) == (True, 0.0, 1.0, 1.0)
    assert a.f1 == pytest.approx(2 * (4 / 6) / (4 / 6 + 1))  # "code is 7 4 1 9" vs "7 4 1 9"
    assert judge("I don't know.", item, hits[1:]).recall == 0.0
    assert judge("7-4-1-9", item, None).recall is None  # no retrieval, no recall

    mc = QAItem("Q?", "1931", choices=("1873", "1931"))
    assert judge("1931", mc, None, [-3.0, -1.0]).correct
    assert not judge("1873", mc, None, [-1.0, -3.0]).correct


def test_gold_matcher_prefers_chunk_then_context_then_document():
    h = Hit("a.md", 2, 0.5, "Pim guards the vault. It is teal.")
    assert gold_matcher(QAItem("q", "a", "a.md", 2))(h)
    assert not gold_matcher(QAItem("q", "a", "a.md", 1))(h)
    assert gold_matcher(QAItem("q", "a", context="pim guards the vault"))(h)
    assert not gold_matcher(QAItem("q", "a", context="Something else entirely."))(h)
    assert gold_matcher(QAItem("q", "a", "a.md"))(h)
    assert gold_matcher(QAItem("q", "a")) is None


def test_option_reply_fills_the_blank():
    assert option_reply(QAItem("q", "1931", cloze="Built in ____."), "1873") == "Built in 1873."
    assert option_reply(QAItem("q", "Paris", choices=("Paris", "Rome")), "Rome") == "Rome"


def test_training_overlap_marks_and_notes():
    items = [QAItem("What is the code?", "1"), QAItem("Fill: ____ x", "2", fact="f2"),
             QAItem("Other?", "3", source="vault.md"), QAItem("New?", "4")]
    run = RunRecord(name="memo-v1", data={"source": "qa"}, questions=["what is the code"], facts=["f2"],
                    documents=["vault.md"])
    marks, note = training_overlap(items, run)
    assert marks == ["trained", "paraphrase", "document", ""]
    assert "⚠️ 1 of 4 questions are in memo-v1's training data" in note
    assert "1 of 4 questions rephrase facts memo-v1 was trained on" in note
    assert "memo-v1 read the documents holding 1 of 4 answers" in note
    assert training_overlap(items, None) == ([""] * 4, "")
    old = training_overlap(items, RunRecord.from_json({"name": "old-v1", "data": {"source": "qa"}}))
    assert old[0] == [""] * 4 and "no record of its training questions" in old[1]


def test_config_validation_says_what_is_allowed():
    with pytest.raises(ValueError, match="variants must be some of plain, rag, ft, rag\\+ft"):
        EvalConfig(variants=("plain", "magic"))
    with pytest.raises(ValueError, match="top k must be 1..20"):
        EvalConfig(top_k=0)
    with pytest.raises(ValueError, match="batch size must be 1..64"):
        EvalConfig(batch_size=100)


def hand_made_result() -> EvalResult:
    items = [QAItem("Q1?", "yes", "a.md", 0), QAItem("Q2?", "no", "a.md", 1)]
    hit = Hit("a.md", 0, 0.8, "text")
    questions = [
        QuestionResult(items[0], {"plain": Answer("yes", True, 1.0, 1.0, 1.0, tokens=1),
                                  "rag": Answer("yes", True, 1.0, 1.0, 1.0, 1.0, [hit], tokens=1)}),
        QuestionResult(items[1], {"plain": Answer("maybe", False, 0.0, 0.0, 0.0, tokens=1),
                                  "rag": Answer("no", True, 1.0, 1.0, 1.0, 0.0, [hit], tokens=1)}),
    ]
    timings = {"plain": VariantTiming(1.0, 2, 2), "rag": VariantTiming(4.0, 2, 2)}
    return EvalResult(questions, EvalConfig(top_k=1), None, "hand", {"ft": "no adapter picked",
                      "rag+ft": "no adapter picked"}, timings)


def test_summary_table_and_downloads(tmp_path):
    result = hand_made_result()
    plain, rag, ft, both = result.summary()
    assert (plain["variant"], plain["answered"], plain["accuracy"], plain["recall@1"]) == ("Plain", 2, 0.5, None)
    assert (rag["accuracy"], rag["recall@1"], rag["s_per_answer"], rag["tokens_per_s"]) == (1.0, 0.5, 2.0, 0.5)
    assert (ft["answered"], ft["accuracy"], ft["note"]) == (0, None, "no adapter picked")
    assert format_table(result.summary()).splitlines()[:3] == [
        "variant           answered  accuracy        exact_match  token_f1  contains  recall@1  answer_in_chunks  "
        "unsupported_sentences  s_per_answer  tokens_per_s",
        "Plain             2         50% [0–100]     50%          50%       50%       n/a       n/a               "
        "n/a                    0.50          2.0",
        "RAG               2         100% [100–100]  100%         100%      100%      50%       n/a               "
        "n/a                    2.00          0.5",
    ]

    paths = result.write(tmp_path / "out")
    assert [p.name for p in paths] == ["results.json", "summary.csv", "answers.csv"]
    data = json.loads(paths[0].read_text())
    assert data["summary"][1]["recall@1"] == 0.5
    assert data["questions"][1]["answers"]["plain"]["text"] == "maybe"
    assert data["questions"][0]["answers"]["rag"]["sources"] == [{"source": "a.md", "chunk": 0, "score": 0.8}]
    summary = list(csv.DictReader(paths[1].open()))
    assert [r["variant"] for r in summary] == ["Plain", "RAG", "Fine-tuned", "RAG + Fine-tuned"]
    answers = list(csv.DictReader(paths[2].open()))
    assert [(r["question"], r["variant"], r["correct"]) for r in answers] == [
        ("Q1?", "Plain", "1"), ("Q1?", "RAG", "1"), ("Q2?", "Plain", "0"), ("Q2?", "RAG", "1")]


# --- real runs -------------------------------------------------------------------------------------------------
@pytest.fixture
def facts_engine(engine):
    """An engine whose store holds the fixture corpus of invented facts."""
    reports = engine.ingest([(p, p.name) for p in sorted(FACTS.glob("*.md"))])
    assert all(r.ok for r in reports)
    return engine


def run(engine, items, adapter=None, **config):
    progress = list(engine.evaluate(items, adapter, EvalConfig(**config), "test"))
    assert progress[-1].finished and progress[-1].done == progress[-1].total
    assert [p.done for p in progress] == sorted(p.done for p in progress)  # progress only goes forward
    return progress[-1].result


def by_variant(result):
    return {row["variant"]: row for row in result.summary()}


def test_rag_beats_plain_on_facts_only_the_documents_hold(facts_engine):
    items, note = facts_engine.generate_questions(12)
    assert len(items) == 6 and note == "6 fill-in-the-blank questions from 3 chunks"
    result = run(facts_engine, items, variants=("plain", "rag"))
    rows = by_variant(result)
    assert rows["RAG"]["recall@3"] == 1.0  # each question's source chunk was retrieved
    assert rows["RAG"]["accuracy"] >= 0.5
    assert rows["RAG"]["accuracy"] >= rows["Plain"]["accuracy"] + 0.5
    assert rows["Plain"]["recall@3"] is None
    assert rows["RAG"]["tokens_per_s"] > 0 and rows["Plain"]["s_per_answer"] > 0
    for q in result.questions:  # every answer judged right is right, and short enough not to be a ramble
        for a in q.answers.values():
            has_it = f" {q.item.answer.lower()} " in f" {a.text.lower().replace('.', ' ')} "
            assert a.correct == (has_it and metrics.extra_words(a.text, q.item.answer, q.item.question) <= 12)
    assert rows["RAG"]["answer_in_chunks"] == 1.0
    assert [p.name for p in result.files] == ["results.json", "summary.csv", "answers.csv"]
    assert result.files[0].parent.parent == facts_engine.settings.evals_dir


def test_multiple_choice_by_log_likelihood_rag_beats_plain(facts_engine):
    items, _ = facts_engine.generate_questions(12, choices=4)
    assert all(len(i.choices) == 4 and i.answer in i.choices for i in items)
    result = run(facts_engine, items, variants=("plain", "rag"))
    rows = by_variant(result)
    assert rows["RAG"]["accuracy"] >= 0.8
    assert rows["RAG"]["accuracy"] > rows["Plain"]["accuracy"]
    for q in result.questions:
        rag = q.answers["rag"]
        assert len(rag.option_scores) == 4
        assert rag.text == q.item.choices[rag.option_scores.index(max(rag.option_scores))]


def test_memorised_adapter_beats_plain_on_its_training_questions(engine, memorized_adapter):
    from .conftest import install_adapter

    name = install_adapter(engine.settings, memorized_adapter)
    items = [QAItem(r["question"], r["answer"]) for r in MEMO_QA]
    result = run(engine, items, name, variants=("plain", "ft"))
    rows = by_variant(result)
    assert rows["Fine-tuned"]["accuracy"] == 1.0
    assert rows["Plain"]["accuracy"] == 0.0
    assert [q.overlap for q in result.questions] == ["trained"] * 3
    assert result.overlap_note.startswith("⚠️ 3 of 3 questions are in memo's training data")

    # As multiple choice (log-likelihood through peft's per-row adapters), the adapter picks what it learned.
    answers = tuple(r["answer"] for r in MEMO_QA)
    mc = [QAItem(r["question"], r["answer"], choices=answers) for r in MEMO_QA]
    rows = by_variant(run(engine, mc, name, variants=("plain", "ft")))
    assert rows["Fine-tuned"]["accuracy"] == 1.0


def test_fine_tuned_variants_without_adapter_are_listed_not_run(facts_engine):
    items, _ = facts_engine.generate_questions(2)
    result = run(facts_engine, items, variants=("plain", "ft", "rag+ft"))
    rows = by_variant(result)
    assert rows["Plain"]["answered"] == 2
    assert (rows["Fine-tuned"]["answered"], rows["Fine-tuned"]["note"]) == (0, "no adapter picked")
    assert all(set(q.answers) == {"plain"} for q in result.questions)


def test_cancel_keeps_the_scores_so_far(facts_engine):
    items, _ = facts_engine.generate_questions(6)
    cancel = threading.Event()
    progress = []
    for p in facts_engine.evaluate(items, None, EvalConfig(variants=("plain", "rag"), batch_size=2), "t", cancel):
        progress.append(p)
        if p.done == 2:
            cancel.set()
    result = progress[-1].result
    assert result.cancelled and progress[-1].finished
    answered = sum(len(q.answers) for q in result.questions)
    assert answered == 4  # two steps of two questions, then stopped
    assert json.loads(result.files[0].read_text())["cancelled"] is True


def test_evaluation_runs_as_the_one_background_job(facts_engine):
    items, _ = facts_engine.generate_questions(6)
    with pytest.raises(ValueError, match="the question set is empty"):
        facts_engine.start_evaluation([], None, EvalConfig(variants=("plain",)))
    with pytest.raises(NoAdapterError, match="no adapter named 'nope'"):
        facts_engine.start_evaluation(items, "nope")
    assert facts_engine.jobs.state.status == "idle"  # bad input never became a job

    state = facts_engine.start_evaluation(items, None, EvalConfig(variants=("plain", "rag"), batch_size=2), "facts")
    assert (state.kind, state.name) == ("evaluate", "facts")
    with pytest.raises(JobBusyError, match=r"an evaluation \(facts\) is already going"):
        facts_engine.start_evaluation(items, None, EvalConfig(variants=("plain",)), "again")
    steps = []
    while state.active:
        steps.append(state.step)
        time.sleep(0.02)
    final = facts_engine.jobs.wait()
    assert final is state and final.status == "done", final.message
    assert final.step == final.total == 1 + 3 * 2  # retrieval, then 3 batches × 2 variants
    assert steps == sorted(steps) and final.message.startswith("done: 6 questions × 2 variants")
    result = final.result
    assert isinstance(result, EvalResult) and not result.cancelled
    assert [row["answered"] for row in result.summary()[:2]] == [6, 6]
    assert [p.name for p in result.files] == ["results.json", "summary.csv", "answers.csv"]


def test_cancelling_the_evaluation_job_keeps_the_scores_so_far(facts_engine):
    items, _ = facts_engine.generate_questions(6)
    state = facts_engine.start_evaluation(items, None, EvalConfig(variants=("plain", "rag"), batch_size=2), "t")
    deadline = time.time() + 120
    while state.step < 2 and time.time() < deadline:
        time.sleep(0.02)
    shown = state.result  # what a poller holds mid-run: a copy that later scoring leaves alone
    answered_then = sum(len(q.answers) for q in shown.questions)
    assert not facts_engine.jobs.cancel("train") and facts_engine.jobs.cancel("evaluate")
    final = facts_engine.jobs.wait(120)
    assert final.status == "cancelled" and final.message == "cancelled: scores so far are kept"
    answered = sum(len(q.answers) for q in final.result.questions)
    assert final.result.cancelled and 2 <= answered < 12
    assert sum(len(q.answers) for q in shown.questions) == answered_then <= answered
    assert json.loads(final.result.files[0].read_text())["cancelled"] is True


def test_saved_splits_feed_training_and_are_flagged(facts_engine):
    items, _ = facts_engine.generate_questions(6)
    names = facts_engine.save_question_set("facts", items, "paraphrase")
    assert names == ["facts-train", "facts-test"]
    assert facts_engine.question_sets() == ["facts-test", "facts-train"]
    train, test = (facts_engine.load_question_set(n) for n in names)
    assert len(test) == 6 and len(train) == sum(len(phrasings(i)) - 1 for i in items) >= 12
    assert not {i.question for i in train} & {i.question for i in test}

    from ragft.finetune import DataSpec, TrainConfig

    spec = DataSpec("qa", facts_engine.settings.questions_dir / "facts-train.jsonl")
    adapter = facts_engine.start_training(spec, TrainConfig(max_steps=1, batch_size=4), "facts")
    assert facts_engine.jobs.wait().status == "done"
    marks, note = facts_engine.training_overlap(test, adapter)
    assert marks == ["paraphrase"] * 6
    assert note.startswith(f"6 of 6 questions rephrase facts {adapter} was trained on")
    assert facts_engine.training_overlap(train, adapter)[0] == ["trained"] * len(train)
