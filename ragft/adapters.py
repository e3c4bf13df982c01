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
from dataclasses import asdict, dataclass, field, fields
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


def staleness(run: RunRecord, documents: Iterable[DocInfo]) -> list[str]:
    """What changed since the adapter of run record ``run`` was trained: one line per changed or deleted
    document; empty when the adapter is fresh or its record keeps no hashes (trained elsewhere or by an older
    ragft)."""
    now = {d.name: d.content_hash for d in documents}
    lines = []
    for name, digest in run.document_hashes.items():
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


@dataclass
class RunRecord:
    """The record saved beside an adapter's weights (``ragft_run.json``): how it was trained, on what, and how it
    went. Records written by older ragft versions lack some fields; they read as empty here (``questions`` None)."""

    name: str = ""
    status: str = ""  # "done" | "cancelled"
    steps: int = 0
    planned_steps: int = 0
    config: dict = field(default_factory=dict)  # the TrainConfig, as JSON
    data: dict = field(default_factory=dict)  # {"source": docs | qa | raft, "file", "examples"}
    tokens: int = 0  # the data once
    trained_tokens: int = 0  # the data once, tokens with loss
    tokens_seen: int = 0  # all steps: what the training time paid for
    document_hashes: dict[str, str] = field(default_factory=dict)  # document -> content hash when trained (freshness)
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss)
    questions: list[str] | None = None  # the trained questions (None: a record from before they were kept)
    pairs: list[dict] = field(default_factory=list)  # the trained question/answer pairs, to retrain without the file
    facts: list[str] = field(default_factory=list)
    documents: list[str] = field(default_factory=list)  # documents read whole (continued pre-training)
    seconds: float = 0.0
    base_model: str = ""
    saved: str = ""  # when, local time

    @property
    def source(self) -> str:
        return self.data.get("source", "")

    @property
    def final_loss(self) -> float | None:
        return self.losses[-1][1] if self.losses else None

    @classmethod
    def from_json(cls, data: dict) -> RunRecord:
        known = {f.name for f in fields(cls)}
        record = cls(**{k: v for k, v in data.items() if k in known})
        record.losses = [(int(s), float(v)) for s, v in record.losses]
        return record

    def to_json(self) -> dict:
        return asdict(self)

    def write(self, folder: Path) -> None:
        (folder / RUN_FILE).write_text(json.dumps(self.to_json(), indent=2))


def read_run(adapter_dir: Path) -> RunRecord | None:
    """The run record saved beside an adapter; None for adapters made elsewhere (or a record that cannot be read)."""
    try:
        data = json.loads((adapter_dir / RUN_FILE).read_text())
        return RunRecord.from_json(data) if isinstance(data, dict) else None
    except (OSError, ValueError, TypeError):
        return None


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
