"""Does the Experiment's recommendation hold on questions a person wrote? One command, rerunnable:

    .venv/bin/python -m bench.recipe_check bench/recipe/check2            # the check set never tuned on
    .venv/bin/python -m bench.recipe_check bench/recipe --preset thorough  # the developers' set

A fresh data dir; the folder's ``docs/`` ingested; an experiment with the preset, exactly as a user runs it (its
own generated questions); then every variant, with each adapter the experiment trained, on the folder's
``person_questions.jsonl``. Prints each variant's share right on the person-written questions with its 95%
interval, the variant the experiment recommended, the best one on the person-written questions, and whether they
agree within noise (exact McNemar, p >= 0.05); writes ``bench/results/recipe-<folder>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import ragft  # noqa: F401  (sets torch's OpenMP waiting before torch loads)

ROOT = Path(__file__).resolve().parents[1]


def recommended(report) -> str:
    """The variant label the report recommends ("Use RAG: ..." or "RAG scores highest ...")."""
    from ragft import stats

    text = report.recommendation
    for label in sorted(stats.ORDER, key=len, reverse=True):  # "RAG + Fine-tuned" before "RAG"
        if text.startswith(f"Use {label}") or text.startswith(f"{label} scores highest"):
            return label
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.recipe_check", description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="a folder with docs/ and person_questions.jsonl")
    parser.add_argument("--preset", default="quick")
    args = parser.parse_args(argv)
    os.environ.setdefault("RAGFT_DATA_DIR", tempfile.mkdtemp(prefix="ragft-recipe-"))

    from ragft import stats
    from ragft.engine import Engine
    from ragft.evaluate import EvalConfig
    from ragft.experiment import ExperimentConfig
    from ragft.questions import load_set
    from ragft.variants import LABELS

    engine = Engine()
    docs = sorted((args.folder / "docs").iterdir())
    reports = engine.ingest([(p, p.name) for p in docs])
    assert all(r.ok for r in reports), [r.message for r in reports]
    started = time.time()
    plan = engine.plan_experiment(ExperimentConfig(name="user", preset=args.preset))
    print(plan.describe(), flush=True)
    state = engine.start_experiment(plan)
    while state.active:
        engine.jobs.wait(5.0)
    report = state.result
    experiment_s = time.time() - started
    print(f"experiment: {report.headline}\n  {report.recommendation}\n  ({experiment_s / 60:.1f} min)", flush=True)

    items = load_set(args.folder / "person_questions.jsonl")
    scores: dict[str, list[bool]] = {}  # "RAG", "Fine-tuned (qa)", ...
    for i, adapter in enumerate(a["adapter"] for a in report.adapters):
        recipe = adapter.rsplit("-", 2)[-2]
        variants = ("plain", "rag", "ft", "rag+ft") if i == 0 else ("ft", "rag+ft")
        result = None
        for progress in engine.evaluate(items, adapter, EvalConfig(variants=variants, top_k=engine.settings.top_k),
                                        "person"):
            result = progress.result
        for v in variants:
            label = LABELS[v] if v in ("plain", "rag") else f"{LABELS[v]} ({recipe})"
            scores[label] = [q.answers[v].correct for q in result.questions]

    best = max(scores, key=lambda k: (sum(scores[k]), -len(k)))
    said = recommended(report)
    fine = f"{stats.FT} ({report.best_recipe})"
    said_row = {stats.FT: fine, stats.RAG_FT: f"{stats.RAG_FT} ({report.best_recipe})"}.get(said, said)
    agree = said_row == best or (said_row in scores and
                                 stats.compare(best, scores[best], said_row, scores[said_row]).p >= 0.05)
    rows = {k: stats.bootstrap_ci([float(x) for x in v]).pct() for k, v in scores.items()}
    n = len(items)
    print(f"\non {n} person-written questions:")
    for k, ci in rows.items():
        print(f"  {k:32s} {ci}")
    print(f"the experiment recommends {said or '(nothing)'} -> {said_row}; best on the person-written questions: "
          f"{best}; {'agree' if agree else 'DISAGREE'} within noise")
    out = Path(os.environ.get("RAGFT_BENCH_RESULTS", ROOT / "bench" / "results"))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"recipe-{args.folder.name}.json").write_text(json.dumps({
        "folder": str(args.folder), "preset": args.preset, "plan": plan.describe(),
        "experiment": {"headline": report.headline, "recommendation": report.recommendation,
                       "coverage": {k: v for k, v in report.coverage.items() if k != "parts"},
                       "learned": {k: v["sentence"] for k, v in report.learned.items()},
                       "minutes": round(experiment_s / 60, 1), "estimated_minutes": round(plan.seconds / 60, 1),
                       "scores": {r["variant"]: r["accuracy_ci"] for r in report.summary()}},
        "person_questions": n, "scores": rows, "best": best, "recommended": said_row, "agree": agree,
    }, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
