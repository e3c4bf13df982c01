"""Answer and retrieval metrics on hand-made cases, with exact values."""

import pytest

from ragft import metrics
from ragft.store import Hit


@pytest.mark.parametrize(
    "text, expected",
    [
        ("The Zorblax vault!", "zorblax vault"),
        ("  An   apple, a pear; the end. ", "apple pear end"),
        ("7-4-1-9", "7 4 1 9"),
        ("“Quoted” — dash…", "quoted dash"),
        ("Theatre thematic", "theatre thematic"),  # articles only as whole words
        ("", ""),
    ],
)
def test_normalize(text, expected):
    assert metrics.normalize(text) == expected


@pytest.mark.parametrize(
    "prediction, expected, em, f1, contains",
    [
        ("7-4-1-9", "7-4-1-9", 1.0, 1.0, 1.0),
        ("The code is 7-4-1-9.", "7-4-1-9", 0.0, 2 * (4 / 6) * 1.0 / (4 / 6 + 1.0), 1.0),
        ("Paris", "paris.", 1.0, 1.0, 1.0),
        ("It is in France", "Paris", 0.0, 0.0, 0.0),
        ("the cat sat", "cat sat on mat", 0.0, 2 * 1.0 * 0.5 / 1.5, 0.0),
        ("1987", "198", 0.0, 0.0, 0.0),  # contains works on whole words, not substrings
        ("Pim, a robot named Pim", "Pim", 0.0, 2 * (1 / 4) * 1.0 / (1 / 4 + 1.0), 1.0),  # "pim" matched once
        ("", "Paris", 0.0, 0.0, 0.0),
        ("the", "a", 1.0, 1.0, 0.0),  # both normalise to nothing: equal, but nothing to look for
    ],
)
def test_answer_metrics(prediction, expected, em, f1, contains):
    assert metrics.exact_match(prediction, expected) == em
    assert metrics.token_f1(prediction, expected) == pytest.approx(f1)
    assert metrics.contains(prediction, expected) == contains


def test_token_f1_counts_repeated_tokens_once_per_match():
    # prediction "x y y", gold "y z": 1 common token -> precision 1/3, recall 1/2 -> F1 0.4
    assert metrics.token_f1("x y y", "y z") == pytest.approx(0.4)


def test_recall_at_k_and_mean():
    hits = [Hit("a.md", 0, 0.9, "one"), Hit("b.md", 2, 0.8, "two")]
    assert metrics.recall_at_k(hits, lambda h: h.source == "b.md" and h.chunk == 2) == 1.0
    assert metrics.recall_at_k(hits, lambda h: h.chunk == 5) == 0.0
    assert metrics.recall_at_k([], lambda h: True) == 0.0
    assert metrics.recall_at_k(hits, None) is None
    assert metrics.mean([1.0, None, 0.0, 0.5]) == pytest.approx(0.5)
    assert metrics.mean([None, None]) is None
    assert metrics.mean([]) is None


@pytest.mark.parametrize("reply, question, ok", [
    ("1939", "By what year did it employ nine people?", 1.0),
    ("The company employed nine people and sold its bicycles through three shops in Vestfold in 1939.",
     "By what year the company employed nine people and sold its bicycles through three shops in Vestfold?", 1.0),
    ("It was 1939, a year that many historians describe as a turning point for the small bicycle makers of the "
     "whole region and beyond.", "By what year did it employ nine people?", 0.0),  # right words, buried
    ("1938", "By what year did it employ nine people?", 0.0),
])
def test_correct_allows_restating_the_question_not_rambling(reply, question, ok):
    assert metrics.correct(reply, "1939", question) == ok
    assert metrics.extra_words("In 1939, nine people.", "1939", "How many people?") == 2  # "in", "nine"
