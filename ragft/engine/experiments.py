"""Experiment verbs: this machine's speed (for estimates), a plan, a run as the background job, saved reports."""

from __future__ import annotations

import threading
import time

from ..experiment import (
    ExperimentConfig,
    ExperimentError,
    Plan,
    Speed,
    measure_speed,
    plan_experiment,
    run_experiment,
)
from ..experiment.report import list_reports, load_report
from ..jobs import JobState
from ..questions import (
    QAItem,
)
from .adapters import AdapterVerbs
from .questions import QuestionVerbs


class ExperimentVerbs(AdapterVerbs, QuestionVerbs):
    """Experiments; they use the adapters' verbs (`check_adapter_room`) and the question sets' (completions)."""

    def speed(self) -> Speed:
        """This machine's throughput on the base model, measured once per process (a few seconds)."""
        root = self.parent or self  # measured by the root engine, for every workspace
        if root._speed is None:
            root._speed = self.generator.measure(measure_speed)  # on ZeroGPU: in a GPU call
        return root._speed

    def plan_experiment(self, config: ExperimentConfig, items: list[QAItem] | None = None,
                        asked: list[QAItem] | None = None) -> Plan:
        """Questions, split, training settings and a time estimate measured on this machine; nothing runs yet.
        ``asked``: the user's own questions, tested and never trained on; the verdict speaks for them first."""
        if not self.store.count():  # said before the model loads to measure its speed
            raise ExperimentError("no documents to experiment on: add documents first", fix="documents")
        return plan_experiment(self.generator, self.store, config, items, self.speed(), self._complete, asked)

    @property
    def question_method(self) -> str:
        """How an experiment makes questions by default: the model writes them when one was configured
        (``RAGFT_BASE_MODEL``, presumably more capable than the embedded 135M one), else fill-in-the-blank."""
        return "llm" if self.settings.base_model else "cloze"

    def start_experiment(self, plan: Plan) -> JobState:
        """Run a planned experiment as the background job; ``state.result`` is the `ExperimentReport` at the end,
        also written under ``<data>/experiments/<time>-<name>/``."""
        self.jobs.check_idle()
        self.check_adapter_room(len(plan.train_configs))
        for tc in plan.train_configs.values():  # their step counts are fixed: epochs never count here
            tc.check_steps(0, self.settings.max_train_steps)

        def work(state: JobState, cancel: threading.Event):
            report = run_experiment(self.generator, self.store, self.settings.adapters_dir, plan, state, cancel,
                                    self.adapter_key, self.settings.train_processes, self.grounding_model)
            folder = self.settings.experiments_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{plan.config.name}"
            report.write(folder)
            state.message = report.headline
            return report

        return self.jobs.start("experiment", plan.config.name, work, "planning")

    def experiments(self) -> list[dict]:
        return list_reports(self.settings.experiments_dir)

    def experiment_report(self, folder: str) -> dict:
        return load_report(self.settings.experiments_dir, folder)
