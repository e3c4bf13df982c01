"""Training verbs: what to train on, a preview of the examples, a training run as the background job, and a
retrain of an adapter on the current documents."""

from __future__ import annotations

import re
from pathlib import Path

from ..finetune import (
    DATA_SOURCES,
    DataSpec,
    TrainConfig,
    TrainingDataError,
    plan_training,
    preview,
    run_training,
)
from ..models import (
    NoAdapterError,
)
from ..questions import (
    QAItem,
    save_set,
)
from .adapters import AdapterVerbs
from .questions import QuestionVerbs


class TrainingVerbs(AdapterVerbs, QuestionVerbs):
    """Training; it uses the adapters' verbs (`adapter_run`, `check_adapter_room`) and the question sets'."""

    def data_spec(self, source: str, qa_file: str | Path | None = None, qa_set: str | None = None) -> DataSpec:
        """What to train on: the stored documents ("docs"), or for "qa" and "raft" an uploaded JSONL file or a
        saved question set (by name)."""
        if source not in DATA_SOURCES:
            raise TrainingDataError(f"unknown data source {source!r}; use docs, qa or raft")
        if source == "docs":
            return DataSpec("docs")
        if qa_file:
            return DataSpec(source, Path(qa_file))
        if qa_set:
            return DataSpec(source, self.question_set_path(qa_set))
        raise TrainingDataError("give a question/answer JSONL file or a saved question set for this data source")

    def preview_training(self, spec: DataSpec, config: TrainConfig) -> tuple[list[dict], dict]:
        """The first examples as the model will see them, and counts (examples, tokens, tokens with loss)."""
        return preview(spec.examples(self.store, config), self.generator.tokenizer, config.max_seq_len)

    def start_training(self, spec: DataSpec, config: TrainConfig, name: str = "adapter") -> str:
        """Check the data, then train an adapter as the background job; returns its versioned name.

        Bad data or settings raise here (`TrainingDataError`, `InvalidInputError`), a running job `JobBusyError`; progress,
        loss and the outcome are on ``self.jobs.state``.
        """
        self.jobs.check_idle()  # before building examples (RAFT retrieves for every question)
        self.check_adapter_room()
        plan = plan_training(spec, config, self.store, self.settings.adapters_dir, name,
                             self.settings.max_train_steps)
        self.generator.check_training(config, len(plan.examples))  # ZeroGPU: too long for one call; said now
        self.jobs.start("train", plan.name, lambda state, cancel: run_training(self.generator, plan, state, cancel,
                                                                                 self.settings.train_processes),
                        "starting the training processes")
        return plan.name

    def retrain_adapter(self, name: str) -> str:
        """Train a new version of adapter ``name`` with its recorded recipe and settings on the current documents
        (its question/answer pairs, if any, come from its run record). Returns the new version's name."""
        run = self.adapter_run(name)
        source = run.source if run else ""
        if run is None or source not in DATA_SOURCES:
            raise NoAdapterError(f"adapter {name!r} has no ragft run record to retrain from: train it again",
                                 fix="adapters")
        config = TrainConfig(**{**run.config, "target_modules": tuple(run.config["target_modules"])})
        spec = DataSpec("docs")
        if source != "docs":
            if not run.pairs:
                raise NoAdapterError(f"adapter {name!r} was trained by an older ragft that kept no question/answer "
                                     "pairs: train it again from its question file")
            path = self.settings.questions_dir / ".retrain" / f"{name}.jsonl"
            save_set([QAItem(p["question"], p["answer"], p.get("source", ""), fact=p.get("fact", ""))
                      for p in run.pairs], path)
            spec = DataSpec(source, path)
        return self.start_training(spec, config, re.sub(r"-v\d+$", "", name))
