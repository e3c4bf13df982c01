"""Experiment: causes of misses, the report (verdict, intervals, causes, costs, writers) and freshness on hand-made
cases; then the whole run, end to end, on the fixture corpus with the real models and the quick preset."""

from __future__ import annotations

import csv
import html
import json
import shutil
from pathlib import Path

import pytest

from ragft.adapters import RunRecord, read_run, stale_note, staleness, trained_on
from ragft.evaluate import EvalConfig
from ragft.experiment import (
    AdapterRun,
    ExperimentConfig,
    ExperimentError,
    Plan,
    cause_of_miss,
)
from ragft.experiment.pages import format_text, render_html
from ragft.experiment.report import list_reports, load_report
from ragft.experiment.verdict import build_report, recommend
from ragft.finetune import TrainConfig
from ragft.questions import QAItem
from ragft.results import Answer, EvalResult, QuestionResult, VariantTiming
from ragft.store import DocInfo, Hit

FACTS = Path(__file__).parent / "fixtures" / "facts"


def answer(correct: bool, contains: float | None = None, in_context: float | None = None, text: str = "x") -> Answer:
    contains = float(correct) if contains is None else contains
    return Answer(text, correct, float(correct), float(correct), contains, in_context=in_context)


# --- causes ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant, ans, trained, cause", [
    ("rag", answer(True, in_context=1.0), None, ""),
    ("rag", answer(False, in_context=0.0), None, "retrieval miss"),
    ("rag", answer(False, in_context=1.0), None, "context ignored"),
    ("rag+ft", answer(False, in_context=1.0), True, "context ignored"),  # context first: the answer was there
    ("rag+ft", answer(False, in_context=0.0), False, "retrieval miss"),
    ("rag", answer(False, contains=1.0, in_context=1.0), None, "buried"),  # right words, lost in a long reply
    ("ft", answer(False), False, "not learned"),
    ("ft", answer(False), True, "did not generalise"),
    ("ft", answer(False), None, "not trained"),
    ("ft", answer(False, contains=1.0), True, "buried"),
    ("plain", answer(False), None, "not known"),
    ("plain", answer(True), None, ""),
])
def test_cause_of_each_miss(variant, ans, trained, cause):
    assert cause_of_miss(variant, ans, trained) == cause


# --- the report on a hand-made run -------------------------------------------------------------------------------------
def hand_made(tmp_path, n=20):
    """n test questions; plain never right, RAG right on 60%, the qa adapter on 30%, both on 90%."""
    items = [QAItem(f"Q{i}?", f"a{i}", "doc.md", i, fact=f"f{i}", cloze=f"S ____ {i}.", kind="number")
             for i in range(n)]
    hit = Hit("doc.md", 0, 0.9, "text")
    plan = Plan(ExperimentConfig(name="hand", split="paraphrase", train=("qa",)), [hit], items,
                [QAItem(f"Fill {i}?", f"a{i}", fact=f"f{i}") for i in range(n)], items, [],
                {"qa": TrainConfig(max_steps=3)}, EvalConfig(), "hand-made")

    def result(variants, right: dict[str, int]) -> EvalResult:
        questions = []
        for i, it in enumerate(items):
            answers = {}
            for v in variants:
                ok = i < right[v]
                answers[v] = Answer(f"a{i}" if ok else "no", ok, float(ok), float(ok), float(ok),
                                    recall=1.0 if v in ("rag", "rag+ft") else None,
                                    in_context=(1.0 if i < 18 else 0.0) if v in ("rag", "rag+ft") else None,
                                    sources=[hit] if v in ("rag", "rag+ft") else [])
            questions.append(QuestionResult(it, answers))
        timings = {v: VariantTiming(2.0, n, 10 * n) for v in variants}
        return EvalResult(questions, EvalConfig(variants=variants), "hand-qa-v1", "", {}, timings)

    test = result(("plain", "rag", "ft", "rag+ft"), {"plain": 0, "rag": 12, "ft": 6, "rag+ft": int(0.9 * n)})
    check = EvalResult([QuestionResult(QAItem(f"Fill {i}?", f"a{i}", fact=f"f{i}"),
                                       {"ft": answer(i < n // 2)}) for i in range(n)], EvalConfig(variants=("ft",)))
    adapter_dir = tmp_path / "adapters" / "hand-qa-v1"
    adapter_dir.mkdir(parents=True)
    (adapter_dir / "adapter_model.safetensors").write_bytes(b"0" * 1000)
    (adapter_dir / "ragft_run.json").write_text(json.dumps({
        "status": "done", "steps": 3, "seconds": 12.5, "tokens_seen": 900, "trained_tokens": 40,
        "data": {"examples": 20}, "losses": [[1, 2.0], [3, 0.5]]}))
    run = AdapterRun("qa", "hand-qa-v1", adapter_dir, test, check)
    return plan, build_report(plan, [run], test, cancelled=False, seconds=65.0)


def test_report_verdict_intervals_causes_and_costs(tmp_path):
    plan, report = hand_made(tmp_path)
    rows = {r["variant"]: r for r in report.summary()}
    assert list(rows) == ["Plain", "RAG", "Fine-tuned", "RAG + Fine-tuned"]
    assert [rows[v]["accuracy"] for v in rows] == [0.0, 0.6, 0.3, 0.9]
    both = rows["RAG + Fine-tuned"]
    assert both["accuracy_low"] < 0.9 < both["accuracy_high"] and both["accuracy_ci"].startswith("90% [")
    # RAG + FT (18 right) vs RAG (12 right): 6 discordant pairs, all one way: exact McNemar p = 2/64
    assert report.headline.startswith("On the given questions: Best: RAG + Fine-tuned — 90% [")
    assert "(p = 0.031)" in report.headline
    assert report.recommendation.startswith("Use RAG + Fine-tuned")
    cmp = {(c.a, c.b): c for c in report.comparisons}
    assert cmp[("RAG + Fine-tuned", "RAG")].only_a == 6 and cmp[("RAG + Fine-tuned", "RAG")].only_b == 0
    # Causes: RAG misses 12..19: 12..17 had the answer in a chunk (ignored), 18, 19 did not (retrieval miss).
    assert rows["RAG"]["causes"] == {"context ignored": 6, "retrieval miss": 2}
    # FT misses 6..19; the qa adapter got facts 0..9 right on their trained wording: 6..9 did not generalise.
    assert rows["Fine-tuned"]["causes"] == {"did not generalise": 4, "not learned": 10}
    assert rows["Plain"]["causes"] == {"not known": 20}
    assert report.checks == {"Fine-tuned": {"adapter": "hand-qa-v1", "n": 20, "accuracy": 0.5,
                                            "accuracy_ci": report.checks["Fine-tuned"]["accuracy_ci"]}}
    assert report.adapters[0] | {"size_bytes": 0} == {
        "adapter": "hand-qa-v1", "recipe": "qa", "status": "done", "steps": 3, "train_seconds": 12.5,
        "tokens_seen": 900, "trained_tokens": 40, "examples": 20, "final_loss": 0.5, "size_bytes": 0}
    assert report.adapters[0]["size_bytes"] > 1000
    assert rows["RAG"]["s_per_answer"] == 0.1 and rows["RAG"]["answer_in_chunks"] == 0.9


def test_report_files_and_reopening(tmp_path):
    _, report = hand_made(tmp_path)
    out = tmp_path / "experiments" / "20261126-120000-hand"
    paths = report.write(out)
    assert [p.name for p in paths] == ["report.json", "summary.csv", "answers.csv", "report.html"]
    data = json.loads(paths[0].read_text())
    assert data["headline"] == report.headline and data["test_questions"] == 20
    assert data["questions"][19]["answers"]["RAG"] == {
        "text": "no", "correct": False, "token_f1": 0.0, "cause": "retrieval miss", "in_context": 0.0,
        "unsupported": None, "sources": [{"source": "doc.md", "chunk": 0, "score": 0.9}]}
    summary = list(csv.DictReader(paths[1].open()))
    assert [r["variant"] for r in summary] == ["Plain", "RAG", "Fine-tuned", "RAG + Fine-tuned"]
    assert summary[1]["causes"] == "context ignored: 6; retrieval miss: 2"
    assert len(list(csv.reader(paths[2].open()))) == 1 + 20 * 4
    page = paths[3].read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page
    assert "src=" not in page and "<link" not in page and "<script" not in page  # self-contained
    assert "Best: RAG + Fine-tuned" in page and "retrieval miss" in page and "hand-qa-v1" in page
    assert list_reports(tmp_path / "experiments") == [
        {"folder": "20261126-120000-hand", "name": "hand", "started": report.started, "headline": report.headline}]
    assert load_report(tmp_path / "experiments", "20261126-120000-hand") == data
    with pytest.raises(FileNotFoundError, match="no experiment report named '../x'"):
        load_report(tmp_path / "experiments", "../x")
    text = format_text(data)
    assert text.splitlines()[0] == report.headline and "why answers were wrong:" in text
    assert "  RAG: context ignored 6, retrieval miss 2" in text


@pytest.mark.parametrize("scores, advice", [
    ({"Plain": [False] * 10, "RAG": [True] * 10}, "Use RAG: it answers the most questions, significantly more"),
    ({"Plain": [False] * 10, "RAG": [True] * 8 + [False] * 2, "RAG + Fine-tuned": [True] * 9 + [False]},
     "RAG + Fine-tuned scores highest (90%), but on 10 questions it is not significantly ahead of RAG: it is the "
     "best bet; ask more questions"),
    ({"Plain": [False] * 20, "RAG": [True] * 19 + [False], "RAG + Fine-tuned": [True] * 20},
     "Use RAG: it scores as well as RAG + Fine-tuned (95% vs 100%) and is simpler."),
    ({"Plain": [True, False], "RAG": [True, True]},
     "RAG scores highest (100%), but on 2 questions it is not significantly ahead of Plain"),
    ({"RAG": [True, False]}, "Only RAG was scored."),
    ({}, ""),
])
def test_recommendation(scores, advice):
    assert recommend(scores).startswith(advice)


def test_config_errors_say_what_is_allowed():
    with pytest.raises(ExperimentError, match="preset must be one of quick, thorough"):
        ExperimentConfig(preset="slow")
    with pytest.raises(ExperimentError, match="training recipes must be some of qa, raft, docs"):
        ExperimentConfig(train=("magic",))
    with pytest.raises(ExperimentError, match="split must be one of heldout, paraphrase"):
        ExperimentConfig(split="random")
    with pytest.raises(ExperimentError, match="experiment name"):
        ExperimentConfig(name="../x")


# --- freshness -------------------------------------------------------------------------------------------------------
def doc(name: str, digest: str) -> DocInfo:
    return DocInfo(name, 1, 10, 10, digest, "2026-11-26 12:00:00")


def test_staleness_names_changed_and_deleted_documents():
    docs = [doc("a.md", "h1"), doc("b.md", "h2")]
    run = RunRecord(document_hashes=trained_on(docs))
    assert run.document_hashes == {"a.md": "h1", "b.md": "h2"}
    assert trained_on(docs, ["b.md"]) == {"b.md": "h2"}
    assert staleness(run, docs) == []
    assert staleness(run, [doc("a.md", "h9"), doc("c.md", "h3")]) == ["a.md has changed", "b.md was deleted"]
    assert staleness(RunRecord(), docs) == []  # a record without hashes: nothing known, nothing claimed
    assert stale_note("memo-v1", ["a.md has changed"]).startswith(
        "Adapter memo-v1 is stale: since it was trained, a.md has changed.")
    assert stale_note("memo-v1", []) == ""


# --- end to end, real models ------------------------------------------------------------------------------------------
@pytest.fixture
def facts_engine(engine):
    reports = engine.ingest([(p, p.name) for p in sorted(FACTS.glob("*.md"))])
    assert all(r.ok for r in reports)
    return engine


def test_training_marks_the_adapter_stale_when_its_document_changes(facts_engine, tmp_path):
    from ragft.finetune import DataSpec

    name = facts_engine.start_training(DataSpec("docs"), TrainConfig(max_steps=1, batch_size=2), "fresh")
    assert facts_engine.jobs.wait().status == "done"
    assert facts_engine.adapter_staleness(name) == ""
    changed = tmp_path / "glimmer.md"
    shutil.copy(FACTS / "glimmer.md", changed)
    changed.write_text(changed.read_text().replace("1931", "1932"))
    assert facts_engine.ingest([(changed, "glimmer.md")])[0].status == "replaced"
    note = facts_engine.adapter_staleness(name)
    assert note.startswith(f"Adapter {name} is stale: since it was trained, glimmer.md has changed.")
    facts_engine.store.delete("quill.md")
    assert "quill.md was deleted" in facts_engine.adapter_staleness(name)
    # "Retrain on the current documents": a new version with the same recipe, fresh again.
    again = facts_engine.retrain_adapter(name)
    assert again == "fresh-v2" and facts_engine.jobs.wait().status == "done"
    assert facts_engine.adapter_staleness(again) == ""
    assert read_run(facts_engine.settings.adapters_dir / again).config == read_run(
        facts_engine.settings.adapters_dir / name).config


def test_quick_experiment_end_to_end(facts_engine):
    """The quick preset on one of the fixture documents (the others stay in the store, where retrieval still finds
    them): questions, paraphrase split, qa + raft adapters, four variants, verdict with intervals and causes, report
    on disk; the adapters learned the facts they were trained on."""
    engine = facts_engine
    plan = engine.plan_experiment(ExperimentConfig(name="facts", documents=("zorblax.md",)))
    assert {i.source for i in plan.train + plan.test} == {"zorblax.md"}
    assert plan.seconds > 0 and "Estimated time on this machine: about" in plan.describe()
    assert len(plan.test) >= 4 and not {i.question for i in plan.test} & {i.question for i in plan.train}
    state = engine.start_experiment(plan)
    assert engine.jobs.wait().status == "done", state.message
    report = state.result
    data = json.loads((report.folder / "report.json").read_text())
    rows = {r["variant"]: r for r in data["summary"]}
    assert list(rows) == ["Plain", "RAG", "Fine-tuned (qa)", "RAG + Fine-tuned (qa)", "Fine-tuned (raft)",
                          "RAG + Fine-tuned (raft)"]
    assert all(r["answered"] == len(plan.test) and "[" in r["accuracy_ci"] for r in rows.values())
    assert data["headline"] and data["recommendation"] and len(data["comparisons"]) == 3
    wrong = sum(not a["correct"] for q in data["questions"] for a in q["answers"].values())
    assert sum(n for r in rows.values() for n in r["causes"].values()) == wrong
    assert rows["Plain"]["accuracy"] == 0.0  # invented facts: nobody knows them without the documents
    assert rows["RAG"]["accuracy"] > rows["Plain"]["accuracy"]
    # The adapters learned the facts they were trained on: on the trained wordings they beat plain.
    assert data["trained_wordings"]["Fine-tuned (qa)"]["accuracy"] > rows["Plain"]["accuracy"]
    assert {a["recipe"] for a in data["costs"]["adapters"]} == {"qa", "raft"}
    assert all(a["size_bytes"] > 0 and a["train_seconds"] > 0 for a in data["costs"]["adapters"])
    assert set(engine.adapters()) >= {a["adapter"] for a in data["costs"]["adapters"]}
    assert [r["folder"] for r in engine.experiments()] == [report.folder.name]


# --- planning with fakes (no models) -----------------------------------------------------------------------------------
class FakeTokenizer:
    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": text.split()}


class FakeGenerator:
    tokenizer = FakeTokenizer()


class FakeStore:
    def __init__(self, chunks: list[Hit]):
        self.chunks = chunks

    def all_chunks(self) -> list[Hit]:
        return self.chunks


FACT_TEXT = ("The glimmerphone was invented in 1931 by Tamsin Greaves. It plays music with 23 glass bells. "
             "The largest one is 6 metres tall. Greaves sold her first one for 80 crowns. The vault was built in "
             "1873 by Odette Marchbank.")
CHUNKS = [Hit("a.md", i, 1.0, sentence.rstrip(".") + ".") for i, sentence in enumerate(FACT_TEXT.split(". "))]


def test_plan_generates_splits_and_estimates():
    from ragft.experiment import Speed, plan_experiment
    from ragft.experiment.plan import worded

    store = FakeStore(CHUNKS)
    plan = plan_experiment(FakeGenerator(), store, ExperimentConfig(), speed=Speed(100.0, 0.1, 30.0))
    # years and numbers, and two names; a fourth of them (one) held out, the rest all trained on
    assert plan.question_note == "6 fill-in-the-blank facts to train on, of the 7 found in 5 chunks"
    assert plan.config.split == "paraphrase" and plan.config.train == ("qa", "raft")
    assert len(plan.test) == 7 and {i.fact for i in plan.train} < {i.fact for i in plan.test}
    assert "When was the glimmerphone invented by Tamsin Greaves?" in {i.question for i in plan.train}
    assert len(plan.checks) == 6 and all(c in plan.train for c in plan.checks)
    assert not any(c.question.startswith("Fill in the blank") for c in plan.checks)  # rechecked as people ask
    assert [s.name for s in plan.stages] == ["train qa", "train raft", "test qa", "recheck qa", "test raft",
                                             "recheck raft", "report"]
    # 2 epochs over at most 4 wordings of each fact and its sentence, 8 a step; raft: one wording of each, 4 a step
    assert plan.train_configs["qa"].max_steps == -(-2 * (len(worded(plan.train, 4)) + 6) // 8)
    assert plan.train_configs["raft"].max_steps == -(-6 // 4) and len(worded(plan.train, 1)) == 6
    assert plan.seconds == sum(s.seconds for s in plan.stages) > 0
    assert "Estimated time on this machine: about" in plan.describe()

    with pytest.raises(ExperimentError, match="only 2 facts could be asked about; an experiment needs at least 4"):
        plan_experiment(FakeGenerator(), FakeStore([Hit("b.md", 0, 1.0, "It cost 80 crowns in all. It had 23 "
                                                        "bells and more.")]), ExperimentConfig())
    with pytest.raises(ExperimentError, match="no documents to experiment on: add documents first"):
        plan_experiment(FakeGenerator(), FakeStore([]), ExperimentConfig())
    with pytest.raises(ExperimentError, match="none of the picked documents is stored"):
        plan_experiment(FakeGenerator(), store, ExperimentConfig(documents=("other.md",)))


def test_plan_with_model_written_questions_holds_facts_out():
    from ragft.experiment import plan_experiment

    replies = iter(["Question: When was the glimmerphone invented?\nAnswer: 1931",
                    "Question: How many bells does it have?\nAnswer: 23",
                    "Question: How tall is the largest one?\nAnswer: 6 metres",
                    "Question: What did the first one sell for?\nAnswer: 80 crowns",
                    "Question: Who built the vault?\nAnswer: Odette Marchbank"])
    plan = plan_experiment(FakeGenerator(), FakeStore(CHUNKS), ExperimentConfig(method="llm", questions=5),
                           complete=lambda prompts: [next(replies) for _ in prompts])
    assert plan.question_note.startswith("5 questions written by the model from 5 chunks")
    assert plan.config.split == "heldout"  # model-written questions have no sentence to rephrase
    assert not {i.fact for i in plan.train} & {i.fact for i in plan.test}


def covered(tmp_path, own: int = 0, own_right: dict | None = None):
    """10 trained facts (of 100 in the documents), 10 held-out, and ``own`` questions of the user's: an adapter right
    on every trained fact and no held-out one, RAG right on half of each; on the user's, as ``own_right`` says."""
    trained = [QAItem(f"When was {i}?", f"a{i}", "doc.md", i, fact=f"f{i}", cloze=f"S ____ {i}.", kind="number")
               for i in range(10)]
    held = [QAItem(f"Who was {i}?", f"b{i}", "doc.md", 50 + i, fact=f"h{i}", cloze=f"T ____ {i}.", kind="name")
            for i in range(10)]
    mine = [QAItem(f"My question {i}?", f"c{i}", fact=f"asked-{i}") for i in range(own)]
    test_items = trained + held + mine
    hit = Hit("doc.md", 0, 0.9, "text")
    plan = Plan(ExperimentConfig(name="cover", split="paraphrase", train=("qa",)), [hit], trained,
                [QAItem(f"Fill {i}?", f"a{i}", fact=f"f{i}") for i in range(10)], test_items, [],
                {"qa": TrainConfig(max_steps=3)}, EvalConfig(), "hand-made", facts_total=100, asked=mine)
    right = {"plain": set(), "rag": {*range(5), *range(10, 15)}, "ft": set(range(10)), "rag+ft": set(range(10))}
    for v, got in (own_right or {}).items():
        right[v] |= {20 + i for i in range(got)}
    questions = [QuestionResult(it, {v: answer(i in right[v]) for v in right}) for i, it in enumerate(test_items)]
    result = EvalResult(questions, EvalConfig(variants=tuple(right)), "cover-qa-v1", "", {}, {})
    (tmp_path / "cover-qa-v1").mkdir(exist_ok=True)
    return build_report(plan, [AdapterRun("qa", "cover-qa-v1", tmp_path / "cover-qa-v1", result)], result,
                        cancelled=False, seconds=1.0)


def test_the_user_s_own_questions_speak_first(tmp_path):
    report = covered(tmp_path, own=12, own_right={"ft": 11, "rag": 2})
    assert report.headline.startswith("On your 12 questions: Best: Fine-tuned — 92% [")
    assert report.support.startswith("On the documents as a whole (the adapters trained on 10 of their 100 facts")
    assert "Best: RAG — 50% [" in report.support and report.recommendation.startswith("Use Fine-tuned")
    rows = {r["variant"]: r for r in report.summary()}
    assert round(rows["RAG"]["accuracy"], 6) == 0.5 and round(rows["Fine-tuned"]["accuracy"], 6) == 0.1
    assert rows["Fine-tuned"]["your_questions"].startswith("92% [") and rows["RAG"]["your_questions"].startswith("17%")
    data = report.to_json()
    assert data["coverage"]["your_questions"] == 12 and data["test_questions"] == 32 and data["support"]
    assert "On the documents as a whole" in format_text(data).splitlines()[1]


def test_the_verdict_speaks_for_the_documents_as_a_whole(tmp_path):
    """The issue's case in miniature: an adapter right on every trained fact (10 of the documents' 100) and on no
    held-out one, RAG right on half of each. Counted alike, fine-tuning ties RAG at 50%; weighted by what the
    adapter covers (10%), it answers 10% of questions about the documents and RAG is the one to use."""
    trained = [QAItem(f"When was {i}?", f"a{i}", "doc.md", i, fact=f"f{i}", cloze=f"S ____ {i}.", kind="number")
               for i in range(10)]
    held = [QAItem(f"Who was {i}?", f"b{i}", "doc.md", 50 + i, fact=f"h{i}", cloze=f"T ____ {i}.", kind="name")
            for i in range(10)]
    test_items = trained + held
    hit = Hit("doc.md", 0, 0.9, "text")
    plan = Plan(ExperimentConfig(name="cover", split="paraphrase", train=("qa",)), [hit], trained,
                [QAItem(f"Fill {i}?", f"a{i}", fact=f"f{i}") for i in range(10)], test_items, [],
                {"qa": TrainConfig(max_steps=3)}, EvalConfig(), "hand-made", facts_total=100)
    right = {"plain": set(), "rag": {*range(5), *range(10, 15)}, "ft": set(range(10)), "rag+ft": set(range(10))}
    questions = [QuestionResult(it, {v: answer(i in right[v]) for v in right}) for i, it in enumerate(test_items)]
    result = EvalResult(questions, EvalConfig(variants=tuple(right)), "cover-qa-v1", "", {}, {})
    (tmp_path / "cover-qa-v1").mkdir()
    report = build_report(plan, [AdapterRun("qa", "cover-qa-v1", tmp_path / "cover-qa-v1", result)], result,
                          cancelled=False, seconds=1.0)
    assert report.headline.startswith("On the documents as a whole (the adapters trained on 10 of their 100 facts, "
                                      "10%; 10 questions on trained facts in other wordings and 10 on held-out "
                                      "facts, weighted 10:90): Best: RAG — 50% [")
    assert report.recommendation.startswith("Use RAG")
    rows = {r["variant"]: r for r in report.summary()}
    assert round(rows["Fine-tuned"]["accuracy"], 6) == 0.1 and round(rows["RAG"]["accuracy"], 6) == 0.5
    assert (rows["Fine-tuned"]["trained_facts"], rows["Fine-tuned"]["heldout_facts"]) == ("100% [100–100]",
                                                                                         "0% [0–0]")
    data = report.to_json()
    assert data["coverage"] == {"facts_in_documents": 100, "facts_trained": 10, "share_trained": 0.1,
                                "questions_on_trained_facts": 10, "questions_on_heldout_facts": 10,
                                "weighted": True, "your_questions": 0}


def test_the_report_says_what_each_adapter_learned_and_forgot(tmp_path):
    """Facts learned: the share right on trained facts in another wording times the facts trained; the forgetting
    check: of the general questions the base model answered right, those the adapter still answers."""
    from ragft.questions.general import GENERAL

    trained = [QAItem(f"When was {i}?", f"a{i}", "doc.md", i, fact=f"f{i}", cloze=f"S ____ {i}.", kind="number")
               for i in range(10)]
    held = [QAItem(f"Who was {i}?", f"b{i}", "doc.md", 50 + i, fact=f"h{i}", cloze=f"T ____ {i}.", kind="name")
            for i in range(10)]
    plan = Plan(ExperimentConfig(name="cover", split="paraphrase", train=("qa",)), [Hit("doc.md", 0, 0.9, "t")],
                trained, [QAItem(f"Fill {i}?", f"a{i}", fact=f"f{i}") for i in range(10)], trained + held, [],
                {"qa": TrainConfig(max_steps=3)}, EvalConfig(), "hand-made", facts_total=40)
    right = {"plain": set(), "rag": set(), "ft": {*range(5), 10}, "rag+ft": set()}
    result = EvalResult([QuestionResult(it, {v: answer(i in right[v]) for v in right})
                         for i, it in enumerate(trained + held)], EvalConfig(variants=tuple(right)), "c-qa-v1", "",
                        {}, {})
    # the base model knew the first 8 general questions; the adapter still knows 6 of them (and one it did not)
    general = EvalResult([QuestionResult(it, {"plain": answer(i < 8), "ft": answer(i < 6 or i == 12)})
                          for i, it in enumerate(GENERAL)], EvalConfig(variants=("plain", "ft")))
    (tmp_path / "c-qa-v1").mkdir()
    run = AdapterRun("qa", "c-qa-v1", tmp_path / "c-qa-v1", result, general=general)
    data = build_report(plan, [run], result, cancelled=False, seconds=1.0).to_json()
    learned = data["learned"]["Fine-tuned"]
    assert (learned["facts_learned"], learned["facts_trained"], learned["facts_in_documents"]) == (5, 10, 40)
    assert learned["facts_learned_low"] <= 5 <= learned["facts_learned_high"]
    assert learned["heldout_right"].startswith("10% [") and learned["general_kept"] == 6
    assert learned["sentence"].startswith("Fine-tuned: answers 50% [")
    assert "about 5 [" in learned["sentence"] and "facts learned of the documents' 40 (10 trained)" in learned[
        "sentence"]
    assert learned["sentence"].endswith("forgetting check: still answers 6 of the 8 general questions the base "
                                        "model answered.")
    assert learned["sentence"] in format_text(data) and html.escape(learned["sentence"]) in render_html(data)


def test_the_plan_counts_the_documents_facts_and_tests_held_out_ones_too():
    from ragft.experiment import Speed, plan_experiment

    plan = plan_experiment(FakeGenerator(), FakeStore(CHUNKS), ExperimentConfig(questions=4),
                           speed=Speed(100.0, 0.1, 30.0))
    trained = {i.fact for i in plan.train}
    assert len(trained) == 4 and plan.facts_total == 7 and plan.coverage == 4 / 7
    held = [i for i in plan.test if i.fact not in trained]
    assert len(plan.test) == 5 and len(held) == 1  # 4 trained facts in another wording, a fourth no adapter sees
    assert not any(i.question.startswith("Fill in the blank") for i in held)  # asked as the trained ones are
    assert not {i.question for i in held} & {i.question for i in plan.train}
    assert ("The adapters train on 4 of the 7 facts found in the documents (57%); 1 test question asks held-out "
            "facts.") in plan.describe()


NOTE = ("The Harrow Point lighthouse was first lit on 12 October 1871. It was designed by the engineer James Walker "
        "and stands 38 metres tall. The light can be seen from 22 nautical miles out at sea. The lantern was made by "
        "Chance Brothers of Smethwick. The keepers left in 1989, when the light was automated, and the tower was "
        "restored in 2004. Today it is looked after by the Harrow Point Preservation Society, and it opens to "
        "visitors from May to September.")


def test_a_one_page_note_can_be_tested():
    """The Verdict issue's short document: one chunk of seven sentences gave 2 facts (two a chunk) and no
    experiment. Every fact-bearing sentence counts now: 8 facts, a fourth held out, the rest trained on."""
    from ragft.experiment import Speed, plan_experiment

    plan = plan_experiment(FakeGenerator(), FakeStore([Hit("note.txt", 0, 1.0, NOTE)]), ExperimentConfig(),
                           speed=Speed(100.0, 0.1, 30.0))
    assert plan.facts_total == 8 and len(plan.trained_facts) == 6
    assert {"1871", "James Walker", "38 metres", "Harrow Point Preservation Society"} <= {i.answer for i in plan.items}
    held = [i for i in plan.test if i.fact not in plan.trained_facts]
    assert len(held) == 2 and len(plan.test) == 8


def test_the_plan_asks_the_user_s_own_questions_and_never_trains_on_them():
    from ragft.experiment import Speed, plan_experiment
    from ragft.questions import parse_typed

    mine = parse_typed("Who invented the glimmerphone? | Tamsin Greaves\nHow tall is the largest one? | 6 metres")
    plan = plan_experiment(FakeGenerator(), FakeStore(CHUNKS), ExperimentConfig(questions=4),
                           speed=Speed(100.0, 0.1, 30.0), asked=mine)
    assert [i.question for i in plan.test[-2:]] == [i.question for i in mine] and plan.asked == plan.test[-2:]
    assert not {i.question for i in mine} & {i.question for i in plan.train}
    assert plan.trained_facts.isdisjoint({i.fact for i in plan.asked})
    assert "2 of the test questions are your own: the verdict speaks for them first." in plan.describe()
    assert "1 test question asks held-out facts" in plan.describe()  # the user's are not counted as held-out
