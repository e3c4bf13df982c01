"""A hostile visitor of a public Space, over raw HTTP: the running app (``RAGFT_WORKSPACES=private``, real Chroma,
real models where an answer is asked for), spoken to as ``POST /gradio_api/call/<name>`` with a JSON body and the
page's own events by ``fn_index``, never through `gradio_client` (it uploads local copies of the paths it is
given, which hides path-handling holes). Two or three visitors; each attack is refused with a clear message and
nothing stored changes."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import httpx
import pytest
from gradio.utils import get_upload_folder

from ragft.config import Settings
from ragft.engine import Engine
from ragft.ui.messages import INTERNAL_ERROR, ONE_GENERATION
from ragft.ui.uploads import NOT_UPLOADED

from .test_workspaces import launched

pytestmark = pytest.mark.e2e

VAULT = "The Zorblax vault code is 7-4-1-9, set by the engineer Mira Quell in 1998."


class Visitor:
    """One visitor: a session hash of their choosing, raw HTTP."""

    def __init__(self, url: str, session: str):
        self.url, self.session = url, session
        self.http = httpx.Client(base_url=url, timeout=120)

    def call(self, name: str, *data) -> tuple[bool, object]:
        """(True, result) or (False, the message the visitor reads)."""
        r = self.http.post(f"/gradio_api/call/{name}", json={"data": list(data), "session_hash": self.session})
        if r.status_code != 200:
            return False, r.json()["detail"]
        return self.result(name, r.json()["event_id"])

    def result(self, name: str, event_id: str, outputs: bool = False) -> tuple[bool, object]:
        """The event's result: its one output (an endpoint's), or with ``outputs`` the list of all of them."""
        event = None
        with self.http.stream("GET", f"/gradio_api/call/{name}/{event_id}") as stream:
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event in ("complete", "error"):
                    data = json.loads(line[6:])
                    if event == "complete":
                        return True, data if outputs else data[0]
                    return False, data.get("error") if isinstance(data, dict) else data
        raise AssertionError(f"/{name}: no result")

    def join(self, fn_index: int, data: list) -> httpx.Response:
        """A page event by index, as the browser sends it (hidden from the API page, still reachable)."""
        return self.http.post("/gradio_api/queue/join", json={"data": data, "fn_index": fn_index,
                                                              "session_hash": self.session, "event_data": None,
                                                              "trigger_id": None})

    def load_page(self, token) -> dict:
        """The page-load event (outside the queue): binds this session to the workspace of ``token``, or of the
        user this client's session cookie signed in."""
        config = self.http.get("/config").json()
        fn = next(d["id"] for d in config["dependencies"] if d.get("api_name") == "enter")
        r = self.http.post("/gradio_api/run/predict", json={"data": [token], "fn_index": fn,
                                                            "session_hash": self.session, "event_data": None,
                                                            "trigger_id": None})
        assert r.status_code == 200, r.text
        return r.json()

    def upload(self, name: str, content: bytes) -> str:
        r = self.http.post("/gradio_api/upload", files={"files": (name, content)})
        assert r.status_code == 200, r.text
        return r.json()[0]


def filedata(path: str) -> dict:
    return {"path": path, "meta": {"_type": "gradio.FileData"}}


def private_engine(data_dir, embedder, request, **env) -> Engine:
    values = {"RAGFT_DATA_DIR": str(data_dir), "RAGFT_WORKSPACES": "private", "RAGFT_NEW_WORKSPACES_PER_HOUR": "1000",
              **env}
    return Engine(Settings.from_env(values), embedder=embedder, generator=lambda: request.getfixturevalue("generator"))


@pytest.fixture
def app(data_dir, embedder, request):
    from ragft.ui import create_ui

    demo = create_ui(private_engine(data_dir, embedder, request))
    url = launched(demo)
    yield demo, url
    demo.close()


def fn_with_input(demo, elem_id: str) -> tuple[int, int, int]:
    """(fn_index, position of the input, number of inputs) of the page event that reads component ``elem_id``."""
    for fn_id, fn in demo.fns.items():
        for i, block in enumerate(fn.inputs):
            if getattr(block, "elem_id", None) == elem_id:
                return fn_id, i, len(fn.inputs)
    raise AssertionError(f"no event reads {elem_id}")


def no_server_detail(message) -> None:
    """Nothing of the server's inside in what a visitor reads."""
    text = str(message)
    assert text and text != "None", "a refusal without a message"
    for leak in ("Traceback", "NoneType", "Error:", "/tmp", "/work", "data/", "object is not"):
        assert leak not in text, f"{leak!r} in {text!r}"


def test_server_paths_in_every_file_parameter_are_refused_alike(app, data_dir, tmp_path):
    demo, url = app
    victim, attacker = Visitor(url, "victim-session-0001"), Visitor(url, "attacker-session-01")
    ok, reports = victim.call("ingest", [filedata(victim.upload("vault.txt", VAULT.encode()))])
    assert ok and reports[0]["status"] == "added", reports
    secret = tmp_path / "secret-report.html"
    secret.write_text("<p>Project Nightjar budget: 4.2 million.</p>")
    upload_dir = os.path.dirname(attacker.upload("decoy.txt", f"a decoy of {tmp_path}".encode()))
    link = os.path.join(upload_dir, "link.html")
    os.symlink(secret, link)  # a link planted inside the upload folder, pointing out of it
    victim_file = os.path.join(str(data_dir), "workspaces")
    hostile = [
        str(secret), "/etc/passwd", "/no/such/file.md", str(data_dir / ".." / "data" / "x.md"),
        [str(secret)], ["/no/such/file.md"],
        [filedata(str(secret))], [filedata("/no/such/file.md")], [filedata(link)], [filedata(victim_file)],
        [{"path": str(secret)}], [filedata(upload_dir + "/../../" + str(secret))], [{"path": None}], {},
    ]
    for value in hostile:
        ok, message = attacker.call("ingest", value)
        assert not ok and message == NOT_UPLOADED, (value, message)
    for value in (None, [], 42):
        ok, message = attacker.call("ingest", value)
        assert not ok and "no files given" in message, (value, message)

    # the page's own upload events, called by index with a file from outside the upload folder
    for elem_id in ("upload-files", "eval-upload", "exp-upload", "qa-file"):
        fn_index, position, n = fn_with_input(demo, elem_id)
        for path in (str(secret), "/no/such/file.md"):
            data = [None] * n
            data[position] = [filedata(path)] if elem_id == "upload-files" else filedata(path)
            r = attacker.join(fn_index, data)
            assert r.status_code == 400 and r.json()["detail"] == NOT_UPLOADED, (elem_id, r.text)

    ok, docs = attacker.call("documents")
    assert ok and docs == []
    ok, hits = attacker.call("search", "Nightjar budget", 5)
    assert ok and hits == []
    ok, docs = victim.call("documents")
    assert ok and [d["name"] for d in docs] == ["vault.txt"]


# every numeric and enumerated parameter of every endpoint, out of range or of the wrong kind
OUT_OF_RANGE = [
    ("search", ["vault", 0], "k must be 1..20"),
    ("search", ["vault", -5], "k must be 1..20"),
    ("search", ["vault", 25], "k must be 1..20"),
    ("search", ["vault", 2.5], "k must be a whole number 1..20"),
    ("search", ["vault", "3"], "k must be a whole number 1..20"),
    ("search", [None, 3], "query must be text"),
    ("ask", ["Who?", "everything", "", 0, 0], "mode must be one of plain, rag, ft, rag+ft, all"),
    ("ask", ["Who?", "all", "", -1, 0], "max new tokens must be 0..2048"),
    ("ask", ["Who?", "all", "", 100000, 0], "max new tokens must be 0..2048"),
    ("ask", ["Who?", "all", "", 0, 25], "top k must be 0..20"),
    ("ask", ["Who?", "all", "", 0, -5], "top k must be 0..20"),
    ("ask", [None, "all", "", 0, 0], "question must be text"),
    ("ask", ["Who?", "all", ["x"], 0, 0], "adapter must be text"),
    ("ask", ["", "all", "", 0, 0], "the question is empty"),
    ("ask", ["Why? " * 2000, "all", "", 0, 0], "the question is 9,999 characters long"),
    ("train", ["docs", "", "a", 100000, 16, 1e-3, 4], "max steps would take 100000 steps; this app allows 1..2000"),
    ("train", ["docs", "", "a", 200000, 16, 1e-3, 4], "max steps must be 0..100000"),
    ("train", ["docs", "", "a", -1, 16, 1e-3, 4], "max steps must be 0..100000"),
    ("train", ["docs", "", "a", 5, 0, 1e-3, 4], "rank must be 1..256"),
    ("train", ["docs", "", "a", 5, 100000, 1e-3, 4], "rank must be 1..256"),
    ("train", ["docs", "", "a", 5, 16, 0, 4], "learning rate must be in (0, 1]"),
    ("train", ["docs", "", "a", 5, 16, 50, 4], "learning rate must be in (0, 1]"),
    ("train", ["docs", "", "a", 5, 16, 1e-3, 0], "batch size must be 1..256"),
    ("train", ["docs", "", "a", 5, 16, 1e-3, 10000], "batch size must be 1..256"),
    ("train", ["evil", "", "a", 5, 16, 1e-3, 4], "unknown data source 'evil'; use docs, qa or raft"),
    ("train", ["qa", "/etc/passwd", "a", 5, 16, 1e-3, 4], "question set"),
    ("train", ["docs", "", "../../x", 5, 16, 1e-3, 4], "adapter name"),
    ("evaluate", ["facts", "", "bogus"], "variants must be some of plain, rag, ft, rag+ft"),
    ("evaluate", ["facts", "", ""], "variants must be some of plain, rag, ft, rag+ft"),
    ("evaluate", [["x"], "", "plain"], "question set must be text"),
    ("evaluate", ["/etc/passwd", "", "plain"], "question set"),
    ("experiment", ["huge", 0, "", "qa", 0, "", "e", ""], "preset must be one of quick, thorough"),
    ("experiment", ["quick", -1, "", "qa", 0, "", "e", ""], "questions must be 0..500"),
    ("experiment", ["quick", 501, "", "qa", 0, "", "e", ""], "questions must be 0..500"),
    ("experiment", ["quick", 0, "sideways", "qa", 0, "", "e", ""], "split must be one of heldout, paraphrase"),
    ("experiment", ["quick", 0, "", "evil", 0, "", "e", ""], "training recipes must be some of qa, raft, docs"),
    ("experiment", ["quick", 0, "", "qa", -1, "", "e", ""], "steps must be 0..10000"),
    ("experiment", ["quick", 0, "", "qa", 10001, "", "e", ""], "steps must be 0..10000"),
    ("experiment", ["quick", 0, "", "qa", 0, "", "../e", ""], "experiment name"),
    ("experiment", ["quick", 0, "", "qa", 0, "", "e", "no bar here"], "your questions, line 1"),
    ("experiment", ["quick", 0, "", "qa", 0, "", "e", ["Q? | A"]], "your questions must be text"),
    ("delete_document", [None], "name must be text"),
    ("delete_document", [], "/delete_document takes 1 value(s) (name); 0 sent"),
    ("search", ["vault", 3, 4], "/search takes 2 value(s) (query, k); 3 sent"),
    ("delete_document", ["../../etc/passwd"], "no document named"),
]


def test_every_parameter_out_of_range_gets_a_message_naming_what_is_allowed(app):
    _, url = app
    visitor = Visitor(url, "ranges-session-0001")
    ok, reports = visitor.call("ingest", [filedata(visitor.upload("vault.txt", VAULT.encode()))])
    assert ok, reports
    for name, data, expected in OUT_OF_RANGE:
        ok, message = visitor.call(name, *data)
        assert not ok and expected in str(message), (name, data, message)
        no_server_detail(message)
    ok, status = visitor.call("job_status")
    assert ok and status["status"] == "idle"  # nothing was started by any of them
    ok, docs = visitor.call("documents")
    assert ok and [d["name"] for d in docs] == ["vault.txt"]


def engine_spaces(engine) -> list[str]:
    """The workspaces' engines held in memory (`Workspaces` is reached through the page's engine stand-in)."""
    import gc

    from ragft.workspaces import Workspaces

    return [w for obj in gc.get_objects() if isinstance(obj, Workspaces) and obj.root is engine for w in obj._engines]


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024


def test_read_only_visitors_make_nothing_and_workspaces_are_capped(data_dir, embedder, request):
    from ragft.ui import create_ui

    engine = private_engine(data_dir, embedder, request, RAGFT_MAX_WORKSPACES="3",
                            RAGFT_NEW_WORKSPACES_PER_HOUR="2", RAGFT_MAX_SESSIONS="40")
    demo = create_ui(engine)
    url = launched(demo, engine.settings)
    try:
        folder = data_dir / "workspaces"
        collections = {c.name for c in engine.chroma.list_collections()}
        Visitor(url, "warm-up-session-01").call("documents")
        before = rss_mb()
        for i in range(200):
            v = Visitor(url, f"reader-{i:04d}-session")
            v.load_page("")
            for name, data in (("documents", []), ("adapters", []), ("search", ["vault", 3]), ("job_status", []),
                               ("cancel", []), ("delete_document", ["x.txt"])):
                ok, got = v.call(name, *data)
                assert ok or "no document named" in got, (name, got)
            v.http.close()
        grown = rss_mb() - before
        assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == []
        assert {c.name for c in engine.chroma.list_collections()} <= collections | {"ws-blank", "ws-blank__docs"}
        assert len(demo.state_holder.session_data) <= 40 and not engine_spaces(engine)
        assert grown < 40, f"200 read-only visitors took {grown:.0f} MB"  # ~0.4 MB each if Gradio kept them all

        # writers: two new workspaces an hour from one address, three in all
        content = VAULT.encode()
        for i in range(2):
            v = Visitor(url, f"writer-{i}-session-x")
            ok, got = v.call("ingest", [filedata(v.upload("vault.txt", content))])
            assert ok and got[0]["ok"], got
        v = Visitor(url, "writer-2-session-x")
        ok, got = v.call("ingest", [filedata(v.upload("vault.txt", content))])
        assert not ok and got == ("2 new workspaces were made from your address within the hour: try again later")
        assert len([p for p in folder.iterdir() if not p.name.startswith(".")]) == 2
    finally:
        demo.close()


def test_the_app_full_message_once_the_cap_is_reached(data_dir, embedder, request):
    from ragft.ui import create_ui

    demo = create_ui(private_engine(data_dir, embedder, request, RAGFT_MAX_WORKSPACES="2"))
    url = launched(demo)
    try:
        for i in range(3):
            v = Visitor(url, f"filler-{i}-session-x")
            ok, got = v.call("ingest", [filedata(v.upload("note.md", f"Note {i}: the tide turns at dawn.".encode()))])
            if i < 2:
                assert ok and got[0]["ok"], got
            else:
                assert not ok and got == "the app is full (2 workspaces in use): try again later"
    finally:
        demo.close()


def test_sessions_cannot_be_re_pointed_and_tokens_cannot_be_forged(app, data_dir):
    demo, url = app
    victim, attacker = Visitor(url, "victim-page-session1"), Visitor(url, "attacker-page-sess1")
    victim_token = victim.load_page("")["data"][0]
    ok, _ = victim.call("ingest", [filedata(victim.upload("vault.txt", VAULT.encode()))])
    assert ok
    attacker_token = attacker.load_page("")["data"][0]
    assert attacker_token != victim_token and "." in attacker_token

    # fixation: the load event called again with the victim's session and the attacker's token
    replay = attacker.http.post("/gradio_api/run/predict", json={"data": [attacker_token], "fn_index": 0,
                                                                 "session_hash": victim.session, "event_data": None,
                                                                 "trigger_id": None}).json()
    assert replay["data"][0] == {"__type__": "update"}  # the token is not changed, the page not moved
    ok, docs = victim.call("documents")
    assert ok and [d["name"] for d in docs] == ["vault.txt"]
    ok, docs = attacker.call("documents")
    assert ok and docs == []

    # forged and malformed tokens: each page gets a fresh, signed token and an empty workspace
    config_secret = attacker.http.get("/config").json()
    public = re.search(r'"secret":\s*"([0-9a-f]+)"', json.dumps(config_secret))
    nonce = victim_token.split(".")[0]
    forged = ["x" * 43, f"{nonce}.{'0' * 32}", victim_token.upper(), f"{nonce}.", None, 12345, ["a"], "a" * 10_000]
    if public:  # a token signed with the secret Gradio publishes in /config
        import hashlib
        import hmac
        forged.append(f"{nonce}x.{hmac.new(public.group(1).encode(), (nonce + 'x').encode(), hashlib.sha256).hexdigest()[:32]}")
    for i, token in enumerate(forged):
        page = Visitor(url, f"forger-{i}-session-x")
        issued = page.load_page(token)["data"][0]
        assert isinstance(issued, str) and issued not in (victim_token, token), (token, issued)
        ok, docs = page.call("documents")
        assert ok and docs == []

    # the victim, reloading with its token, is back in its workspace
    reload = Visitor(url, "victim-page-session2")
    assert reload.load_page(victim_token)["data"][0] == victim_token
    ok, docs = reload.call("documents")
    assert ok and [d["name"] for d in docs] == ["vault.txt"]


@pytest.mark.slow
def test_one_generation_per_visitor_and_another_visitor_s_job_is_out_of_reach(app):
    demo, url = app
    flooder, other = Visitor(url, "flooder-session-0001"), Visitor(url, "other-visitor-sess1")
    for v in (flooder, other):
        ok, _ = v.call("ingest", [filedata(v.upload("vault.txt", VAULT.encode()))])
        assert ok
    body = {"data": ["What is the vault code?", "all", "", 16, 1], "session_hash": flooder.session}
    answers = [flooder.http.post("/gradio_api/call/ask", json=body) for _ in range(20)]
    admitted = [r.json()["event_id"] for r in answers if r.status_code == 200]
    refused = [r.json()["detail"] for r in answers if r.status_code != 200]
    assert len(admitted) == 1 and refused == [ONE_GENERATION] * 19
    # the chat's own generate event counts as the same one generation
    chat_fn = next(i for i, fn in demo.fns.items() if fn.concurrency_id == "generate" and fn.api_name != "ask")
    assert flooder.join(chat_fn, [None] * len(demo.fns[chat_fn].inputs)).json()["detail"] == ONE_GENERATION
    started = time.time()
    ok, got = other.call("ask", "What is the vault code?", "rag", "", 16, 1)  # another visitor is not refused
    assert ok and "RAG" in got, got
    ok, got = flooder.result("ask", admitted[0])
    assert ok and set(got) == {"Plain", "RAG", "Fine-tuned", "RAG + Fine-tuned"}, got
    assert time.time() - started < 300

    # a training run of one visitor: another sees and cancels nothing of it
    ok, name = flooder.call("train", "docs", "", "vault", 2, 4, 1e-3, 1)
    assert ok and name == "vault-v1", name
    ok, status = other.call("job_status")
    assert ok and status["status"] == "idle" and status["name"] == ""
    ok, cancelled = other.call("cancel")
    assert ok and cancelled is False
    ok, status = flooder.call("job_status")
    assert ok and status["kind"] == "train" and status["name"] == "vault-v1"
    deadline = time.time() + 600
    while status["status"] not in ("done", "failed", "cancelled") and time.time() < deadline:
        time.sleep(2)
        ok, status = flooder.call("job_status")
    assert status["status"] == "done", status
    ok, adapters = other.call("adapters")
    assert ok and adapters == []
    # an unknown event id reads nothing
    try:
        text = other.http.get("/gradio_api/call/ask/0123456789abcdef0123456789abcdef", timeout=10).text
    except httpx.HTTPError:  # Gradio closes the stream of an event it does not hold
        text = ""
    assert "7-4-1-9" not in text


def test_an_unexpected_error_reaches_the_visitor_as_one_line(app, monkeypatch):
    _, url = app
    from ragft.engine import Engine as E

    def broken(self, *args, **kwargs):
        raise TypeError("'NoneType' object is not iterable at /srv/secret/path")

    monkeypatch.setattr(E, "documents", broken)
    ok, message = Visitor(url, "unlucky-session-001").call("documents")
    assert not ok and message == INTERNAL_ERROR


def test_a_component_or_a_path_inside_a_chat_message_opens_no_server_file(app, tmp_path):
    """Gradio builds a component a Chatbot message names from the caller's values (a file, an image, audio by
    path); the page's chat events take the four panes' histories, one of them outside the queue."""
    from ragft.ui.uploads import NOT_A_COMPONENT

    demo, url = app
    secret = tmp_path / "token-key"
    secret.write_text("0123456789abcdef-secret")
    attacker = Visitor(url, "chat-attacker-00001")
    add_user = next(i for i, fn in demo.fns.items() if fn.name == "add_user" and not fn.queue)
    respond = next(i for i, fn in demo.fns.items() if fn.name == "respond")
    hostile = [
        ({"type": "component", "component": "file", "value": {"path": str(secret)}, "constructor_args": {},
          "props": {}}, NOT_A_COMPONENT),
        ({"type": "component", "component": "image", "value": {"url": "data:image/png;base64,AAAA"},
          "constructor_args": {}, "props": {}}, NOT_A_COMPONENT),
        ({"type": "file", "file": {"path": str(secret)}}, NOT_UPLOADED),
    ]
    for block, message in hostile:
        history = [{"role": "user", "content": [block]}]
        r = attacker.http.post("/gradio_api/run/predict", json={
            "data": ["hi", history, [], [], []], "fn_index": add_user, "session_hash": attacker.session,
            "event_data": None, "trigger_id": None})
        assert r.status_code != 200 and message in r.text, r.text
        joined = attacker.join(respond, [None, None, 16, 0, 1, history, [], [], []])
        assert joined.status_code == 400 and joined.json()["detail"] == message
    assert not any(p.name == "token-key" for p in Path(get_upload_folder()).rglob("*"))  # nothing was copied


def test_a_question_set_too_long_is_refused_before_it_is_written(app, data_dir):
    demo, url = app
    visitor = Visitor(url, "set-writer-0000001")
    ok, _ = visitor.call("ingest", [filedata(visitor.upload("vault.txt", VAULT.encode()))])
    assert ok
    save = next(i for i, fn in demo.fns.items() if fn.name == "save")
    headers = ["keep", "question", "answer", "choices", "source", "chunk"]
    rows = [[True, f"Q{i}?", f"A{i}", "", "", ""] for i in range(2001)]
    r = visitor.join(save, [{"headers": headers, "data": rows}, None, "big", "Save as one set"])
    assert r.status_code == 200, r.text
    ok, outputs = visitor.result("save", r.json()["event_id"], outputs=True)
    assert ok and any("the set has 2001 questions; the limit is 2000" in str(o) for o in outputs), outputs
    assert not list((data_dir / "workspaces").glob("*/questions/big*.jsonl"))
