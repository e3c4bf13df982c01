"""File -> text -> chunks, on real files of every supported format (PDF and DOCX made here by real writers)."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

import pytest

from ragft.documents import (
    SUPPORTED_SUFFIXES,
    EmptyDocumentError,
    FileTooLargeError,
    UnreadableDocumentError,
    UnsupportedFileError,
    chunk_text,
    load_document,
    read_text,
    split_sentences,
)


def make_pdf(path: Path, paragraphs: list[str]) -> Path:
    """A real PDF written by fpdf2 (a test-only dependency, see requirements-dev.txt)."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=12)
    for text in paragraphs:
        pdf.multi_cell(0, 8, text)
        pdf.ln(8)
    pdf.output(str(path))
    return path


def make_docx(path: Path, paragraphs: list[str], table: list[list[str]] | None = None) -> Path:
    """A real DOCX written by python-docx."""
    import docx

    document = docx.Document()
    for text in paragraphs:
        document.add_paragraph(text)
    if table:
        t = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, cell in enumerate(row):
                t.cell(r, c).text = cell
    document.save(str(path))
    return path


def words(text: str) -> list[str]:
    return text.split()


# --- reading each format -------------------------------------------------------------------------------------


def test_txt_is_read_and_whitespace_normalised(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("\ufeffFirst   line.\t Tabs too.\r\n\r\n\r\n\nSecond paragraph.\n", encoding="utf-8")
    # The BOM goes, runs of spaces/tabs/CRs become one space, 2+ blank lines become one paragraph break.
    assert read_text(f) == "First line. Tabs too.\n\nSecond paragraph."


def test_latin1_txt_falls_back_instead_of_failing(tmp_path):
    f = tmp_path / "old.txt"
    f.write_bytes("Café in Zürich.".encode("latin-1"))
    assert read_text(f) == "Café in Zürich."


def test_md_is_read_as_plain_text(tmp_path):
    f = tmp_path / "readme.md"
    f.write_text("# Title\n\nSome *emphasis* here.\n\n- item one\n- item two\n", encoding="utf-8")
    assert read_text(f) == "# Title\n\nSome *emphasis* here.\n\n- item one\n- item two"


def test_html_drops_script_style_and_keeps_visible_text(tmp_path):
    f = tmp_path / "page.html"
    f.write_text(
        "<html><head><title>Zorblax facts</title><style>body { color: red; }</style>"
        "<script>var secret = 'do not index';</script></head>"
        "<body><h1>Moons</h1><p>The moon of Zorblax is named Quib.</p>"
        "<noscript>Enable JavaScript</noscript><template><p>hidden template</p></template></body></html>",
        encoding="utf-8",
    )
    text = read_text(f)
    assert words(text) == ["Zorblax", "facts", "Moons", "The", "moon", "of", "Zorblax", "is", "named", "Quib."]
    for gone in ("color", "secret", "do not index", "Enable JavaScript", "hidden template"):
        assert gone not in text


def test_htm_suffix_is_html_too(tmp_path):
    f = tmp_path / "page.HTM"
    f.write_text("<p>Upper-case suffix <b>works</b>.</p><script>x()</script>", encoding="utf-8")
    assert words(read_text(f)) == ["Upper-case", "suffix", "works", "."]


def test_real_pdf(tmp_path):
    f = make_pdf(
        tmp_path / "moons.pdf",
        ["The moon of Zorblax is named Quib.", "Quib orbits Zorblax twice a day."],
    )
    assert f.read_bytes().startswith(b"%PDF-")
    text = read_text(f)
    assert words(text) == words("The moon of Zorblax is named Quib. Quib orbits Zorblax twice a day.")


def test_real_pdf_with_several_pages_keeps_all_pages(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=12)
    for n in range(3):
        pdf.add_page()
        pdf.cell(0, 10, f"Page number {n} speaks.")
    f = tmp_path / "pages.pdf"
    pdf.output(str(f))
    assert read_text(f) == "Page number 0 speaks.\n\nPage number 1 speaks.\n\nPage number 2 speaks."


def test_real_docx_paragraphs_and_tables(tmp_path):
    f = make_docx(
        tmp_path / "report.docx",
        ["The glimmerphone was invented in 1872.", "", "It sings in B flat."],
        table=[["inventor", "year"], ["Ada Quill", "1872"]],
    )
    assert read_text(f) == (
        "The glimmerphone was invented in 1872.\n\nIt sings in B flat.\n\ninventor | year\n\nAda Quill | 1872"
    )


def test_name_decides_the_format_not_the_temp_path(tmp_path):
    # Uploads arrive under temp names; the user's name carries the suffix.
    f = tmp_path / "upload-1234"
    f.write_text("<p>Hello <i>there</i>.</p><script>nope()</script>", encoding="utf-8")
    assert words(read_text(f, "page.html")) == ["Hello", "there", "."]
    doc = load_document(f, "some/dir/page.html")
    assert doc.name == "page.html"


# --- errors: each says what went wrong and what to do ---------------------------------------------------------


@pytest.mark.parametrize("name", ["image.png", "archive.tar.gz", "Makefile", "sheet.xlsx", "f.xyz"])
def test_unsupported_suffix_names_the_supported_types(tmp_path, name):
    f = tmp_path / name
    f.write_text("some text", encoding="utf-8")
    with pytest.raises(UnsupportedFileError) as err:
        load_document(f)
    message = str(err.value)
    suffix = Path(name).suffix or "(none)"
    assert message == f"{name}: unsupported file type {suffix}; use one of {', '.join(SUPPORTED_SUFFIXES)}"
    for s in (".txt", ".md", ".pdf", ".docx", ".html"):
        assert s in message


@pytest.mark.parametrize("name", ["empty.txt", "empty.md", "empty.pdf", "empty.docx", "empty.html"])
def test_zero_byte_file_is_empty(tmp_path, name):
    f = tmp_path / name
    f.write_bytes(b"")
    with pytest.raises(EmptyDocumentError, match=f"^{name}: the file is empty$"):
        load_document(f)


@pytest.mark.parametrize(
    "name, content",
    [
        ("blank.txt", b"   \n\n\t \r\n  "),
        ("blank.html", b"<html><head><script>alert(1)</script></head><body>  </body></html>"),
    ],
)
def test_file_without_text_is_empty(tmp_path, name, content):
    f = tmp_path / name
    f.write_bytes(content)
    with pytest.raises(EmptyDocumentError, match=f"^{name}: no text found in this file$"):
        load_document(f)


def test_pdf_without_text_is_empty(tmp_path):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()  # a blank page: a valid PDF with nothing to extract
    f = tmp_path / "blank.pdf"
    pdf.output(str(f))
    with pytest.raises(EmptyDocumentError, match="^blank.pdf: no text layer in this PDF \\(scanned pages"):
        load_document(f)


def test_docx_without_text_is_empty(tmp_path):
    f = make_docx(tmp_path / "blank.docx", ["", "   "])
    with pytest.raises(EmptyDocumentError, match="^blank.docx: no text found in this file$"):
        load_document(f)


@pytest.mark.parametrize("suffix, message", [(".pdf", "cannot read this PDF file \\("),
                                             (".docx", "not a DOCX file \\(a DOCX is a zip archive")])
def test_corrupt_binary_is_unreadable(tmp_path, suffix, message):
    f = tmp_path / f"broken{suffix}"
    f.write_bytes(random.Random(7).randbytes(4096))
    with pytest.raises(UnreadableDocumentError, match=f"^broken{suffix}: {message}"):
        load_document(f)


def test_truncated_pdf_is_unreadable(tmp_path):
    good = make_pdf(tmp_path / "good.pdf", ["Some text that will be cut off."])
    f = tmp_path / "cut.pdf"
    f.write_bytes(good.read_bytes()[:40])
    with pytest.raises(UnreadableDocumentError, match="^cut.pdf: cannot read this PDF file"):
        load_document(f)


def test_binary_with_text_suffix_is_unreadable(tmp_path):
    f = tmp_path / "program.txt"
    f.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00" + bytes(range(256)))
    with pytest.raises(UnreadableDocumentError, match="^program.txt: looks like a binary file, not text$"):
        load_document(f)


def test_missing_file_is_unreadable(tmp_path):
    with pytest.raises(UnreadableDocumentError, match="^gone.txt: file not found$"):
        load_document(tmp_path / "gone.txt")


def test_too_large_is_refused_before_parsing(tmp_path):
    f = tmp_path / "big.pdf"  # not even a valid PDF: the size check comes first
    f.write_bytes(b"x" * 2_500_001)
    with pytest.raises(FileTooLargeError) as err:
        load_document(f, max_bytes=2_000_000)
    assert str(err.value) == "big.pdf: 2.5 MB is over the 2 MB limit (RAGFT_MAX_UPLOAD_MB)"


def test_exactly_at_the_limit_is_fine(tmp_path):
    f = tmp_path / "edge.txt"
    f.write_bytes(b"a" * 99 + b".")
    assert load_document(f, max_bytes=100).chunks == ["a" * 99 + "."]


# --- Document -------------------------------------------------------------------------------------------------


def test_load_document_fields(tmp_path):
    f = tmp_path / "fact.txt"
    f.write_text("  The moon of Zorblax is named Quib.  \n", encoding="utf-8")
    doc = load_document(f)
    text = "The moon of Zorblax is named Quib."
    assert doc.name == "fact.txt"
    assert doc.content_hash == hashlib.sha256(text.encode("utf-8")).hexdigest()
    assert doc.chunks == [text]
    assert doc.size_bytes == len("  The moon of Zorblax is named Quib.  \n")
    assert doc.chars == len(text)


def test_same_text_in_different_formats_has_the_same_hash(tmp_path):
    sentence = "The moon of Zorblax is named Quib."
    txt = tmp_path / "a.txt"
    txt.write_text(sentence, encoding="utf-8")
    html = tmp_path / "a.html"
    html.write_text(f"<p>{sentence}</p><script>x()</script>", encoding="utf-8")
    docx_file = make_docx(tmp_path / "a.docx", [sentence])
    hashes = {load_document(p).content_hash for p in (txt, html, docx_file)}
    assert hashes == {hashlib.sha256(sentence.encode()).hexdigest()}


def test_crlf_and_lf_copies_have_the_same_hash(tmp_path):
    text = "Line one.\nLine two.\n\nNew paragraph.\n"
    lf = tmp_path / "lf.txt"
    lf.write_bytes(text.encode())
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(text.replace("\n", "\r\n").encode())
    assert read_text(crlf) == read_text(lf) == "Line one.\nLine two.\n\nNew paragraph."
    assert load_document(crlf).content_hash == load_document(lf).content_hash


def test_load_document_uses_chunk_settings(tmp_path):
    f = tmp_path / "long.md"
    f.write_text(" ".join(f"Sentence number {i} is here." for i in range(30)), encoding="utf-8")
    doc = load_document(f, chunk_words=20, overlap_words=5)
    assert len(doc.chunks) > 1
    assert all(len(c.split()) <= 20 for c in doc.chunks)
    # 5-word sentences, 20-word chunks, 5-word overlap: four sentences a chunk, the last one repeated next time.
    assert doc.chunks[0] == " ".join(f"Sentence number {i} is here." for i in range(4))
    assert doc.chunks[1] == " ".join(f"Sentence number {i} is here." for i in range(3, 7))
    assert doc.chunks[-1].endswith("Sentence number 29 is here.")
    assert len(doc.chunks) == 10


# --- sentences and chunks -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, sentences",
    [
        ("One. Two! Three? Four", ["One.", "Two!", "Three?", "Four"]),
        ('He said "go." Then left.', ['He said "go."', "Then left."]),
        ("(See fig. 2.) Done!\") Next", ["(See fig.", "2.)", 'Done!")', "Next"]),
        ("No stop here\n\nnew paragraph", ["No stop here", "new paragraph"]),
        ("Line one\nstill one. Two.", ["Line one\nstill one.", "Two."]),
        ("version 1.5 is out.", ["version 1.5 is out."]),
        ("   ", []),
    ],
)
def test_split_sentences(text, sentences):
    assert split_sentences(text) == sentences


@pytest.mark.parametrize(
    "text, chunk_words, overlap_words, chunks",
    [
        # The docstring example: the last sentence of a chunk is repeated at the start of the next.
        ("One two. Three four. Five six.", 4, 2, ["One two. Three four.", "Three four. Five six."]),
        # No overlap: every sentence appears exactly once.
        ("One two. Three four. Five six.", 4, 0, ["One two. Three four.", "Five six."]),
        # Everything fits: one chunk.
        ("Hi there. How are you? Fine.", 120, 20, ["Hi there. How are you? Fine."]),
        # A sentence longer than a chunk is cut into word windows.
        ("One two three four five six seven.", 3, 1, ["One two three", "four five six", "seven."]),
        # A sentence longer than the overlap is not carried over (whole sentences only).
        ("a b c. d e f g h i j. k l.", 4, 2, ["a b c.", "d e f g", "h i j.", "k l."]),
        # Overlap is carried only while it leaves room for the next sentence.
        ("A b c. D e f. G h i. J k l.", 6, 3, ["A b c. D e f.", "D e f. G h i.", "G h i. J k l."]),
        ("A b. C d e f g.", 6, 2, ["A b.", "C d e f g."]),
        # Several short sentences can be carried.
        ("A. B. C. D. E.", 3, 2, ["A. B. C.", "B. C. D.", "C. D. E."]),
        # Paragraphs without a full stop still split at the blank line, then pack together.
        ("Title\n\nBody text here.", 120, 20, ["Title\nBody text here."]),
        ("", 10, 2, []),
    ],
)
def test_chunk_text_cases(text, chunk_words, overlap_words, chunks):
    assert chunk_text(text, chunk_words, overlap_words) == chunks


@pytest.mark.parametrize("chunk_words, overlap_words", [(20, 0), (20, 5), (37, 10), (120, 20), (50, 25)])
def test_chunk_sizes_respected_and_nothing_lost(chunk_words, overlap_words):
    rng = random.Random(chunk_words * 100 + overlap_words)
    sentences = [
        " ".join(f"w{i}_{j}" for j in range(rng.choice([1, 3, 8, 15, 40, 90]))) + "." for i in range(60)
    ]
    chunks = chunk_text(" ".join(sentences), chunk_words, overlap_words)
    assert all(1 <= len(c.split()) <= chunk_words for c in chunks)
    # Every word appears, in order, once the repeated overlap is removed.
    seen: list[str] = []
    for c in chunks:
        ws = c.split()
        k = next(k for k in range(min(len(seen), len(ws)), -1, -1) if seen[len(seen) - k :] == ws[:k])
        assert k <= overlap_words
        seen.extend(ws[k:])
    assert seen == " ".join(sentences).split()


@pytest.mark.parametrize("chunk_words, overlap_words", [(0, 0), (5, 5), (5, 6), (5, -1)])
def test_chunk_text_refuses_bad_sizes(chunk_words, overlap_words):
    with pytest.raises(ValueError, match="need chunk_words >= 1 and 0 <= overlap_words < chunk_words"):
        chunk_text("Some text.", chunk_words, overlap_words)
