"""Retrieval quality, vector against hybrid (vector + BM25, fused: `ragft.keywords`): how often the expected
answer is in the top 3 chunks (``answer_in_chunks@3``, as Evaluate counts it) and the mean reciprocal rank of the
first chunk holding it (MRR over the top 10), on person-written questions about real documents, with 95%
intervals and the exact McNemar test on the questions where the two differ.

Two sets: bench/recipe (the documents the recipe was tuned on; nothing of the retrieval was) and bench/recipe/check2
(three other documents, 40 questions, never used to tune anything). The real MiniLM embedder and Chroma; no model.

    .venv/bin/python -m bench retrieval_quality     (a minute at every size: 60 questions, ~70 chunks)
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from .report import Figure, report

ROOT = Path(__file__).resolve().parent
SETS = {"recipe": ROOT / "recipe", "check2": ROOT / "recipe" / "check2"}
MODES = ("vector", "hybrid")


def _ranks(store, questions: list[dict], mode: str, depth: int = 10) -> list[int | None]:
    """For each question, the rank (from 1) of the first of the top ``depth`` chunks holding its answer."""
    from ragft.metrics import contains

    ranks = []
    for q in questions:
        hits = store.search(q["question"], depth, mode)
        ranks.append(next((r for r, h in enumerate(hits, start=1) if contains(h.text, q["answer"])), None))
    return ranks


def main(flags: list[str]) -> list[Figure]:
    from ragft.config import Settings
    from ragft.documents import load_document
    from ragft.models import load_embedder
    from ragft.stats import bootstrap_ci, mcnemar_exact
    from ragft.store import Store, make_client

    settings, embedder = Settings(), load_embedder()
    figures, details = [], {}
    for name, root in SETS.items():
        folder = Path(tempfile.mkdtemp(prefix=f"ragft-bench-rq-{name}-"))
        store = Store(make_client(folder), embedder)
        for f in sorted((root / "docs").iterdir()):
            store.add(load_document(f, f.name, settings.chunk_words, settings.chunk_overlap_words, 50_000_000))
        questions = [json.loads(line) for line in (root / "person_questions.jsonl").open()]
        ranks = {m: _ranks(store, questions, m) for m in MODES}
        top3 = {m: [r is not None and r <= 3 for r in ranks[m]] for m in MODES}
        mrr = {m: sum(1 / r for r in ranks[m] if r) / len(questions) for m in MODES}
        only_hybrid, only_vector, p = mcnemar_exact(top3["hybrid"], top3["vector"])
        ci = {m: bootstrap_ci(top3[m]) for m in MODES}
        details[name] = {"questions": len(questions), "chunks": store.count(),
                         **{f"{m}_top3": ci[m].pct() for m in MODES}, **{f"{m}_mrr": round(mrr[m], 3) for m in MODES},
                         "only_hybrid": only_hybrid, "only_vector": only_vector, "mcnemar_p": round(p, 3)}
        print(f"{name}: {len(questions)} questions, {store.count()} chunks: answer in top 3 vector "
              f"{ci['vector'].pct()}, hybrid {ci['hybrid'].pct()} (only hybrid {only_hybrid}, only vector "
              f"{only_vector}, McNemar p = {p:.2f}); MRR@10 vector {mrr['vector']:.3f}, hybrid {mrr['hybrid']:.3f}")
        figures += [
            Figure(f"{name}: answer in top 3, hybrid", ci["hybrid"].mean * 100, ci["vector"].mean * 100, "%", "",
                   "vector"),
            Figure(f"{name}: MRR@10, hybrid", mrr["hybrid"], mrr["vector"], "", "", "vector"),
        ]
        shutil.rmtree(folder, ignore_errors=True)
    report("retrieval_quality", figures, details)
    return figures
