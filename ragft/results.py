"""What an evaluation produced, and its downloads: each variant's judged answers per question, the summary table
(accuracy with its 95% interval, F1, recall@k, speed) and the JSON and CSV files. The run itself is `evaluate`."""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import metrics, stats
from .questions import QAItem
from .store import Hit
from .variants import LABELS, RETRIEVES

if TYPE_CHECKING:
    from .evaluate import EvalConfig

CORRECT_RULE = (
    f"open question: the expected answer appears in the answer after normalisation, and the answer has at most "
    f"{metrics.EXTRA_WORDS} words that are neither in the question nor in the expected answer (a long reply that "
    "happens to contain it is not correct); "
    "multiple choice: the option whose reply has the highest log-probability is the expected one (for a "
    "fill-in-the-blank question the reply is the sentence completed with the option)"
)

@dataclass
class Answer:
    """One variant's answer to one question, judged."""

    text: str
    correct: bool
    exact: float
    f1: float
    contains: float
    recall: float | None = None  # retrieval variants with a known source only
    sources: list[Hit] = field(default_factory=list)
    option_scores: list[float] = field(default_factory=list)  # multiple choice: one per option
    tokens: int = 0
    in_context: float | None = None  # retrieval variants: the expected answer is in a retrieved chunk
    unsupported: float | None = None  # retrieval variants: share of its sentences no retrieved chunk supports


@dataclass
class QuestionResult:
    item: QAItem
    answers: dict[str, Answer] = field(default_factory=dict)
    overlap: str = ""  # "trained" | "paraphrase" | "document" | "" (see `training_overlap`)


@dataclass
class VariantTiming:
    seconds: float = 0.0
    answers: int = 0
    tokens: int = 0


@dataclass
class EvalResult:
    """Everything one run produced; ``summary()`` is the table, ``write()`` the downloads."""

    questions: list[QuestionResult]
    config: EvalConfig
    adapter: str | None = None
    set_name: str = ""
    notices: dict[str, str] = field(default_factory=dict)  # variant -> why it did not run
    timings: dict[str, VariantTiming] = field(default_factory=dict)
    overlap_note: str = ""
    started: str = ""
    seconds: float = 0.0
    cancelled: bool = False
    files: list[Path] = field(default_factory=list)  # the downloads, once written
    retrieval: dict = field(default_factory=dict)  # vector against hybrid on these questions (`compare_retrieval`)

    def summary(self) -> list[dict]:
        """One row per variant: accuracy metrics (0..1), recall@k, seconds per answer and tokens/s."""
        rows = []
        for v in self.config.variants:
            answers = [q.answers[v] for q in self.questions if v in q.answers]
            t = self.timings.get(v, VariantTiming())
            rows.append({
                "variant": LABELS[v],
                "answered": len(answers),
                "accuracy": metrics.mean(float(a.correct) for a in answers),
                "accuracy_ci": stats.bootstrap_ci([float(a.correct) for a in answers], seed=self.config.seed).pct(),
                "exact_match": metrics.mean(a.exact for a in answers),
                "token_f1": metrics.mean(a.f1 for a in answers),
                "contains": metrics.mean(a.contains for a in answers),
                f"recall@{self.config.top_k}": metrics.mean(a.recall for a in answers) if v in RETRIEVES else None,
                "answer_in_chunks": metrics.mean(a.in_context for a in answers) if v in RETRIEVES else None,
                "unsupported_sentences": metrics.mean(a.unsupported for a in answers) if v in RETRIEVES else None,
                "s_per_answer": t.seconds / t.answers if t.answers else None,
                "tokens_per_s": t.tokens / t.seconds if t.tokens and t.seconds else None,
                "note": self.notices.get(v, ""),
            })
        return rows

    def to_json(self) -> dict:
        return {
            "set": self.set_name,
            "adapter": self.adapter,
            "started": self.started,
            "seconds": round(self.seconds, 1),
            "cancelled": self.cancelled,
            "config": asdict(self.config),
            "correct_rule": CORRECT_RULE,
            "overlap": self.overlap_note,
            "retrieval": self.retrieval,
            "summary": self.summary(),
            "questions": [
                {
                    **q.item.to_json(),
                    "overlap": q.overlap,
                    "answers": {
                        v: {
                            "text": a.text, "correct": a.correct, "exact_match": a.exact, "token_f1": a.f1,
                            "contains": a.contains, "recall": a.recall, "in_context": a.in_context,
                            "unsupported": a.unsupported,
                            "tokens": a.tokens,
                            "option_scores": a.option_scores,
                            "sources": [{"source": h.source, "chunk": h.chunk, "score": h.score} for h in a.sources],
                        }
                        for v, a in q.answers.items()
                    },
                }
                for q in self.questions
            ],
        }

    def write(self, out_dir: Path) -> list[Path]:
        """``results.json`` (everything), ``summary.csv`` (the table) and ``answers.csv`` (one row per answer)."""
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = [out_dir / "results.json", out_dir / "summary.csv", out_dir / "answers.csv"]
        self.write_json(paths[0])
        self.write_summary_csv(paths[1])
        self.write_answers_csv(paths[2])
        return paths

    def write_json(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False))

    def write_summary_csv(self, path: Path) -> None:
        summary = self.summary()
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(summary[0]))
            w.writeheader()
            w.writerows(summary)

    def write_answers_csv(self, path: Path) -> None:
        with path.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["question", "expected", "source", "chunk", "variant", "answer", "correct", "exact_match",
                        "token_f1", "contains", "recall", "overlap"])
            for q in self.questions:
                for v, a in q.answers.items():
                    w.writerow([q.item.question, q.item.answer, q.item.source, q.item.chunk, LABELS[v], a.text,
                                int(a.correct), a.exact, round(a.f1, 4), a.contains, a.recall, q.overlap])
