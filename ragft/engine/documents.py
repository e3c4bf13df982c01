"""Documents verbs: ingest (each file alone, within the quotas and the free disk space), list, show, delete,
search."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .. import config
from ..config import free_mb
from ..documents import DocumentError, display_name, load_document
from ..errors import RagftError
from ..store import AddResult, DocInfo, Hit


class NoDocumentError(RagftError, LookupError):
    """No stored document has that name."""


class QuotaError(RagftError, ValueError):
    """An action would pass one of the workspace's quotas (RAGFT_MAX_*); the message gives the numbers."""


@dataclass(frozen=True)
class IngestReport:
    """What happened to one file of an upload; ``ok`` False means it was refused and nothing changed."""

    name: str
    ok: bool
    status: Literal["added", "replaced", "unchanged", "duplicate", "refused", "failed"]
    chunks: int
    message: str


class DocumentVerbs:
    def ingest(
        self, files: list[tuple[Path, str]], progress: Callable[[float, str], None] | None = None
    ) -> list[IngestReport]:
        """Add ``(path, display name)`` files. Each file succeeds or fails alone; failures change nothing."""
        s = self.settings
        # a data dir that cannot be written is one error for the whole upload, raised here
        stored = {d.name: d.size_bytes for d in self.store.documents()}  # for the quotas, kept up to date below
        reports: list[IngestReport] = []
        for n, (path, name) in enumerate(files):
            name = display_name(name)
            if progress:
                progress(n / max(len(files), 1), f"reading {name}")
            try:
                doc = load_document(path, name, s.chunk_words, s.chunk_overlap_words, s.max_upload_mb * 1_000_000)
                if over := self._over_quota(stored, doc.name, doc.size_bytes) or self._low_on_space():
                    reports.append(IngestReport(name, False, "refused", 0, f"{name}: {over}"))
                    continue

                def on_batch(done: int, total: int, n=n, name=name) -> None:
                    if progress:
                        progress((n + done / total) / len(files), f"embedding {name}: {done}/{total} chunks")

                result: AddResult = self.store.add(doc, on_batch)
            except DocumentError as exc:
                reports.append(IngestReport(name, False, "refused", 0, str(exc)))
                continue
            except Exception as exc:  # noqa: BLE001 - a full disk, a Chroma error: `Store.add` kept nothing of it
                reports.append(IngestReport(name, False, "failed", 0, f"{name}: could not be stored ({exc}); "
                                            "nothing of it was kept"))
                (self.parent or self).chroma_wedged = True  # `store` reopens the client once there is room
                continue
            message = {
                "added": f"{name}: added {result.chunks} chunks",
                "replaced": f"{name}: changed, replaced with {result.chunks} chunks",
                "unchanged": f"{name}: unchanged, already stored ({result.chunks} chunks)",
                "duplicate": f"{name}: skipped, {result.detail}",
            }[result.status]
            reports.append(IngestReport(name, result.status != "duplicate", result.status, result.chunks, message))
            if result.status in ("added", "replaced"):
                stored[doc.name] = doc.size_bytes
        if progress:
            progress(1.0, "done")
        return reports

    def documents(self) -> list[DocInfo]:
        return self.store.documents()

    def document_chunks(self, name: str) -> list[Hit]:
        """Every chunk of stored document ``name``, in order; `NoDocumentError` when there is none."""
        chunks = self.store.chunks(name)
        if not chunks:
            raise NoDocumentError(f"no document named {name!r}")
        return chunks

    def delete_document(self, name: str) -> int:
        """Delete stored document ``name``; returns its chunk count; `NoDocumentError` when there is none."""
        removed = self.store.delete(name)
        if not removed:
            raise NoDocumentError(f"no document named {name!r}")
        return removed

    def _low_on_space(self) -> str:
        """Why the data dir has too little room to add a document (a full disk wedges Chroma), or ""."""
        if self.settings.chroma_host:
            return ""
        free = free_mb(self.settings.data_dir)
        if free >= config.MIN_FREE_MB:
            return ""
        return (f"not added: the data dir has {free:.0f} MB free and ragft keeps at least {config.MIN_FREE_MB} MB "
                "free; free some space or delete documents first")

    def reopen_chroma(self) -> None:
        """A new Chroma client, and stores on it for every workspace: after a write failed on a full disk, the old
        one hangs on the next write even once there is room again (chromadb 1.5; reads still work on it, and the
        new client cannot open while the disk is full, hence ``chroma_wedged``: `store` reopens once there is room).
        """
        self.chroma_wedged = False
        from chromadb.api.client import SharedSystemClient

        with self._lock:
            if self._client is not None:  # chromadb keeps one system per path: forget this one (only)
                SharedSystemClient._identifier_to_system.pop(self._client._identifier, None)
                SharedSystemClient._identifier_to_refcount.pop(self._client._identifier, None)
            self._client, self._store = None, None

    def _over_quota(self, stored: dict[str, int], name: str, size: int) -> str:
        """Why adding ``name`` (``size`` bytes) would pass the store's quotas, or ""; a replacement counts once."""
        s = self.settings
        if name not in stored and len(stored) >= s.max_documents:
            return f"the store holds {len(stored):,} documents, the limit (RAGFT_MAX_DOCUMENTS); delete some first"
        total = sum(stored.values()) - stored.get(name, 0) + size
        if total > s.max_store_mb * 1_000_000:
            return (f"the store would hold {total / 1e6:,.1f} MB of files, over its {s.max_store_mb:,} MB limit "
                    "(RAGFT_MAX_STORE_MB); delete some documents first")
        return ""

    def search(self, query: str, k: int | None = None):
        return self.store.search(query, k or self.settings.top_k)
