"""Retrieval quality, vector against hybrid (vector + BM25, fused: `ragft.keywords`): how often the expected
answer is in the top 3 chunks (``answer_in_chunks@3``, as Evaluate counts it) and the mean reciprocal rank of the
first chunk holding it (MRR over the top 10), on person-written questions about real documents, with 95%
intervals and the exact McNemar test on the questions where the two differ.

Sets: bench/recipe (the documents the recipe was tuned on; nothing of the retrieval was), bench/recipe/check2
(three other documents, 40 questions) and bench/recipe/check3 (three licences as Debian ships them: GPL 3, CC0 1.0,
Artistic 1.0; 26 questions), neither used to tune anything; and "all": the ten documents in one store with the 86
questions, where each question's chunk competes with every other document's. The real MiniLM embedder and Chroma;
no model.

    .venv/bin/python -m bench retrieval_quality     (a minute or two at every size: 86 questions, ~200 chunks)

``--smoke`` is the exception: each set on its smallest document and a few of its questions ("all": those together).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from .report import Figure, report, size

ROOT = Path(__file__).resolve().parent
PARTS = {"recipe": ROOT / "recipe", "check2": ROOT / "recipe" / "check2", "check3": ROOT / "recipe" / "check3"}
SETS = {**{name: [root] for name, root in PARTS.items()}, "all": list(PARTS.values())}
SMOKE_QUESTIONS = 3  # per part, about its smallest document


def _part(root: Path, smoke: bool) -> tuple[list[Path], list[dict]]:
    """A part's documents and questions: all of them, or (smoke) its smallest document and a few of its questions."""
    docs = sorted((root / "docs").iterdir())
    questions = [json.loads(line) for line in (root / "person_questions.jsonl").open()]
    if not smoke:
        return docs, questions
    doc = min(docs, key=lambda f: (f.stat().st_size, f.name))
    return [doc], [q for q in questions if q.get("source") == doc.name][:SMOKE_QUESTIONS]


def main(flags: list[str]) -> list[Figure]:
    from ragft.config import Settings
    from ragft.documents import load_document
    from ragft.evaluate import compare_retrieval
    from ragft.models import load_embedder
    from ragft.questions import QAItem
    from ragft.store import Store, make_client

    settings, embedder = Settings(), load_embedder()
    parts = {root: _part(root, size(flags) == "smoke") for root in PARTS.values()}
    figures, details = [], {}
    for name, roots in SETS.items():
        folder = Path(tempfile.mkdtemp(prefix=f"ragft-bench-rq-{name}-"))
        store = Store(make_client(folder), embedder)
        for f in sorted(f for root in roots for f in parts[root][0]):
            store.add(load_document(f, f.name, settings.chunk_words, settings.chunk_overlap_words, 50_000_000))
        questions = [q for root in roots for q in parts[root][1]]
        r = compare_retrieval([QAItem(q["question"], q["answer"]) for q in questions], store.search, 3)
        details[name] = {"chunks": store.count(), **r}
        print(f"{name}: {len(questions)} questions, {store.count()} chunks: answer in top 3 vector "
              f"{r['vector']['answer_in_top_k']}, hybrid {r['hybrid']['answer_in_top_k']} (only hybrid "
              f"{r['only_hybrid']}, only vector {r['only_vector']}, McNemar p = {r['p']:.2f}); MRR@10 vector "
              f"{r['vector']['mrr']:.3f}, hybrid {r['hybrid']['mrr']:.3f}")
        figures += [
            Figure(f"{name}: answer in top 3, hybrid", r["hybrid"]["share"] * 100, r["vector"]["share"] * 100, "%",
                   "", "vector"),
            Figure(f"{name}: MRR@10, hybrid", r["hybrid"]["mrr"], r["vector"]["mrr"], "", "", "vector"),
        ]
        shutil.rmtree(folder, ignore_errors=True)
    report("retrieval_quality", figures, details)
    return figures
