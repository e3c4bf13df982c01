"""The cloze generator: facts from the stored chunks as fill-in-the-blank questions, no model, deterministic.

A sentence holding a number, year or proper name becomes a question whose answer is that span, so every answer is
grounded in its chunk by construction. A sentence can give two facts: its number and a name besides ("The family
sold a majority stake to ____ in 1998": the buyer and the year), so names are asked as often as numbers.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable
from dataclasses import replace

from ..documents import split_sentences
from ..metrics import normalize
from ..store import Hit
from .english import MONTHS, STARTERS, WEEKDAYS
from .sets import BLANK, AnswerKind, QAItem, fact_id

# 1987, 42, 3.5, 7-4-1-9, 12,000, 42% — but no pieces of dates, times, versions or words like 1990s.
_NUMBER = re.compile(r"(?<![\w.,:/-])\d+(?:[.,-]\d+)*%?(?![\w%-]|[.,:/]\d)")
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+|['’](?=[A-Z])[^\W\d_]+)*")  # O'Brien, Saint-Denis; not Trent's
_CALENDAR = re.compile(f"(?:{WEEKDAYS}|{MONTHS})")
_CONNECTORS = {"of", "de", "van", "von", "der", "da", "del", "du"}  # lower case inside names: Bank of England


def usable(cloze: str, kind: str) -> bool:
    """A blank worth asking: not a piece of a hyphenated name ("Aquila ____-40"), not a day of the month or a clock
    time ("on the ____ March", "at ____ pm"), which people do not ask about on their own."""
    before, _, after = cloze.strip().partition(BLANK)
    if kind == "name" and (after.startswith("-") or before.endswith("-")):
        return False
    return not (kind == "number" and re.match(rf"\s+(?:{MONTHS}|am|pm|a\.m\.|p\.m\.)\b", after))


UNIT_WORDS = re.compile(r"\s+((?:cubic |square )?(?:[a-z]+metres?|metres?|litres?|kilograms?|grams?|tonnes?|kroner|"
                        r"crowns|pounds|euros?|dollars|pence|minutes?|hours?|seconds?|days?|weeks?|months?|years?|"
                        r"miles?|kilometres?|centimetres?|millimetres?|kilowatts?|watts?|decibels?|per cent|"
                        r"percent|spaces|seats|steps|people|employees|frames|bicycles|arches|researchers|"
                        r"students|pages))\b")


def with_unit(answer: str, cloze: str, kind: AnswerKind) -> tuple[str, str, AnswerKind]:
    """A count's unit moved into its answer: ("24 kilograms", "The pump weighs ____ when dry.") for ("24", "The
    pump weighs ____ kilograms when dry."), as people write answers. Other facts come back as they are."""
    before, _, after = cloze.partition(BLANK)
    m = UNIT_WORDS.match(after) if kind == "number" else None
    if not m:
        return answer, cloze, kind
    return f"{answer} {m.group(1)}", before + BLANK + after[m.end():], kind


def _is_heading(sentence: str) -> bool:
    """A title rather than a statement: a Markdown heading, or a line with no end punctuation whose words are mostly
    capitalised ("Mirela Vostrikova (1921–1998): The Chemist Who Listened to Crystals")."""
    if sentence.startswith("#"):
        return True
    if re.search(r"[.!?][\"'”’)\]]?$", sentence):
        return False
    words = [w for w in re.findall(r"[^\W\d_]+", sentence) if len(w) > 3]
    return bool(words) and sum(w[0].isupper() for w in words) >= 0.6 * len(words)


def _sentences(text: str) -> list[str]:
    sentences = (" ".join(s.split()) for s in split_sentences(text, lines=True))
    return [s for s in sentences if 5 <= len(s.split()) <= 45 and not _is_heading(s)]


def _names(sentence: str) -> list[tuple[int, int]]:
    """(start, end) of runs of capitalised words, longest first."""
    runs: list[list[re.Match[str]]] = []
    run: list[re.Match[str]] = []
    for w in _WORD.finditer(sentence):
        word = w.group()
        capital = word[0].isupper() and word != "I"
        joined = bool(run) and sentence[run[-1].end() : w.start()] == " "
        if joined and (capital or word in _CONNECTORS):
            run.append(w)
            continue
        runs.append(run)
        run = [w] if capital else []
    runs.append(run)

    spans = []
    for run in runs:
        while run and (run[-1].group() in _CONNECTORS):
            run = run[:-1]
        while run and (run[0].group() in STARTERS or run[0].group() in _CONNECTORS):
            run = run[1:]
        opens = run and not re.search(r"\w", sentence[: run[0].start()])
        if run and not (opens and len(run) == 1):
            spans.append((run[0].start(), run[-1].end()))
    return sorted(spans, key=lambda s: s[0] - s[1])  # stable: equal lengths keep sentence order


def _blank(sentence: str, start: int, end: int, kind: AnswerKind) -> tuple[str, str, AnswerKind] | None:
    """(answer, cloze, kind) with ``sentence[start:end]`` blanked, or None when the blank would be given away
    elsewhere in the sentence, leave too little, or is not worth asking (see `usable`)."""
    answer = sentence[start:end]
    if len(re.findall(rf"(?<!\w){re.escape(answer)}(?!\w)", sentence)) != 1:
        return None
    cloze = sentence[:start] + BLANK + sentence[end:]
    if len(cloze.replace(BLANK, " ").split()) < 4 or f" {normalize(answer)} " in f" {normalize(cloze)} ":
        return None
    if kind == "name" and _CALENDAR.fullmatch(answer):
        return None  # "opens from ____ to Sunday": a weekday or month is no name people ask about
    if kind == "number" and re.fullmatch(r"\d{4}", answer) and 1000 <= int(answer) <= 2100:
        kind = "year"
    return (answer, cloze, kind) if usable(cloze, kind) else None


def sentence_facts(sentence: str, common: Callable[[str], bool] | None = None) -> list[tuple[str, str, AnswerKind]]:
    """(answer, cloze, kind) for the sentence's first usable number or year and its longest usable name: up to two
    facts. A number's unit joins its answer ("24 kilograms"), as people write answers. ``common(name)``: a name
    the documents use everywhere ("License", "Covered Software"), skipped for the next one — anyone guesses it."""
    found = []
    kind: AnswerKind
    for spans, kind in (([(m.start(), m.end()) for m in _NUMBER.finditer(sentence)], "number"),
                        (_names(sentence), "name")):
        for start, end in spans:
            if kind == "name" and common is not None and common(sentence[start:end]):
                continue
            fact = _blank(sentence, start, end, kind)
            if fact:
                found.append(with_unit(*fact))
                break
    return found


def _distractors(item: QAItem, pool: list[QAItem], count: int, rng: random.Random) -> list[str]:
    same: list[str] = []
    other: list[str] = []
    seen = {normalize(item.answer)}
    for p in pool:
        key = normalize(p.answer)
        if key not in seen:
            seen.add(key)
            (same if p.kind == item.kind else other).append(p.answer)
    rng.shuffle(same)
    rng.shuffle(other)
    return (same + other)[:count]


MAX_CHOICES = 8  # options of a generated multiple-choice question


def generate_cloze(chunks: list[Hit], n: int, choices: int = 0, per_chunk: int = 2, seed: int = 0) -> list[QAItem]:
    """Up to ``n`` fill-in-the-blank questions from ``chunks``, spread over documents; no model, deterministic.

    At most ``per_chunk`` facts come from one chunk. Facts are taken round-robin over documents and, within a
    document, first facts of every chunk before second ones, names and numbers in turn. ``choices`` > 1 makes
    multiple-choice items whose wrong options are answers of other facts (of the same kind first), e.g. four years
    for a year question.
    """
    order: dict[str, int] = {}  # documents in the order they first appear
    for h in chunks:
        order.setdefault(h.source, len(order))
    docs: dict[str, list[tuple[int, int, QAItem]]] = {}  # source -> (rank in chunk, chunk, item)
    pool, asked = [], set()
    common = _common_names(chunks)
    for hit in sorted(chunks, key=lambda h: (order[h.source], h.chunk)):
        rank = 0
        for sentence in _sentences(hit.text):
            for answer, cloze, kind in sentence_facts(sentence, common):
                question = f"Fill in the blank: {cloze}"
                if rank >= per_chunk or normalize(question) in asked:
                    continue
                asked.add(normalize(question))
                fact = fact_id(hit.source, hit.chunk, answer, cloze)
                item = QAItem(question, answer, hit.source, hit.chunk, hit.text, fact=fact, cloze=cloze, kind=kind)
                docs.setdefault(hit.source, []).append((rank, hit.chunk, item))
                pool.append(item)
                rank += 1

    queues = [_names_and_numbers_in_turn([item for *_, item in sorted(facts, key=lambda f: f[:2])])
              for facts in docs.values()]
    picked: list[QAItem] = []
    while len(picked) < n and any(queues):
        picked += [q.pop(0) for q in queues if q][: n - len(picked)]

    if choices < 2:
        return picked
    out = []
    for item in picked:
        rng = random.Random(f"{seed}|{item.fact}")
        wrong = _distractors(item, [p for p in pool if p.fact != item.fact], choices - 1, rng)
        options = [item.answer, *wrong]
        rng.shuffle(options)
        out.append(replace(item, choices=tuple(options)) if wrong else item)
    return out


def _common_names(chunks: list[Hit]) -> Callable[[str], bool]:
    """Whether a name is the documents' own vocabulary rather than a fact: it appears in more than 3 chunks (a
    single mention can sit in two, the overlap carries sentences over). A licence's defined terms ("License",
    "Work", "Covered Software") filled half its blanks otherwise, and a model that never saw the document guessed
    them; a biography's subject is guessed the same way."""
    texts = [h.text for h in chunks]
    limit = 3

    @functools.cache
    def common(name: str) -> bool:
        pattern = re.compile(rf"(?<!\w){re.escape(name)}(?!\w)")
        return sum(1 for t in texts if pattern.search(t)) > limit

    return common


def _names_and_numbers_in_turn(items: list[QAItem]) -> list[QAItem]:
    """``items`` reordered so names and numbers (years included) alternate, each kind keeping its order: a short
    set asks "who" and "which" as well as "when" and "how many"."""
    names = [i for i in items if i.kind == "name"]
    numbers = [i for i in items if i.kind != "name"]
    out: list[QAItem] = []
    for pair in zip(numbers, names):
        out += pair
    rest = numbers[len(names):] or names[len(numbers):]
    return out + rest
