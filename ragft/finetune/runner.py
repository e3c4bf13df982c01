"""A training run as the app's background job: check the data and settings first, then train in the training
processes (`train_process`); after a crash, half-written adapter folders are removed."""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..adapters import file_hash, next_version_name, trained_on
from ..jobs import JobState
from ..models import Generator
from ..store import Store
from .config import TrainConfig
from .data import DataSpec, Example


@dataclass(frozen=True)
class TrainingPlan:
    """A checked training run, ready to go: the versioned adapter name, its folder, the examples, a data summary."""

    name: str
    out_dir: Path
    examples: list[Example]
    config: TrainConfig
    summary: dict
    trained_on: dict[str, str] = field(default_factory=dict)  # document -> content hash, for freshness


def plan_training(spec: DataSpec, config: TrainConfig, store: Store, adapters_dir: Path,
                  name: str = "adapter", max_steps: int = 100_000) -> TrainingPlan:
    """Check the config and the data (at most ``max_steps`` steps) and pick the next version name; bad data raises
    here, before any job."""
    adapters_dir.mkdir(parents=True, exist_ok=True)
    full_name = next_version_name(adapters_dir, name.strip() or "adapter")
    examples = spec.examples(store, config)
    config.check_steps(len(examples), max_steps)
    summary = {"source": spec.source, "file": spec.qa_path.name if spec.qa_path else None, "examples": len(examples)}
    if spec.qa_path:
        summary["file_hash"] = file_hash(spec.qa_path)
    # Documents and RAFT contexts come from the whole store; QA pairs from the documents they name (if any).
    sources = None if spec.source in ("docs", "raft") else {ex.source for ex in examples if ex.source}
    return TrainingPlan(full_name, adapters_dir / full_name, examples, config, summary,
                        trained_on(store.documents(), sources))


def run_training(generator: Generator, plan: TrainingPlan, state: JobState, cancel: threading.Event,
                 processes: int = 1) -> Path:
    """A job's work: train ``plan`` in its own ``processes`` (see `train_process`) reporting into ``state``; a
    failed run leaves no partial folder behind."""
    from ..train_process import launch_training

    state.stage = f"training {plan.summary['source']} adapter"
    path = launch_training(generator, plan.examples, plan.out_dir, plan.config, state, cancel, plan.summary,
                           plan.trained_on, processes=processes)
    state.message = (
        f"saved {plan.name} after {state.step} of {state.total} steps"
        + (" (cancelled: the adapter holds what was learned so far)" if state.status == "cancelled" else "")
    )
    return path


def remove_partial_adapters(adapters_dir: Path) -> list[str]:
    """Delete the ``.name.partial`` and ``.name.job`` folders a killed training run left (never listed as
    adapters); their names."""
    gone = []
    for d in [*adapters_dir.glob(".*.partial"), *adapters_dir.glob(".*.job")] if adapters_dir.is_dir() else []:
        shutil.rmtree(d, ignore_errors=True)
        gone.append(d.name)
    return gone
