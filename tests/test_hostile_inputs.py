"""A corpus of hostile and broken inputs through the paths users feed: the Documents path (``Engine.ingest``, what
the UI and the CLI call), the question-set / training-data JSONL loaders, and the chat question. Each input is
either taken as it should be or refused with a message naming it; a refused file leaves the store as it was, and
nothing is written outside the data dir. ``test_the_corpus_is_large_enough`` keeps the count honest."""

from __future__ import annotations

import codecs
import json
import random
import zipfile
from pathlib import Path

import pytest

from ragft.finetune import TrainingDataError, load_qa_file
from ragft.questions import QuestionSetError, load_set

from .test_documents import make_docx, make_pdf

TEXT = "The lighthouse at Skarvik was built in 1871 and stands 31 metres tall."
# random 16-bit code units (no lone surrogates, so they decode): what random bytes after a UTF-16 BOM read as
_UNITS = random.Random(16)
NOISE16 = b"".join(u.to_bytes(2, "little") for u in (_UNITS.randrange(65536) for _ in range(3000))
                   if not 0xD800 <= u < 0xE000)[:3000]
CJK_NOISE = b"".join(_UNITS.randrange(0x4E00, 0xA000).to_bytes(2, "little") for _ in range(1500))


def _bytes(data: bytes, name: str):
    def build(folder: Path) -> tuple[Path, str]:
        path = folder / "upload.bin"  # uploads arrive under temp names; the display name is what the user called it
        path.write_bytes(data)
        return path, name
    return build


def _made(maker, name: str):
    def build(folder: Path) -> tuple[Path, str]:
        return maker(folder / Path(name).name), name
    return build


def _pdf_text(path: Path) -> Path:
    return make_pdf(path, [TEXT])


def _pdf_blank(path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.output(str(path))
    return path


def _pdf_encrypted(path: Path) -> Path:
    from pypdf import PdfReader, PdfWriter

    plain = make_pdf(path.with_suffix(".plain.pdf"), [TEXT])
    writer = PdfWriter(clone_from=PdfReader(str(plain)))
    writer.encrypt(user_password="secret", owner_password="owner", algorithm="RC4-128")
    with path.open("wb") as f:
        writer.write(f)
    plain.unlink()
    return path


def _pdf_truncated(path: Path) -> Path:
    good = make_pdf(path.with_suffix(".good.pdf"), [TEXT])
    path.write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    good.unlink()
    return path


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return path


def _docx_bomb(path: Path) -> Path:
    good = make_docx(path.with_suffix(".good.docx"), [TEXT])
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for item in src.infolist():
            out.writestr(item, src.read(item))
        with out.open("word/media/zeros.bin", "w", force_zip64=True) as big:  # 300 MB of zeros: ~300 KB zipped
            block = b"\0" * 1_000_000
            for _ in range(300):
                big.write(block)
    good.unlink()
    return path


BIG_INLINE = "data:image/png;base64," + "A" * 3_000_000
HTML_HEAVY = (f"<html><head><script>{'var x = 1;' * 200_000}</script></head><body><img src='{BIG_INLINE}'>"
              f"<p>{TEXT}</p></body></html>").encode()
RANDOM = random.Random(3).randbytes(20_000)

# (id, build, expected) — expected: "ok" or the start of the refusal message after "<name>: "
DOCUMENTS = [
    *[(f"zero-byte {s}", _bytes(b"", f"empty{s}"), "the file is empty") for s in (".txt", ".md", ".pdf", ".docx", ".html")],
    ("whitespace only", _bytes(b" \n\t\r\n  \n", "blank.txt"), "no text found"),
    *[(f"binary named {s}", _bytes(RANDOM, f"photo{s}"), "looks like a binary file") for s in (".txt", ".md", ".html",
                                                                                            ".markdown")],
    ("binary without NUL bytes", _bytes(bytes(range(1, 32)) * 500, "control.txt"), "looks like a binary file"),
    ("UTF-8 with a few broken bytes", _bytes(("Ærø ø " + TEXT).encode() + b"\xff\xfe" + "Ålesund.".encode(), "mixed.txt"),
     "ok"),
    ("Latin-1 legacy text", _bytes(("Café " + TEXT).encode("latin-1"), "latin.txt"), "ok"),
    ("cp1252 smart quotes", _bytes(("\u201cQuoted\u201d " + TEXT).encode("cp1252"), "quotes.txt"), "ok"),
    ("UTF-8 with BOM", _bytes(codecs.BOM_UTF8 + TEXT.encode(), "bom8.txt"), "ok"),
    ("UTF-16 LE with BOM", _bytes(TEXT.encode("utf-16"), "u16.txt"), "ok"),
    ("UTF-16 BE with BOM", _bytes(codecs.BOM_UTF16_BE + TEXT.encode("utf-16-be"), "u16be.md"), "ok"),
    ("UTF-16 LE without BOM", _bytes(TEXT.encode("utf-16-le"), "u16nobom.txt"), "ok"),
    ("UTF-16 BE without BOM", _bytes(TEXT.encode("utf-16-be"), "u16benobom.txt"), "ok"),
    ("UTF-32 with BOM", _bytes(TEXT.encode("utf-32"), "u32.txt"), "ok"),
    ("UTF-16 HTML", _bytes(f"<html><body><p>{TEXT}</p></body></html>".encode("utf-16"), "u16.html"), "ok"),
    ("odd-length UTF-16", _bytes(codecs.BOM_UTF16_LE + TEXT.encode("utf-16-le") + b"\x41", "odd.txt"),
     "starts like UTF-16 text but is not valid"),
    ("UTF-16 byte-order mark, then random bytes", _bytes(codecs.BOM_UTF16_LE + NOISE16, "noise16.txt"),
     "not readable text"),
    ("UTF-16 byte-order mark, then random CJK", _bytes(codecs.BOM_UTF16_LE + CJK_NOISE, "cjknoise.md"),
     "not readable text"),
    ("Chinese text in UTF-16", _bytes(("Skarvik 灯塔建于1871年，高31米。" * 30).encode("utf-16"), "skarvik-zh.txt"),
     "ok"),
    ("a good PDF", _made(_pdf_text, "good.pdf"), "ok"),
    ("image-only PDF", _made(_pdf_blank, "scan.pdf"), "no text layer in this PDF"),
    ("encrypted PDF", _made(_pdf_encrypted, "locked.pdf"), "the PDF is password-protected"),
    ("truncated PDF", _made(_pdf_truncated, "cut.pdf"), "cannot read this PDF file"),
    ("PDF header, garbage body", _bytes(b"%PDF-1.7\n" + RANDOM, "fake.pdf"), "cannot read this PDF file"),
    ("a good DOCX", _made(lambda p: make_docx(p, [TEXT]), "good.docx"), "ok"),
    ("DOCX that is a renamed zip", _made(lambda p: _zip(p, {"notes.txt": TEXT.encode()}), "renamed.docx"),
     "a zip archive but not a Word document"),
    ("DOCX zip bomb", _made(_docx_bomb, "bomb.docx"), "over the 200 MB a document may unpack to"),
    ("text file named .docx", _bytes(TEXT.encode(), "notzip.docx"), "not a DOCX file"),
    ("DOCX with empty paragraphs", _made(lambda p: make_docx(p, ["", "  "]), "hollow.docx"), "no text found"),
    ("HTML with scripts and megabytes of inline data", _bytes(HTML_HEAVY, "heavy.html"), "ok"),
    ("HTML with only a script", _bytes(b"<html><script>alert(1)</script></html>", "script.html"), "no text found"),
    ("one 5 MB word", _bytes(b"x" * 5_000_000, "oneword.txt"), "ok"),
    ("name with ../", _bytes(TEXT.encode(), "../../outside.txt"), "ok"),
    ("absolute path as name", _bytes(TEXT.encode(), "/etc/passwd.txt"), "ok"),
    ("Windows path as name", _bytes(TEXT.encode(), "..\\..\\win.txt"), "ok"),
    ("NUL in name", _bytes(TEXT.encode(), "nul\x00byte.txt"), "ok"),
    ("control characters in name", _bytes(TEXT.encode(), "bell\x07esc\x1b.txt"), "ok"),
    ("right-to-left override in name", _bytes(TEXT.encode(), "evil\u202etxt.exe.txt"), "ok"),
    ("300-character name", _bytes(TEXT.encode(), "n" * 300 + ".txt"), "ok"),
    ("name that is only dots", _bytes(TEXT.encode(), ".."), "unsupported file type"),
    ("empty name", _bytes(TEXT.encode(), ""), "unsupported file type"),
    ("unsupported .exe", _bytes(b"MZ" + RANDOM, "setup.exe"), "unsupported file type .exe"),
    ("unsupported .png", _bytes(b"\x89PNG\r\n" + RANDOM, "image.png"), "unsupported file type .png"),
    ("no suffix", _bytes(TEXT.encode(), "README"), "unsupported file type (none)"),
    ("upper-case suffix", _bytes(TEXT.encode(), "LOUD.TXT"), "ok"),
]

JSONL = [
    ("not JSON", b'{"question": "Q?", "answer": "A"}\nnot json at all\n', "line 2: not valid JSON"),
    ("JSON but not an object", b'["Q?", "A"]\n', "line 1: expected a JSON object"),
    ("missing answer", b'{"question": "Q?"}\n', "line 1: missing or empty 'answer'"),
    ("empty file", b"", "no questions"),
    ("binary file", RANDOM, "not a UTF-8 text file"),
    ("100k-character question", json.dumps({"question": "Why? " * 20_000, "answer": "A"}).encode(),
     "line 1: question (99,999 characters) over the 4,000-character limit"),
    ("the same question twice", b'{"question": "Q?", "answer": "A"}\n{"question": "q?", "answer": "B"}\n',
     "line 2: the same question as line 1"),
    ("broken messages", b'{"messages": [{"role": "user"}]}\n', "line 1: 'messages' must be a list"),
    ("over the item limit", b"".join(json.dumps({"question": f"Q{i}?", "answer": "A"}).encode() + b"\n"
                                     for i in range(2001)), "has 2001 questions; the limit is 2000"),
    ("negative chunk", b'{"question": "Q?", "answer": "A", "chunk": -1}\n', "line 1: 'chunk' must be a whole number"),
]


def test_the_corpus_is_large_enough():
    assert len(DOCUMENTS) + len(JSONL) + 2 >= 50  # + the two chat questions below


def _outside(root: Path, data: Path) -> set[Path]:
    return {p for p in root.rglob("*") if data not in p.parents and p != data}


@pytest.fixture
def seeded(fake_engine, tmp_path):
    """An engine whose store already holds one document: nothing a refused input does may change it. The store's
    logic is what is under test, so the embedder is the fake one (a 5 MB word is many chunks to embed)."""
    engine = fake_engine
    seed = tmp_path / "inputs" / "seed.txt"
    seed.parent.mkdir()
    seed.write_text("The seed document is about the Skarvik ferry, which sails at 7 each morning.")
    assert engine.ingest([(seed, "seed.txt")])[0].ok
    return engine


@pytest.mark.parametrize("case, build, expected", DOCUMENTS, ids=[c[0] for c in DOCUMENTS])
def test_documents_path(seeded, tmp_path, case, build, expected):
    store = seeded.store
    before = (store.documents(), store.count())
    outside = _outside(tmp_path, seeded.settings.data_dir)
    path, name = build(tmp_path / "inputs")
    outside |= {path}
    [report] = seeded.ingest([(path, name)])
    if expected == "ok":
        assert report.ok and report.chunks >= 1, report.message
        [doc] = [d for d in store.documents() if d.name == report.name]
        assert "/" not in doc.name and "\\" not in doc.name and len(doc.name) <= 200
        assert all(ord(c) >= 32 for c in doc.name)
        assert "Skarvik" in " ".join(h.text for h in store.chunks(doc.name)) or case == "one 5 MB word"
        assert max(len(h.text) for h in store.chunks(doc.name)) < 20_000  # no chunk outgrows a prompt
    else:
        assert not report.ok and report.status == "refused"
        assert expected in report.message, report.message
        assert report.message.startswith(f"{report.name}: ")
        assert (store.documents(), store.count()) == before  # nothing half-stored, nothing lost
    assert _outside(tmp_path, seeded.settings.data_dir) <= outside | {p.parent for p in outside}


def test_a_file_over_the_limit_is_refused_before_it_is_read(seeded, tmp_path, monkeypatch):
    import dataclasses

    from ragft import documents

    seeded.settings = dataclasses.replace(seeded.settings, max_upload_mb=1)
    big = tmp_path / "big.txt"
    big.write_bytes(TEXT.encode() * 40_000)  # ~2.9 MB
    monkeypatch.setattr(documents, "read_text", lambda *a: pytest.fail("read before the size check"))
    [report] = seeded.ingest([(big, "big.txt")])
    assert not report.ok and "over the 1 MB limit" in report.message


@pytest.mark.slow
def test_thousands_of_tiny_files_in_one_upload(seeded, tmp_path):
    import dataclasses

    seeded.settings = dataclasses.replace(seeded.settings, max_documents=5000)  # the default quota is 1000
    folder = tmp_path / "many"
    folder.mkdir()
    files = []
    for i in range(2000):
        path = folder / f"note{i:04}.txt"
        path.write_text(f"Note {i}: the tide table for day {i} lists high water at {i % 24}:00.")
        files.append((path, path.name))
    reports = seeded.ingest(files)
    assert sum(r.ok for r in reports) == 2000
    assert len(seeded.store.documents()) == 2001


@pytest.mark.parametrize("case, data, expected", JSONL, ids=[c[0] for c in JSONL])
def test_jsonl_loaders(tmp_path, case, data, expected):
    path = tmp_path / "set.jsonl"
    path.write_bytes(data)
    with pytest.raises(QuestionSetError) as caught:
        load_set(path)
    assert expected in str(caught.value) and str(caught.value).startswith("set.jsonl")
    with pytest.raises(TrainingDataError) as caught:  # the Fine-tune tab's loader says the same
        load_qa_file(path)
    assert expected in str(caught.value)


@pytest.mark.parametrize("question, expected", [("Why? " * 20_000, "characters long; the limit is 4,000"),
                                                 ("   \n ", "the question is empty")])
def test_chat_questions(engine, question, expected):
    with pytest.raises(ValueError, match=expected):
        list(engine.ask(question, "plain"))
