"""The Chroma collection of chunks: add (idempotent), list, inspect, delete, search.

Chunk ids derive from a hash of the document's text, so the same file twice changes nothing; a changed file with
the same name gets its new chunks first and only then loses its old ones, so a failure never leaves it half-gone.

Beside the chunks, a second collection (``<name>__docs``) keeps one record per document, so listing the documents
reads one record each instead of every chunk's metadata (100k chunks: see bench/retrieval.py). Before a
document's chunks are written its record is marked with their hash, and the complete record replaces the mark
after them; a process killed in between leaves the mark, and the next open undoes that half-done ingest
(`Store.recover`). A store from before the records gets them on first listing.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .config import RETRIEVAL
from .documents import Document
from .keywords import POOL, KeywordIndex, fuse

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

KEY_TTL_S = 5.0  # another process's upload shows in keyword search within this long

@dataclass(frozen=True)
class DocInfo:
    name: str
    chunks: int
    chars: int
    size_bytes: int
    content_hash: str
    added: str


@dataclass(frozen=True)
class Hit:
    """One retrieved chunk; ``score`` is the cosine similarity (1 = same direction)."""

    source: str
    chunk: int
    score: float
    text: str
    id: str = ""


AddStatus = Literal["added", "replaced", "unchanged", "duplicate"]


@dataclass(frozen=True)
class AddResult:
    name: str
    status: AddStatus
    chunks: int
    detail: str = ""


EMBED_BATCH = 256  # chunks per encoder call and per Chroma upsert


def chunk_id(content_hash: str, index: int) -> str:
    return f"{content_hash[:32]}-{index}"


def record_id(name: str) -> str:
    """The id of a document's record: its name, hashed (names may hold any character)."""
    return hashlib.sha256(name.encode()).hexdigest()[:32]


def make_client(chroma_dir: Path, host: str = "", port: int = 8000) -> ClientAPI:
    """A persistent on-disk client, or an HTTP client for a Chroma server when ``host`` is set."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False)
    if host:
        return chromadb.HttpClient(host=host, port=port, settings=chroma_settings)
    chroma_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(chroma_dir), settings=chroma_settings)


class Store:
    """Chunks of documents in one Chroma collection, embedded by ``embedder`` (anything with ``encode``).

    Example:
        >>> store = Store(make_client(Path("/tmp/ragft-doc")), embedder)          # doctest: +SKIP
        >>> store.add(load_document(Path("notes.txt"))).status                      # doctest: +SKIP
        'added'
    """

    def __init__(self, client, embedder, collection: str = "documents", retrieval: str = "vector", reranker=None):
        if retrieval not in RETRIEVAL:
            raise ValueError(f"retrieval must be one of {', '.join(RETRIEVAL)}, not {retrieval!r}")
        self.client = client
        self.embedder = embedder
        self.retrieval = retrieval  # how `search` ranks chunks by default (`RAGFT_RETRIEVAL`)
        self.reranker = reranker  # a cross-encoder (``predict`` on (query, text) pairs) that orders the candidates
        self._keywords = KeywordIndex()
        self._writes = 0  # this object's writes: the keyword index follows them at once
        self._key: tuple = (-1, 0.0, None)  # (writes, when, contents key) last read from Chroma
        # We pass embeddings ourselves (embedding_function=None) so the store and the retriever share one model.
        self.collection = client.get_or_create_collection(
            collection, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
        )
        # One record per document; Chroma wants a vector with each, so each gets the same one-number vector.
        self.records = client.get_or_create_collection(f"{collection}__docs", embedding_function=None)
        self.recovered = self.recover()  # ingests a killed process left half-done, undone

    def embed(self, texts: list[str]) -> list[list[float]]:
        vectors = self.embedder.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        return vectors.tolist()

    def _ids_of(self, name: str) -> list[str]:
        return self.collection.get(where={"source": name}, include=[])["ids"]

    def add(self, doc: Document, progress=None) -> AddResult:
        """Store ``doc``'s chunks. ``progress(done, total)`` is called as batches are embedded."""
        return self.add_many([doc], progress)[0]

    def add_many(self, docs: list[Document], progress=None) -> list[AddResult]:
        """Store several documents (distinct names), each whole or not at all, with each step done once for all of
        them: one embed call and one Chroma write per ``EMBED_BATCH`` chunks, one write for their records. Chroma
        commits every write (~10 ms here), so 2,000 one-line notes stored one by one took 100 s. When a write fails
        none of them is kept and the error is raised. ``progress(done, total)`` counts their chunks."""
        try:
            return self._add_many(docs, progress)
        finally:
            self._writes += 1

    def _add_many(self, docs: list[Document], progress=None) -> list[AddResult]:
        names = [d.name for d in docs]
        if len(set(names)) != len(names):
            raise ValueError("add_many takes documents of distinct names")
        new = {d.name: [chunk_id(d.content_hash, i) for i in range(len(d.chunks))] for d in docs}
        old = self._ids_by_source(names)
        owner = self._sources_of([ids[0] for ids in new.values() if ids])
        results: dict[str, AddResult] = {}
        todo: list[Document] = []
        hashes: dict[str, str] = {}  # content hash -> name, among ``docs`` being stored
        for doc in docs:
            ids = new[doc.name]
            stored_as = owner.get(ids[0]) if ids else None  # this document's first chunk id, if stored
            other = (stored_as if stored_as != doc.name else None) or hashes.get(doc.content_hash)
            if old.get(doc.name) and set(old[doc.name]) == set(ids):
                results[doc.name] = AddResult(doc.name, "unchanged", len(ids), "already stored with the same content")
            elif other:
                results[doc.name] = AddResult(doc.name, "duplicate", 0, f"same content is already stored as {other}")
            else:
                hashes[doc.content_hash] = doc.name
                todo.append(doc)
                results[doc.name] = AddResult(doc.name, "replaced" if old.get(doc.name) else "added", len(ids))
        if todo:
            added = time.strftime("%Y-%m-%d %H:%M:%S")
            self._mark_pending(todo)
            try:
                self._write_chunks(todo, new, added, progress)
            except BaseException:  # an embedding or Chroma error: undo these documents' halves, keep what was there
                got = self.records.get(ids=[record_id(d.name) for d in todo], include=["metadatas"])
                for rid, meta in zip(got["ids"], got["metadatas"]):
                    self._undo(rid, meta)
                raise
            stale = sorted({i for d in todo for i in set(old.get(d.name, ())) - set(new[d.name])})
            if stale:
                self.collection.delete(ids=stale)
            self._put_records([DocInfo(d.name, len(d.chunks), d.chars, d.size_bytes, d.content_hash, added)
                               for d in todo])
        return [results[name] for name in names]

    def _ids_by_source(self, names: list[str]) -> dict[str, list[str]]:
        got = self.collection.get(where={"source": {"$in": names}}, include=["metadatas"])
        ids: dict[str, list[str]] = {}
        for i, meta in zip(got["ids"], got["metadatas"]):
            ids.setdefault(meta["source"], []).append(i)
        return ids

    def _sources_of(self, ids: list[str]) -> dict[str, str]:
        """The stored document each of ``ids`` belongs to (ids not stored are left out)."""
        if not ids:
            return {}
        got = self.collection.get(ids=list(dict.fromkeys(ids)), include=["metadatas"])
        return {i: meta["source"] for i, meta in zip(got["ids"], got["metadatas"])}

    def _write_chunks(self, docs: list[Document], new: dict[str, list[str]], added: str, progress) -> None:
        # Embedding takes the time: hand the encoder many chunks per call (it sorts them by length, so its batches
        # carry little padding); progress is reported per call.
        rows = [(i, text, {"source": d.name, "chunk": n, "content_hash": d.content_hash, "doc_chars": d.chars,
                           "doc_bytes": d.size_bytes, "added": added})
                for d in docs for n, (i, text) in enumerate(zip(new[d.name], d.chunks))]
        batch = EMBED_BATCH
        for start in range(0, len(rows), batch):
            ids, texts, metas = zip(*rows[start:start + batch])
            self.collection.upsert(ids=list(ids), documents=list(texts), embeddings=self.embed(list(texts)),
                                   metadatas=list(metas))
            if progress:
                progress(min(start + batch, len(rows)), len(rows))

    def _put_records(self, infos: list[DocInfo]) -> None:
        """Complete records (their pending mark cleared: the document's chunks are all in)."""
        for start in range(0, len(infos), 1000):
            part = infos[start:start + 1000]
            self.records.upsert(ids=[record_id(d.name) for d in part], embeddings=[[1.0]] * len(part),
                                metadatas=[asdict(d) | {"pending_hash": "", "complete": True} for d in part])

    def _mark_pending(self, docs: list[Document]) -> None:
        """Before any chunk of ``docs`` is written: note each one's hash on its record, so a process killed mid-way
        leaves a trace `recover` can undo. A first version gets an incomplete record (never listed); a replaced one
        keeps its listed record, marked."""
        rids = [record_id(d.name) for d in docs]
        got = self.records.get(ids=rids, include=["metadatas"])
        stored = dict(zip(got["ids"], got["metadatas"]))
        fresh = lambda d: asdict(DocInfo(d.name, 0, 0, 0, "", "")) | {"complete": False}
        self.records.upsert(ids=rids, embeddings=[[1.0]] * len(docs),
                            metadatas=[(stored.get(rid) or fresh(d)) | {"pending_hash": d.content_hash}
                                       for rid, d in zip(rids, docs)])

    def recover(self) -> list[str]:
        """Undo ingests a killed process left half-done: their chunks go, the version before stays listed (a first
        version is not listed at all). Returns the names, so the user can be told to upload them again. Runs when
        the store opens; reads one record per document."""
        got = self.records.get(include=["metadatas"])
        pending = [(rid, meta) for rid, meta in zip(got["ids"], got["metadatas"]) if meta.get("pending_hash")]
        for rid, meta in pending:
            self._undo(rid, meta)
        return [meta["name"] for _, meta in pending]

    def _undo(self, rid: str, meta: dict) -> None:
        if meta["pending_hash"] != meta.get("content_hash"):
            self.collection.delete(where={"$and": [{"source": meta["name"]}, {"content_hash": meta["pending_hash"]}]})
        if meta.get("complete", True):
            self.records.upsert(ids=[rid], embeddings=[[1.0]], metadatas=[meta | {"pending_hash": ""}])
        else:
            self.records.delete(ids=[rid])

    def documents(self) -> list[DocInfo]:
        """Every stored document, by name (case-insensitive), from the per-document records."""
        metas = self.records.get(include=["metadatas"])["metadatas"]
        if not metas and self.collection.count():  # a store from before the records: build them once
            return self._rebuild_records()
        infos = [DocInfo(**{f: m[f] for f in DocInfo.__dataclass_fields__}) for m in metas if m.get("complete", True)]
        return sorted(infos, key=lambda d: d.name.lower())

    def _read_all(self, field: str, page: int = 5000) -> tuple[list[str], list]:
        """Every chunk's id and ``field`` ("metadatas", "documents"), read a page at a time (one read of 100k chunks
        fails: too many SQL variables)."""
        ids: list[str] = []
        values: list = []
        while (got := self.collection.get(include=[field], limit=page, offset=len(ids)))["ids"]:
            ids += got["ids"]
            values += got[field]
        return ids, values

    def chunk_metadata(self) -> list[dict]:
        """Every chunk's metadata."""
        return self._read_all("metadatas")[1]

    def _rebuild_records(self) -> list[DocInfo]:
        metas = self.chunk_metadata()
        counts = Counter(m["source"] for m in metas)
        first = {m["source"]: m for m in metas}  # every chunk of a document carries the same document fields
        infos = [DocInfo(name, counts[name], m["doc_chars"], m["doc_bytes"], m["content_hash"], m["added"])
                 for name, m in sorted(first.items(), key=lambda item: item[0].lower())]
        self._put_records(infos)
        return infos

    def chunks(self, name: str) -> list[Hit]:
        """All chunks of one document in order (score 1.0: nothing was compared)."""
        got = self.collection.get(where={"source": name}, include=["documents", "metadatas"])
        hits = [Hit(m["source"], m["chunk"], 1.0, t, i) for i, t, m in zip(got["ids"], got["documents"], got["metadatas"])]
        return sorted(hits, key=lambda h: h.chunk)

    def all_chunks(self) -> list[Hit]:
        """Every chunk, document by document, in order."""
        return [h for d in self.documents() for h in self.chunks(d.name)]

    def delete(self, name: str) -> int:
        self._writes += 1
        ids = self._ids_of(name)
        if ids:
            self.collection.delete(ids=ids)
        self.records.delete(ids=[record_id(name)])
        return len(ids)

    def count(self) -> int:
        return self.collection.count()

    def search(self, query: str, k: int = 3, retrieval: str | None = None) -> list[Hit]:
        """The ``k`` chunks that best match ``query``: by embedding (``vector``), or (``hybrid``) the vector and the
        keyword (BM25) rankings fused (see `ragft.keywords`). A hit's score is its cosine similarity either way."""
        count = self.count()
        if not query.strip() or count == 0:
            return []
        hybrid = (retrieval or self.retrieval) == "hybrid"
        pool = max(POOL, 4 * k) if hybrid or self.reranker is not None else k
        vector = self.embed([query])
        res = self.collection.query(
            query_embeddings=vector,
            n_results=min(pool, count),
            include=["documents", "metadatas", "distances"],
        )
        hits = {i: Hit(m["source"], m["chunk"], round(1.0 - d, 4), t, i)
                for i, t, m, d in zip(res["ids"][0], res["documents"][0], res["metadatas"][0], res["distances"][0])}
        if not hybrid:
            return self._reranked(query, list(hits.values()), k)
        keyword = [cid for cid, _ in self._keywords.top(query, pool, self._contents_key(),
                                                         lambda: self._read_all("documents"))]
        order = fuse([list(hits), keyword])[:k if self.reranker is None else pool]
        missing = [cid for cid in order if cid not in hits]
        if missing:  # found by keyword only: their cosine from their stored (unit) embeddings
            got = self.collection.get(ids=missing, include=["documents", "metadatas", "embeddings"])
            for i, t, m, e in zip(got["ids"], got["documents"], got["metadatas"], got["embeddings"]):
                hits[i] = Hit(m["source"], m["chunk"], round(float(sum(a * b for a, b in zip(vector[0], e))), 4), t, i)
        return self._reranked(query, [hits[cid] for cid in order if cid in hits], k)

    def _reranked(self, query: str, hits: list[Hit], k: int) -> list[Hit]:
        """The ``k`` best of ``hits`` by the reranker's score of (query, chunk), or the first ``k`` without one."""
        if self.reranker is None or len(hits) < 2:
            return hits[:k]
        scores = self.reranker.predict([(query, h.text) for h in hits], show_progress_bar=False)
        order = sorted(range(len(hits)), key=lambda i: -float(scores[i]))  # stable: ties keep the fused order
        return [hits[i] for i in order[:k]]

    def _contents_key(self) -> tuple:
        """What changes when the chunks do: the chunk count and every document record (name, hash, pending mark).
        Read again at once after this object's own writes, and at most every ``KEY_TTL_S`` for other writers (the
        CLI on the same data dir, another process): reading 2,000 records takes ~100 ms at 100k chunks."""
        writes, when, key = self._key
        if writes == self._writes and time.monotonic() - when < KEY_TTL_S:
            return key
        got = self.records.get(include=["metadatas"])
        marks = sorted((i, m.get("content_hash"), m.get("pending_hash"), m.get("chunks"))
                       for i, m in zip(got["ids"], got["metadatas"]))
        key = self.count(), hashlib.sha256(repr(marks).encode()).hexdigest()
        self._key = (self._writes, time.monotonic(), key)
        return key
