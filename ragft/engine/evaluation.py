"""Evaluation verbs: train/test overlap, an evaluation run (streamed, or as the background job)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace

from ..errors import InvalidInputError
from ..evaluate import (
    EvalConfig,
    EvalProgress,
    run_evaluation,
    training_overlap,
)
from ..jobs import JobState
from ..models import (
    NoAdapterError,
)
from ..questions import (
    QAItem,
)
from ..results import EvalResult
from .adapters import AdapterVerbs


class EvaluationVerbs(AdapterVerbs):
    """Evaluations; they use the adapters' verbs (`adapters`, `use_adapter`, `adapter_run`)."""

    def training_overlap(self, items: list[QAItem], adapter: str | None) -> tuple[list[str], str]:
        """Which questions ``adapter`` was trained on (see ``evaluate.training_overlap``), and a note."""
        if not adapter or not items:
            return [""] * len(items), ""
        return training_overlap(items, self.adapter_run(adapter))

    def evaluate(
        self,
        items: list[QAItem],
        adapter: str | None = None,
        config: EvalConfig | None = None,
        set_name: str = "",
        cancel: threading.Event | None = None,
    ) -> Iterator[EvalProgress]:
        """Run ``run_evaluation`` on the shared model and store; the finished result is written under
        ``<data>/evals/<time>-<set>/`` (``result.files``)."""
        config = config or EvalConfig(top_k=self.settings.top_k)
        if adapter:
            self.use_adapter(adapter)
        run = self.adapter_run(adapter)
        for progress in run_evaluation(
            self.generator, self.store.search, items, self.adapter_key(adapter) if adapter else None, config, cancel,
            set_name, run, self.store.search, self.grounding_model
        ):
            progress.result.adapter = adapter or None  # its name here, not on the shared model
            if progress.finished:
                out = self.settings.evals_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{set_name or 'questions'}"
                progress.result.files = progress.result.write(out)
            yield progress

    def start_evaluation(
        self, items: list[QAItem], adapter: str | None = None, config: EvalConfig | None = None, set_name: str = ""
    ) -> JobState:
        """Run `evaluate` as the background job; its state carries the progress and, in ``result``, the
        `EvalResult` so far (final once the job ends). Cancelling keeps the scores so far.

        Bad input raises here: an empty set or bad config `ValueError`, an unknown adapter `NoAdapterError`, a
        running job `JobBusyError`.
        """
        config = config or EvalConfig(top_k=self.settings.top_k)
        if not items:
            raise InvalidInputError("the question set is empty")
        if adapter and adapter not in self.adapters():
            available = ", ".join(self.adapters()) or "none yet (train one first)"
            raise NoAdapterError(f"no adapter named {adapter!r}; available: {available}")

        def work(state: JobState, cancel: threading.Event) -> EvalResult | None:
            result = None
            for p in self.evaluate(items, adapter, config, set_name, cancel):
                if state.status == "preparing":
                    state.status = "running"
                elapsed = time.time() - state.started
                state.eta_s = elapsed / p.done * (p.total - p.done) if p.done else None
                # The scoring thread keeps adding answers; pollers read a copy, the final result as it is.
                state.result = p.result if p.finished else _snapshot(p.result)
                state.step, state.total, state.stage, state.message = p.done, p.total, p.message, p.message
                result = p.result
            return result

        note = f"loading adapter {adapter}" if adapter else "starting"
        return self.jobs.start("evaluate", set_name or "questions", work, note)


def _snapshot(result: EvalResult) -> EvalResult:
    """A copy of a result in progress that later scoring does not change (answers and timings copied)."""
    return replace(
        result,
        questions=[replace(q, answers=dict(q.answers)) for q in result.questions],
        timings={v: replace(t) for v, t in result.timings.items()},
    )

