"""An experiment planned before it runs: its questions, split and training settings, and a time estimate from
speeds measured on this machine."""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..evaluate import EvalConfig
from ..finetune import (
    Example,
    TrainConfig,
)
from ..models import Generator
from ..questions import (
    BLANK,
    TEST_FORM,
    QAItem,
    QuestionSetError,
    generate_cloze,
    llm_questions,
    phrasings,
    split_set,
)
from ..questions.general import GENERAL
from ..store import Hit, Store
from .config import ExperimentConfig, ExperimentError


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
    facts_total: int = 0  # facts found in the documents (0: not known, e.g. a given question set)
    asked: list[QAItem] = field(default_factory=list)  # the user's own questions, never trained on, last in test

    @property
    def trained_facts(self) -> set[str]:
        return {it.fact or it.question for it in self.train}

    @property
    def coverage(self) -> float | None:
        """The share of the documents' facts the adapters train on; None when the facts were not counted."""
        return min(1.0, len(self.trained_facts) / self.facts_total) if self.facts_total else None

    @property
    def seconds(self) -> float:
        return sum(s.seconds for s in self.stages)

    def describe(self) -> str:
        """The plan and its time estimate, in two lines, for the tab and the CLI."""
        recipes = ", ".join(f"{r} ({c.max_steps} steps)" for r, c in self.train_configs.items())
        trained = self.trained_facts
        heldout = sum(1 for it in self.test if (it.fact or it.question) not in trained) - len(self.asked)
        ask = "test questions ask" if heldout != 1 else "test question asks"
        coverage = (f" The adapters train on {len(trained)} of the {self.facts_total} facts found in the documents "
                    f"({100 * self.coverage:.0f}%); {heldout} {ask} held-out facts."
                    if self.coverage is not None else "")
        if self.asked:
            coverage += f" {len(self.asked)} of the test questions are your own: the verdict speaks for them first."
        return (f"{self.question_note}; split {self.config.split or self.config.recipe.split}: "
                f"{len(self.train)} training questions, {len(self.test)} test questions.{coverage} "
                f"Adapters: {recipes}.\n"
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
    asked: list[QAItem] | None = None,
) -> Plan:
    """Questions, split and training settings for ``config``, so the tab can show the plan and its estimate before
    anything starts. ``items`` is a saved or uploaded set; None generates one: fill-in-the-blank (no model runs, so
    planning is cheap) or, with ``config.method == "llm"``, written by the model through ``complete(prompts)``
    (only pairs whose answer is in their chunk are kept; a capable ``RAGFT_BASE_MODEL`` writes many). ``asked``:
    the user's own questions, asked of every variant and never trained on; the verdict speaks for them first."""
    preset = config.recipe
    chunks = [h for h in store.all_chunks() if not config.documents or h.source in config.documents]
    if not chunks:
        raise (ExperimentError("no documents to experiment on: add documents first", fix="documents")
               if not config.documents else ExperimentError("none of the picked documents is stored"))
    facts_total = 0
    heldout: list[QAItem] = []
    if items is None and config.method == "llm":
        if complete is None:
            raise ExperimentError("the llm question method needs the base model to write with")
        items, dropped = llm_questions(chunks, complete, config.questions or preset.questions)
        note = f"{len(items)} questions written by the model from {len(chunks)} chunks ({dropped} replies dropped)"
    elif items is None:
        items, heldout, facts_total = _facts(chunks, config, preset)
        note = (f"{len(items)} fill-in-the-blank facts to train on, of the {facts_total} found in {len(chunks)} "
                f"chunks")
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
    if heldout and split == "paraphrase":
        # every trained fact is trained on, a sample is tested (spread over the documents: the facts come in that
        # order); the held-out ones are asked as the trained ones are
        tested = {it.fact for it in items[: preset.questions]}
        test = [it for it in test if it.fact in tested]
        test += [replace(it, question=phrasings(it)[TEST_FORM]) for it in heldout]
    asked = [replace(it, fact=f"asked-{i}") for i, it in enumerate(asked or [])]  # no fact of the trained ones
    test += asked
    checks = _trained_checks(train, preset.trained_checks)
    recipes = config.train or preset.train
    sizes = {"qa": len(worded(train, preset.wordings["qa"])) + len(statements(train)),
             "raft": len(worded(train, preset.wordings["raft"])), "docs": len(chunks)}
    train_configs = {
        r: TrainConfig(
            rank=preset.rank, alpha=2 * preset.rank, learning_rate=preset.learning_rate[r],
            max_steps=config.steps or max(1, math.ceil(preset.epochs[r] * sizes[r] / preset.batch[r])),
            max_seq_len=preset.max_seq_len, batch_size=preset.batch[r], seed=config.seed,
            raft_distractors=preset.raft_distractors, raft_no_gold=preset.raft_no_gold,
        )
        for r in recipes
    }
    eval_config = EvalConfig(top_k=config.top_k, max_new_tokens=preset.max_new_tokens, seed=config.seed)
    plan = Plan(replace(config, split=split, train=tuple(recipes)), chunks, items, train, test, checks,
                train_configs, eval_config, note, facts_total=facts_total, asked=asked)
    plan.stages = _stages(generator, plan, speed or Speed(300.0, 0.08, 100.0))
    return plan


def _facts(chunks: list[Hit], config: ExperimentConfig, preset) -> tuple[list[QAItem], list[QAItem], int]:
    """(facts to train on, held-out facts, facts found): every fact the generator finds in ``chunks`` (up to the
    preset's pool), spread over the documents. A stable hash holds out a fourth of them, at most the preset's
    ``heldout``: facts no adapter sees, asked to measure what the documents hold beyond the trained facts. The rest
    are trained on, up to ``config.questions`` or the preset's ``train_facts``."""
    every = generate_cloze(chunks, preset.pool, per_chunk=preset.pool)
    n = min(preset.heldout, len(every) // 4)
    ranked = sorted(every, key=lambda it: hashlib.sha1(f"{config.seed}|{it.fact}".encode()).hexdigest())
    held = {it.fact for it in ranked[:n]}
    trained = [it for it in every if it.fact not in held][: config.questions or preset.train_facts]
    return trained, [it for it in every if it.fact in held], len(every)


def worded(train: list[QAItem], n: int) -> list[QAItem]:
    """At most ``n`` training wordings of each fact: the question-word-first ones before the fill-in one, turning
    with the fact so a one-wording recipe still sees every form across the facts."""
    by_fact: dict[str, list[QAItem]] = {}
    for it in train:
        by_fact.setdefault(it.fact or it.question, []).append(it)
    out = []
    for i, forms in enumerate(by_fact.values()):
        natural = [f for f in forms if not f.question.startswith("Fill in the blank:")]
        ordered = natural[i % len(natural):] + natural[: i % len(natural)] if natural else []
        out += (ordered + [f for f in forms if f not in natural])[:n]
    return out


def statements(train: list[QAItem]) -> list[Example]:
    """Each trained fact's sentence as a statement, once (loss on all of it): the fact in the words of the
    documents, beside the qa recipe's questions about it. No source: a run record's "documents" are those read
    whole."""
    return list({it.fact: Example(text=it.cloze.replace(BLANK, it.answer), fact=it.fact)
                 for it in train if it.cloze}.values())


def _trained_checks(train: list[QAItem], n: int) -> list[QAItem]:
    """One trained wording per fact — the question-word-first one where there is one, as people ask."""
    by_fact: dict[str, QAItem] = {}
    for it in train:
        key = it.fact or it.question
        if key not in by_fact or by_fact[key].question.startswith("Fill in the blank:"):
            by_fact[key] = it
    return list(by_fact.values())[:n]


def _stages(generator: Generator, plan: Plan, speed: Speed) -> list[Stage]:
    # a chunk in a prompt: its text, and its number and source line (~30 tokens)
    chunk_tokens = sum(_tokens(generator, h.text) for h in plan.chunks[:50]) / min(len(plan.chunks), 50)
    k = plan.eval_config.top_k
    question = 70  # chat template + instruction + question (SmolLM2: 68 tokens for a question of 15 words)
    new = plan.eval_config.max_new_tokens  # a batch runs until its longest answer ends: mostly the cap

    def eval_seconds(n: int, rag: bool) -> float:
        prompt = question + (k * (chunk_tokens + 30) if rag else 0)
        batches = math.ceil(n / plan.eval_config.batch_size)
        return n * prompt / speed.prefill_tps + batches * new * speed.decode_step_s

    stages = []
    for recipe, tc in plan.train_configs.items():
        per_example = {"qa": question + 8, "raft": question + (tc.raft_distractors + 1) * (chunk_tokens + 30),
                       "docs": chunk_tokens}[recipe]
        tokens = tc.max_steps * tc.batch_size * min(per_example, tc.max_seq_len)
        # a training process starts and copies the model (~15 s) before its first step
        stages.append(Stage(f"train {recipe}", 15 + tokens / speed.train_tps, "train", recipe))
    n = len(plan.test)
    for i, recipe in enumerate(plan.train_configs):
        base = eval_seconds(n, False) + eval_seconds(n, True) if i == 0 else 0.0
        stages.append(Stage(f"test {recipe}", base + eval_seconds(n, False) + eval_seconds(n, True), "eval", recipe))
        general = eval_seconds(len(GENERAL), False) * (2 if i == 0 else 1)  # the forgetting check
        stages.append(Stage(f"recheck {recipe}", eval_seconds(len(plan.checks), False) + general, "check", recipe))
    stages.append(Stage("report", 1.0, "report"))
    return stages


def measure_speed(generator: Generator) -> Speed:
    """Time a batched prefill and a few decode steps of the real model (a few seconds on a CPU).

    Training is taken as 4.3x a prompt read per token: the forward pass computes logits at every position (a prompt
    read only at the last), the backward costs about as much again, and the Trainer adds its share. Measured on 2
    CPU cores (the quick preset on bench/recipe): 125-140 tokens/s trained against 570 read. LoRA still
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
        decode = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None,
                  "pad_token_id": tok.pad_token_id}
        model.generate(**short, max_new_tokens=2, min_new_tokens=2, **decode, **kwargs)  # warm-up
        t0 = time.perf_counter()
        model.generate(**short, max_new_tokens=9, min_new_tokens=9, **decode, **kwargs)
        step = (time.perf_counter() - t0) / 9
    return Speed(prefill, step, prefill / 4.3)
