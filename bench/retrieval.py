"""Retrieval at 1k, 10k and 100k chunks: query embedding + Chroma search (``Store.search``), p50 and p95 over real
questions, against the same at 1k chunks; hybrid search (vector + BM25, fused: `ragft.keywords`) against vector
search alone, the keyword index's build after a change and the first hybrid search after it (answered by the
index as it was while a slow rebuild runs in the background); and the Documents list (``Store.documents()``, one
record per document) against reading every chunk's metadata, as the list did before the records.

Stored chunks get random unit vectors (vector search time depends on the count and the dimension, not on the
words), 120 words each drawn by frequency from the recipe documents' words (keyword search time depends on them),
and 50 chunks per document; the queries are the person-written questions of bench/recipe, embedded for real.
Targets (Performance issue): search p95 < 50 ms at 100k chunks, hybrid too (Grounded RAG issue); the Documents list
< 100 ms at 100k chunks.

    .venv/bin/python -m bench retrieval [--quick | --smoke]
"""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from .report import Figure, report, size

ROOT = Path(__file__).resolve().parent
CHUNKS_PER_DOC = 50
SIZES = {"full": (1_000, 10_000, 100_000), "quick": (1_000, 10_000), "smoke": (100, 200)}
# per size: questions asked (None: all), timed repeats of each search / embedding, of the Documents list, of the
# old way; smoke: each timed once on a few questions (only the report's format is checked)
REPEATS = {"full": (None, 3, 5, 2), "quick": (None, 3, 5, 2), "smoke": (3, 1, 1, 1)}


def _vocabulary() -> tuple[list[str], list[float]]:
    """The recipe documents' words and how often each occurs (as a share)."""
    from collections import Counter

    from ragft.keywords import WORD

    counts = Counter(w for f in (ROOT / "recipe" / "docs").iterdir() for w in WORD.findall(f.read_text().lower()))
    total = sum(counts.values())
    return list(counts), [c / total for c in counts.values()]


def _fill(store, count: int, start: int, rng, vocabulary) -> None:
    """Add chunks ``start`` .. ``count - 1`` with random unit vectors and words, and their documents' records."""
    import numpy as np

    from ragft.store import DocInfo, chunk_id

    dim = store.embedder.get_embedding_dimension()
    batch = min(5_000, store.client.get_max_batch_size())
    for lo in range(start, count, batch):
        ids = range(lo, min(count, lo + batch))
        vectors = rng.standard_normal((len(ids), dim)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        docs = [i // CHUNKS_PER_DOC for i in ids]
        store.collection.add(
            ids=[chunk_id(f"{d:032x}", i % CHUNKS_PER_DOC) for d, i in zip(docs, ids)],
            embeddings=vectors.tolist(),
            documents=[" ".join(vocabulary[0][j] for j in row)
                       for row in rng.choice(len(vocabulary[0]), (len(ids), 120), p=vocabulary[1])],
            metadatas=[{"source": f"doc-{d:05}.txt", "chunk": i % CHUNKS_PER_DOC, "content_hash": f"{d:032x}",
                        "doc_chars": 60_000, "doc_bytes": 60_000, "added": "2026-11-26 00:00:00"}
                       for d, i in zip(docs, ids)],
        )
    first, last = start // CHUNKS_PER_DOC, -(-count // CHUNKS_PER_DOC)
    store._put_records([DocInfo(f"doc-{d:05}.txt", CHUNKS_PER_DOC, 60_000, 60_000, f"{d:032x}",
                                "2026-11-26 00:00:00") for d in range(first, last)])


def _timed(fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def main(flags: list[str]) -> list[Figure]:
    import numpy as np

    from ragft.models import load_embedder
    from ragft.store import Store, make_client

    mode = size(flags)
    asked, repeats, listings, old_ways = REPEATS[mode]
    questions = [json.loads(line)["question"] for line in (ROOT / "recipe" / "person_questions.jsonl").open()][:asked]
    folder = Path(tempfile.mkdtemp(prefix="ragft-bench-retrieval-"))
    store = Store(make_client(folder), load_embedder())
    rng = np.random.default_rng(0)
    for q in questions[:1 if mode == "smoke" else 3]:
        store.search(q)  # warm-up: first calls load the index and the tokenizer
    p = lambda xs, q: float(np.percentile(xs, q))
    details: dict = {}
    filled = 0
    vocabulary = _vocabulary()
    for n in SIZES[mode]:
        _fill(store, n, filled, rng, vocabulary)
        filled = n
        store.search(questions[0])  # the index after the additions
        first = _timed(lambda: store.search(questions[1], 3, "hybrid"), 1)  # the first search after the change
        if (rebuild := store._keywords.building) is not None:  # a slow rebuild runs in the background: let it end
            rebuild.join()
        search = [t for q in questions for t in _timed(lambda q=q: store.search(q, 3), repeats)]
        hybrid = [t for q in questions for t in _timed(lambda q=q: store.search(q, 3, "hybrid"), repeats)]
        embed = [t for q in questions for t in _timed(lambda q=q: store.embed([q]), repeats)]
        listing = _timed(store.documents, listings)
        old_way = _timed(store.chunk_metadata, old_ways)  # paged: in one read, 100k chunks fail (too many SQL vars)
        details[n] = {"search_p50_ms": p(search, 50), "search_p95_ms": p(search, 95), "embed_p50_ms": p(embed, 50),
                      "hybrid_p50_ms": p(hybrid, 50), "hybrid_p95_ms": p(hybrid, 95),
                      "keyword_build_ms": store._keywords.build_s * 1000, "first_hybrid_after_change_ms": first[0],
                      "documents_ms": statistics.median(listing), "all_chunk_metadata_ms": statistics.median(old_way),
                      "documents": len(store.documents())}
    small, big = min(details), max(details)
    d, s = details[big], details[small]
    figures = [
        Figure(f"search p50 at {big:,} chunks", d["search_p50_ms"], s["search_p50_ms"], "ms", "",
               f"p50 at {small:,}"),
        Figure(f"search p95 at {big:,} chunks", d["search_p95_ms"], s["search_p95_ms"], "ms", "",
               f"p95 at {small:,}", "<= 50"),
        Figure(f"query embedding share of p50 at {big:,}", d["embed_p50_ms"], d["search_p50_ms"], "ms", "",
               "search p50"),
        Figure(f"hybrid search p95 at {big:,} chunks", d["hybrid_p95_ms"], d["search_p95_ms"], "ms", "",
               "vector p95", "<= 50"),
        Figure(f"keyword index build at {big:,} chunks", d["keyword_build_ms"], d["search_p50_ms"], "ms", "",
               "one vector search"),
        # one search, no target: it reads the documents' records (how the change is seen) while the rebuild starts
        Figure(f"first hybrid search after a change at {big:,}", d["first_hybrid_after_change_ms"],
               d["search_p95_ms"], "ms", "", "vector p95"),
        Figure(f"Documents list at {big:,} chunks", d["documents_ms"], d["all_chunk_metadata_ms"], "ms", "",
               "every chunk's metadata", "<= 100"),
    ]
    report("retrieval", figures, {str(k): v for k, v in details.items()})
    shutil.rmtree(folder, ignore_errors=True)
    return figures
