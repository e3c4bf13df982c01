"""The experiment's report: per-variant scores with 95% intervals, paired tests, the verdict, the cause of every
miss and the costs — and its writers: ``report.json`` (everything), ``summary.csv``, ``answers.csv`` and a
self-contained ``report.html`` (inline SVG chart, no scripts, no network)."""

from __future__ import annotations

import csv
import html
import json
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .. import metrics, stats
from ..chat import LABELS, RETRIEVES
from ..errors import RagftError
from ..results import Answer, EvalResult
from .causes import CAUSES, cause_of_miss
from .plan import Plan, format_duration
from .run import AdapterRun

REPORT_FILE = "report.json"
COST_ORDER = (stats.PLAIN, stats.RAG, stats.FT, stats.RAG_FT)  # simplest first: ties go to the cheaper variant


@dataclass
class Row:
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

    def summary(self, seed: int = 0) -> dict:
        ci = stats.bootstrap_ci([float(c) for c in self.correct()], seed=seed)
        retrieves = self.variant in RETRIEVES
        return {
            "variant": self.label, "adapter": self.adapter or None, "answered": len(self.answers),
            "accuracy": ci.mean, "accuracy_low": ci.low, "accuracy_high": ci.high, "accuracy_ci": ci.pct(),
            "exact_match": metrics.mean(a.exact for a in self.answers),
            "token_f1": metrics.mean(a.f1 for a in self.answers),
            "contains": metrics.mean(a.contains for a in self.answers),
            "answer_in_chunks": metrics.mean(a.in_context for a in self.answers) if retrieves else None,
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
    rows: list[Row]
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

    def summary(self) -> list[dict]:
        return [r.summary(self.config.get("seed", 0)) for r in self.rows]

    def to_json(self) -> dict:
        summary = self.summary()  # the bootstrap once per row
        return {
            "name": self.name, "started": self.started, "seconds": round(self.seconds, 1),
            "cancelled": self.cancelled, "config": self.config, "questions_made": self.question_note,
            "train_questions": self.train_questions, "test_questions": len(self.test),
            "headline": self.headline, "recommendation": self.recommendation, "best_recipe": self.best_recipe,
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
            "causes": {row["variant"]: row["causes"] for row in summary},
            "cause_meanings": CAUSES,
            "costs": {"adapters": self.adapters, "peak_memory_mb": round(self.peak_memory_mb),
                      "s_per_answer": {r.label: r.seconds_per_answer for r in self.rows}},
            "questions": [
                {**item.to_json(), "answers": {
                    r.label: {"text": r.answers[i].text, "correct": r.answers[i].correct,
                              "token_f1": round(r.answers[i].f1, 4), "cause": r.causes[i],
                              "in_context": r.answers[i].in_context,
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
                        "token_f1", "contains", "answer_in_chunks", "recall", "s_per_answer", "tokens_per_s"]
        with (out_dir / "summary.csv").open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=summary_keys + ["causes"])
            w.writeheader()
            for row in data["summary"]:
                w.writerow({**{k: row[k] for k in summary_keys}, "causes": "; ".join(
                    f"{c}: {n}" for c, n in row["causes"].items())})
        with (out_dir / "answers.csv").open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["question", "expected", "source", "chunk", "variant", "answer", "correct", "token_f1",
                        "cause"])
            for q in data["questions"]:
                for label, a in q["answers"].items():
                    w.writerow([q["question"], q["answer"], q.get("source", ""), q.get("chunk", ""), label,
                                a["text"], int(a["correct"]), a["token_f1"], a["cause"]])
        (out_dir / "report.html").write_text(render_html(data))
        return [out_dir / n for n in (REPORT_FILE, "summary.csv", "answers.csv", "report.html")]


# --- building ------------------------------------------------------------------------------------------------------
def _label(variant: str, recipe: str, several: bool) -> str:
    return f"{LABELS[variant]} ({recipe})" if recipe and several else LABELS[variant]


def _timing(result: EvalResult, variant: str) -> tuple[float | None, float | None]:
    t = result.timings.get(variant)
    if not t or not t.answers:
        return None, None
    return t.seconds / t.answers, (t.tokens / t.seconds if t.seconds else None)


def build_report(plan: Plan, runs: list[AdapterRun], base: EvalResult | None, cancelled: bool,
                 seconds: float) -> ExperimentReport:
    """Rows, verdict, causes and costs from the runs. Only questions every scored variant answered are compared
    (all of them, unless the run was cancelled midway)."""
    several = len(runs) > 1
    trained_right: dict[str, dict[str, bool]] = {}  # adapter -> fact -> right on a trained wording
    checks: dict[str, dict] = {}
    for run in runs:
        if run.check:
            answered = [q for q in run.check.questions if "ft" in q.answers]
            trained_right[run.name] = {q.item.fact or q.item.question: q.answers["ft"].correct for q in answered}
            ci = stats.bootstrap_ci([float(q.answers["ft"].correct) for q in answered])
            checks[_label("ft", run.recipe, several)] = {"adapter": run.name, "n": ci.n, "accuracy": ci.mean,
                                                         "accuracy_ci": ci.pct()}

    sources: list[tuple[str, str, str, EvalResult]] = []  # (variant, recipe, adapter, result)
    if base:
        sources += [(v, "", "", base) for v in ("plain", "rag") if v in base.config.variants]
    for run in runs:
        if run.test:
            sources += [(v, run.recipe, run.name, run.test) for v in ("ft", "rag+ft")]
    n = min((sum(1 for q in r.questions if v in q.answers) for v, _, _, r in sources), default=0)
    trained_facts = {it.fact or it.question for it in plan.train}
    rows = []
    for variant, recipe, adapter, result in sources:
        answers = [q.answers[variant] for q in result.questions[:n]]
        causes = []
        for item, answer in zip(plan.test[:n], answers):
            fact = item.fact or item.question
            trained = None if fact not in trained_facts else trained_right.get(adapter, {}).get(fact, False)
            causes.append(cause_of_miss(variant, answer, trained))
        per_answer, tps = _timing(result, variant)
        rows.append(Row(_label(variant, recipe, several), variant, recipe, adapter, answers, causes, per_answer, tps))

    best_recipe, headline, comparisons, recommendation = "", "No questions were scored.", [], ""
    if rows and n:
        by = {(r.variant, r.recipe): r for r in rows}
        recipes = [run.recipe for run in runs if run.test]
        if recipes:
            def strength(recipe):
                both, ft = by[("rag+ft", recipe)], by[("ft", recipe)]
                return (metrics.mean(both.correct()), metrics.mean(ft.correct()),
                        metrics.mean(a.f1 for a in both.answers))
            best_recipe = max(recipes, key=strength)
        scores = {stats.PLAIN: by[("plain", "")].correct(), stats.RAG: by[("rag", "")].correct()} if base else {}
        if best_recipe:
            scores[stats.FT] = by[("ft", best_recipe)].correct()
            scores[stats.RAG_FT] = by[("rag+ft", best_recipe)].correct()
        headline, comparisons = stats.verdict(scores, seed=plan.config.seed)
        recommendation = recommend(scores, plan.config.seed)
        if several and best_recipe:
            recommendation += f" (Fine-tuned here is the {best_recipe} adapter, the stronger of the ones trained.)"
    if cancelled:
        headline = f"Cancelled after {n} questions. " + headline

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return ExperimentReport(
        plan.config.name, _config_json(plan), plan.question_note, plan.test[:n], rows, checks, headline,
        recommendation, best_recipe, comparisons, [run.costs() for run in runs], len(plan.train), seconds, peak,
        cancelled,
    )


def recommend(scores: dict[str, list[bool]], seed: int = 0, alpha: float = 0.05, close: float = 0.05) -> str:
    """Which variant to use: the best one when it is significantly ahead of all others; a simpler one that scores
    within ``close`` of it (it costs less and does as well); else the best, with the advice to ask more questions."""
    present = [v for v in COST_ORDER if v in scores]
    if not present or not scores[present[0]]:
        return ""
    n = len(scores[present[0]])
    mean = {v: sum(scores[v]) / n for v in present}
    best = max(present, key=lambda v: (mean[v], -COST_ORDER.index(v)))
    tied = [v for v in present if v != best and stats.compare(best, scores[best], v, scores[v], seed, alpha).p >= alpha]
    if not tied:
        if len(present) == 1:
            return f"Only {best} was scored."
        return f"Use {best}: it answers the most questions, significantly more than every other variant."
    simpler = [v for v in tied if COST_ORDER.index(v) < COST_ORDER.index(best) and mean[best] - mean[v] <= close + 1e-9]
    if simpler:
        return (f"Use {simpler[0]}: it scores as well as {best} ({100 * mean[simpler[0]]:.0f}% vs "
                f"{100 * mean[best]:.0f}%) and is simpler.")
    return (f"{best} scores highest ({100 * mean[best]:.0f}%), but on {n} questions it is not significantly ahead of "
            f"{', '.join(tied)}: it is the best bet; ask more questions (the thorough preset) to be sure.")


def _config_json(plan: Plan) -> dict:
    c = plan.config
    return {"name": c.name, "preset": c.preset, "split": c.split, "train": list(c.train), "seed": c.seed,
            "top_k": c.top_k, "documents": sorted({h.source for h in plan.chunks}),
            "steps": {r: tc.max_steps for r, tc in plan.train_configs.items()},
            "learning_rate": next(iter(plan.train_configs.values())).learning_rate if plan.train_configs else None,
            "rank": next(iter(plan.train_configs.values())).rank if plan.train_configs else None,
            "max_new_tokens": plan.eval_config.max_new_tokens}


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


# --- text ------------------------------------------------------------------------------------------------------------
def format_text(data: dict) -> str:
    """The report for a terminal: verdict, the score table with intervals, comparisons, causes and costs."""
    head = ["variant", "correct [95% CI]", "exact", "F1", "in chunks", "s/answer"]
    rows = [[r["variant"], r["accuracy_ci"], _pct(r["exact_match"]), _pct(r["token_f1"]),
             _pct(r["answer_in_chunks"]), "n/a" if r["s_per_answer"] is None else f"{r['s_per_answer']:.2f}"]
            for r in data["summary"]]
    widths = [max(len(str(x[i])) for x in [head, *rows]) for i in range(len(head))]
    table = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in [head, *rows]]
    causes = [f"  {label}: " + ", ".join(f"{c} {n}" for c, n in counts.items())
              for label, counts in data["causes"].items() if counts]
    costs = [f"  {a['adapter']}: {a['steps']} steps in {format_duration(a['train_seconds'])}, {a['tokens_seen']} "
             f"tokens, {a['size_bytes'] / 1e6:.1f} MB" for a in data["costs"]["adapters"]]
    checks = [f"  {k} on its trained wordings: {v['accuracy_ci']} of {v['n']} facts"
              for k, v in data["trained_wordings"].items()]
    return "\n".join([
        data["headline"], data["recommendation"], "", *table, "",
        *(c["sentence"] for c in data["comparisons"]), "",
        "why answers were wrong:", *(causes or ["  (none wrong)"]), "", "memorisation:", *checks, "",
        "costs:", *costs, f"  peak memory {data['costs']['peak_memory_mb']} MB",
    ])


# --- HTML --------------------------------------------------------------------------------------------------------------
def chart_svg(summary: list[dict], width: int = 640) -> str:
    """Horizontal bars: accuracy with its 95% interval as a whisker, and token F1 as a thin bar beneath."""
    left, bar, gap = 190, 14, 12
    height = len(summary) * (2 * bar + gap) + 40
    scale = (width - left - 20) / 100
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img' "
             "aria-label='accuracy with 95% intervals, and token F1, per variant' font-family='sans-serif' "
             "font-size='12'>"]
    for t in range(0, 101, 25):
        x = left + t * scale
        parts.append(f"<line x1='{x:.0f}' y1='10' x2='{x:.0f}' y2='{height - 20}' stroke='#ddd'/>"
                     f"<text x='{x:.0f}' y='{height - 6}' text-anchor='middle' fill='#555'>{t}%</text>")
    for i, r in enumerate(summary):
        y = 10 + i * (2 * bar + gap)
        acc = 100 * (r["accuracy"] or 0)
        f1 = 100 * (r["token_f1"] or 0)
        parts.append(f"<text x='{left - 8}' y='{y + bar}' text-anchor='end'>{html.escape(r['variant'])}</text>"
                     f"<rect x='{left}' y='{y}' width='{acc * scale:.1f}' height='{bar}' fill='#4f6bd8'>"
                     f"<title>accuracy {r['accuracy_ci']}</title></rect>"
                     f"<rect x='{left}' y='{y + bar + 2}' width='{f1 * scale:.1f}' height='{bar / 2:.0f}' "
                     f"fill='#2fa37a'><title>token F1 {f1:.0f}%</title></rect>")
        if r["answered"]:
            lo, hi = 100 * r["accuracy_low"], 100 * r["accuracy_high"]
            cy = y + bar / 2
            parts.append(f"<line x1='{left + lo * scale:.1f}' y1='{cy}' x2='{left + hi * scale:.1f}' y2='{cy}' "
                         "stroke='#111' stroke-width='1.5'/>")
    parts.append("</svg>")
    return "".join(parts)


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _table(head: list[str], rows: list[list]) -> str:
    cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def render_html(data: dict) -> str:
    """A self-contained page: verdict, chart, tables, causes, costs and every question's answers."""
    esc = html.escape
    summary = data["summary"]
    scores = _table(
        ["variant", "correct [95% CI]", "exact match", "token F1", "answer in chunks", "recall@k", "s/answer"],
        [[r["variant"], r["accuracy_ci"], _pct(r["exact_match"]), _pct(r["token_f1"]), _pct(r["answer_in_chunks"]),
          _pct(r["recall"]), "n/a" if r["s_per_answer"] is None else f"{r['s_per_answer']:.2f}"] for r in summary])
    comparisons = _table(["comparison", "only the first right", "only the second right", "p (exact McNemar)",
                          "difference [95% CI]"],
                         [[f"{c['a']} vs {c['b']}", c["only_a"], c["only_b"], f"{c['p']:.3g}",
                           f"{100 * c['difference']:+.0f} points [{100 * c['difference_low']:+.0f}, "
                           f"{100 * c['difference_high']:+.0f}]"] for c in data["comparisons"]])
    cause_names = list(data["cause_meanings"])
    causes = _table(["variant", *cause_names], [[label, *(counts.get(c, 0) for c in cause_names)]
                                                for label, counts in data["causes"].items()])
    meanings = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in data["cause_meanings"].items())
    costs = _table(["adapter", "recipe", "steps", "training time", "tokens trained", "adapter size", "final loss"],
                   [[a["adapter"], a["recipe"], a["steps"], format_duration(a["train_seconds"]), a["tokens_seen"],
                     f"{a['size_bytes'] / 1e6:.1f} MB",
                     "n/a" if a["final_loss"] is None else f"{a['final_loss']:.3f}"]
                    for a in data["costs"]["adapters"]])
    checks = _table(["adapter", "right on its trained wordings [95% CI]", "facts"],
                    [[k, v["accuracy_ci"], v["n"]] for k, v in data["trained_wordings"].items()])
    labels = [r["variant"] for r in summary]
    questions = _table(
        ["#", "question", "expected", *labels],
        [[n, q["question"], q["answer"], *(
            ("✓ " if q["answers"][lb]["correct"] else f"✗ [{q['answers'][lb]['cause']}] ") + q["answers"][lb]["text"]
            for lb in labels)] for n, q in enumerate(data["questions"], 1)])
    c = data["config"]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ragft experiment {esc(data['name'])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:0.5em 0 1.5em}}td,th{{border:1px solid #ccc;padding:3px 8px;
vertical-align:top;font-size:13px}}th{{background:#f3f3f3}}.verdict{{font-size:1.25em;background:#eef3ff;
padding:0.7em 1em;border-radius:6px}}</style></head><body>
<h1>RAG, fine-tuning, or both? — {esc(data['name'])}</h1>
<p>{esc(data['started'])} · {len(data['questions'])} test questions, {data['train_questions']} training questions ·
split {esc(c['split'])} · preset {esc(c['preset'])} · documents: {esc(', '.join(c['documents']))} ·
{format_duration(data['seconds'])}{' · <b>cancelled</b>' if data['cancelled'] else ''}</p>
<p class="verdict">{esc(data['headline'])}</p><p><b>{esc(data['recommendation'])}</b></p>
<h2>Scores on the test questions</h2>{chart_svg(summary)}
<p>Blue: correct, with its 95% bootstrap interval (black line). Green: token F1. Correct means
{esc(data['correct_rule'])}.</p>{scores}
<h2>Paired comparisons (same questions)</h2>{comparisons}
<h2>Why answers were wrong</h2>{causes}<ul>{meanings}</ul>
<h2>Memorisation: the adapters on the wordings they were trained on</h2>{checks}
<h2>Costs</h2>{costs}<p>Peak memory of the process: {data['costs']['peak_memory_mb']} MB.</p>
<h2>Every question</h2>{questions}
</body></html>
"""
