"""Workspaces: ids that never become paths, one engine (collection, folders, job) per workspace, idle anonymous
workspaces deleted, and, through the real app's API as two clients, nothing of one reachable from the other."""

from __future__ import annotations

import os
import threading
import time

import pytest

from ragft.config import Settings
from ragft.engine import Engine
from ragft.jobs import JobBusyError
from ragft.models import NoAdapterError
from ragft.workspaces import (
    WorkspaceLimitError,
    Workspaces,
    anonymous_id,
    api_id,
    user_id,
)

from .helpers import fake_adapter


@pytest.fixture
def private(data_dir, embedder) -> Workspaces:
    root = Engine(Settings.from_env({"RAGFT_DATA_DIR": str(data_dir), "RAGFT_WORKSPACES": "private",
                                     "RAGFT_WORKSPACE_IDLE_HOURS": "1", "RAGFT_MAX_JOBS": "1"}), embedder=embedder)
    return Workspaces(root)


def trained_adapter(folder, questions=("What is the vault code?",)):
    """An adapter folder with a run record naming the questions it was trained on."""
    return fake_adapter(folder, {"pairs": [{"question": q, "answer": "x"} for q in questions],
                                 "questions": list(questions)})


def test_ids_are_names_never_paths():
    assert user_id("Alice") != user_id("alice") and user_id("Alice").startswith("user-alice-")
    assert user_id("../../etc") .startswith("user-etc-") and "/" not in user_id("a/b") and user_id("") .startswith("user-x-")
    assert anonymous_id("t1") == anonymous_id("t1") != anonymous_id("t2")
    assert api_id("s1") != anonymous_id("s1")
    for wid in (user_id("é/..\\\x00"), anonymous_id("../x"), api_id("..")):
        assert wid.replace("-", "").isalnum()


def test_shared_mode_is_the_data_dir_itself(data_dir):
    root = Engine(Settings.from_env({"RAGFT_DATA_DIR": str(data_dir)}))
    spaces = Workspaces(root)
    assert spaces.mode == "shared" and spaces.enter("s1", "token") == ("", "") and spaces.engine("") is root
    assert Settings.from_env({"SPACE_ID": "me/app"}).workspaces == "private"  # the default on a Space


def made(spaces: Workspaces, session: str, **who) -> Engine:
    """The engine of a page that loaded as ``who`` (a token or a user name) and then wrote something."""
    wid, _ = spaces.enter(session, **who)
    return spaces.engine(wid, create=True, client="127.0.0.1")


def test_each_workspace_has_its_collection_folders_and_adapter_names(private, tmp_path):
    a, token = private.enter("page-a", token="a" * 40)
    b, _ = private.enter("page-b", username="bob")
    assert private.token_ok(token) and a == anonymous_id(token)  # an unsigned token was replaced by a signed one
    assert private.of_session("page-a") == a and private.of_session("page-b") == b == user_id("bob")
    assert private.of_session("client-c") == api_id("client-c")  # an API client: its own session's workspace
    ea, eb = private.engine(a, create=True), private.engine(b, create=True)
    assert ea is private.engine(a) and ea.generator_loaded is None  # one engine each, the models still shared
    assert (ea.settings.data_dir, ea.settings.collection) == (private.folder / a, f"ws-{a}")
    assert (eb.settings.data_dir, eb.settings.collection) == (private.folder / b, f"ws-{b}")
    # same names, different adapters on the base model
    assert (ea.adapter_key("memo"), eb.adapter_key("memo")) == (f"{a}/memo", f"{b}/memo")

    doc = tmp_path / "vault.txt"
    doc.write_text("The Zorblax vault code is 7-4-1-9, set by the engineer Mira Quell.")
    assert ea.ingest([(doc, "vault.txt")])[0].ok
    assert [d.name for d in ea.store.documents()] == ["vault.txt"] and eb.store.documents() == []
    assert eb.search("vault code") == [] and eb.store.delete("vault.txt") == 0
    assert [d.name for d in ea.store.documents()] == ["vault.txt"]

    trained_adapter(ea.settings.adapters_dir / "memo")
    assert ea.adapters() == ["memo"] and eb.adapters() == []
    crafted = f"../../{a}/adapters/memo"
    assert eb.adapter_run("memo") is None and eb.adapter_run(crafted) is None  # never read from another workspace
    assert eb.training_overlap([], crafted) == ([], "")
    with pytest.raises(NoAdapterError, match="no adapter named"):
        eb.delete_adapter(crafted)
    assert (ea.settings.adapters_dir / "memo").is_dir()
    with pytest.raises(Exception, match="no adapter named"):
        eb.use_adapter("memo")


def test_one_job_per_workspace_and_a_limit_across_them(private):
    ea, eb = made(private, "p1"), made(private, "p2")
    release = threading.Event()
    ea.jobs.start("evaluate", "a", lambda state, cancel: release.wait(30))
    with pytest.raises(JobBusyError, match="already going"):
        ea.jobs.start("evaluate", "again", lambda state, cancel: None)
    with pytest.raises(JobBusyError, match="RAGFT_MAX_JOBS"):  # RAGFT_MAX_JOBS=1: the other workspace waits
        eb.jobs.start("evaluate", "b", lambda state, cancel: None)
    release.set()
    assert ea.jobs.wait(30).status == "done"
    eb.jobs.start("evaluate", "b", lambda state, cancel: None)
    assert eb.jobs.wait(30).status == "done"


def test_idle_anonymous_workspaces_are_deleted_with_their_collection(private, tmp_path):
    anon, user = made(private, "p1").workspace, made(private, "p2", username="carol").workspace
    doc = tmp_path / "note.md"
    doc.write_text("# Note\nThe archive opens at dawn.")
    for wid in (anon, user):
        assert private.engine(wid).ingest([(doc, "note.md")])[0].ok
    busy = made(private, "p3").workspace
    release = threading.Event()
    private.engine(busy).jobs.start("evaluate", "long", lambda state, cancel: release.wait(30))
    collections = {c.name for c in private.root.chroma.list_collections()}
    assert f"ws-{anon}" in collections and f"ws-{user}" in collections

    assert private.sweep(now=time.time() + 1800) == []  # half the idle time: all kept
    later = time.time() + 2 * 3600
    assert private.sweep(now=later) == [anon]  # the signed-in user's stays; the busy one waits for its job
    assert anon not in private.ids() and user in private.ids() and busy in private.ids()
    assert f"ws-{anon}" not in {c.name for c in private.root.chroma.list_collections()}
    assert private.of_session("p1") == api_id("p1")  # the page is forgotten: a reload starts a new workspace
    release.set()
    private.engine(busy).jobs.wait(30)
    os.utime(private.folder / busy / ".last-used", (0, 0))
    private._touched.pop(busy)
    assert private.sweep(now=later) == [busy]


def launched(demo, settings: Settings | None = None):
    """Launch ``demo`` as `ragft.ui.launch` does (its options from ``settings``), on a free port, in the background."""
    from ragft.serving.server import free_port
    from ragft.ui import launch_options

    demo.launch(prevent_thread_lock=True, server_port=free_port(), quiet=True,
                **launch_options(settings or Settings.from_env()))
    return demo.local_url


@pytest.mark.slow
def test_two_api_clients_never_reach_each_others_workspace(private, tmp_path):
    """The real app, launched in-process, and two `gradio_client` clients: each has its own session, so its own
    workspace; every endpoint that takes a name, with the other's names and crafted paths."""
    from gradio_client import Client, handle_file

    from ragft.ui import create_ui

    demo = create_ui(private.root)
    url = launched(demo)
    try:
        alice, bob = Client(url, verbose=False), Client(url, verbose=False)
        mine = {}
        for who, client, text in (("alice", alice, "The Zorblax vault code is 7-4-1-9."),
                                  ("bob", bob, "Bob's garden has eleven blue tulips.")):
            path = tmp_path / f"{who}.txt"
            path.write_text(text)
            [report] = client.predict([handle_file(str(path))], api_name="/ingest")
            assert report["message"] == f"{who}.txt: added 1 chunks"
            assert [d["name"] for d in client.predict(api_name="/documents")] == [f"{who}.txt"]  # its own only
            mine[who] = api_id(client.session_hash)

        hits = bob.predict("vault code", 5, api_name="/search")
        assert [h["source"] for h in hits] == ["bob.txt"]
        with pytest.raises(Exception, match="no document named 'alice.txt'"):
            bob.predict("alice.txt", api_name="/delete_document")
        assert "7-4-1-9" in alice.predict("vault code", 5, api_name="/search")[0]["text"]  # nothing of hers went

        trained_adapter(tmp_path / "data" / "workspaces" / mine["alice"] / "adapters" / "memo")
        assert alice.predict(api_name="/adapters") == ["memo"] and bob.predict(api_name="/adapters") == []
        crafted = f"../../{mine['alice']}/adapters/memo"
        for name in ("memo", crafted, "/etc/passwd"):
            with pytest.raises(Exception, match="no adapter named"):
                bob.predict("What is the vault code?", "ft", name, api_name="/ask")
            with pytest.raises(Exception, match="no adapter named|not a valid|question set"):
                bob.predict("facts", name, "ft", api_name="/evaluate")
        for set_name in (f"../../{mine['alice']}/questions/facts", "/etc/passwd"):
            with pytest.raises(Exception, match="question set"):
                bob.predict("qa", set_name, api_name="/train")
        assert (tmp_path / "data" / "workspaces" / mine["alice"] / "adapters" / "memo").is_dir()
        assert sorted(private.ids()) == sorted(mine.values())
    finally:
        demo.close()


@pytest.fixture
def small(data_dir, embedder) -> Workspaces:
    """Room for three workspaces, two new ones an hour from one address."""
    root = Engine(Settings.from_env({"RAGFT_DATA_DIR": str(data_dir), "RAGFT_WORKSPACES": "private",
                                     "RAGFT_MAX_WORKSPACES": "3", "RAGFT_NEW_WORKSPACES_PER_HOUR": "2"}),
                  embedder=embedder)
    return Workspaces(root)


def test_reading_makes_nothing_and_the_first_write_makes_the_workspace(small, tmp_path):
    collections = {c.name for c in small.root.chroma.list_collections()}
    for i in range(50):  # visitors who only look around
        wid, _ = small.enter(f"page-{i}", token="")
        engine = small.engine(wid)
        assert engine is small.blank and engine.documents() == [] and engine.adapters() == []
        assert engine.search("anything") == [] and engine.question_sets() == []
    assert small.ids() == [] and not small._engines
    assert {c.name for c in small.root.chroma.list_collections()} <= collections | {"ws-blank", "ws-blank__docs"}
    assert not (small.folder / "blank").exists()  # the blank workspace's folder is hidden, never counted

    doc = tmp_path / "note.md"
    doc.write_text("The archive opens at dawn.")
    wid, _ = small.enter("writer", token="")
    assert small.engine(wid, create=True, client="10.0.0.1").ingest([(doc, "note.md")])[0].ok
    assert small.ids() == [wid] and small.blank.documents() == []  # the write went to its own workspace


def test_workspaces_are_capped_and_an_address_makes_few_an_hour(small):
    def make(session, client):
        return small.engine(small.enter(session, token="")[0], create=True, client=client)

    make("a1", "10.0.0.1"), make("a2", "10.0.0.1")
    with pytest.raises(WorkspaceLimitError, match="2 new workspaces were made from your address within the hour"):
        make("a3", "10.0.0.1")
    make("b1", "10.0.0.2")
    with pytest.raises(WorkspaceLimitError, match=r"the app is full \(3 workspaces in use\): try again later"):
        make("c1", "10.0.0.3")
    assert len(small.ids()) == 3
    existing = small.of_session("a1")
    assert small.engine(existing, create=True, client="10.0.0.3").workspace == existing  # old ones still open
    small.drop(existing)
    assert make("c1", "10.0.0.3").workspace in small.ids()  # room again


def test_tokens_are_signed_and_a_bound_page_cannot_be_moved(small):
    wid, token = small.enter("victim-page", token="")
    assert small.token_ok(token) and wid == anonymous_id(token)
    assert small.enter("victim-page-reloaded", token=token) == (wid, token)  # a reload finds its workspace again
    attacker, attacker_token = small.enter("attacker-page", token="")
    assert small.enter("victim-page", token=attacker_token) == (wid, "")  # fixation: the page stays where it was
    assert small.of_session("victim-page") == wid != attacker
    nonce = token.split(".")[0]
    forgeries = ("x" * 43, f"{nonce}.{'0' * 32}", f"{nonce}.", token + ".x", "a" * 5000, None, 42, ["a"],
                 {"token": token}, f"{nonce}.{token.split('.')[1].upper()}")
    for i, forged in enumerate(forgeries):
        got, fresh = small.enter(f"forged-{i}", token=forged)
        assert small.token_ok(fresh) and got == anonymous_id(fresh) and got not in (wid, attacker)
    other = Workspaces(Engine(Settings.from_env({"RAGFT_DATA_DIR": str(small.folder.parent / "elsewhere"),
                                                 "RAGFT_WORKSPACES": "private"})))
    assert not other.token_ok(token)  # another server's key signs differently
    assert oct((small.folder / ".token-key").stat().st_mode & 0o777) == "0o600"


def test_unused_engines_leave_memory_and_their_workspace_stays(small, tmp_path):
    engine = small.engine(small.enter("p", token="")[0], create=True, client="c")
    wid = engine.workspace
    assert wid in small._engines
    small.sweep(now=time.time() + 2 * 3600)  # idle, but not for the 24 hours that delete it
    assert wid not in small._engines and wid in small.ids()
    assert small.engine(wid).workspace == wid  # read back from disk


def test_the_client_address_on_a_space_is_the_one_the_proxy_saw(monkeypatch):
    from types import SimpleNamespace

    from ragft.ui.workspace import client_address

    def request(forwarded: str):
        return SimpleNamespace(client=SimpleNamespace(host="10.0.0.7"), headers={"x-forwarded-for": forwarded})

    assert client_address(request("8.8.8.8")) == "10.0.0.7"  # not on a Space: the peer, headers ignored
    monkeypatch.setenv("SPACE_ID", "me/app")
    assert client_address(request("8.8.8.8")) == "8.8.8.8"
    assert client_address(request("1.1.1.1, 9.9.9.9, 10.1.2.3")) == "9.9.9.9"  # a forged first hop is not taken
    assert client_address(request("not-an-ip, 192.168.0.1")) == "10.0.0.7"


def test_a_flood_of_page_loads_from_one_address_binds_no_more_pages(small, monkeypatch):
    monkeypatch.setattr("ragft.workspaces.LOADS_PER_WINDOW", 5)
    kept, _ = small.enter("victim", token="", client="10.0.0.9")
    for i in range(5):
        small.enter(f"flood-{i}", token="", client="10.6.6.6") if i < 5 else None
    with pytest.raises(WorkspaceLimitError, match="too many pages were opened from your address"):
        small.enter("flood-5", token="", client="10.6.6.6")
    assert small.of_session("victim") == kept and small.of_session("flood-5") == api_id("flood-5")
    assert small.enter("victim", token="", client="10.6.6.6") == (kept, "")  # a bound page is not a new load
    assert small.enter("neighbour", token="", client="10.0.0.8")[0]  # other addresses are not held up

