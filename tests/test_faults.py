"""Faults: a process SIGKILLed in the middle of an ingest. On the next open the store holds every document whose
ingest completed and nothing of the one that was cut off (a replaced document keeps its old version); the names
cut off are reported so the user can upload them again."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragft.store import Store, make_client

from .helpers import FakeEmbedder

ROOT = Path(__file__).resolve().parents[1]

INGEST = r'''
import sys
from pathlib import Path
from ragft.config import Settings
from ragft.engine import Engine
import ragft.store
ragft.store.EMBED_BATCH = 16  # several batches from a short document (the app's 256 would need ~500 chunks)
data, doc, name = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
engine = Engine(Settings.from_env({"RAGFT_DATA_DIR": str(data)}))
def progress(fraction, message):
    if "embedding" in message:  # a batch of chunks is in Chroma
        print("STORED", message, flush=True)
engine.ingest([(doc, name)], progress)
print("DONE", flush=True)
'''


def _ingest(data: Path, doc: Path, name: str, kill_after_first_batch: bool) -> None:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", INGEST, str(data), str(doc), name], stdout=subprocess.PIPE,
                            text=True, env=env)
    for line in proc.stdout:
        if kill_after_first_batch and line.startswith("STORED"):
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait(timeout=300)
    assert proc.returncode == (-signal.SIGKILL if kill_after_first_batch else 0)


def _long_document(path: Path, version: str) -> Path:
    path.write_text(" ".join(f"Entry {i} of the Skarvik harbour log ({version}) notes a tide of {i % 97} "
                             f"centimetres at dawn." for i in range(500)))  # ~80 chunks: 5 batches of 16
    return path


def _open(data: Path, embedder) -> Store:
    return Store(make_client(data / "chroma"), embedder)


@pytest.mark.slow  # a CLI process killed mid-ingest
def test_a_killed_first_ingest_leaves_nothing_behind(tmp_path, embedder):
    data = tmp_path / "data"
    small = tmp_path / "small.txt"
    small.write_text("The Skarvik ferry sails at 7 each morning.")
    _ingest(data, small, "small.txt", kill_after_first_batch=False)
    _ingest(data, _long_document(tmp_path / "log.txt", "first"), "log.txt", kill_after_first_batch=True)

    store = _open(data, embedder)
    assert store.recovered == ["log.txt"]
    assert [d.name for d in store.documents()] == ["small.txt"]
    assert store.count() == 1  # the killed document's stored batch is gone
    assert {h.source for h in store.search("Skarvik harbour log tide", k=3)} == {"small.txt"}


@pytest.mark.slow  # a CLI process killed mid-ingest
def test_a_killed_replacement_keeps_the_old_version(tmp_path, embedder):
    data = tmp_path / "data"
    log = _long_document(tmp_path / "log.txt", "first")
    _ingest(data, log, "log.txt", kill_after_first_batch=False)
    before = _open(data, embedder)
    listed, chunks = before.documents(), before.chunks("log.txt")
    before.client.close()

    _ingest(data, _long_document(tmp_path / "log2.txt", "second"), "log.txt", kill_after_first_batch=True)
    store = _open(data, embedder)
    assert store.recovered == ["log.txt"]
    assert store.documents() == listed and store.chunks("log.txt") == chunks
    assert store.count() == len(chunks)
    assert _open(data, embedder).recovered == []  # undone once, then clean


def test_an_error_in_the_middle_of_an_ingest_is_undone_at_once(tmp_path, monkeypatch):
    from ragft import store as store_module
    from ragft.documents import load_document

    embedder = FakeEmbedder()  # the store's undo is under test, not the embeddings
    store = _open(tmp_path / "data", embedder)
    old = store.add(load_document(_long_document(tmp_path / "log.txt", "first"), "log.txt"))
    listed, chunks = store.documents(), store.chunks("log.txt")
    calls = []

    def failing(texts):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("the embedder ran out of memory")
        return embedder.encode(texts, normalize_embeddings=True, convert_to_numpy=True).tolist()

    monkeypatch.setattr(store, "embed", failing)
    monkeypatch.setattr(store_module, "EMBED_BATCH", 64)
    with pytest.raises(RuntimeError, match="out of memory"):
        store.add(load_document(_long_document(tmp_path / "log2.txt", "second"), "log.txt"))
    assert len(calls) == 2 and old.status == "added"
    assert store.documents() == listed and store.chunks("log.txt") == chunks and store.count() == len(chunks)


@pytest.mark.slow  # the CLI in a subprocess
@pytest.mark.parametrize("where", ["file", "sysfs"])
def test_a_data_dir_that_cannot_be_written_is_one_clear_error(tmp_path, where):
    """At start-up (the CLI here; `ragft serve` and app.py stop the same way, before loading the generator)."""
    if where == "file":
        data = tmp_path / "taken"
        data.write_text("a file where the data dir should be")
    else:
        data = Path("/sys/ragft-data")  # a read-only file system, even for root
    env = os.environ | {"PYTHONPATH": str(ROOT), "RAGFT_DATA_DIR": str(data)}
    doc = tmp_path / "a.txt"
    doc.write_text("The Skarvik ferry sails at 7.")
    out = subprocess.run([sys.executable, "-m", "ragft", "ingest", str(doc)], env=env, capture_output=True, text=True, check=False,
                         timeout=300)
    assert out.returncode == 2
    assert out.stderr.strip().startswith(f"ragft: error: the data dir {data} cannot be written (")
    assert "Traceback" not in out.stderr and "set RAGFT_DATA_DIR" in out.stderr


def test_a_full_disk_during_an_ingest_fails_that_file_and_keeps_the_rest(engine, tmp_path, monkeypatch):
    import errno

    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_text("The Skarvik ferry sails at 7 each morning.")
    second.write_text("The Skarvik lighthouse was built in 1871.")
    assert engine.ingest([(first, first.name)])[0].ok
    before = (engine.store.documents(), engine.store.count())

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(engine.store, "_write_chunks", full)
    [report] = engine.ingest([(second, second.name)])
    assert (report.ok, report.status) == (False, "failed")
    assert report.message == "second.txt: could not be stored (the disk is full); nothing of it " \
                             "was kept"
    assert (engine.store.documents(), engine.store.count()) == before
    assert engine.store.recovered == [] and engine.store.recover() == []  # no mark left behind


def test_too_little_free_space_is_refused_with_the_numbers(tmp_path):
    from ragft.config import ConfigError, check_data_dir

    with pytest.raises(ConfigError, match=r"has \d+ MB free; ragft needs at least 10000000000 MB"):
        check_data_dir(tmp_path / "data", min_free_mb=10_000_000_000)


TRAIN = r'''
import sys, time
from pathlib import Path
from ragft.config import Settings
from ragft.engine import Engine
from ragft.finetune import DataSpec, TrainConfig
engine = Engine(Settings.from_env({"RAGFT_DATA_DIR": sys.argv[1]}))
name = engine.start_training(DataSpec("qa", Path(sys.argv[2])), TrainConfig(max_steps=200, batch_size=1), "killed")
while engine.jobs.state.step < 1:
    time.sleep(0.1)
print("STEP", flush=True)
time.sleep(600)
'''


def _proc_state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return "gone"


@pytest.mark.slow
@pytest.mark.train_processes  # the training process sees its app gone and ends
def test_a_training_run_killed_midway_shows_interrupted_and_leaves_no_adapter(tmp_path, settings, embedder):
    from ragft.engine import Engine

    qa = tmp_path / "qa.jsonl"
    qa.write_text('{"question": "Who keeps the Skarvik light?", "answer": "Ola Berg keeps it."}\n')
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", TRAIN, str(settings.data_dir), str(qa)], stdout=subprocess.PIPE,
                            text=True, env=env)
    assert proc.stdout.readline().startswith("STEP")
    partial = list(settings.adapters_dir.glob(".*.partial"))
    trainer = json.loads(next(settings.adapters_dir.glob(".*.job/progress.json")).read_text())["pid"]
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert partial  # the run was writing when it died
    deadline = time.time() + 120  # the training process sees the app gone at its next step, and ends unsaved
    while time.time() < deadline and Path(f"/proc/{trainer}").exists() and "Z" not in _proc_state(trainer):
        time.sleep(0.5)
    assert not Path(f"/proc/{trainer}").exists() or "Z" in _proc_state(trainer)

    engine = Engine(settings)
    state = engine.jobs.state
    assert state.status == "interrupted" and state.kind == "train" and state.name.startswith("killed")
    assert engine.adapters() == [] and not list(settings.adapters_dir.glob(".*.partial"))


@pytest.fixture
def small_disk(tmp_path):
    """A real 160 MB filesystem (tmpfs) to fill up; skipped where this user may not mount one."""
    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m", "tmpfs", str(mount)], capture_output=True,
                          text=True, check=False)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a small filesystem here ({made.stderr.strip()}): the monkeypatched test stands in")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(folder: Path, leave_bytes: int) -> Path:
    """Fill the filesystem of ``folder`` with one file until ``leave_bytes`` are free."""
    import shutil

    ballast = folder / "ballast"
    with open(ballast, "wb") as f:
        room = shutil.disk_usage(folder).free - leave_bytes
        while room > 0:
            f.write(b"\0" * min(room, 1 << 24))
            room -= 1 << 24
    return ballast


def test_a_really_full_disk_fails_the_action_keeps_what_was_stored_and_stops_the_next_start(small_disk, tmp_path,
                                                                                             embedder, monkeypatch):
    from ragft.config import Settings
    from ragft.engine import Engine
    from ragft.questions import QAItem, QuestionSetError

    data = small_disk / "data"
    engine = Engine(Settings.from_env({"RAGFT_DATA_DIR": str(data)}), embedder=embedder)
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    first.write_text("The Skarvik ferry sails at 7 each morning.")
    second.write_text(" ".join(f"The Skarvik lighthouse keeper number {i} kept the lamp lit." for i in range(3000)))
    assert engine.ingest([(first, first.name)])[0].ok
    before = [d.name for d in engine.store.documents()]

    ballast = _fill(small_disk, 0)
    [report] = engine.ingest([(second, second.name)])  # too little room: refused before Chroma writes a thing
    assert (report.ok, report.status) == (False, "refused")
    assert report.message == ("second.txt: not added: the data dir has 0 MB free and ragft keeps at least 100 MB free; "
                              "free some space or delete documents first")
    monkeypatch.setattr("ragft.config.MIN_FREE_MB", 0)  # without that check, the write itself fails on the full disk
    [report] = engine.ingest([(second, second.name)])
    assert (report.ok, report.status) == (False, "failed") and "the disk is full" in report.message
    assert "nothing of it was kept" in report.message
    monkeypatch.undo()
    assert [d.name for d in engine.store.documents()] == before
    assert engine.search("When does the ferry sail?")[0].source == "first.txt"
    with pytest.raises(QuestionSetError, match="could not save facts.jsonl: No space left on device; nothing was "
                                               "changed"):  # a question set cannot be saved either: said so
        engine.save_question_set("facts", [QAItem("When does the ferry sail?", "7")])
    assert not list(data.glob("questions/*.jsonl"))

    # A start on the full disk: one line saying so, no traceback, no crash loop.
    env = os.environ | {"RAGFT_DATA_DIR": str(data), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "ragft", "ingest", str(first)], capture_output=True, text=True,
                         env=env, check=False, timeout=300)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert re.search(r"ragft: error: the data dir .* (has 0 MB free|cannot be written)", out.stderr), out.stderr

    ballast.unlink()  # room again: the same engine adds the file now (on a reopened Chroma client: see Engine)
    assert engine.ingest([(second, second.name)])[0].ok
    assert sorted(d.name for d in engine.store.documents()) == ["first.txt", "second.txt"]
