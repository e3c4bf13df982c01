"""Running a planned experiment as the app's background job: train each recipe's adapter, score every variant on
the test part (and the fine-tuned one on trained wordings), then build the report."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from ..adapters import next_version_name, trained_on
from ..evaluate import run_evaluation
from ..finetune import (
    Example,
    TrainConfig,
    TrainingDataError,
    qa_examples,
    raft_examples,
)
from ..grounding import GroundingModel
from ..models import Generator
from ..questions.general import GENERAL
from ..results import EvalResult
from ..store import Store
from ..variants import NEEDS_ADAPTER, VARIANTS
from .config import RECIPES
from .plan import Plan, Stage, statements, worded
from .report import AdapterRun, ExperimentReport
from .verdict import build_report


class StageProgress:
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

    def part(self, stage: Stage, start: float = 0.0, share: float = 1.0) -> Callable[[float, str], None]:
        """``report(fraction, message)`` for a part of ``stage``: its ``share`` of the stage, from ``start`` on."""
        return lambda fraction, message: self.at(stage, start + share * fraction, message)

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
    grounding_model: GroundingModel | None = None,
) -> ExperimentReport:
    """Train the plan's adapters, score every variant, and build the report. ``state`` (a `jobs.JobState`) gets
    stage, progress, ETA and the training losses; setting ``cancel`` stops at the next training step or batch and
    reports what was scored so far. ``adapter_key``: the name an adapter gets on the (shared) base model;
    ``train_processes``: processes each adapter trains in (see `train_process`); ``grounding_model``: judges the
    retrieval answers' sentences (`grounding.mark`), else facts and words in common do."""
    from ..train_process import launch_training

    cancel = cancel or threading.Event()
    started = time.perf_counter()
    progress = StageProgress(state, plan.stages)
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
                             cancel, progress.part(stage), "test questions", grounding_model)
        if i == 0:
            base = run.test
        progress.finish(stage)
        if cancel.is_set() or not plan.checks:
            break
        stage = stages[("check", run.recipe)]
        run.check = _evaluate(generator, store, plan.checks, loaded, replace(plan.eval_config, variants=("ft",)),
                              cancel, progress.part(stage, 0.0, 0.5), "trained wordings")
        if not cancel.is_set():
            run.general = _evaluate(generator, store, GENERAL, loaded, replace(
                plan.eval_config, variants=("plain", "ft") if i == 0 else ("ft",)), cancel,
                progress.part(stage, 0.5, 0.5), "general questions (forgetting)")
        progress.finish(stage)

    report = build_report(plan, runs, base, cancelled=cancel.is_set(), seconds=time.perf_counter() - started)
    state.step = state.total if not cancel.is_set() else state.step
    return report


def _examples(recipe: str, plan: Plan, store: Store, config: TrainConfig) -> list[Example]:
    wordings = plan.config.recipe.wordings.get(recipe, 1)
    records = [{"question": it.question, "answer": it.answer, "source": it.source, "chunk": it.chunk,
                "fact": it.fact} for it in worded(plan.train, wordings)]
    if recipe == "qa":
        return qa_examples(records) + statements(plan.train)
    if recipe == "raft":
        return raft_examples(records, store, config)
    if recipe == "docs":
        return [Example(text=h.text, source=h.source) for h in plan.chunks]
    raise TrainingDataError(f"unknown recipe {recipe!r}; use {', '.join(RECIPES)}")


def _evaluate(generator, store, items, adapter, config, cancel, report: Callable[[float, str], None], what: str,
              grounding_model: GroundingModel | None = None):
    result, name = None, adapter.rpartition("/")[2]  # the workspace's name for it, not the shared model's
    for p in run_evaluation(generator, store.search, items, adapter, config, cancel, grounding_model=grounding_model):
        report(p.done / max(p.total, 1), f"{what} with {name}: {p.message}")
        result = p.result
    if result is not None:
        result.adapter = name
    return result
