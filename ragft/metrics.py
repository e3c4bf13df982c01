"""Answer and retrieval metrics, as the Evaluate tab states them.

Answers are compared after SQuAD-style normalisation: lower case, punctuation and the articles a/an/the
removed, whitespace collapsed. Digits separated by punctuation stay apart ("7-4-1-9" -> "7 4 1 9").

    exact_match   1 if the normalised answer equals the normalised expected answer, else 0
    token_f1      harmonic mean of token precision and recall between the two (bags of words)
    contains      1 if the normalised expected answer appears, as whole words, inside the normalised answer
    correct       contains, in a reply with at most EXTRA_WORDS words that are neither in the question nor in the
                  expected answer: the headline rate. Restating the question around the answer is fine; a long
                  rambling reply that happens to include the answer is not
    recall_at_k   1 if the question's source chunk is among the k retrieved chunks, else 0
    in_context    1 if the expected answer appears in one of the retrieved chunks (retrieval at answer level)
"""

from __future__ import annotations

import re
import string
from collections import Counter

_PUNCT = re.compile(f"[{re.escape(string.punctuation)}‘’“”–—…]")
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> str:
    """Lower case; punctuation to spaces; articles dropped; whitespace collapsed."""
    text = _PUNCT.sub(" ", text.lower())
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str, expected: str) -> float:
    return float(normalize(prediction) == normalize(expected))


def token_f1(prediction: str, expected: str) -> float:
    pred, gold = normalize(prediction).split(), normalize(expected).split()
    if not pred or not gold:
        return float(pred == gold)
    common = sum((Counter(pred) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def contains(prediction: str, expected: str) -> float:
    gold = normalize(expected)
    if not gold:
        return 0.0
    return float(f" {gold} " in f" {normalize(prediction)} ")


EXTRA_WORDS = 12  # "It was invented in 1931 by Tamsin Greaves in Vellmoor." passes; a paragraph does not


def extra_words(prediction: str, expected: str, question: str = "") -> int:
    """Words of the reply that are neither in the question nor in the expected answer (normalised)."""
    known = set(normalize(question).split()) | set(normalize(expected).split())
    return sum(w not in known for w in normalize(prediction).split())


def correct(prediction: str, expected: str, question: str = "") -> float:
    if extra_words(prediction, expected, question) > EXTRA_WORDS:
        return 0.0
    return contains(prediction, expected)


def in_context(texts: list[str], expected: str) -> float:
    """1.0 if any of ``texts`` (retrieved chunks) contains the expected answer, as ``contains`` judges it."""
    return float(any(contains(t, expected) for t in texts))


def recall_at_k(retrieved: list, gold) -> float | None:
    """1.0 if any retrieved chunk matches ``gold``; None when the question names no source to look for.

    ``gold(hit) -> bool`` decides a match (see ``evaluate.gold_matcher``); ``None`` means "no source known".
    """
    if gold is None:
        return None
    return float(any(gold(hit) for hit in retrieved))


def mean(values) -> float | None:
    """Mean of the values that are not None; None when there are none."""
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None
