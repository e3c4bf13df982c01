"""Signed-in users' workspaces on persistent storage: copied as whole snapshots, restored on a wiped disk, a
snapshot cut off half-way never restored, temporary workspaces never copied. Real Chroma; the app-level restart
(SIGKILL, wiped disk, the visitor's work back) is in tests/e2e/test_space_restart.py."""

from __future__ import annotations

import json

import pytest

from ragft.config import ConfigError, Settings
from ragft.engine import Engine
from ragft.questions.sets import QAItem
from ragft.snapshots import FOLDER, Snapshots, kept
from ragft.workspaces import Workspaces, api_id, user_id

from .helpers import FakeEmbedder, fake_adapter, write

NOTE = ("The Kestrel lighthouse was built in 1872 by the engineer Ada Fenwick. It stands 41 metres tall. "
        "Visitors may climb it from May to September.")


def app(local, mount, embedder, **env) -> Workspaces:
    """The workspaces of an app whose own disk is ``local`` and whose persistent storage is ``mount``."""
    values = {"RAGFT_DATA_DIR": str(local), "RAGFT_WORKSPACES": "private", "RAGFT_PERSIST_DIR": str(mount), **env}
    return Workspaces(Engine(Settings.from_env(values), embedder=embedder))


def signed_in(spaces: Workspaces, name: str, session: str = "page") -> tuple[str, Engine]:
    wid, _ = spaces.enter(session, username=name)
    return wid, spaces.engine(wid, create=True, client="127.0.0.1")


def work(engine: Engine, tmp_path) -> None:
    """A user's work: a document, a question set, an adapter and an experiment report."""
    engine.ingest([(write(tmp_path / "up", "lighthouse.txt", NOTE), "lighthouse.txt")])
    engine.save_question_set("mine", [QAItem("When was the Kestrel lighthouse built?", "1872")])
    fake_adapter(engine.settings.adapters_dir / "facts", {"questions": ["When was it built?"]})
    write(engine.settings.experiments_dir, "run-1/report.json", json.dumps({"verdict": "RAG"}))


def snapshots_of(mount, wid) -> list[str]:
    return sorted(p.name for p in (mount / FOLDER / wid).iterdir())


@pytest.fixture
def embedder():
    return FakeEmbedder()


def test_a_signed_in_users_work_comes_back_on_a_wiped_disk(tmp_path, embedder):
    mount = tmp_path / "bucket"
    first = app(tmp_path / "disk1", mount, embedder)
    wid, engine = signed_in(first, "alice")
    work(engine, tmp_path)
    assert first.snapshots.save_changed() == [wid]
    assert first.snapshots.save_changed() == []  # unchanged: nothing written again
    assert snapshots_of(mount, wid)[0].endswith(".json") and len(snapshots_of(mount, wid)) == 2

    second = app(tmp_path / "disk2", mount, embedder)  # a restart: a new, empty disk, the same mount
    back = second.engine(user_id("alice"))
    assert [d.name for d in back.documents()] == ["lighthouse.txt"]
    assert back.search("How tall is the lighthouse?", 1)[0].text.startswith("The Kestrel lighthouse")
    assert back.load_question_set("mine")[0].answer == "1872"
    assert back.adapters() == ["facts"]
    assert json.loads((back.settings.experiments_dir / "run-1/report.json").read_text()) == {"verdict": "RAG"}
    assert second.snapshots.save_changed() == []  # what was restored is not copied back


def test_each_change_is_a_new_snapshot_and_the_two_newest_are_kept(tmp_path, embedder):
    mount = tmp_path / "bucket"
    spaces = app(tmp_path / "disk", mount, embedder)
    wid, engine = signed_in(spaces, "bob")
    for i in range(3):
        engine.save_question_set(f"set-{i}", [QAItem(f"Question {i}?", "yes")])
        assert spaces.snapshots.save_changed() == [wid]
    assert len(snapshots_of(mount, wid)) == 4  # two archives, two manifests
    engine.ingest([(write(tmp_path / "up", "note.txt", NOTE), "note.txt")])
    spaces.snapshots.save_changed()
    engine.delete_document("note.txt")
    assert spaces.snapshots.save_changed() == [wid]
    assert app(tmp_path / "disk2", mount, embedder).engine(wid).documents() == []


@pytest.mark.parametrize("cut", ["no manifest", "short archive", "short manifest", "changed archive"])
def test_a_snapshot_cut_off_half_way_is_never_restored(tmp_path, embedder, cut):
    mount = tmp_path / "bucket"
    spaces = app(tmp_path / "disk", mount, embedder)
    wid, engine = signed_in(spaces, "carol")
    engine.save_question_set("old", [QAItem("Old?", "old")])
    spaces.snapshots.save_changed()
    engine.save_question_set("new", [QAItem("New?", "new")])
    manifest = spaces.snapshots.save(wid, engine)
    archive = manifest.with_suffix(".tar")
    if cut == "no manifest":
        manifest.unlink()
    elif cut == "short archive":
        archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    elif cut == "short manifest":
        manifest.write_text(manifest.read_text()[:20])
    else:
        data = bytearray(archive.read_bytes())
        data[600] ^= 0xFF
        archive.write_bytes(bytes(data))
    back = app(tmp_path / "disk2", mount, embedder).engine(wid)
    assert back.question_sets() == ["old"]  # the newest whole one


def test_no_whole_snapshot_restores_nothing(tmp_path, embedder):
    mount = tmp_path / "bucket"
    spaces = app(tmp_path / "disk", mount, embedder)
    wid, engine = signed_in(spaces, "dan")
    engine.save_question_set("only", [QAItem("Q?", "a")])
    spaces.snapshots.save(wid, engine).unlink()  # killed between the archive and its manifest
    again = app(tmp_path / "disk2", mount, embedder)
    assert again.ids() == [] and again.snapshots.latest(wid) is None


def test_temporary_workspaces_and_busy_ones_are_not_copied(tmp_path, embedder):
    mount = tmp_path / "bucket"
    spaces = app(tmp_path / "disk", mount, embedder)
    token = spaces.issue_token()
    anon, _ = spaces.enter("page-a", token=token)
    for wid in (anon, api_id("client")):
        spaces.engine(wid, create=True, client="127.0.0.1").save_question_set("s", [QAItem("Q?", "a")])
    assert not kept(anon) and not kept(api_id("client")) and kept(user_id("Eve"))
    assert spaces.snapshots.save_changed() == [] and not any((mount / FOLDER).iterdir())
    wid, engine = signed_in(spaces, "eve", "page-e")
    engine.save_question_set("s", [QAItem("Q?", "a")])
    engine.jobs.start("train", "x", lambda state, cancel: cancel.wait(30))  # a job is writing: wait for its end
    assert spaces.snapshots.save(wid, engine) is None
    engine.jobs.cancel()
    engine.jobs.wait(10)
    assert spaces.snapshots.save(wid, engine) is not None


def test_a_changed_embedder_embeds_the_chunks_again(tmp_path, embedder):
    mount = tmp_path / "bucket"
    spaces = app(tmp_path / "disk", mount, embedder)
    wid, engine = signed_in(spaces, "fay")
    engine.ingest([(write(tmp_path / "up", "lighthouse.txt", NOTE), "lighthouse.txt")])
    manifest = spaces.snapshots.save(wid, engine)
    meta = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**meta, "embedder": "another-model"}))
    other = FakeEmbedder(dim=64)
    back = app(tmp_path / "disk2", mount, other).engine(wid)
    assert other.calls >= 1 and back.search("How tall is the lighthouse?", 1)[0].source == "lighthouse.txt"


def test_a_mount_that_cannot_be_written_is_named(tmp_path, embedder):
    mount = tmp_path / "bucket"
    mount.write_text("a file, not a folder")
    with pytest.raises(ConfigError, match="persistent storage .* cannot be written.*RAGFT_PERSIST_DIR=off"):
        app(tmp_path / "disk", mount, embedder)


def test_a_data_dir_on_the_mount_is_refused(tmp_path, embedder):
    mount = tmp_path / "bucket"
    with pytest.raises(ConfigError, match="is on the persistent storage .* leave RAGFT_DATA_DIR unset"):
        app(mount / "data", mount, embedder)  # the old advice: point RAGFT_DATA_DIR at the mount


@pytest.mark.slow  # a process killed mid-restore
def test_a_restart_killed_while_restoring_restores_again(tmp_path, embedder, monkeypatch):
    mount = tmp_path / "bucket"
    spaces = app(tmp_path / "disk", mount, embedder)
    wid, engine = signed_in(spaces, "gus")
    work(engine, tmp_path)
    spaces.snapshots.save_changed()

    def killed(*_):
        raise KeyboardInterrupt  # the process dies while the chunks go back, before the folder moved in

    monkeypatch.setattr(Snapshots, "_put_back", killed)
    with pytest.raises(KeyboardInterrupt):
        app(tmp_path / "disk2", mount, embedder)
    monkeypatch.undo()
    assert (tmp_path / "disk2" / "workspaces" / f".restoring-{wid}").is_dir()  # the files, not moved in
    back = app(tmp_path / "disk2", mount, embedder).engine(wid)
    assert [d.name for d in back.documents()] == ["lighthouse.txt"] and back.adapters() == ["facts"]
