"""File -> text -> overlapping, sentence-aware chunks.

One reader per format, each a well-kept parser: pypdf (PDF), python-docx (DOCX), BeautifulSoup (HTML).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".pdf", ".docx", ".html", ".htm")


class DocumentError(ValueError):
    """A file that cannot become chunks; the message is meant for the user."""


class UnsupportedFileError(DocumentError):
    pass


class EmptyDocumentError(DocumentError):
    pass


class UnreadableDocumentError(DocumentError):
    pass


class FileTooLargeError(DocumentError):
    pass


@dataclass(frozen=True)
class Document:
    """A parsed file: its name, a hash of its text (the chunk ids derive from it), and its chunks."""

    name: str
    content_hash: str
    chunks: list[str]
    size_bytes: int
    chars: int


def _read_pdf(path: Path) -> str:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    return "\n\n".join(page.extract_text() or "" for page in reader.pages)


def _read_docx(path: Path) -> str:
    import docx

    document = docx.Document(str(path))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return "\n\n".join(parts)


def _read_html(path: Path) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(path.read_bytes(), "html.parser")
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    return soup.get_text("\n")


def _read_plain(path: Path) -> str:
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise UnreadableDocumentError(f"{path.name}: looks like a binary file, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


_READERS = {
    ".txt": _read_plain,
    ".md": _read_plain,
    ".markdown": _read_plain,
    ".pdf": _read_pdf,
    ".docx": _read_docx,
    ".html": _read_html,
    ".htm": _read_html,
}


def read_text(path: Path, name: str | None = None) -> str:
    """Extract the plain text of a supported file, or raise a `DocumentError` that says what went wrong."""
    name = name or path.name
    suffix = Path(name).suffix.lower()
    reader = _READERS.get(suffix)
    if reader is None:
        raise UnsupportedFileError(
            f"{name}: unsupported file type {suffix or '(none)'}; use one of {', '.join(SUPPORTED_SUFFIXES)}"
        )
    try:
        text = reader(path)
    except DocumentError:
        raise
    except Exception as exc:  # parsers raise many types on corrupt input; the user needs only the gist
        raise UnreadableDocumentError(f"{name}: cannot read this {suffix[1:].upper()} file ({exc})") from exc
    text = re.sub(r"[ \t\f\v\r]+", " ", text)
    text = re.sub(r" ?\n ?", "\n", text)  # no spaces at line ends: CRLF and LF copies of a file hash the same
    text = re.sub(r"\n\s*\n+", "\n\n", text).strip()
    if not text:
        raise EmptyDocumentError(f"{name}: no text found in this file")
    return text


# A sentence ends at . ! ? (optionally closed by up to two quotes or brackets, which stay with it) before white
# space, or at a blank line. Only the white space is consumed: lookbehinds must be fixed-width, hence three.
_SENTENCE_END = re.compile(r"(?:(?<=[.!?])|(?<=[.!?][\"')\]])|(?<=[.!?][\"')\]]{2}))\s+|\n\s*\n")


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s and s.strip()]


def _join(pieces: list[list[str]]) -> str:
    # A piece without end punctuation (a heading, a list item) keeps its line break, so it stays apart from the
    # sentence after it for readers of the chunk (and for the question generator's sentence splitter).
    out = ""
    for piece in pieces:
        if out:
            out += " " if re.search(r"[.!?][\"')\]]{0,2}$", out) else "\n"
        out += " ".join(piece)
    return out


def chunk_text(text: str, chunk_words: int = 120, overlap_words: int = 20) -> list[str]:
    """Pack whole sentences into chunks of at most ``chunk_words`` words; each chunk repeats the last sentences of
    the one before, up to ``overlap_words`` words. A sentence longer than a chunk is cut into word windows.

    >>> chunk_text("One two. Three four. Five six.", chunk_words=4, overlap_words=2)
    ['One two. Three four.', 'Three four. Five six.']
    """
    if chunk_words < 1 or not 0 <= overlap_words < chunk_words:
        raise ValueError("need chunk_words >= 1 and 0 <= overlap_words < chunk_words")
    pieces: list[list[str]] = []
    for sentence in split_sentences(text):
        words = sentence.split()
        for start in range(0, len(words), chunk_words):
            pieces.append(words[start : start + chunk_words])

    chunks: list[str] = []
    current: list[list[str]] = []
    size = 0
    for piece in pieces:
        if current and size + len(piece) > chunk_words:
            chunks.append(_join(current))
            # Carry over trailing sentences that fit in the overlap and still leave room for this piece.
            carried: list[list[str]] = []
            carried_size = 0
            for prev in reversed(current):
                if carried_size + len(prev) > overlap_words or carried_size + len(prev) + len(piece) > chunk_words:
                    break
                carried.insert(0, prev)
                carried_size += len(prev)
            current, size = carried, carried_size
        current.append(piece)
        size += len(piece)
    if current:
        chunks.append(_join(current))
    return chunks


def load_document(
    path: Path, name: str | None = None, chunk_words: int = 120, overlap_words: int = 20, max_bytes: int | None = None
) -> Document:
    """Read, check and chunk one file. ``name`` is what the user called it (uploads arrive under temp names)."""
    path = Path(path)
    name = Path(name or path.name).name
    if not path.is_file():
        raise UnreadableDocumentError(f"{name}: file not found")
    size = path.stat().st_size
    if size == 0:
        raise EmptyDocumentError(f"{name}: the file is empty")
    if max_bytes is not None and size > max_bytes:
        raise FileTooLargeError(
            f"{name}: {size / 1e6:.1f} MB is over the {max_bytes / 1e6:.0f} MB limit (RAGFT_MAX_UPLOAD_MB)"
        )
    text = read_text(path, name)
    return Document(
        name=name,
        content_hash=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        chunks=chunk_text(text, chunk_words, overlap_words),
        size_bytes=size,
        chars=len(text),
    )
