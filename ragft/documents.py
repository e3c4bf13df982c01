"""File -> text -> overlapping, sentence-aware chunks.

One reader per format, each a well-kept parser: pypdf (PDF), python-docx (DOCX), BeautifulSoup (HTML).
"""

from __future__ import annotations

import codecs
import hashlib
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from .errors import RagftError

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".pdf", ".docx", ".html", ".htm")


class DocumentError(RagftError, ValueError):
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
    if reader.is_encrypted:
        try:
            # many "protected" PDFs only restrict printing: an empty password opens them
            opened = bool(reader.decrypt(""))
        except Exception:  # noqa: BLE001 - a cipher pypdf cannot open is the same answer for the user
            opened = False
        if not opened:
            raise UnreadableDocumentError("the PDF is password-protected; save a copy without the "
                                          "password and upload that")
    text = "\n\n".join(page.extract_text() or "" for page in reader.pages)
    if not text.strip():
        raise EmptyDocumentError("no text layer in this PDF (scanned pages are images: run OCR on it "
                                 "first)")
    return text


MAX_UNZIPPED_BYTES = 200_000_000  # a DOCX whose parts unpack to more than this is refused (zip bomb)


def _read_docx(path: Path) -> str:
    import zipfile

    import docx

    try:
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            unpacked = sum(i.file_size for i in z.infolist())
    except zipfile.BadZipFile:
        raise UnreadableDocumentError("not a DOCX file (a DOCX is a zip archive; this is not one)") \
            from None
    if "word/document.xml" not in names:
        raise UnreadableDocumentError("a zip archive but not a Word document (no word/document.xml)")
    if unpacked > MAX_UNZIPPED_BYTES:
        raise UnreadableDocumentError(f"unpacks to {unpacked / 1e6:,.0f} MB, over the "
                                      f"{MAX_UNZIPPED_BYTES / 1e6:.0f} MB a document may unpack to (a zip bomb?)")
    document = docx.Document(str(path))
    parts = [p.text for p in document.paragraphs]
    for table in document.tables:
        for row in table.rows:
            parts.append(" | ".join(cell.text for cell in row.cells))
    return "\n\n".join(parts)


def _read_html(path: Path) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_read_plain(path), "html.parser")  # decoded as text files are: binary is refused
    for tag in soup(["script", "style", "noscript", "template"]):
        tag.decompose()
    return soup.get_text("\n")


_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))  # UTF-32 LE starts like UTF-16 LE


def _read_plain(path: Path) -> str:
    """Text in UTF-8 (a few broken bytes among valid non-ASCII become U+FFFD), UTF-16/32 with a byte-order mark,
    UTF-16 without one, or a legacy one-byte encoding (read as Latin-1); anything with NUL bytes or many control
    characters is binary."""
    raw = path.read_bytes()
    encoding = next((enc for bom, enc in _BOMS if raw.startswith(bom)), None) or _utf16_without_bom(raw[:4096])
    if encoding:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            raise UnreadableDocumentError(f"starts like {encoding.upper()} text but is not valid "
                                          f"{encoding.upper()}") from None
    elif b"\x00" in raw[:4096]:
        raise UnreadableDocumentError("looks like a binary file, not text")
    else:
        text = raw.decode("utf-8", errors="replace")
        bad = text.count("\ufffd")
        if bad and bad > sum(1 for c in text if ord(c) > 127 and c != "\ufffd"):
            text = raw.decode("latin-1")  # more broken than valid non-ASCII: a legacy one-byte encoding
    sample = text[:4096]
    controls = sum(1 for c in sample if ord(c) < 32 and c not in "\n\r\t\f" or 0x7F <= ord(c) < 0xA0)
    if controls > len(sample) // 20:
        raise UnreadableDocumentError("looks like a binary file, not text")
    if _noise(sample):
        raise UnreadableDocumentError("not readable text: its characters look like random bytes decoded as "
                                      f"{encoding.upper() if encoding else 'text'}")
    return text


# Unassigned code points, private use, lone surrogates, U+FFFD: rare in text, about a fifth of random UTF-16.
_NOT_TEXT = ("Cn", "Co", "Cs")


def _noise(sample: str) -> bool:
    """Random bytes decoded as UTF-16 or UTF-32 (a byte-order mark, then noise) give valid characters, but many
    unassigned or private ones, and no spaces among characters that hardly ever repeat: text in any script has
    almost none of the first, and words, spaces or punctuation (Chinese has its own) that repeat."""
    if len(sample) < 64:
        return False
    odd = sum(1 for c in sample if c == "\ufffd" or unicodedata.category(c) in _NOT_TEXT)
    breaks = sum(1 for c in sample if c.isspace() or unicodedata.category(c).startswith("P"))
    return odd > len(sample) // 20 or (breaks < len(sample) // 100 and len(set(sample)) > len(sample) // 2)


def _utf16_without_bom(head: bytes) -> str | None:
    """UTF-16 with no byte-order mark, told by its NUL bytes: mostly-ASCII text has one in every other byte."""
    half = len(head) // 2
    if half < 8:
        return None
    high_first, low_first = head[0::2].count(0), head[1::2].count(0)
    if low_first > 0.4 * half and high_first < 0.05 * half:
        return "utf-16-le"
    if high_first > 0.4 * half and low_first < 0.05 * half:
        return "utf-16-be"
    return None


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
    except DocumentError as exc:  # the readers see the upload's temp path: the message names what the user called it
        raise type(exc)(f"{name}: {exc}") from None
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
_END = r"(?:(?<=[.!?])|(?<=[.!?][\"'”’)\]])|(?<=[.!?][\"'”’)\]]{2}))\s+"
_SENTENCE_END = re.compile(_END + r"|\n\s*\n")
_SENTENCE_OR_LINE_END = re.compile(_END + r"|\n+")


def split_sentences(text: str, lines: bool = False) -> list[str]:
    """The sentences of ``text``, stripped. ``lines``: every line break ends one too (a chunk keeps headings and
    list items on lines of their own, and the question generator wants them apart)."""
    end = _SENTENCE_OR_LINE_END if lines else _SENTENCE_END
    return [s.strip() for s in end.split(text) if s and s.strip()]


def _join(pieces: list[list[str]]) -> str:
    # A piece without end punctuation (a heading, a list item) keeps its line break, so it stays apart from the
    # sentence after it for readers of the chunk (and for the question generator's sentence splitter).
    out = ""
    for piece in pieces:
        if out:
            out += " " if re.search(r"[.!?][\"')\]]{0,2}$", out) else "\n"
        out += " ".join(piece)
    return out


MAX_WORD_CHARS = 100


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
        # A "word" of thousands of characters (inline data, a hash) is cut, so no chunk outgrows a prompt.
        words = [w[i:i + MAX_WORD_CHARS] for w in sentence.split() for i in range(0, len(w), MAX_WORD_CHARS)]
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


MAX_NAME_CHARS = 200


def display_name(name: str) -> str:
    """The name a document is stored and listed under: the last part of whatever path the browser or the command
    line gave (``/`` or ``\\``), without control or invisible format characters, at most ``MAX_NAME_CHARS`` long
    (its suffix kept). Names never become paths: the store keys documents by name, nothing is written by it."""
    name = re.split(r"[/\\]", name)[-1]
    name = "".join(c for c in name if unicodedata.category(c)[0] != "C").strip()
    suffix = Path(name).suffix if len(Path(name).suffix) <= 10 else ""
    if len(name) > MAX_NAME_CHARS:
        name = name[: MAX_NAME_CHARS - len(suffix)] + suffix
    return name if name.strip(".") else f"unnamed{suffix}"


def load_document(
    path: Path, name: str | None = None, chunk_words: int = 120, overlap_words: int = 20, max_bytes: int | None = None
) -> Document:
    """Read, check and chunk one file. ``name`` is what the user called it (uploads arrive under temp names)."""
    path = Path(path)
    name = display_name(name or path.name)
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
