"""The experiment's report: per-variant scores with 95% intervals, paired tests, the verdict, the cause of every
miss and the costs — its writers (``report.json`` with everything, ``summary.csv``, ``answers.csv`` and a
self-contained ``report.html``: inline SVG chart, no scripts, no network) and its readers. `verdict` builds it."""

from __future__ import annotations

import csv
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .. import metrics, stats
from ..adapters import RunRecord, folder_bytes, read_run
from ..errors import RagftError
from ..results import Answer, EvalResult
from ..variants import RETRIEVES
from .causes import CAUSES
from .pages import render_html

REPORT_FILE = "report.json"
# the parts of an experiment's test: other wordings of trained facts, facts no adapter trained on, the user's own
PARTS = ("trained_facts", "heldout_facts", "your_questions")


@dataclass
class AdapterRun:
    """One adapter the experiment trained, its scores on the test part and its re-check on trained wordings."""

    recipe: str
    name: str
    path: Path
    test: EvalResult | None = None
    check: EvalResult | None = None
    general: EvalResult | None = None  # the forgetting check (`questions.general`); the first run asks plain too

    def costs(self) -> dict:
        run = read_run(self.path) or RunRecord()
        return {
            "adapter": self.name, "recipe": self.recipe, "status": run.status, "steps": run.steps,
            "train_seconds": run.seconds, "tokens_seen": run.tokens_seen, "trained_tokens": run.trained_tokens,
            "examples": run.data.get("examples", 0), "final_loss": run.final_loss,
            "size_bytes": folder_bytes(self.path) if self.path.is_dir() else 0,
        }



@dataclass
class VariantRow:
    """One variant on the test part: ``variant`` is plain/rag/ft/rag+ft, ``recipe`` the adapter's ("" for base)."""

    label: str
    variant: str
    recipe: str
    adapter: str
    answers: list[Answer]
    causes: list[str]
    seconds_per_answer: float | None = None
    tokens_per_s: float | None = None

    def correct(self) -> list[bool]:
        return [a.correct for a in self.answers]

    def summary(self, seed: int = 0, weights: list[float] | None = None, parts: list[str] | None = None) -> dict:
        """The row's scores; ``weights`` weigh its questions (accuracy for the documents as a whole), ``parts``
        names each question's part of the test (`PARTS`), scored apart too."""
        ci = stats.bootstrap_ci([float(c) for c in self.correct()], seed=seed, weights=weights)
        retrieves = self.variant in RETRIEVES
        by_part = {}
        if parts is not None:
            for part in PARTS:
                picked = [float(a.correct) for a, p in zip(self.answers, parts) if p == part]
                by_part[part] = stats.bootstrap_ci(picked, seed=seed).pct() if picked else None
        return {
            "variant": self.label, "adapter": self.adapter or None, "answered": len(self.answers),
            "accuracy": ci.mean, "accuracy_low": ci.low, "accuracy_high": ci.high, "accuracy_ci": ci.pct(),
            **by_part,
            "exact_match": metrics.mean(a.exact for a in self.answers),
            "token_f1": metrics.mean(a.f1 for a in self.answers),
            "contains": metrics.mean(a.contains for a in self.answers),
            "answer_in_chunks": metrics.mean(a.in_context for a in self.answers) if retrieves else None,
            "unsupported_sentences": metrics.mean(a.unsupported for a in self.answers) if retrieves else None,
            "recall": metrics.mean(a.recall for a in self.answers) if retrieves else None,
            "s_per_answer": self.seconds_per_answer, "tokens_per_s": self.tokens_per_s,
            "causes": dict(Counter(c for c in self.causes if c)),
        }


@dataclass
class ExperimentReport:
    """Everything one experiment found; ``to_json`` is the whole record, ``write`` the downloads."""

    name: str
    config: dict
    question_note: str
    test: list  # QAItem, the test part
    rows: list[VariantRow]
    checks: dict[str, dict]  # adapter label -> {"accuracy": Interval-ish, "n": ..} on trained wordings
    headline: str
    recommendation: str
    best_recipe: str
    comparisons: list[stats.Comparison]
    adapters: list[dict]
    train_questions: int
    seconds: float
    peak_memory_mb: float
    cancelled: bool = False
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M:%S"))
    folder: Path | None = None
    coverage: dict = field(default_factory=dict)  # facts in the documents, trained, and the test's parts
    weights: list[float] | None = None  # per test question: its part's share of the documents over its size
    support: str = ""  # with the user's own questions in the headline: the verdict on the documents as a whole
    learned: dict = field(default_factory=dict)  # adapter label -> facts learned and the forgetting check

    @property
    def parts(self) -> list[str] | None:
        """Per test question, its part (`PARTS`)."""
        return self.coverage.get("parts")

    def summary(self) -> list[dict]:
        return [r.summary(self.config.get("seed", 0), self.weights, self.parts) for r in self.rows]

    def to_json(self) -> dict:
        summary = self.summary()  # the bootstrap once per row
        return {
            "name": self.name, "started": self.started, "seconds": round(self.seconds, 1),
            "cancelled": self.cancelled, "config": self.config, "questions_made": self.question_note,
            "train_questions": self.train_questions, "test_questions": len(self.test),
            "headline": self.headline, "recommendation": self.recommendation, "best_recipe": self.best_recipe,
            "support": self.support,
            "coverage": {k: v for k, v in self.coverage.items() if k != "parts"},
            "correct_rule": f"the expected answer appears in the reply, which has at most {metrics.EXTRA_WORDS} "
                            "words that are neither in the question nor in the expected answer (after normalisation)",
            "summary": summary,
            "comparisons": [
                {"a": c.a, "b": c.b, "a_accuracy": c.a_ci.pct(), "b_accuracy": c.b_ci.pct(), "only_a": c.only_a,
                 "only_b": c.only_b, "p": c.p, "difference": c.diff, "difference_low": c.diff_low,
                 "difference_high": c.diff_high, "winner": c.winner, "sentence": c.sentence()}
                for c in self.comparisons
            ],
            "trained_wordings": self.checks,
            "learned": self.learned,
            "causes": {row["variant"]: row["causes"] for row in summary},
            "cause_meanings": CAUSES,
            "costs": {"adapters": self.adapters, "peak_memory_mb": round(self.peak_memory_mb),
                      "s_per_answer": {r.label: r.seconds_per_answer for r in self.rows}},
            "questions": [
                {**item.to_json(), "answers": {
                    r.label: {"text": r.answers[i].text, "correct": r.answers[i].correct,
                              "token_f1": round(r.answers[i].f1, 4), "cause": r.causes[i],
                              "in_context": r.answers[i].in_context,
                              "unsupported": r.answers[i].unsupported,
                              "sources": [{"source": h.source, "chunk": h.chunk, "score": h.score}
                                          for h in r.answers[i].sources]}
                    for r in self.rows}}
                for i, item in enumerate(self.test)
            ],
        }

    def write(self, out_dir: Path) -> list[Path]:
        """``report.json``, ``summary.csv``, ``answers.csv`` and ``report.html`` under ``out_dir``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        self.folder = out_dir
        data = self.to_json()
        (out_dir / REPORT_FILE).write_text(json.dumps(data, indent=2, ensure_ascii=False))
        summary_keys = ["variant", "adapter", "answered", "accuracy", "accuracy_low", "accuracy_high", "exact_match",
                        "token_f1", "contains", "answer_in_chunks", "unsupported_sentences", "recall", "s_per_answer",
                        "tokens_per_s"]
        with (out_dir / "summary.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=summary_keys + ["causes"])
            w.writeheader()
            for row in data["summary"]:
                w.writerow({**{k: row[k] for k in summary_keys}, "causes": "; ".join(
                    f"{c}: {n}" for c, n in row["causes"].items())})
        with (out_dir / "answers.csv").open("w", newline="") as f:
            out = csv.writer(f)
            out.writerow(["question", "expected", "source", "chunk", "variant", "answer", "correct", "token_f1",
                          "cause"])
            for q in data["questions"]:
                for label, a in q["answers"].items():
                    out.writerow([q["question"], q["answer"], q.get("source", ""), q.get("chunk", ""), label,
                                  a["text"], int(a["correct"]), a["token_f1"], a["cause"]])
        (out_dir / "report.html").write_text(render_html(data))
        return [out_dir / n for n in (REPORT_FILE, "summary.csv", "answers.csv", "report.html")]


# --- reading saved reports ---------------------------------------------------------------------------------------------
def list_reports(experiments_dir: Path) -> list[dict]:
    """Saved experiments, newest first: ``{"folder", "name", "started", "headline"}``."""
    if not experiments_dir.is_dir():
        return []
    out = []
    for d in sorted(experiments_dir.iterdir(), reverse=True):
        try:
            data = json.loads((d / REPORT_FILE).read_text())
        except (OSError, ValueError):
            continue
        out.append({"folder": d.name, "name": data.get("name", ""), "started": data.get("started", ""),
                    "headline": data.get("headline", "")})
    return out


class NoReportError(RagftError, FileNotFoundError):
    """No saved report of that name."""


def load_report(experiments_dir: Path, folder: str) -> dict:
    """The saved ``report.json`` of one experiment folder (by name, never a path outside the experiments dir)."""
    path = experiments_dir / Path(folder).name / REPORT_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        raise NoReportError(f"no experiment report named {folder!r}") from None
