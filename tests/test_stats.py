"""Statistics behind the verdict, on hand-made cases with exact values (bootstrap bounds pinned for seed 0)."""

import math

import pytest

from ragft import stats
from ragft.stats import Comparison, Interval


def bits(s: str) -> list[bool]:
    """ "1101 0" -> [True, True, False, True, False]; spaces only group by five for reading."""
    return [c == "1" for c in s.replace(" ", "")]


def exact(x: float):
    return pytest.approx(x, abs=1e-12)


# --- intervals ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "interval, text",
    [
        (Interval(0.62, 0.48, 0.75, 40), "62% [48–75]"),
        (Interval(1.0, 1.0, 1.0, 5), "100% [100–100]"),
        (Interval(0.0, 0.0, 0.0, 5), "0% [0–0]"),
        (Interval(0.456, 0.314, 0.599, 40), "46% [31–60]"),  # whole percents, rounded
        (Interval(math.nan, math.nan, math.nan, 0), "n/a"),
    ],
)
def test_interval_pct(interval, text):
    assert interval.pct() == text


@pytest.mark.parametrize(
    "values, level, mean, low, high",
    [
        (bits("11100 10110"), 0.95, 0.6, 0.3, 0.9),
        (bits("11100 10110"), 0.90, 0.6, 0.3, 0.8),  # a lower level gives a narrower interval
        ([0.2, 0.9, 0.4, 0.7], 0.95, 0.55, 0.3, 0.8),  # means of graded scores, not only proportions
    ],
)
def test_bootstrap_ci_pinned(values, level, mean, low, high):
    ci = stats.bootstrap_ci(values, level=level, seed=0)
    assert (ci.mean, ci.low, ci.high, ci.n) == (exact(mean), exact(low), exact(high), len(values))
    assert ci.low <= ci.mean <= ci.high
    assert stats.bootstrap_ci(values, level=level, seed=0) == ci  # deterministic for a seed


@pytest.mark.parametrize(
    "values, expected",
    [
        ([True] * 12, Interval(1.0, 1.0, 1.0, 12)),
        ([False] * 3, Interval(0.0, 0.0, 0.0, 3)),
        ([0.1] * 3, Interval(0.1, 0.1, 0.1, 3)),  # exactly 0.1, not a float-summed 0.10000000000000002
        ([True], Interval(1.0, 1.0, 1.0, 1)),
    ],
)
def test_bootstrap_ci_degenerate(values, expected):
    assert stats.bootstrap_ci(values) == expected


def test_bootstrap_ci_empty_is_nan():
    ci = stats.bootstrap_ci([])
    assert ci.n == 0 and math.isnan(ci.mean) and math.isnan(ci.low) and math.isnan(ci.high)


# --- paired tests ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b, only_a, only_b, p",
    [
        (bits("00000"), bits("11111"), 0, 5, 2 / 32),  # 2 * P(X <= 0), X ~ Bin(5, 1/2)
        (bits("11111"), bits("00000"), 5, 0, 2 / 32),  # two-sided: symmetric
        (bits("10000 00000"), bits("01111 11111"), 1, 9, 2 * (1 + 10) / 1024),  # 2 * (C(10,0) + C(10,1)) / 2^10
        (bits("11111 10000 11"), bits("00000 01111 11"), 6, 4, 2 * (1 + 10 + 45 + 120 + 210) / 1024),
        (bits("11100 1100"), bits("11100 1100"), 0, 0, 1.0),  # no discordant pairs
        (bits("1010"), bits("0101"), 2, 2, 1.0),  # 2 * P(X <= 2) = 2 * 11/16 > 1: capped
        ([], [], 0, 0, 1.0),
    ],
)
def test_mcnemar_exact(a, b, only_a, only_b, p):
    assert stats.mcnemar_exact(a, b) == (only_a, only_b, p)


@pytest.mark.parametrize(
    "a, b, diff, low, high, p",
    [
        # 6 questions only a gets right, 1 only b: a is ahead; 58 of 2000 resamples land at or below 0
        (bits("11111 11110 11111 00000"), bits("00000 01111 11111 00000"), 0.25, 0.0, 0.5, 2 * 59 / 2001),
        (bits("11111 10000 11111 00000"), bits("00011 11100 11111 00000"), 0.05, -0.15, 0.25, 2 * 823 / 2001),
        ([0.5, 0.9, 0.2, 0.7], [0.4, 0.6, 0.3, 0.1], 0.225, 0.0, 0.475, 2 * 81 / 2001),
        (bits("11111"), bits("00000"), 1.0, 1.0, 1.0, 2 / 2001),  # never on the other side: the +1 keeps p > 0
        (bits("10101"), bits("10101"), 0.0, 0.0, 0.0, 1.0),  # no difference at all
    ],
)
def test_paired_bootstrap(a, b, diff, low, high, p):
    assert stats.paired_bootstrap(a, b, seed=0) == (exact(diff), exact(low), exact(high), exact(p))
    # Swapping the sides mirrors the difference and its interval and keeps p: the same resamples are used.
    assert stats.paired_bootstrap(b, a, seed=0) == (exact(-diff), exact(-high), exact(-low), exact(p))


@pytest.mark.parametrize(
    "call",
    [
        lambda: stats.mcnemar_exact(bits("101"), bits("10")),
        lambda: stats.paired_bootstrap([1.0, 0.0, 1.0], [1.0, 0.0]),
        lambda: stats.compare("RAG", bits("101"), "Plain", bits("10")),
    ],
)
def test_length_mismatch_names_both_lengths(call):
    with pytest.raises(ValueError, match="got 3 and 2 scores"):
        call()


# --- sentences ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "p, text",
    [(0.01, "p = 0.01"), (0.0123, "p = 0.012"), (0.31, "p = 0.31"), (0.0625, "p = 0.062"), (1.0, "p = 1"),
     (0.001, "p = 0.001"), (0.000999, "p < 0.001"), (2 / 2001, "p < 0.001")],
)
def test_format_p(p, text):
    assert stats.format_p(p) == text


def _comparison(only_a, only_b, p, diff):
    return Comparison(
        "RAG + Fine-tuned", "RAG", Interval(0.62, 0.48, 0.75, 40), Interval(0.45, 0.31, 0.60, 40),
        only_a, only_b, p, diff, diff - 0.1, diff + 0.1,
    )


HEAD = "On 40 held-out questions, RAG + Fine-tuned answers 62% [48–75] vs RAG 45% [31–60]"


@pytest.mark.parametrize(
    "comparison, winner, text",
    [
        (_comparison(9, 2, 0.01, 0.17), "RAG + Fine-tuned", f"{HEAD}: RAG + Fine-tuned is better (p = 0.01)."),
        (_comparison(2, 9, 0.01, -0.17), "RAG", f"{HEAD}: RAG is better (p = 0.01)."),
        (_comparison(6, 3, 0.31, 0.17), None, f"{HEAD}: too few held-out questions to tell them apart (p = 0.31)."),
        (_comparison(0, 0, 1.0, 0.0), None, f"{HEAD}: the same on every question."),
        (_comparison(40, 0, 1e-9, 1.0), "RAG + Fine-tuned", f"{HEAD}: RAG + Fine-tuned is better (p < 0.001)."),
    ],
)
def test_comparison_sentence(comparison, winner, text):
    assert comparison.winner == winner
    assert comparison.sentence("held-out questions") == text


def test_compare_end_to_end():
    c = stats.compare("RAG + Fine-tuned", bits("11111 11110 11111 00000"), "RAG", bits("00000 01111 11111 00000"))
    assert (c.only_a, c.only_b, c.p) == (6, 1, 2 * (1 + 7) / 128)
    assert (c.diff, c.diff_low, c.diff_high) == (exact(0.25), exact(0.0), exact(0.5))
    assert c.a_ci == stats.bootstrap_ci([1.0] * 9 + [0.0] + [1.0] * 5 + [0.0] * 5)
    assert c.winner is None  # p = 0.125 at alpha 0.05
    assert c.sentence() == (
        "On 20 questions, RAG + Fine-tuned answers 70% [50–90] vs RAG 45% [25–65]: "
        "too few questions to tell them apart (p = 0.12)."
    )
    assert stats.compare("A", bits("111"), "B", bits("000")).sentence() == (
        "On 3 questions, A answers 100% [100–100] vs B 0% [0–0]: too few questions to tell them apart (p = 0.25)."
    )
    assert stats.compare("A", [], "B", []).sentence() == "No questions were scored."
    assert stats.compare("A", bits("1111 1"), "B", bits("0000 0"), alpha=0.1).winner == "A"  # p = 0.0625


# --- verdict -----------------------------------------------------------------------------------------------------

FOUR = {
    "Plain": bits("10000 00000 10000 00000"),
    "RAG": bits("11110 00000 11100 00000"),
    "Fine-tuned": bits("11000 00000 11000 00000"),
    "RAG + Fine-tuned": bits("11111 11110 11111 11100"),
}


@pytest.mark.parametrize(
    "scores, headline, pairs",
    [
        (
            FOUR,
            "Best: RAG + Fine-tuned — 85% [70–100] on 20 questions, ahead of RAG 35% [15–55] (p = 0.002).",
            [("RAG", "Plain"), ("Fine-tuned", "Plain"), ("RAG + Fine-tuned", "RAG")],
        ),
        (  # the dict's order does not matter; Fine-tuned beats RAG here, so the combination is measured against it
            {"RAG + Fine-tuned": bits("11111 11100"), "Fine-tuned": bits("11111 11000"), "RAG": bits("11100 00000")},
            "RAG + Fine-tuned 80% [50–100] and Fine-tuned 70% [40–100] on 10 questions: "
            "too few questions to tell them apart (p = 1).",
            [("RAG + Fine-tuned", "Fine-tuned")],
        ),
        (  # RAG and Fine-tuned tie: the combination is measured against RAG, and a tie for best goes to RAG
            {"Fine-tuned": bits("11110 11100"), "RAG": bits("11111 11000"), "RAG + Fine-tuned": bits("11111 10100")},
            "RAG 70% [40–100] and Fine-tuned 70% [40–100] on 10 questions: "
            "too few questions to tell them apart (p = 1).",
            [("RAG + Fine-tuned", "RAG")],
        ),
        (  # best and runner-up have no standard comparison: the headline compares them anyway
            {"RAG": bits("11111 11100 11111 11111"), "Fine-tuned": bits("00000 11100 00000 00000")},
            "Best: RAG — 90% [75–100] on 20 questions, ahead of Fine-tuned 15% [0–30] (p < 0.001).",
            [],
        ),
        (
            {"RAG": bits("11110 11100"), "Plain": bits("11110 11100")},
            "Plain 70% [40–100] and RAG 70% [40–100] on 10 questions: the same on every question.",
            [("RAG", "Plain")],
        ),
        ({"Fine-tuned": bits("1101")}, "Only Fine-tuned was scored: 75% [25–100] on 4 questions.", []),
        ({}, "No questions were scored.", []),
        ({"RAG": [], "Plain": []}, "No questions were scored.", []),
    ],
)
def test_verdict(scores, headline, pairs):
    text, comparisons = stats.verdict(scores)
    assert text == headline
    assert [(c.a, c.b) for c in comparisons] == pairs


def test_verdict_comparisons_carry_the_numbers():
    _, (rag_plain, ft_plain, combined) = stats.verdict(FOUR)
    assert (rag_plain.only_a, rag_plain.only_b, rag_plain.p) == (5, 0, 2 / 32)
    assert (ft_plain.only_a, ft_plain.only_b, ft_plain.p) == (2, 0, 0.5)
    assert (combined.only_a, combined.only_b, combined.p) == (10, 0, 2 / 1024)
    assert combined.winner == "RAG + Fine-tuned" and rag_plain.winner is None
    assert combined.sentence() == (
        "On 20 questions, RAG + Fine-tuned answers 85% [70–100] vs RAG 35% [15–55]: "
        "RAG + Fine-tuned is better (p = 0.002)."
    )


@pytest.mark.parametrize(
    "scores, message",
    [
        ({"RAG": bits("101"), "Plain": bits("10")}, r"got lengths \{'RAG': 3, 'Plain': 2\}"),
        ({"RAG": bits("101"), "rag+ft": bits("101")}, r"unknown variant label\(s\) \['rag\+ft'\]; use Plain, RAG"),
    ],
)
def test_verdict_rejects_bad_input(scores, message):
    with pytest.raises(ValueError, match=message):
        stats.verdict(scores)


def test_labels_match_the_chat_labels():
    from ragft.variants import LABELS

    assert stats.ORDER == tuple(LABELS.values())
