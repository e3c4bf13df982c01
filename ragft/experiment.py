"""Experiment: "for my documents, RAG, fine-tuning, or both?" answered in one run.

    questions  fill-in-the-blank facts generated from the documents (or a saved / uploaded set)
    split      paraphrase (train on some wordings of each fact, test on another) or held-out facts
    train      one LoRA adapter per recipe on the train part: ``qa`` (question -> short answer), ``raft`` (the
               question with its gold chunk among distractors, some examples with distractors only), ``docs``
               (continued pre-training on the documents)
    evaluate   plain, RAG, fine-tuned and RAG + fine-tuned for every adapter on the test part, and the fine-tuned
               variant on the trained wordings too, to tell "not learned" from "did not generalise"
    report     the verdict with 95% intervals and paired tests (``stats``), the cause of every miss, the costs

The report model and its writers (JSON, CSV, a self-contained HTML page) are in ``experiment_report``.

Run from a shell:
    python -m ragft experiment --preset quick
    python -m ragft experiment --set facts --split heldout --train qa,raft,docs --json
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from .adapters import RunRecord, folder_bytes, next_version_name, read_run, trained_on
from .chat import NEEDS_ADAPTER, RETRIEVES, VARIANTS
from .errors import RagftError
from .evaluate import EvalConfig, run_evaluation
from .finetune import (
    Example,
    TrainConfig,
    TrainingDataError,
    qa_examples,
    raft_examples,
)
from .knobs import NAME_RULE, check, knob, valid_name
from .models import Generator
from .questions import (
    SPLIT_MODES,
    QAItem,
    QuestionSetError,
    generate_cloze,
    llm_questions,
    split_set,
)
from .results import EvalResult
from .store import Hit, Store

if TYPE_CHECKING:  # the report module imports this one
    from .experiment_report import ExperimentReport

RECIPES = ("qa", "raft", "docs")
QUESTION_METHODS = ("cloze", "llm")


class ExperimentError(RagftError, ValueError):
    """An experiment that cannot run as asked; the message says what to change."""


@dataclass(frozen=True)
class Preset:
    """How much work an experiment does. ``quick`` aims at about 5 minutes on 2 CPU cores for a few pages."""

    questions: int  # facts generated from the documents
    split: str
    train: tuple[str, ...]
    epochs: dict  # recipe -> passes over its training data
    learning_rate: dict  # recipe -> peak rate
    rank: int
    max_seq_len: int  # long enough for the gold chunk and the distractors: a cut context teaches nothing
    raft_distractors: int
    raft_no_gold: float
    max_new_tokens: int
    trained_checks: int  # trained facts asked again in their trained wording (memorisation check)


# Measured on four documents of a few pages with 20 person-written questions (bench/recipe): the quick preset's raft
# adapter lifts RAG + fine-tuned to 50% correct (token F1 0.50) against RAG's 30% (F1 0.11). What it took: RAFT with
# the gold chunk always present, one distractor and an uncut prompt; 24 facts, names as well as numbers, trained in
# question-word-first wordings (questions.forms). With 16 facts it reached 35% (F1 0.33); the first version (prompts
# cut at 320 tokens, 20% no-gold, fill-in wordings only) fell to 5%.
PRESETS = {
    "quick": Preset(24, "paraphrase", ("qa", "raft"), {"qa": 2.0, "raft": 1.0, "docs": 2.0},
                    {"qa": 2e-3, "raft": 1e-3, "docs": 1e-3}, 16, 576, 1, 0.0, 32, 10),
    "thorough": Preset(40, "paraphrase", ("qa", "raft"), {"qa": 4.0, "raft": 2.0, "docs": 3.0},
                       {"qa": 1e-3, "raft": 1e-3, "docs": 1e-3}, 16, 768, 2, 0.1, 48, 40),
}


@dataclass(frozen=True)
class ExperimentConfig:
    """What to run. Zero / empty fields take the preset's value.

    Args:
        name: prefix of the adapters and of the report folder.
        preset: ``quick`` or ``thorough``.
        questions: facts to generate (ignored when a question set is given).
        split: ``paraphrase`` or ``heldout``.
        train: recipes, some of ``qa``, ``raft``, ``docs``.
        steps: optimiser steps per adapter (0 = the preset's epochs).
        documents: documents to ask about and pre-train on (empty = all stored).
    """

    name: str = "experiment"
    preset: str = knob("quick", choices=tuple(PRESETS), help="how much work: quick or thorough")
    questions: int = knob(0, 0, 500, "facts to generate; 0 = the preset's", note="0 = the preset's")
    split: str = knob("", help="paraphrase or heldout; empty = the preset's")
    train: tuple[str, ...] = knob((), help=f"training recipes, some of {', '.join(RECIPES)}; empty = the preset's")
    steps: int = knob(0, 0, 10_000, "optimiser steps per adapter; 0 = the preset's epochs",
                      note="0 = the preset's epochs")
    documents: tuple[str, ...] = ()
    top_k: int = knob(3, 1, 20, "chunks retrieved per question", label="top k")
    seed: int = 0
    method: str = knob("cloze", choices=QUESTION_METHODS, label="question method",
                       help="how questions are made: cloze (no model) or llm (the base model writes them)")

    def __post_init__(self):
        if not valid_name(self.name):
            raise ExperimentError(f"experiment name: {NAME_RULE}")
        check(self, ExperimentError)
        if self.split not in ("", *SPLIT_MODES):
            raise ExperimentError(f"split must be one of {', '.join(SPLIT_MODES)}")
        if not set(self.train) <= set(RECIPES):
            raise ExperimentError(f"training recipes must be some of {', '.join(RECIPES)}")

    def validate(self) -> "ExperimentConfig":
        """Checked on construction; kept so ``ExperimentConfig(...).validate()`` reads as it always did."""
        return self

    @property
    def recipe(self) -> Preset:
        return PRESETS[self.preset]


# --- planning ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Speed:
    """Throughput of this machine on this model, measured once per process (`measure_speed`)."""

    prefill_tps: float  # prompt tokens per second (batched forward)
    decode_step_s: float  # seconds per generated token for a batch of 8
    train_tps: float  # tokens per second through forward + backward


@dataclass
class Stage:
    name: str
    seconds: float  # estimated
    kind: str  # "train" | "eval" | "report"
    recipe: str = ""


@dataclass
class Plan:
    """Everything decided before the run starts: the questions, the split, the training configs, the stages."""

    config: ExperimentConfig
    chunks: list[Hit]
    items: list[QAItem]
    train: list[QAItem]
    test: list[QAItem]
    checks: list[QAItem]  # one trained wording per fact, asked again after training
    train_configs: dict[str, TrainConfig]
    eval_config: EvalConfig
    question_note: str
    stages: list[Stage] = field(default_factory=list)

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    def describe(self) -> str:
        """The plan and its time estimate, in two lines, for the tab and the CLI."""
        recipes = ", ".join(f"{r} ({c.max_steps} steps)" for r, c in self.train_configs.items())
        return (f"{self.question_note}; split {self.config.split or self.config.recipe.split}: "
                f"{len(self.train)} training questions, {len(self.test)} test questions. Adapters: {recipes}.\n"
                f"Estimated time on this machine: about {format_duration(self.seconds)} "
                f"({', '.join(f'{s.name} {format_duration(s.seconds)}' for s in self.stages)}).")


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def _tokens(generator: Generator, text: str) -> int:
    return len(generator.tokenizer(text, add_special_tokens=False)["input_ids"])


def plan_experiment(
    generator: Generator, store: Store, config: ExperimentConfig, items: list[QAItem] | None = None,
    speed: Speed | None = None, complete: Callable[[list[str]], list[str]] | None = None,
) -> Plan:
    """Questions, split and training settings for ``config``, so the tab can show the plan and its estimate before
    anything starts. ``items`` is a saved or uploaded set; None generates one: fill-in-the-blank (no model runs, so
    planning is cheap) or, with ``config.method == "llm"``, written by the model through ``complete(prompts)``
    (only pairs whose answer is in their chunk are kept; a capable ``RAGFT_BASE_MODEL`` writes many)."""
    config.validate()
    preset = config.recipe
    chunks = [h for h in store.all_chunks() if not config.documents or h.source in config.documents]
    if not chunks:
        raise ExperimentError("no documents to experiment on: add documents first"
                              if not config.documents else "none of the picked documents is stored")
    if items is None and config.method == "llm":
        if complete is None:
            raise ExperimentError("the llm question method needs the base model to write with")
        items, dropped = llm_questions(chunks, complete, config.questions or preset.questions)
        note = f"{len(items)} questions written by the model from {len(chunks)} chunks ({dropped} replies dropped)"
    elif items is None:
        items = generate_cloze(chunks, config.questions or preset.questions)
        note = f"{len(items)} fill-in-the-blank facts from {len(chunks)} chunks"
    else:
        note = f"{len(items)} questions from the given set"
    facts = {it.fact or it.question for it in items}
    if len(facts) < 4:
        raise ExperimentError(f"only {len(facts)} facts could be asked about; an experiment needs at least 4 "
                              "(add documents with names, numbers or years, or give a question set)")
    split = config.split or preset.split
    if split == "paraphrase" and any(not it.cloze for it in items):
        split = "heldout"  # hand-written questions have no sentence to rephrase
        note += " (no fill-in-the-blank sentences to rephrase: held-out facts instead)"
    try:
        train, test = split_set(items, split, seed=config.seed)
    except QuestionSetError as exc:
        raise ExperimentError(str(exc)) from None
    checks = _trained_checks(train, preset.trained_checks)
    recipes = config.train or preset.train
    batch = 4
    sizes = {"qa": len(train), "raft": len(train), "docs": len(chunks)}
    train_configs = {
        r: TrainConfig(
            rank=preset.rank, alpha=2 * preset.rank, learning_rate=preset.learning_rate[r],
            max_steps=config.steps or max(1, math.ceil(preset.epochs[r] * sizes[r] / batch)),
            max_seq_len=preset.max_seq_len, batch_size=batch, seed=config.seed,
            raft_distractors=preset.raft_distractors, raft_no_gold=preset.raft_no_gold,
        )
        for r in recipes
    }
    eval_config = EvalConfig(top_k=config.top_k, max_new_tokens=preset.max_new_tokens, seed=config.seed)
    plan = Plan(replace(config, split=split, train=tuple(recipes)), chunks, items, train, test, checks,
                train_configs, eval_config, note)
    plan.stages = _stages(generator, plan, speed or Speed(300.0, 0.08, 100.0))
    return plan


def _trained_checks(train: list[QAItem], n: int) -> list[QAItem]:
    """One trained wording per fact — the question-word-first one where there is one, as people ask."""
    by_fact: dict[str, QAItem] = {}
    for it in train:
        key = it.fact or it.question
        if key not in by_fact or by_fact[key].question.startswith("Fill in the blank:"):
            by_fact[key] = it
    return list(by_fact.values())[:n]


def _stages(generator: Generator, plan: Plan, speed: Speed) -> list[Stage]:
    chunk_tokens = sum(_tokens(generator, h.text) for h in plan.chunks[:50]) / min(len(plan.chunks), 50)
    k = plan.eval_config.top_k
    question = 40  # chat template + instruction + question
    new = plan.eval_config.max_new_tokens * 0.7  # a batch runs until its longest answer ends

    def eval_seconds(n: int, rag: bool) -> float:
        prompt = question + (k * (chunk_tokens + 12) if rag else 0)
        batches = math.ceil(n / plan.eval_config.batch_size)
        return n * prompt / speed.prefill_tps + batches * new * speed.decode_step_s

    stages = []
    for recipe, tc in plan.train_configs.items():
        per_example = {"qa": question + 8, "raft": question + (tc.raft_distractors + 1) * (chunk_tokens + 12),
                       "docs": chunk_tokens}[recipe]
        tokens = tc.max_steps * tc.batch_size * min(per_example, tc.max_seq_len)
        stages.append(Stage(f"train {recipe}", 4 + tokens / speed.train_tps, "train", recipe))
    n = len(plan.test)
    for i, recipe in enumerate(plan.train_configs):
        base = eval_seconds(n, False) + eval_seconds(n, True) if i == 0 else 0.0
        stages.append(Stage(f"test {recipe}", base + eval_seconds(n, False) + eval_seconds(n, True), "eval", recipe))
        stages.append(Stage(f"recheck {recipe}", eval_seconds(len(plan.checks), False), "check", recipe))
    stages.append(Stage("report", 1.0, "report"))
    return stages


def measure_speed(generator: Generator) -> Speed:
    """Time a batched prefill and a few decode steps of the real model (a few seconds on a CPU).

    Training is taken as 3× a forward pass per token (forward, and a backward about twice as costly): LoRA still
    back-propagates through every layer.
    """
    import torch

    tok = generator.tokenizer
    text = " ".join(["The glimmerphone plays music with glass bells."] * 40)
    ids = tok([text] * 4, return_tensors="pt", add_special_tokens=False)["input_ids"][:, :256].to(generator.device)
    with generator.lock, torch.inference_mode():
        model = generator.model
        kwargs = {"adapter_names": ["__base__"] * 4} if generator.has_adapters else {}
        model(input_ids=ids[:, :16], **kwargs)  # warm-up
        t0 = time.perf_counter()
        model(input_ids=ids, logits_to_keep=1, **kwargs)
        prefill = ids.numel() / (time.perf_counter() - t0)
        short = tok(["Hi"] * 8, return_tensors="pt", add_special_tokens=False).to(generator.device)
        kwargs = {"adapter_names": ["__base__"] * 8} if generator.has_adapters else {}
        decode = dict(do_sample=False, temperature=None, top_p=None, top_k=None, pad_token_id=tok.pad_token_id)
        model.generate(**short, max_new_tokens=2, min_new_tokens=2, **decode, **kwargs)  # warm-up
        t0 = time.perf_counter()
        model.generate(**short, max_new_tokens=9, min_new_tokens=9, **decode, **kwargs)
        step = (time.perf_counter() - t0) / 9
    return Speed(prefill, step, prefill / 3)


# --- running -----------------------------------------------------------------------------------------------------
@dataclass
class AdapterRun:
    """One adapter the experiment trained, its scores on the test part and its re-check on trained wordings."""

    recipe: str
    name: str
    path: Path
    test: EvalResult | None = None
    check: EvalResult | None = None

    def costs(self) -> dict:
        run = read_run(self.path) or RunRecord()
        return {
            "adapter": self.name, "recipe": self.recipe, "status": run.status, "steps": run.steps,
            "train_seconds": run.seconds, "tokens_seen": run.tokens_seen, "trained_tokens": run.trained_tokens,
            "examples": run.data.get("examples", 0), "final_loss": run.final_loss,
            "size_bytes": folder_bytes(self.path) if self.path.is_dir() else 0,
        }


class Progress:
    """Maps stage progress onto the job state: step/total are estimated seconds, so the bar moves with time."""

    def __init__(self, state, stages: list[Stage]):
        self.state, self.stages = state, stages
        self.done = 0.0  # estimated seconds of the finished stages
        self.started = time.time()
        state.total = max(1, round(sum(s.seconds for s in stages)))
        state.step = 0

    def at(self, stage: Stage, fraction: float, message: str) -> None:
        s = self.state
        if s.status == "preparing":
            s.status = "running"
        s.stage = stage.name
        s.message = message
        s.step = min(s.total, round(self.done + stage.seconds * min(max(fraction, 0.0), 1.0)))
        elapsed = time.time() - self.started
        s.eta_s = elapsed / s.step * (s.total - s.step) if s.step else None

    def finish(self, stage: Stage) -> None:
        self.done += stage.seconds


def run_experiment(
    generator: Generator,
    store: Store,
    adapters_dir: Path,
    plan: Plan,
    state,
    cancel: threading.Event | None = None,
    adapter_key: Callable[[str], str] = str,
    train_processes: int = 1,
) -> ExperimentReport:
    """Train the plan's adapters, score every variant, and build the report. ``state`` (a `jobs.JobState`) gets
    stage, progress, ETA and the training losses; setting ``cancel`` stops at the next training step or batch and
    reports what was scored so far. ``adapter_key``: the name an adapter gets on the (shared) base model;
    ``train_processes``: processes each adapter trains in (see `train_process`)."""
    from .experiment_report import build_report
    from .train_process import launch_training

    cancel = cancel or threading.Event()
    started = time.perf_counter()
    progress = Progress(state, plan.stages)
    stages = {(s.kind, s.recipe): s for s in plan.stages}
    runs: list[AdapterRun] = []
    base: EvalResult | None = None

    for recipe, tc in plan.train_configs.items():
        if cancel.is_set():
            break
        stage = stages[("train", recipe)]
        progress.at(stage, 0.0, f"preparing {recipe} training data")
        examples = _examples(recipe, plan, store, tc)
        name = next_version_name(adapters_dir, f"{plan.config.name}-{recipe}")
        sub = type(state)()  # train_adapter's own state; mirrored into ours at every step

        def on_step(sub=sub, stage=stage, recipe=recipe, name=name) -> None:
            state.losses = list(sub.losses)
            state.tokens_per_s = sub.tokens_per_s
            progress.at(stage, sub.step / max(sub.total, 1), f"training {name} ({recipe}): step {sub.step}/"
                                                              f"{sub.total}")

        sources = {ex.source for ex in examples if ex.source} or {h.source for h in plan.chunks}
        if recipe == "raft":
            sources |= {h.source for h in plan.chunks}  # its contexts come from the whole store
        summary = {"source": recipe, "experiment": plan.config.name, "examples": len(examples)}
        path = launch_training(generator, examples, adapters_dir / name, tc, sub, cancel, summary,
                               trained_on(store.documents(), sources), on_step, train_processes)
        runs.append(AdapterRun(recipe, name, path))
        progress.finish(stage)

    for i, run in enumerate(runs):
        if cancel.is_set():
            break
        loaded = adapter_key(run.name)
        generator.ensure_adapter(loaded, run.path)
        variants = VARIANTS if i == 0 else tuple(v for v in VARIANTS if v in NEEDS_ADAPTER)
        stage = stages[("eval", run.recipe)]
        run.test = _evaluate(generator, store, plan.test, loaded, replace(plan.eval_config, variants=variants),
                             cancel, lambda f, m, stage=stage: progress.at(stage, f, m), "test questions")
        if i == 0:
            base = run.test
        progress.finish(stage)
        if cancel.is_set() or not plan.checks:
            break
        stage = stages[("check", run.recipe)]
        run.check = _evaluate(generator, store, plan.checks, loaded, replace(plan.eval_config, variants=("ft",)),
                              cancel, lambda f, m, stage=stage: progress.at(stage, f, m), "trained wordings")
        progress.finish(stage)

    report = build_report(plan, runs, base, cancelled=cancel.is_set(), seconds=time.perf_counter() - started)
    state.step = state.total if not cancel.is_set() else state.step
    return report


def _examples(recipe: str, plan: Plan, store: Store, config: TrainConfig) -> list[Example]:
    records = [{"question": it.question, "answer": it.answer, "source": it.source, "chunk": it.chunk,
                "fact": it.fact} for it in plan.train]
    if recipe == "qa":
        return qa_examples(records)
    if recipe == "raft":
        return raft_examples(records, store, config)
    if recipe == "docs":
        return [Example(text=h.text, source=h.source) for h in plan.chunks]
    raise TrainingDataError(f"unknown recipe {recipe!r}; use {', '.join(RECIPES)}")


def _evaluate(generator, store, items, adapter, config, cancel, report: Callable[[float, str], None], what: str):
    result, name = None, adapter.rpartition("/")[2]  # the workspace's name for it, not the shared model's
    for p in run_evaluation(generator, store.search, items, adapter, config, cancel):
        report(p.done / max(p.total, 1), f"{what} with {name}: {p.message}")
        result = p.result
    if result is not None:
        result.adapter = name
    return result


# --- causes of misses ----------------------------------------------------------------------------------------------
CAUSES = {
    "retrieval miss": "no retrieved chunk contains the expected answer",
    "context ignored": "a retrieved chunk contains the expected answer, the reply does not",
    "buried": "the reply contains the expected answer, but in a long reply (not counted as correct)",
    "not learned": "the adapter misses this fact even in the wording it was trained on",
    "did not generalise": "the adapter answers the trained wording right, this held-out wording wrong",
    "not trained": "the fact was held out of training: the adapter never saw it",
    "not known": "the base model does not know it without the documents",
}


def cause_of_miss(variant: str, answer, trained: bool | None) -> str:
    """Why one wrong answer was wrong ("" when it is right). ``answer`` is an `evaluate.Answer`; ``trained`` is the
    adapter's result on a trained wording of the same fact (True right, False wrong), None if it was not trained.

    Retrieval variants are judged by their context first: the adapter only matters once the answer was in it.
    """
    if answer.correct:
        return ""
    if answer.contains:
        return "buried"
    if variant in RETRIEVES:
        return "context ignored" if answer.in_context else "retrieval miss"
    if variant in NEEDS_ADAPTER:
        if trained is None:
            return "not trained"
        return "did not generalise" if trained else "not learned"
    return "not known"
