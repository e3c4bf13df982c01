"""What an adapter knows about where its knowledge came from: the documents it was trained on, and whether they
have changed since (freshness).

RAG sees a changed document at once; an adapter does not until it is retrained. The run record saved beside an
adapter (``ragft_run.json``) keeps ``document_hashes`` — document name -> content hash at training time — so the
app can say which documents changed or were deleted since.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from .store import DocInfo


def trained_on(documents: Iterable[DocInfo], names: Iterable[str] | None = None) -> dict[str, str]:
    """``{document: content hash}`` for ``names`` (every stored document when None) as stored now."""
    wanted = None if names is None else set(names)
    return {d.name: d.content_hash for d in documents if wanted is None or d.name in wanted}


def staleness(run: dict, documents: Iterable[DocInfo]) -> list[str]:
    """What changed since the adapter of run record ``run`` was trained: one line per changed or deleted
    document; empty when the adapter is fresh or its record keeps no hashes (trained elsewhere or by an older
    ragft)."""
    now = {d.name: d.content_hash for d in documents}
    lines = []
    for name, digest in (run.get("document_hashes") or {}).items():
        if name not in now:
            lines.append(f"{name} was deleted")
        elif now[name] != digest:
            lines.append(f"{name} has changed")
    return lines


def stale_note(name: str, changes: list[str]) -> str:
    """One sentence for the UI and CLI, or "" when nothing changed."""
    if not changes:
        return ""
    return (f"Adapter {name} is stale: since it was trained, {'; '.join(changes)}. RAG sees the current text at "
            "once; the adapter only after it is retrained on the current documents.")


def file_hash(path: Path) -> str:
    """Content hash of a training file (a question set), kept in the run record."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def folder_bytes(path: Path) -> int:
    """Size on disk of an adapter folder (its weights, config and run record)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())
