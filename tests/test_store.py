"""The store end to end: real files of every format, the real all-MiniLM-L6-v2 embedder, real Chroma (on disk and a
real server). The generator is never loaded: ingest and search do not need it.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragft.config import Settings
from ragft.documents import load_document
from ragft.engine import Engine
from ragft.store import Store, chunk_id, make_client

from .test_documents import make_docx, make_pdf

# One made-up fact per format, and a question only that fact answers.
FACTS = {
    "zorblax.txt": (
        "The moon of Zorblax is named Quib. Quib is a small grey moon covered in craters.",
        "What is the name of the moon of Zorblax?",
    ),
    "glimmerphone.md": (
        "# The glimmerphone\n\nThe glimmerphone was invented by Ada Quill in 1872. It is a musical instrument.",
        "Who invented the glimmerphone?",
    ),
    "cheese.html": (
        "Snorvel cheese is aged for nine years inside volcanic caves on Mount Pell.",
        "How long is snorvel cheese aged?",
    ),
    "bridge.pdf": (
        "The Fenwick Bridge is painted bright orange and crosses the river Ulm.",
        "What colour is the Fenwick Bridge painted?",
    ),
    "arvania.docx": (
        "The capital of the kingdom of Arvania is Tessaly, a city famous for its glass towers.",
        "What is the capital city of Arvania?",
    ),
}


def write_file(folder: Path, name: str, text: str) -> Path:
    """Write ``text`` as a real file of the format ``name``'s suffix says (PDF by fpdf2, DOCX by python-docx)."""
    path = folder / name
    paragraphs = text.split("\n\n")
    if path.suffix == ".pdf":
        return make_pdf(path, paragraphs)
    if path.suffix == ".docx":
        return make_docx(path, paragraphs)
    if path.suffix == ".html":
        body = "".join(f"<p>{p}</p>" for p in paragraphs)
        path.write_text(
            f"<html><head><style>p {{ margin: 0 }}</style><script>track('Tessaly Quib')</script></head>"
            f"<body>{body}</body></html>",
            encoding="utf-8",
        )
        return path
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def ingest_engine(settings, embedder) -> Engine:
    """An engine on this test's data dir with the session's embedder; the generator is never loaded."""
    e = Engine(settings, embedder=embedder)
    return e


@pytest.fixture
def corpus(tmp_path) -> dict[str, Path]:
    folder = tmp_path / "corpus"
    folder.mkdir()
    return {name: write_file(folder, name, text) for name, (text, _) in FACTS.items()}


def files(*paths: Path) -> list[tuple[Path, str]]:
    return [(p, p.name) for p in paths]


def long_text(topic: str, n: int = 12) -> str:
    """Enough sentences for several 20-word chunks."""
    return " ".join(f"Fact {i} about {topic} is that it has property number {i}." for i in range(n))


def stored_ids(store: Store, name: str) -> list[str]:
    return sorted(h.id for h in store.chunks(name))


# --- every format in, the right file out ----------------------------------------------------------------------


def test_multi_format_corpus_finds_the_right_file(ingest_engine, corpus):
    reports = ingest_engine.ingest(files(*corpus.values()))
    assert [(r.name, r.ok, r.status, r.chunks) for r in reports] == [(n, True, "added", 1) for n in FACTS]
    assert [r.message for r in reports] == [f"{n}: added 1 chunks" for n in FACTS]

    store = ingest_engine.store
    assert store.count() == 5
    assert [d.name for d in store.documents()] == sorted(FACTS, key=str.lower)
    for name, (text, question) in FACTS.items():
        hits = store.search(question, k=1)
        assert len(hits) == 1
        assert hits[0].source == name, f"{question!r} found {hits[0].source}, not {name}"
        assert hits[0].chunk == 0
        # The stored text is the parsed text, whatever the format (no markup, no script).
        assert hits[0].text.split() == " ".join(text.split("\n\n")).split()
        assert 0.3 < hits[0].score <= 1.0


def test_search_scores_are_ordered_and_k_is_capped(ingest_engine, corpus):
    ingest_engine.ingest(files(*corpus.values()))
    hits = ingest_engine.search("Who invented the glimmerphone?", k=50)
    assert len(hits) == 5  # only five chunks exist
    assert hits[0].source == "glimmerphone.md"
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert len(ingest_engine.search("Who invented the glimmerphone?")) == 3  # settings.top_k


def test_exact_chunk_text_scores_one(ingest_engine, corpus):
    ingest_engine.ingest(files(corpus["zorblax.txt"]))
    text = FACTS["zorblax.txt"][0]
    assert ingest_engine.search(text, k=1)[0].score == pytest.approx(1.0, abs=1e-3)


def test_search_on_empty_store_or_blank_query(ingest_engine, corpus):
    assert ingest_engine.search("anything at all") == []
    ingest_engine.ingest(files(corpus["zorblax.txt"]))
    assert ingest_engine.search("   ") == []


# --- idempotence, changes, duplicates, deletes ----------------------------------------------------------------


def test_same_file_twice_is_unchanged(ingest_engine, tmp_path):
    f = write_file(tmp_path, "notes.md", long_text("Zorblax"))
    first = ingest_engine.ingest(files(f))[0]
    store = ingest_engine.store
    ids = stored_ids(store, "notes.md")
    added = store.documents()[0].added
    assert first.status == "added" and first.chunks > 1
    assert store.count() == first.chunks

    again = ingest_engine.ingest(files(f))[0]
    assert (again.ok, again.status, again.chunks) == (True, "unchanged", first.chunks)
    assert again.message == f"notes.md: unchanged, already stored ({first.chunks} chunks)"
    assert store.count() == first.chunks
    assert stored_ids(store, "notes.md") == ids
    assert store.documents()[0].added == added  # nothing was rewritten


def test_chunk_ids_are_content_hashes(ingest_engine, tmp_path):
    f = write_file(tmp_path, "notes.txt", long_text("Quib"))
    doc = load_document(f, chunk_words=ingest_engine.settings.chunk_words)
    ingest_engine.ingest(files(f))
    chunks = ingest_engine.store.chunks("notes.txt")
    assert [h.id for h in chunks] == [chunk_id(doc.content_hash, i) for i in range(len(doc.chunks))]
    assert [h.text for h in chunks] == doc.chunks
    assert [h.chunk for h in chunks] == list(range(len(doc.chunks)))


def test_changed_file_replaces_its_chunks_without_stale_ones(ingest_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("RAGFT_CHUNK_WORDS", "20")
    monkeypatch.setenv("RAGFT_CHUNK_OVERLAP_WORDS", "5")
    e = Engine(Settings.from_env(), embedder=ingest_engine.embedder)
    other = write_file(tmp_path, "other.txt", "The moon of Zorblax is named Quib.")
    f = write_file(tmp_path, "notes.txt", long_text("glimmerphones", 12))
    e.ingest(files(other, f))
    old_ids = set(stored_ids(e.store, "notes.txt"))
    assert len(old_ids) > 3

    write_file(tmp_path, "notes.txt", "Snorvel cheese is aged for nine years. It smells of smoke.")
    report = e.ingest(files(f))[0]
    assert (report.ok, report.status, report.chunks) == (True, "replaced", 1)
    assert report.message == "notes.txt: changed, replaced with 1 chunks"

    new = load_document(f, chunk_words=20, overlap_words=5)
    chunks = e.store.chunks("notes.txt")
    assert [h.text for h in chunks] == ["Snorvel cheese is aged for nine years. It smells of smoke."]
    assert [h.id for h in chunks] == [chunk_id(new.content_hash, 0)]
    assert not old_ids & {h.id for h in chunks}
    assert e.store.count() == 2  # other.txt's one chunk + the new one: no stale chunks
    info = {d.name: d for d in e.store.documents()}
    assert (info["notes.txt"].chunks, info["notes.txt"].content_hash) == (1, new.content_hash)
    assert info["other.txt"].chunks == 1
    assert all("glimmerphones" not in h.text for h in e.search("property number of glimmerphones", k=5))


def test_same_content_under_another_name_is_a_duplicate(ingest_engine, tmp_path):
    f = write_file(tmp_path, "original.txt", FACTS["zorblax.txt"][0])
    copy = tmp_path / "copy.txt"
    shutil.copy(f, copy)
    reports = ingest_engine.ingest(files(f, copy))
    assert [(r.name, r.ok, r.status, r.chunks) for r in reports] == [
        ("original.txt", True, "added", 1),
        ("copy.txt", False, "duplicate", 0),
    ]
    assert reports[1].message == "copy.txt: skipped, same content is already stored as original.txt"
    assert ingest_engine.store.count() == 1
    assert [d.name for d in ingest_engine.store.documents()] == ["original.txt"]


def test_same_text_in_another_format_is_a_duplicate(ingest_engine, tmp_path):
    text = FACTS["arvania.docx"][0]
    ingest_engine.ingest(files(write_file(tmp_path, "arvania.txt", text)))
    report = ingest_engine.ingest(files(write_file(tmp_path, "arvania.docx", text)))[0]
    assert (report.ok, report.status, report.message) == (
        False,
        "duplicate",
        "arvania.docx: skipped, same content is already stored as arvania.txt",
    )
    assert ingest_engine.store.count() == 1


def test_delete_removes_only_that_document(ingest_engine, corpus, tmp_path):
    notes = write_file(tmp_path, "notes.txt", long_text("Quib", 30))
    ingest_engine.ingest(files(corpus["zorblax.txt"], corpus["cheese.html"], notes))
    store = ingest_engine.store
    keep = {n: stored_ids(store, n) for n in ("zorblax.txt", "cheese.html")}
    n_notes = len(stored_ids(store, "notes.txt"))
    assert n_notes > 1

    assert store.delete("notes.txt") == n_notes
    assert store.count() == 2
    assert store.chunks("notes.txt") == []
    assert {n: stored_ids(store, n) for n in keep} == keep
    assert [d.name for d in store.documents()] == ["cheese.html", "zorblax.txt"]
    assert {h.source for h in store.search("Fact about Quib property number", k=10)} == {"zorblax.txt", "cheese.html"}
    assert store.delete("notes.txt") == 0
    assert store.delete("never-stored.pdf") == 0

    # Deleted content can come back (its ids are free again).
    assert ingest_engine.ingest(files(notes))[0].status == "added"
    assert store.count() == 2 + n_notes


def test_documents_lists_sizes_and_counts(ingest_engine, corpus):
    ingest_engine.ingest(files(corpus["zorblax.txt"], corpus["bridge.pdf"]))
    docs = {d.name: d for d in ingest_engine.store.documents()}
    for name in ("zorblax.txt", "bridge.pdf"):
        doc = load_document(corpus[name])
        assert (docs[name].chunks, docs[name].chars, docs[name].size_bytes, docs[name].content_hash) == (
            1,
            doc.chars,
            corpus[name].stat().st_size,
            doc.content_hash,
        )
        assert time.strptime(docs[name].added, "%Y-%m-%d %H:%M:%S")


def test_the_document_records_follow_every_change(ingest_engine, corpus, tmp_path):
    """The list comes from one record per document: it must agree with the chunks after add, replace, delete."""
    store = ingest_engine.store

    def from_chunks() -> list:
        return store._rebuild_records()  # the list as the chunks' own metadata gives it

    ingest_engine.ingest(files(corpus["zorblax.txt"], corpus["bridge.pdf"]))
    assert [d.name for d in store.documents()] == ["bridge.pdf", "zorblax.txt"] and store.documents() == from_chunks()
    changed = write_file(tmp_path, "zorblax.txt", "Quib is now a blue moon. " * 300)  # several chunks now
    ingest_engine.ingest(files(changed))
    docs = {d.name: d for d in store.documents()}
    assert docs["zorblax.txt"].chunks == len(store.chunks("zorblax.txt")) > 1
    assert store.documents() == from_chunks()
    store.delete("bridge.pdf")
    assert [d.name for d in store.documents()] == ["zorblax.txt"] and store.records.count() == 1


def test_a_store_from_before_the_records_is_listed_and_gets_them(ingest_engine, corpus):
    store = ingest_engine.store
    ingest_engine.ingest(files(corpus["zorblax.txt"], corpus["cheese.html"]))
    listed = store.documents()
    store.client.delete_collection(store.records.name)  # as an older ragft left it: chunks only
    store.records = store.client.get_or_create_collection(store.records.name, embedding_function=None)
    assert store.documents() == listed
    assert store.records.count() == 2


# --- failures change nothing ----------------------------------------------------------------------------------


def test_bad_files_in_a_batch_are_refused_alone(ingest_engine, corpus, tmp_path):
    ingest_engine.ingest(files(corpus["zorblax.txt"]))
    store = ingest_engine.store
    before = stored_ids(store, "zorblax.txt")

    corrupt = tmp_path / "corrupt.pdf"
    corrupt.write_bytes(b"%PDF-1.7\n" + random.Random(3).randbytes(3000))
    unsupported = tmp_path / "image.png"
    unsupported.write_bytes(b"\x89PNG\r\n\x1a\n")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    broken_docx = tmp_path / "broken.docx"
    broken_docx.write_bytes(b"PK\x03\x04 not really a zip")

    reports = ingest_engine.ingest(
        files(corpus["cheese.html"], corrupt, unsupported, empty, broken_docx, corpus["arvania.docx"])
    )
    assert [(r.name, r.ok, r.status) for r in reports] == [
        ("cheese.html", True, "added"),
        ("corrupt.pdf", False, "refused"),
        ("image.png", False, "refused"),
        ("empty.txt", False, "refused"),
        ("broken.docx", False, "refused"),
        ("arvania.docx", True, "added"),
    ]
    assert reports[1].message.startswith("corrupt.pdf: cannot read this PDF file (")
    assert reports[2].message.startswith("image.png: unsupported file type .png; use one of .txt, .md")
    assert reports[3].message == "empty.txt: the file is empty"
    assert reports[4].message.startswith("broken.docx: not a DOCX file (")
    assert all(r.chunks == 0 for r in reports if not r.ok)

    assert stored_ids(store, "zorblax.txt") == before
    assert [d.name for d in store.documents()] == ["arvania.docx", "cheese.html", "zorblax.txt"]
    assert store.search(FACTS["zorblax.txt"][1], k=1)[0].source == "zorblax.txt"


def test_a_file_over_the_upload_limit_is_refused(ingest_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("RAGFT_MAX_UPLOAD_MB", "1")
    e = Engine(Settings.from_env(), embedder=ingest_engine.embedder)
    big = tmp_path / "big.txt"
    big.write_text("Quib. " * 200_000, encoding="utf-8")  # 1.2 MB
    report = e.ingest(files(big))[0]
    assert (report.ok, report.status) == (False, "refused")
    assert report.message == "big.txt: 1.2 MB is over the 1 MB limit (RAGFT_MAX_UPLOAD_MB)"
    assert e.store.count() == 0


def test_a_failed_replacement_keeps_the_old_version(ingest_engine, tmp_path):
    f = write_file(tmp_path, "notes.txt", FACTS["zorblax.txt"][0])
    ingest_engine.ingest(files(f))
    ids = stored_ids(ingest_engine.store, "notes.txt")
    f.write_bytes(b"\x00\x01binary now")
    report = ingest_engine.ingest(files(f))[0]
    assert (report.ok, report.message) == (False, "notes.txt: looks like a binary file, not text")
    assert stored_ids(ingest_engine.store, "notes.txt") == ids


def test_ingest_reports_progress(ingest_engine, tmp_path, monkeypatch):
    from ragft import store

    monkeypatch.setattr(store, "EMBED_BATCH", 2)  # small files go a group of 2 chunks at a time
    a = write_file(tmp_path, "a.txt", "The moon of Zorblax is named Quib.")
    b = write_file(tmp_path, "b.txt", "Snorvel cheese is aged for nine years.")
    c = write_file(tmp_path, "c.txt", "The Fenwick Bridge is painted teal.")
    seen: list[tuple[float, str]] = []
    reports = ingest_engine.ingest(files(a, b, c), progress=lambda frac, msg: seen.append((round(frac, 3), msg)))
    assert [r.status for r in reports] == ["added"] * 3
    assert seen == [
        (0.0, "reading a.txt"),
        (0.0, "reading b.txt"),
        (0.0, "reading c.txt"),
        (0.667, "embedding 2 files: 2/2 chunks"),
        (1.0, "embedding c.txt: 1/1 chunks"),
        (1.0, "done"),
    ]


def test_a_failed_group_of_small_files_keeps_nothing_of_them_and_the_rest_stays(fake_engine, tmp_path, monkeypatch):
    from ragft import store

    monkeypatch.setattr(store, "EMBED_BATCH", 2)
    a, b, c, d = (write_file(tmp_path, f"{n}.txt", f"Note {n}: the ferry sails at {i}.") for i, n in enumerate("abcd"))
    real, calls = fake_engine.store._write_chunks, []

    def second_fails(*args):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(*args)

    monkeypatch.setattr(fake_engine.store, "_write_chunks", second_fails)
    reports = fake_engine.ingest(files(a, b, c, d))
    assert [(r.name, r.status) for r in reports] == [("a.txt", "added"), ("b.txt", "added"), ("c.txt", "failed"),
                                                    ("d.txt", "failed")]
    assert reports[2].message == ("c.txt: could not be stored (the disk is full); nothing of it "
                                  "was kept")
    assert [x.name for x in fake_engine.store.documents()] == ["a.txt", "b.txt"]
    assert fake_engine.store.count() == 2 and fake_engine.store.recover() == []
    monkeypatch.undo()
    assert [r.status for r in fake_engine.ingest(files(c, d))] == ["added", "added"]  # their quota entries went too


def test_the_same_name_twice_in_one_upload_keeps_the_later_file(fake_engine, tmp_path):
    first = write_file(tmp_path, "first.txt", "The ferry sails at 7.")
    second = write_file(tmp_path, "notes.txt", "The ferry sails at 9.")
    reports = fake_engine.ingest([(first, "notes.txt"), (second, "notes.txt")])
    assert [r.status for r in reports] == ["added", "replaced"]
    assert [h.text for h in fake_engine.store.chunks("notes.txt")] == ["The ferry sails at 9."]
    assert fake_engine.store.count() == 1


# --- persistence ----------------------------------------------------------------------------------------------


def test_store_survives_a_restart(ingest_engine, corpus, settings, embedder):
    from chromadb.api.client import SharedSystemClient

    ingest_engine.ingest(files(*corpus.values()))
    docs_before = ingest_engine.store.documents()
    ids_before = sorted(ingest_engine.store.collection.get(include=[])["ids"])
    client = ingest_engine.store.client
    client.close()
    assert client._identifier not in SharedSystemClient._identifier_to_system  # really stopped, not cached
    assert (settings.chroma_dir / "chroma.sqlite3").is_file()

    reopened = Store(make_client(settings.chroma_dir), embedder, settings.collection)
    try:
        assert reopened.documents() == docs_before
        assert sorted(reopened.collection.get(include=[])["ids"]) == ids_before
        for name, (_, question) in FACTS.items():
            assert reopened.search(question, k=1)[0].source == name
        # And a fresh engine on the same settings sees the same store.
        e = Engine(settings, embedder=embedder)
        assert e.ingest(files(corpus["bridge.pdf"]))[0].status == "unchanged"
    finally:
        reopened.client.close()


# --- a real Chroma server ---------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http_client(port: int):
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.HttpClient(host="127.0.0.1", port=port, settings=ChromaSettings(anonymized_telemetry=False))


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory):
    """A real ``chroma run`` server on a free port, its data in a temp folder; yields the port."""
    chroma = Path(sys.executable).parent / "chroma"
    if not chroma.is_file():
        pytest.fail(f"the chroma server executable is missing: {chroma} (pip install chromadb)")
    path = tmp_path_factory.mktemp("chroma-server")
    port = _free_port()
    log = open(path.parent / "chroma-server.log", "wb")
    proc = subprocess.Popen(
        [str(chroma), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"chroma server exited with {proc.returncode}; see {log.name}")
            try:
                _http_client(port).heartbeat()
                break
            except Exception:
                if time.monotonic() > deadline:
                    pytest.fail(f"chroma server did not answer on port {port} within 60 s; see {log.name}")
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.slow  # a Chroma server process
def test_server_mode_uses_the_same_engine_and_store(chroma_server, monkeypatch, embedder, corpus):
    monkeypatch.setenv("CHROMA_HOST", "127.0.0.1")
    monkeypatch.setenv("CHROMA_PORT", str(chroma_server))
    monkeypatch.setenv("RAGFT_COLLECTION", "server_test")
    settings = Settings.from_env()
    assert (settings.chroma_host, settings.chroma_port) == ("127.0.0.1", chroma_server)

    e = Engine(settings, embedder=embedder)
    reports = e.ingest(files(*corpus.values()))
    assert [(r.name, r.status) for r in reports] == [(n, "added") for n in FACTS]
    assert not settings.chroma_dir.exists()  # nothing went to the on-disk store
    for name, (_, question) in FACTS.items():
        assert e.search(question, k=1)[0].source == name

    # The data is on the server: a second, independent client sees it.
    other = _http_client(chroma_server)
    collection = other.get_collection("server_test")
    assert collection.count() == 5
    assert sorted(m["source"] for m in collection.get(include=["metadatas"])["metadatas"]) == sorted(FACTS)

    # Idempotence and delete go through the server too.
    assert e.ingest(files(corpus["zorblax.txt"]))[0].status == "unchanged"
    assert e.store.delete("cheese.html") == 1
    assert collection.count() == 4
    assert not settings.chroma_dir.exists()
