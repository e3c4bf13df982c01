"""How sure a score difference is: bootstrap intervals, exact McNemar, and the verdict sentence.

Questions are the unit of resampling: each variant answers the same questions, so the comparisons are paired.

    bootstrap_ci      percentile bootstrap interval of a mean (a proportion for right/wrong scores)
    mcnemar_exact     exact two-sided McNemar test on paired right/wrong outcomes (math.comb, no approximation)
    paired_bootstrap  bootstrap interval and p-value of the mean difference a - b, resampling questions jointly
    compare           all of the above for two variants, as a `Comparison` that can say itself in one sentence
    verdict           the headline ("Best: ... ahead of ...") and the standard comparisons between the four variants

    >>> verdict({"RAG": [True, True, False], "Plain": [False, True, False]})[0]
    'RAG 67% [0–100] and Plain 33% [0–100] on 3 questions: too few questions to tell them apart (p = 1).'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence, Sized
from dataclasses import dataclass

import numpy as np

# Same labels as chat.LABELS; spelled out here so this module imports nothing heavier than numpy.
PLAIN, RAG, FT, RAG_FT = "Plain", "RAG", "Fine-tuned", "RAG + Fine-tuned"
ORDER = (PLAIN, RAG, FT, RAG_FT)  # ties go to the simpler variant


@dataclass(frozen=True)
class Interval:
    """A mean (a proportion for right/wrong scores) with its confidence interval over ``n`` questions."""

    mean: float
    low: float
    high: float
    n: int

    def pct(self) -> str:
        """Whole percents with an en dash: ``"62% [48–75]"``; ``"n/a"`` when nothing was scored."""
        if self.n == 0:
            return "n/a"
        return f"{self.mean * 100:.0f}% [{self.low * 100:.0f}–{self.high * 100:.0f}]"


def _resampled_means(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    # Each row is one bootstrap sample of question indices, drawn with replacement: shape (resamples, n).
    rng = np.random.Generator(np.random.PCG64(seed))
    idx = rng.integers(0, len(values), size=(resamples, len(values)))
    return values[idx].mean(axis=1)


def _bounds(means: np.ndarray, level: float) -> tuple[float, float]:
    tail = (1 - level) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return float(low), float(high)


def weighted(values: Sequence[float], weights: Sequence[float] | None) -> np.ndarray:
    """``values`` scaled so that their plain mean is the mean weighted by ``weights`` (n * w_i * x_i, with the
    weights summing to 1): the bootstrap below then resamples questions as it always does."""
    x = np.asarray(values, dtype=float)
    if weights is None:
        return x
    w = np.asarray(weights, dtype=float)
    if len(w) != len(x) or np.any(w < 0) or not w.sum() > 0:
        raise ValueError("weights: one non-negative weight per question, not all 0")
    return x * w * (len(x) / w.sum())


def bootstrap_ci(values: Sequence[float], level: float = 0.95, resamples: int = 2000, seed: int = 0,
                 weights: Sequence[float] | None = None) -> Interval:
    """Percentile bootstrap interval of the mean of ``values`` (weighted by ``weights``, if given); the same seed
    gives the same interval."""
    x = weighted(values, weights)
    if len(x) == 0:
        return Interval(math.nan, math.nan, math.nan, 0)
    if np.all(x == x[0]):
        # Every resample is the same; answer exactly rather than with a float-summed mean.
        return Interval(float(x[0]), float(x[0]), float(x[0]), len(x))
    low, high = _bounds(_resampled_means(x, resamples, seed), level)
    clip = (lambda v: min(max(v, 0.0), 1.0)) if weights is not None else float  # a weighted share stays a share
    return Interval(float(x.mean()), clip(low), clip(high), len(x))


def _check_lengths(a: Sized, b: Sized) -> None:
    if len(a) != len(b):
        raise ValueError(f"paired scores need the same questions: got {len(a)} and {len(b)} scores")


def mcnemar_exact(a: Sequence[bool], b: Sequence[bool]) -> tuple[int, int, float]:
    """Exact McNemar test on paired outcomes: ``(only_a, only_b, two-sided p)``.

    Only the discordant questions count; under "no difference" each is a fair coin, so
    p = 2 * P(Binomial(only_a + only_b, 1/2) <= min(only_a, only_b)), capped at 1.
    """
    _check_lengths(a, b)
    only_a = sum(1 for x, y in zip(a, b) if x and not y)
    only_b = sum(1 for x, y in zip(a, b) if y and not x)
    n = only_a + only_b
    if n == 0:
        return only_a, only_b, 1.0
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1))
    return only_a, only_b, min(1.0, 2 * tail / 2**n)  # int / int: one correctly rounded division


def paired_bootstrap(
    a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, level: float = 0.95, resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float, float]:
    """Mean difference a - b with its bootstrap interval and two-sided p: ``(diff, low, high, p)``.

    Resampling questions jointly keeps each question's pair together, which is what makes the test paired.
    p is twice the share of resampled differences on the far side of 0, with +1 so it is never 0.
    """
    _check_lengths(a, b)
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(d) == 0:
        return math.nan, math.nan, math.nan, 1.0
    diff = float(d.mean())
    means = _resampled_means(d, resamples, seed)
    low, high = _bounds(means, level)
    if diff == 0:
        return diff, low, high, 1.0
    beyond = int(np.sum(means <= 0)) if diff > 0 else int(np.sum(means >= 0))
    return diff, low, high, min(1.0, 2 * (beyond + 1) / (resamples + 1))


def format_p(p: float) -> str:
    """``"p < 0.001"`` for tiny values, else two significant digits: ``"p = 0.012"``, ``"p = 0.31"``."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.2g}"


@dataclass(frozen=True)
class Comparison:
    """Two variants scored on the same questions: their intervals, the discordant pairs and the paired tests."""

    a: str
    b: str
    a_ci: Interval
    b_ci: Interval
    only_a: int  # questions only a got right
    only_b: int
    p: float  # exact McNemar
    diff: float  # mean a - b, with its paired bootstrap interval
    diff_low: float
    diff_high: float
    alpha: float = 0.05

    @property
    def winner(self) -> str | None:
        """The better variant's label when the difference is significant at ``alpha``, else None."""
        if self.p >= self.alpha or self.diff == 0:
            return None
        return self.a if self.diff > 0 else self.b

    def sentence(self, what: str = "questions") -> str:
        """``"On 40 questions, RAG answers 62% [48–75] vs Plain 45% [31–60]: RAG is better (p = 0.01)."``

        Or ``"...: too few questions to tell them apart (p = 0.31)."``, or ``"...: the same on every question."``
        """
        n = self.a_ci.n
        if n == 0:
            return f"No {what} were scored."
        scores = f"On {n} {what}, {self.a} answers {self.a_ci.pct()} vs {self.b} {self.b_ci.pct()}"
        if self.only_a == self.only_b == 0:
            return f"{scores}: the same on every question."
        if self.winner is None:
            return f"{scores}: too few {what} to tell them apart ({format_p(self.p)})."
        return f"{scores}: {self.winner} is better ({format_p(self.p)})."


def compare(
    a_label: str, a_correct: Sequence[bool], b_label: str, b_correct: Sequence[bool], seed: int = 0, alpha: float = 0.05,
    weights: Sequence[float] | None = None,
) -> Comparison:
    """Compare two variants' right/wrong answers on the same questions, in the same order. With ``weights`` (one
    per question) the means are weighted and p is the paired bootstrap's (McNemar counts questions alike)."""
    _check_lengths(a_correct, b_correct)
    a_vals, b_vals = weighted(a_correct, weights), weighted(b_correct, weights)
    only_a, only_b, p = mcnemar_exact(a_correct, b_correct)
    diff, low, high, p_boot = paired_bootstrap(a_vals, b_vals, seed=seed)  # McNemar is exact for binary scores
    return Comparison(
        a_label, b_label, bootstrap_ci(a_correct, seed=seed, weights=weights),
        bootstrap_ci(b_correct, seed=seed, weights=weights), only_a, only_b, p if weights is None else p_boot,
        diff, low, high, alpha,
    )


def verdict(scores: Mapping[str, Sequence[bool]], seed: int = 0, alpha: float = 0.05,
            weights: Sequence[float] | None = None) -> tuple[str, list[Comparison]]:
    """Headline sentence and the standard comparisons, from each variant's per-question correctness.

    ``scores`` maps a label (Plain, RAG, Fine-tuned, RAG + Fine-tuned; any subset) to right/wrong answers on the
    same questions in the same order. Comparisons, when both sides are present: RAG vs Plain, Fine-tuned vs Plain,
    RAG + Fine-tuned vs the better of RAG and Fine-tuned (a tie goes to RAG). ``weights`` (one per question) weigh
    the questions, e.g. so that the questions on two parts of the documents count as those parts' shares.
    """
    unknown = set(scores) - set(ORDER)
    if unknown:
        raise ValueError(f"unknown variant label(s) {sorted(unknown)}; use {', '.join(ORDER)}")
    lengths = {label: len(v) for label, v in scores.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"every variant needs a score per question; got lengths {lengths}")
    n = next(iter(lengths.values()), 0)
    if n == 0:
        return "No questions were scored.", []

    def cmp(a: str, b: str) -> Comparison:
        return compare(a, scores[a], b, scores[b], seed=seed, alpha=alpha, weights=weights)

    mean = {label: float(weighted([float(x) for x in v], weights).mean()) for label, v in scores.items()}
    comparisons = [cmp(a, b) for a, b in [(RAG, PLAIN), (FT, PLAIN)] if a in scores and b in scores]
    single = [label for label in (RAG, FT) if label in scores]
    if RAG_FT in scores and single:
        comparisons.append(cmp(RAG_FT, max(single, key=lambda label: mean[label])))  # max keeps the first on a tie

    # Stable sort over ORDER: on equal means the simpler variant ranks first.
    ranked = sorted((label for label in ORDER if label in scores), key=lambda label: -mean[label])
    if len(ranked) == 1:
        only = ranked[0]
        ci = bootstrap_ci([float(x) for x in scores[only]], seed=seed, weights=weights)
        return f"Only {only} was scored: {ci.pct()} on {n} questions.", comparisons
    head = cmp(ranked[0], ranked[1])  # best vs runner-up, which need not be one of the standard comparisons
    runner, p = f"{head.b} {head.b_ci.pct()}", format_p(head.p)
    if head.winner == head.a:
        return f"Best: {head.a} — {head.a_ci.pct()} on {n} questions, ahead of {runner} ({p}).", comparisons
    both = f"{head.a} {head.a_ci.pct()} and {runner} on {n} questions"
    if head.only_a == head.only_b == 0:
        return f"{both}: the same on every question.", comparisons
    return f"{both}: too few questions to tell them apart ({p}).", comparisons
