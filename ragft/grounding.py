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

Words in common cannot see a relation changed while every word stays ("The port has been handled by Ilse Varga"
where the source makes her its harbour master). Where an NLI or hallucination model can be loaded
(``RAGFT_GROUNDING_MODEL``), `GroundingModel` judges instead: the facts must still be in the chunk, and the model's
probability that the chunk entails the sentence replaces the content-word share and the negation rule.

    marks = mark("It was built in 1872. It is 98.4% white.", hits)
    [(m.supported, m.chunk, m.missing) for m in marks]  # [(True, 0, ()), (False, None, ("98.4",))]
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from .documents import split_sentences
from .keywords import WORD, stop_words

MODEL_THRESHOLD = 0.5  # a model's probability of "entailment" (or of "consistent", for a one-score model)
THRESHOLD = 0.5  # share of a sentence's content words found in the chunk (bench/grounding.py calibrates it)
CLAUSE = re.compile(r",\s+|;\s+|:\s+|\s+but\s+|\s+while\s+")  # a negation counts within its clause
NEGATION = re.compile(r"\b(?:not|no|never|none|neither|nor|cannot|without)\b|n't\b", re.IGNORECASE)


@dataclass(frozen=True)
class Mark:
    """One sentence of an answer. ``supported``: True / False, or None when there is nothing to check. ``chunk``:
    the index (in the hits given) of the chunk that supports it; ``missing``: its facts no chunk holds; ``score``:
    the share of its content words in its best chunk (0 when a fact is missing or a negation flips), or with a
    `GroundingModel` its probability that the best chunk entails the sentence."""

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


@functools.lru_cache(maxsize=256)
def _words_of(chunk: str) -> frozenset[str]:
    """A chunk's words as `facts` and `_content` give them; read once per chunk, not once per sentence."""
    return frozenset(WORD.findall(chunk.lower()))


def _missing(sentence: str, chunk: str) -> set[str]:
    return facts(sentence) - _words_of(chunk)


def _checkable(sentence: str) -> bool:
    return bool(facts(sentence)) or len(_content(sentence)) >= 2


def _nowhere(sentence: str, chunks: list[str]) -> tuple[str, ...]:
    """The facts of ``sentence`` that no chunk holds (a fact in one chunk and another fact in another does not
    make the sentence true)."""
    return tuple(sorted(set.intersection(facts(sentence), *(_missing(sentence, c) for c in chunks))))


def judge(sentence: str, chunk: str) -> tuple[float, tuple[str, ...]]:
    """How well ``chunk`` supports ``sentence``: (score, facts of the sentence missing from the chunk)."""
    missing = tuple(sorted(_missing(sentence, chunk)))
    content = _content(sentence)
    if missing or not content or _flips(sentence, chunk):
        return 0.0, missing
    return len(content & _words_of(chunk)) / len(content), missing


def mark_sentence(sentence: str, chunks: list[str], threshold: float = THRESHOLD) -> Mark:
    if not _checkable(sentence):
        return Mark(sentence, None)
    judged = [judge(sentence, c) for c in chunks]
    best = max(range(len(judged)), key=lambda i: judged[i][0], default=None)
    score = judged[best][0] if best is not None else 0.0
    if score >= threshold and score > 0:
        return Mark(sentence, True, best, round(score, 3))
    return Mark(sentence, False, None, round(score, 3), _nowhere(sentence, chunks))


class GroundingModel:
    """A sentence-transformers cross-encoder that scores (chunk, sentence) pairs: an NLI model (its label
    "entailment" is read; e.g. ``cross-encoder/nli-deberta-v3-xsmall``) or a one-score consistency model (its
    sigmoid). A sentence is supported by the chunk that holds all its facts and that the model gives the highest
    probability, when that reaches ``threshold``. Loaded by `models.load_grounding_model`."""

    def __init__(self, model, name: str = "", threshold: float = MODEL_THRESHOLD):
        self.model, self.name, self.threshold = model, name, threshold
        labels = {int(i): str(label).lower() for i, label in (model.config.id2label or {}).items()}
        entails = [i for i, label in sorted(labels.items()) if label.startswith("entail")]
        if model.num_labels > 1 and not entails:
            raise ValueError(f"its labels ({', '.join(labels.values())}) have no 'entailment'")
        self.entails = entails[0] if model.num_labels > 1 else None

    def probabilities(self, pairs: list[tuple[str, str]]) -> list[float]:
        """P(the first text entails the second) for each (premise, hypothesis) pair, in one batch."""
        if not pairs:
            return []
        if self.entails is None:
            return [float(p) for p in self.model.predict(pairs, show_progress_bar=False)]
        probs = self.model.predict(pairs, apply_softmax=True, show_progress_bar=False)
        return [float(p[self.entails]) for p in probs]

    def mark(self, sentences: list[str], chunks: list[str]) -> list[Mark]:
        checkable = [_checkable(s) for s in sentences]
        pairs = [(i, j) for i, s in enumerate(sentences) if checkable[i]
                 for j, c in enumerate(chunks) if not _missing(s, c)]
        best: dict[int, tuple[float, int]] = {}
        for (i, j), p in zip(pairs, self.probabilities([(chunks[j], sentences[i]) for i, j in pairs])):
            if p > best.get(i, (-1.0, 0))[0]:
                best[i] = (p, j)
        marks = []
        for i, s in enumerate(sentences):
            if not checkable[i]:
                marks.append(Mark(s, None))
                continue
            score, chunk = best.get(i, (0.0, None))
            marks.append(Mark(s, True, chunk, round(score, 3)) if score >= self.threshold
                         else Mark(s, False, None, round(score, 3), _nowhere(s, chunks)))
        return marks


def mark(answer: str, chunks: list, threshold: float = THRESHOLD, model: GroundingModel | None = None) -> list[Mark]:
    """``answer``'s sentences, each marked against ``chunks`` (texts, or hits with ``.text``); by ``model`` when
    one is given, else by facts and words in common."""
    texts = [c if isinstance(c, str) else c.text for c in chunks]
    sentences = split_sentences(answer)
    if model is not None:
        return model.mark(sentences, texts)
    return [mark_sentence(s, texts, threshold) for s in sentences]


def summary(marks: list[Mark]) -> str:
    """One line for a pane: "2 of 3 sentences supported by the sources; not in them: 98.4"."""
    checked = [m for m in marks if m.supported is not None]
    if not checked:
        return "nothing to check against the sources"
    line = f"{sum(1 for m in checked if m.supported)} of {len(checked)} sentences supported by the sources"
    missing = sorted({f for m in checked for f in m.missing})
    return line + (f"; not in them: {', '.join(missing)}" if missing else "")


def as_dict(m: Mark) -> dict:
    return {"sentence": m.sentence, "supported": m.supported, "chunk": m.chunk, "score": m.score,
            "missing": list(m.missing)}


def unsupported_share(answer: str, chunks: list, model: GroundingModel | None = None) -> float | None:
    """The share of ``answer``'s checkable sentences that ``chunks`` do not support; None when none is checkable
    (Evaluate and Experiment report its mean per variant beside accuracy)."""
    checked = [m.supported for m in mark(answer, chunks, model=model) if m.supported is not None]
    return sum(not s for s in checked) / len(checked) if checked else None
