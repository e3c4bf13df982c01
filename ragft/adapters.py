"""Saved adapters as folders: listing, versioned names, the run record beside the weights, delete and zip; and
what an adapter knows about where its knowledge came from: the documents it was trained on, and whether they
have changed since (freshness).

RAG sees a changed document at once; an adapter does not until it is retrained. The run record saved beside an
adapter (``ragft_run.json``) keeps ``document_hashes`` — document name -> content hash at training time — so the
app can say which documents changed or were deleted since.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterable
from pathlib import Path

from .errors import InvalidInputError
from .knobs import NAME_RULE, valid_name
from .models import NoAdapterError
from .store import DocInfo

RUN_FILE = "ragft_run.json"  # written beside the adapter weights: config, data summary, loss history


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


# --- the adapter folders -------------------------------------------------------------------------------------
def list_adapters(adapters_dir: Path) -> list[str]:
    """Names of the adapter folders (``adapter_config.json`` + weights) under ``adapters_dir``, newest first."""
    if not adapters_dir.is_dir():
        return []
    found = [
        d
        for d in adapters_dir.iterdir()
        if d.is_dir()
        and not d.name.startswith(".")  # ".name.partial": a run still writing
        and (d / "adapter_config.json").is_file()
        and any((d / w).is_file() for w in ("adapter_model.safetensors", "adapter_model.bin"))
    ]
    return [d.name for d in sorted(found, key=lambda d: d.stat().st_mtime, reverse=True)]


def next_version_name(adapters_dir: Path, base: str) -> str:
    """``base-v1``, ``base-v2``, … — never reusing a folder name, so a saved adapter is never overwritten."""
    if not valid_name(base):
        raise InvalidInputError(f"adapter name {base!r}: {NAME_RULE}")
    n = 1
    while (adapters_dir / f"{base}-v{n}").exists():
        n += 1
    return f"{base}-v{n}"


def read_run(adapter_dir: Path) -> dict:
    """The run record saved beside an adapter (empty for adapters made elsewhere)."""
    try:
        return json.loads((adapter_dir / RUN_FILE).read_text())
    except (OSError, ValueError):
        return {}


def delete_adapter(adapters_dir: Path, name: str) -> None:
    path = adapters_dir / name
    if not valid_name(name) or not path.is_dir():
        raise NoAdapterError(f"no adapter named {name!r}")
    shutil.rmtree(path)


def zip_adapter(adapters_dir: Path, name: str, out_dir: Path) -> Path:
    """A zip of the adapter folder, for download."""
    path = adapters_dir / name
    if not valid_name(name) or not path.is_dir():
        raise NoAdapterError(f"no adapter named {name!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    return Path(shutil.make_archive(str(out_dir / name), "zip", root_dir=adapters_dir, base_dir=name))
