"""Each sentence of an answer marked supported or not by the chunks it was given: the RAG panes' grounding marks.

A small model states wrong numbers and names fluently ("98.4%" where the document says 98%). So a sentence counts
as supported by a chunk only when

- every fact of it is in that chunk: its numbers ("1872", "98.4", "7-4-1-9") and its names (capitalised words
  past the first: "Ada", "Fenwick");
- none of its clauses negates the chunk's clause closest to it, nor the other way round ("was not" / "was");
- enough of its content words are in the chunk (``THRESHOLD``: the share calibrated by
  ``python -m bench grounding`` on a labelled set built from bench/recipe's documents).

The supporting chunk is the one that passes with the most content words in common. A sentence with nothing to check
(no fact and fewer than two content words: "Yes.") is marked neither way. No model and no download: it runs on
every answer, offline, in microseconds.

    marks = mark("It was built in 1872. It is 98.4% white.", hits)
    [(m.supported, m.chunk, m.missing) for m in marks]  # [(True, 0, ()), (False, None, ("98.4",))]
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .documents import split_sentences
from .keywords import WORD, stop_words

THRESHOLD = 0.5  # share of a sentence's content words found in the chunk (bench/grounding.py calibrates it)
CLAUSE = re.compile(r",\s+|;\s+|:\s+|\s+but\s+|\s+while\s+")  # a negation counts within its clause
NEGATION = re.compile(r"\b(?:not|no|never|none|neither|nor|cannot|without)\b|n't\b", re.IGNORECASE)


@dataclass(frozen=True)
class Mark:
    """One sentence of an answer. ``supported``: True / False, or None when there is nothing to check. ``chunk``:
    the index (in the hits given) of the chunk that supports it; ``missing``: its facts no chunk holds; ``score``:
    the share of its content words in its best chunk (0 when a fact is missing or a negation flips)."""

    sentence: str
    supported: bool | None
    chunk: int | None = None
    score: float = 0.0
    missing: tuple[str, ...] = field(default_factory=tuple)


def facts(sentence: str) -> set[str]:
    """Numbers and names of ``sentence``, lower-cased as `keywords.words` gives them."""
    stop = stop_words()
    tokens = WORD.findall(sentence)
    numbers = {t.lower() for t in tokens if any(c.isdigit() for c in t)}
    names = {t.lower() for i, t in enumerate(tokens) if i > 0 and t[:1].isupper() and t.lower() not in stop}
    return numbers | names


def _content(sentence: str) -> set[str]:
    stop = stop_words()
    return {w for w in WORD.findall(sentence.lower()) if w not in stop and len(w) > 1}


def _negated(text: str) -> bool:
    return bool(NEGATION.search(text))


def _clauses(text: str) -> list[str]:
    return [c for s in split_sentences(text, lines=True) for c in CLAUSE.split(s) if c.strip()]


def _flips(sentence: str, chunk: str) -> bool:
    """Whether a clause of ``sentence`` negates the clause of ``chunk`` closest to it, or drops its negation."""
    theirs = [(c, _content(c)) for c in _clauses(chunk)] or [(chunk, _content(chunk))]
    for clause in _clauses(sentence):
        words = _content(clause)
        if words:
            closest = max(theirs, key=lambda t: len(words & t[1]))[0]
            if _negated(clause) != _negated(closest):
                return True
    return False


def judge(sentence: str, chunk: str) -> tuple[float, tuple[str, ...]]:
    """How well ``chunk`` supports ``sentence``: (score, facts of the sentence missing from the chunk)."""
    chunk_words = set(WORD.findall(chunk.lower()))
    missing = tuple(sorted(facts(sentence) - chunk_words))
    content = _content(sentence)
    if missing or not content or _flips(sentence, chunk):
        return 0.0, missing
    return len(content & chunk_words) / len(content), missing


def mark_sentence(sentence: str, chunks: list[str], threshold: float = THRESHOLD) -> Mark:
    if not facts(sentence) and len(_content(sentence)) < 2:
        return Mark(sentence, None)
    judged = [judge(sentence, c) for c in chunks]
    if not judged:
        return Mark(sentence, False, missing=tuple(sorted(facts(sentence))))
    best = max(range(len(judged)), key=lambda i: judged[i][0])
    score = judged[best][0]
    # the facts no chunk holds (a fact in one chunk and another fact in another does not make the sentence true)
    missing = tuple(sorted(set.intersection(*(set(m) for _, m in judged))))
    if score >= threshold:
        return Mark(sentence, True, best, round(score, 3))
    return Mark(sentence, False, None, round(score, 3), missing)


def mark(answer: str, chunks: list, threshold: float = THRESHOLD) -> list[Mark]:
    """``answer``'s sentences, each marked against ``chunks`` (texts, or hits with ``.text``)."""
    texts = [c if isinstance(c, str) else c.text for c in chunks]
    return [mark_sentence(s, texts, threshold) for s in split_sentences(answer)]


def summary(marks: list[Mark]) -> str:
    """One line for a pane: "2 of 3 sentences supported by the sources; not in them: 98.4"."""
    checked = [m for m in marks if m.supported is not None]
    if not checked:
        return "nothing to check against the sources"
    line = f"{sum(m.supported for m in checked)} of {len(checked)} sentences supported by the sources"
    missing = sorted({f for m in checked for f in m.missing})
    return line + (f"; not in them: {', '.join(missing)}" if missing else "")


def as_dict(m: Mark) -> dict:
    return {"sentence": m.sentence, "supported": m.supported, "chunk": m.chunk, "score": m.score,
            "missing": list(m.missing)}


def unsupported_share(answer: str, chunks: list) -> float | None:
    """The share of ``answer``'s checkable sentences that ``chunks`` do not support; None when none is checkable
    (Evaluate and Experiment report its mean per variant beside accuracy)."""
    checked = [m.supported for m in mark(answer, chunks) if m.supported is not None]
    return sum(not s for s in checked) / len(checked) if checked else None
