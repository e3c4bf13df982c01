"""Documents verbs: ingest (each file alone, within the quotas and the free disk space), list, show, delete,
search."""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .. import store as store_module
from ..documents import Document, DocumentError, display_name, load_document
from ..errors import RagftError
from ..store import AddResult, AddStatus, DocInfo, Hit
from .base import EngineBase

log = logging.getLogger(__name__)


class NoDocumentError(RagftError, LookupError):
    """No stored document has that name."""


class QuotaError(RagftError, ValueError):
    """An action would pass one of the workspace's quotas (RAGFT_MAX_*); the message gives the numbers."""


@dataclass(frozen=True)
class IngestReport:
    """What happened to one file of an upload; ``ok`` False means it was refused and nothing changed."""

    name: str
    ok: bool
    status: AddStatus | Literal["refused", "failed"]
    chunks: int
    message: str


def _report(result: AddResult) -> IngestReport:
    name = result.name
    message = {
        "added": f"{name}: added {result.chunks} chunks",
        "replaced": f"{name}: changed, replaced with {result.chunks} chunks",
        "unchanged": f"{name}: unchanged, already stored ({result.chunks} chunks)",
        "duplicate": f"{name}: skipped, {result.detail}",
    }[result.status]
    return IngestReport(name, result.status != "duplicate", result.status, result.chunks, message)


def _reason(exc: Exception) -> str:
    """Why a write failed, for the user: a full disk says so; anything else by its kind only (the text of a
    Chroma or OS error may name server paths). The log has the whole of it."""
    log.warning("storing failed: %r", exc)
    text = str(exc).lower()
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or "disk is full" in text or "no space" in text:
        return "the disk is full"
    return f"{type(exc).__name__}; the app's log has the details"


def _put_back(stored: dict[str, int], name: str, size: int | None) -> None:
    """Undo a quota entry counted for a file that was not stored."""
    if size is None:
        stored.pop(name, None)
    else:
        stored[name] = size


class DocumentVerbs(EngineBase):
    def ingest(
        self, files: list[tuple[Path, str]], progress: Callable[[float, str], None] | None = None
    ) -> list[IngestReport]:
        """Add ``(path, display name)`` files. Each file is stored whole or not at all, and one that is refused
        changes nothing. Small files are stored a group at a time (up to ``EMBED_BATCH`` chunks: one embed call and
        a few Chroma writes for the lot, `Store.add_many`), so a write that fails fails its group's files."""
        s = self.settings
        # a data dir that cannot be written is one error for the whole upload, raised here
        stored = {d.name: d.size_bytes for d in self.store.documents()}  # for the quotas, kept up to date below
        reports: list[IngestReport | None] = [None] * len(files)
        group: list[tuple[int, Document, int | None]] = []  # (file's index, document, its size stored before)
        settled = 0  # files before the group's first one all have their report

        def store_group() -> None:
            nonlocal settled
            if not group:
                return
            first, count = group[0][0], group[-1][0] + 1 - group[0][0]
            label = group[0][1].name if len(group) == 1 else f"{len(group)} files"

            def on_batch(done: int, total: int) -> None:
                if progress:
                    progress((first + count * done / total) / len(files), f"embedding {label}: {done}/{total} chunks")

            try:
                results: list[AddResult] = self.store.add_many([doc for _, doc, _ in group], on_batch)
            except Exception as exc:  # noqa: BLE001 - a full disk, a Chroma error: `add_many` kept nothing of it
                for n, doc, size in group:
                    reports[n] = IngestReport(doc.name, False, "failed", 0, f"{doc.name}: could not be stored "
                                              f"({_reason(exc)}); nothing of it was kept")
                    _put_back(stored, doc.name, size)
                (self.parent or self).chroma_wedged = True  # `store` reopens the client once there is room
            else:
                for (n, doc, size), result in zip(group, results):
                    reports[n] = _report(result)
                    if result.status not in ("added", "replaced"):
                        _put_back(stored, doc.name, size)
            group.clear()
            settled = first + count

        for n, (path, name) in enumerate(files):
            name = display_name(name)
            if progress:
                progress(settled / len(files), f"reading {name}")
            try:
                doc = load_document(path, name, s.chunk_words, s.chunk_overlap_words, s.max_upload_mb * 1_000_000)
            except DocumentError as exc:
                reports[n] = IngestReport(name, False, "refused", 0, str(exc))
                continue
            if any(queued.name == doc.name for _, queued, _ in group):  # the same name twice: the later one wins
                store_group()
            if over := self._over_quota(stored, doc.name, doc.size_bytes) or self._low_on_space():
                reports[n] = IngestReport(name, False, "refused", 0, f"{name}: {over}")
                continue
            if group and sum(len(d.chunks) for _, d, _ in group) + len(doc.chunks) > store_module.EMBED_BATCH:
                store_group()
            group.append((n, doc, stored.get(doc.name)))
            stored[doc.name] = doc.size_bytes  # counted for the quotas while it waits
            if len(doc.chunks) >= store_module.EMBED_BATCH:
                store_group()
        store_group()
        if progress:
            progress(1.0, "done")
        return [r for r in reports if r is not None]

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
