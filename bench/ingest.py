"""Ingest speed: chunks/s of ``Engine.ingest`` (read, chunk, embed, store in Chroma) against the encoder alone
(``SentenceTransformer.encode``) on the same chunk texts, on at least 2,000 chunks. Target: >= 0.8.

The documents are bench/recipe's four, each written out many times with a number in every sentence changed, so no
two are the same document (the store skips duplicates).

    .venv/bin/python -m bench ingest [--quick | --smoke]
"""

from __future__ import annotations

import re
import shutil
import tempfile
import time
from pathlib import Path

from .report import Figure, report, size

ROOT = Path(__file__).resolve().parent
COPIES = {"full": 60, "quick": 30, "smoke": 1}  # x4 documents; full gives over 2,000 chunks
# smoke: one copy of two documents, each written once (a dozen chunks: only the report's format is checked)
DOCS = {"full": None, "quick": None, "smoke": 2}
TIMES = {"full": 4, "quick": 4, "smoke": 1}


def _write_corpus(folder: Path, copies: int, docs: int | None = None, times: int = 4) -> list[Path]:
    texts = [p.read_text() for p in sorted((ROOT / "recipe" / "docs").iterdir())][:docs]
    paths = []
    for c in range(copies):
        for i, text in enumerate(texts):
            path = folder / f"copy{c:03}-{i}.md"
            body = re.sub(r"\d+", lambda m, c=c: str(int(m.group()) + c), text)  # every copy its own content
            path.write_text("\n\n".join([body] * times))  # longer documents: more chunks per file, as real ones
            paths.append(path)
    return paths


def main(flags: list[str]) -> list[Figure]:
    from ragft.config import Settings
    from ragft.documents import load_document
    from ragft.engine import Engine

    folder = Path(tempfile.mkdtemp(prefix="ragft-bench-ingest-"))
    (folder / "files").mkdir()
    mode = size(flags)
    paths = _write_corpus(folder / "files", COPIES[mode], DOCS[mode], TIMES[mode])
    engine = Engine(Settings.from_env({"RAGFT_DATA_DIR": str(folder / "data")}))
    s = engine.settings
    texts = [c for p in paths for c in load_document(p, p.name, s.chunk_words, s.chunk_overlap_words).chunks]
    engine.embedder.encode(texts[:64 if mode != "smoke" else 1])  # warm-up for both
    t0 = time.perf_counter()
    engine.embedder.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
    encode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    reports = engine.ingest([(p, p.name) for p in paths])
    ingest_s = time.perf_counter() - t0
    stored = sum(r.chunks for r in reports if r.ok)
    assert stored == len(texts) == engine.store.count(), (stored, len(texts), engine.store.count())
    figures = [Figure(f"ingest chunks/s ({len(texts):,} chunks)", round(len(texts) / ingest_s, 1),
                      round(len(texts) / encode_s, 1), "ch/s", ">= 0.8", "encoder alone")]
    report("ingest", figures, {"chunks": len(texts), "files": len(paths), "ingest_s": round(ingest_s, 2),
                               "encode_s": round(encode_s, 2)})
    shutil.rmtree(folder, ignore_errors=True)
    return figures
