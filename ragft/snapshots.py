"""Signed-in users' workspaces copied to persistent storage, and restored from it when the app starts.

A Space wipes the app's own disk at every restart. Its persistent storage is a bucket mounted at a path: object
storage, made for whole-file writes, with no file locking, where Chroma's SQLite must not run. So Chroma and the
workspace folders stay on local disk, and each signed-in user's workspace is copied to the mount as a whole, a
while after it changed (``RAGFT_SNAPSHOT_SECONDS``), never while one of its jobs runs:

    <mount>/ragft-snapshots/<workspace id>/<ms>.tar    its folders (documents' records, adapters, question sets,
                                                       evaluations, experiments) and its chunks out of Chroma
    <mount>/ragft-snapshots/<workspace id>/<ms>.json   written after the archive: the archive's size and sha256

A snapshot counts only when its manifest parses and names an archive of that size and hash: one cut off half-way
(no manifest, a short archive, a short manifest) is never restored; the newest whole one is. The two newest are
kept. At start-up every workspace with a snapshot and no local folder is restored: the files, then the chunks put
back into Chroma with their embeddings (embedded again when the embedder changed), and only then the folder moved
into place, so a start killed half-way restores again next time. Anonymous and API workspaces are temporary and
never copied (the UI says so).

    snapshots = Snapshots(spaces, Path("/data"))
    snapshots.restore_all()   # at start-up: the workspaces this disk lacks
    snapshots.save_changed()  # what the background thread does every RAGFT_SNAPSHOT_SECONDS
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import shutil
import tarfile
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .config import ConfigError
from .store import Store

if TYPE_CHECKING:
    from .engine import Engine
    from .workspaces import Workspaces

log = logging.getLogger(__name__)

FOLDER = "ragft-snapshots"
FORMAT = 1
NOT_COPIED = {"jobs", ".last-used", "vllm"}  # a workspace's top-level entries that belong to this run only
KEPT_ID = re.compile(r"^user-[a-z0-9-]+$")  # signed-in users' workspaces; ids are cleaned names and hashes
PAGE = 1000  # records per Chroma read or write


def kept(wid: str) -> bool:
    """Whether workspace ``wid`` outlives a restart (a signed-in user's)."""
    return bool(KEPT_ID.match(wid))


def _files(folder: Path) -> list[Path]:
    """The plain files of a workspace folder that a snapshot holds, sorted."""
    out = []
    for path in sorted(folder.rglob("*")):
        if path.relative_to(folder).parts[0] in NOT_COPIED or path.is_symlink() or not path.is_file():
            continue
        out.append(path)
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _export(collection) -> dict:
    """A collection's records: ids, documents, metadatas, embeddings (float32), read a page at a time."""
    ids: list[str] = []
    documents: list[str | None] = []
    metadatas: list[dict | None] = []
    vectors: list[np.ndarray] = []
    total = collection.count()
    for offset in range(0, total, PAGE):
        got = collection.get(limit=PAGE, offset=offset, include=["documents", "metadatas", "embeddings"])
        ids += got["ids"]
        documents += got["documents"] or [None] * len(got["ids"])
        metadatas += got["metadatas"] or [None] * len(got["ids"])
        vectors += list(got["embeddings"]) if got["embeddings"] is not None else []
    embeddings = np.asarray(vectors, dtype=np.float32) if ids else np.zeros((0, 0), dtype=np.float32)
    return {"ids": ids, "documents": documents, "metadatas": metadatas, "embeddings": embeddings}


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), int(time.time())
    tar.addfile(info, io.BytesIO(data))


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


class Snapshots:
    """The snapshots of one app's signed-in workspaces on the mount ``mount``."""

    def __init__(self, spaces: Workspaces, mount: Path, every_s: float = 30.0) -> None:
        self.spaces, self.folder, self.every_s = spaces, Path(mount) / FOLDER, every_s
        self._seen: dict[str, str] = {}  # workspace id -> fingerprint of its newest snapshot
        self._lock = threading.Lock()  # one snapshot written at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> None:
        """Make sure the mount can be written and the data dir is not on it; else `ConfigError` saying what to
        change."""
        data, mount = self.spaces.root.settings.data_dir.resolve(), self.folder.parent.resolve()
        if data == mount or mount in data.parents:
            raise ConfigError(f"the data dir {data} is on the persistent storage {mount}, where Chroma's database "
                              "cannot run safely: leave RAGFT_DATA_DIR unset (the app copies signed-in users' work "
                              "there itself), or set RAGFT_PERSIST_DIR=off")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            probe = self.folder / ".write-check"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"the persistent storage {self.folder.parent} cannot be written "
                              f"({exc.strerror or exc}); mount it writable, or set RAGFT_PERSIST_DIR=off") from None

    # --- writing ------------------------------------------------------------------------------------------------
    def fingerprint(self, engine: Engine) -> str:
        """What changes when the workspace does: its files' names, sizes and times, its documents' records and
        its chunk count."""
        digest = hashlib.sha256()
        folder = engine.settings.data_dir
        for path in _files(folder):
            stat = path.stat()
            digest.update(f"{path.relative_to(folder)}|{stat.st_size}|{stat.st_mtime_ns}\n".encode())
        store = engine.store
        records = store.records.get(include=["metadatas"])
        digest.update(json.dumps([records["ids"], records["metadatas"]], sort_keys=True, default=str).encode())
        digest.update(str(store.collection.count()).encode())
        return digest.hexdigest()

    def save(self, wid: str, engine: Engine) -> Path | None:
        """Copy workspace ``wid`` to the mount when it changed since its last snapshot and no job of it runs;
        the new manifest's path, else None."""
        if not kept(wid) or engine.jobs.state.active:
            return None
        with self._lock:
            mark = self.fingerprint(engine)
            if self._seen.get(wid) == mark:
                return None
            folder = self.folder / wid
            folder.mkdir(parents=True, exist_ok=True)
            stamp = max([time.time_ns() // 1_000_000] + [self._stamp(p) + 1 for p in folder.iterdir()])
            local = engine.settings.data_dir.parent / f".snapshot-{wid}.tar"
            try:
                self._archive(engine, local)
                meta = {"format": FORMAT, "workspace": wid, "created": time.time(), "archive": f"{stamp}.tar",
                        "bytes": local.stat().st_size, "sha256": _sha256(local),
                        "embedder": engine.settings.embed_model}
                shutil.copyfile(local, folder / f"{stamp}.tar")  # one whole-file write; the manifest only after it
            finally:
                local.unlink(missing_ok=True)
            manifest = folder / f"{stamp}.json"
            manifest.write_text(json.dumps(meta))
            self._seen[wid] = mark
            self._prune(folder, stamp)
            log.info("workspace %s copied to persistent storage (%d bytes)", wid, meta["bytes"])
            return manifest

    def _archive(self, engine: Engine, path: Path) -> None:
        folder, store = engine.settings.data_dir, engine.store
        with tarfile.open(path, "w") as tar:
            for file in _files(folder):
                tar.add(file, arcname=f"files/{file.relative_to(folder).as_posix()}", recursive=False)
            for part, collection in (("chunks", store.collection), ("records", store.records)):
                records = _export(collection)
                vectors = records.pop("embeddings")
                _add_member(tar, f"chroma/{part}.json", json.dumps(records).encode())
                _add_member(tar, f"chroma/{part}.npy", _npy(vectors))

    @staticmethod
    def _stamp(path: Path) -> int:
        try:
            return int(path.name.split(".")[0])
        except ValueError:
            return -1

    def _prune(self, folder: Path, stamp: int) -> None:
        """Keep the snapshot just written (``stamp``) and the newest whole one before it, in case this one was
        damaged on the way; delete everything older, cut-off ones included. Only that one older archive is read
        back to check it."""
        before = (m for m in self._manifests(folder) if self._stamp(m) < stamp)
        previous = next((self._stamp(m) for m in before if self._check(m)), None)
        if previous is None:
            return
        for path in folder.iterdir():
            if 0 <= self._stamp(path) < previous:
                path.unlink(missing_ok=True)

    def save_changed(self) -> list[str]:
        """Snapshot every signed-in workspace in memory that changed; the ids written."""
        written = []
        for wid, engine in list(self.spaces.engines().items()):
            try:
                if self.save(wid, engine):
                    written.append(wid)
            except Exception:  # a full or missing mount: the workspace itself is untouched; try again later
                log.exception("could not copy workspace %s to persistent storage", wid)
        return written

    def start(self) -> None:
        """Save changed workspaces every ``every_s`` seconds in a background thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="ragft-snapshots", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.wait(self.every_s):
            self.save_changed()

    # --- reading ------------------------------------------------------------------------------------------------
    @staticmethod
    def _manifests(folder: Path) -> list[Path]:
        """The manifests in ``folder``, newest first."""
        return sorted(folder.glob("*.json"), key=Snapshots._stamp, reverse=True)

    @staticmethod
    def _check(manifest: Path) -> dict | None:
        """The manifest's contents when it and its archive are whole, else None."""
        try:
            meta = json.loads(manifest.read_text())
            archive = manifest.parent / meta["archive"]
            whole = (meta.get("format") == FORMAT and archive.name == f"{Snapshots._stamp(manifest)}.tar"
                     and archive.stat().st_size == meta["bytes"] and _sha256(archive) == meta["sha256"])
        except (OSError, ValueError, KeyError, TypeError):
            return None
        return meta if whole else None

    def latest(self, wid: str) -> tuple[Path, dict] | None:
        """The newest whole snapshot of ``wid``: (archive, manifest), or None."""
        for manifest in self._manifests(self.folder / wid):
            meta = self._check(manifest)
            if meta:
                return manifest.parent / meta["archive"], meta
            log.warning("snapshot %s of workspace %s is not whole: skipped", manifest.name, wid)
        return None

    def restore_all(self) -> list[str]:
        """Restore every kept workspace this disk lacks; the ids restored."""
        if not self.folder.is_dir():
            return []
        restored = []
        for wid in sorted(p.name for p in self.folder.iterdir() if p.is_dir() and kept(p.name)):
            if (self.spaces.folder / wid).is_dir():  # this disk kept it: it is at least as new
                continue
            try:
                if self.restore(wid):
                    restored.append(wid)
            except Exception:
                log.exception("could not restore workspace %s", wid)
        if restored:
            log.info("restored %d workspaces from persistent storage", len(restored))
        return restored

    def restore(self, wid: str) -> bool:
        """Put workspace ``wid`` back from its newest whole snapshot (files, then chunks, then the folder moved
        into place); False when it has none."""
        found = self.latest(wid)
        if found is None:
            return False
        archive, meta = found
        target = self.spaces.folder / wid
        staging = self.spaces.folder / f".restoring-{wid}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        parts = {}
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if member.name.startswith("files/"):
                    member.name = member.name[len("files/"):]
                    tar.extract(member, staging, filter="data")
                elif member.name.startswith("chroma/") and (data := tar.extractfile(member)) is not None:  # a file
                    parts[member.name[len("chroma/"):]] = data.read()
        self._put_back(wid, parts, meta)
        staging.rename(target)
        engine = self.spaces.engine(wid)
        self._seen[wid] = self.fingerprint(engine)
        return True

    def _put_back(self, wid: str, parts: dict[str, bytes], meta: dict) -> None:
        """The workspace's collections as the snapshot holds them (whatever Chroma had under those names goes)."""
        root = self.spaces.root
        name = self.spaces.collection(wid)
        existing = {c.name for c in root.chroma.list_collections()}
        for old in (name, f"{name}__docs"):
            if old in existing:
                root.chroma.delete_collection(old)
        store = Store(root.chroma, root.embedder, name)
        same_embedder = meta.get("embedder", "") == root.settings.embed_model
        for part, collection in (("chunks", store.collection), ("records", store.records)):
            records = json.loads(parts[f"{part}.json"])
            vectors = np.load(io.BytesIO(parts[f"{part}.npy"]), allow_pickle=False)
            for start in range(0, len(records["ids"]), PAGE):
                end = start + PAGE
                texts = records["documents"][start:end]
                if part == "chunks" and not same_embedder:
                    embeddings = store.embed(texts)
                else:
                    embeddings = vectors[start:end].tolist()
                collection.upsert(ids=records["ids"][start:end], documents=texts if part == "chunks" else None,
                                  metadatas=records["metadatas"][start:end], embeddings=embeddings)
        store.recover()  # a snapshot taken during an ingest holds its mark: undone, as after a killed process
