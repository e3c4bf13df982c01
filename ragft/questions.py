"""Question sets for the Evaluate tab: load, save, generate and split them.

A question set is a JSON Lines file, one ``{"question", "answer", ...}`` object per line (the fine-tune
``{"messages": [...]}`` format is read too); see `QAItem` for the optional fields.

Two ways to build one from the stored chunks:
    cloze  deterministic, no model: a sentence holding a number, year or proper name becomes a fill-in-the-blank
           question whose answer is that span, so every answer is grounded in its chunk by construction
    llm    the base model writes one question per chunk; pairs whose answer is not in the chunk are dropped

Two ways to split a set into train (what the adapter is fine-tuned on) and test (what Evaluate asks):
    heldout     whole facts are held out: tests whether fine-tuning taught facts it never saw (it should not)
    paraphrase  every fact on both sides, phrased differently: tests whether a fact learned in one phrasing is
                recalled when asked in another (Ovadia et al. 2023, "Fine-Tuning or Retrieval?")

    >>> items = generate_cloze(store_chunks, n=50, choices=4)              # doctest: +SKIP
    >>> train, test = split_set(items, "paraphrase")                       # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path

from .metrics import normalize
from .store import Hit

BLANK = "____"
SPLIT_MODES = ("heldout", "paraphrase")
SET_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
LLM_BATCH = 8  # prompts per `complete` call


class QuestionSetError(ValueError):
    """A question set that cannot be used; the message names the file, line and problem."""


@dataclass(frozen=True)
class QAItem:
    """One question with its expected answer and, when known, where the answer lives."""

    question: str
    answer: str
    source: str = ""  # document name holding the answer
    chunk: int | None = None  # chunk index within `source` (Hit.chunk)
    context: str = ""  # the passage holding the answer (generated sets: the chunk text)
    choices: tuple[str, ...] = ()  # multiple choice: `answer` is one of these
    fact: str = ""  # id shared by all phrasings of one fact (for the paraphrase split)
    cloze: str = ""  # the source sentence with "____" where the answer was (generated sets)
    kind: str = ""  # "number" | "year" | "name" for generated items

    def to_json(self) -> dict:
        """The non-empty fields as a JSON-ready dict (``chunk`` kept whenever it is set, even 0)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["choices"] = list(self.choices)
        return {k: v for k, v in out.items() if v or (k == "chunk" and v is not None)}


def _fact_id(*parts) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:12]


# --- files ------------------------------------------------------------------------------------------------------
def _optional_str(obj: dict, key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise QuestionSetError(f"{where}: {key!r} must be a string, got {type(value).__name__}")
    return value


def _parse_item(obj: dict, where: str) -> QAItem:
    if "messages" in obj:
        msgs = obj["messages"]
        if not isinstance(msgs, list) or not all(isinstance(m, dict) and "role" in m and "content" in m for m in msgs):
            raise QuestionSetError(f"{where}: 'messages' must be a list of {{role, content}} objects")
        users = [m for m in msgs if m["role"] == "user"]
        if not users or msgs[-1]["role"] != "assistant":
            raise QuestionSetError(f"{where}: 'messages' must have a user turn and end with the assistant")
        question, answer = users[-1]["content"], msgs[-1]["content"]
    else:
        question, answer = obj.get("question"), obj.get("answer")
    # A numeric answer ("answer": 1931) is what people write by hand; bool is an int in Python but never meant.
    if isinstance(answer, (int, float)) and not isinstance(answer, bool):
        answer = str(answer)
    bad = [k for k, v in (("question", question), ("answer", answer)) if not isinstance(v, str) or not v.strip()]
    if bad:
        raise QuestionSetError(
            f"{where}: missing or empty {' and '.join(repr(k) for k in bad)}; each line needs "
            '{"question": "...", "answer": "..."} (non-empty text) or {"messages": [...]}'
        )
    question, answer = question.strip(), answer.strip()

    chunk = obj.get("chunk")
    if chunk is not None and (not isinstance(chunk, int) or isinstance(chunk, bool) or chunk < 0):
        raise QuestionSetError(f"{where}: 'chunk' must be a whole number >= 0, got {json.dumps(chunk)}")

    choices = obj.get("choices") or []
    if choices:
        if not isinstance(choices, list) or not all(isinstance(c, str) and c.strip() for c in choices):
            raise QuestionSetError(f"{where}: 'choices' must be a list of non-empty strings")
        choices = [c.strip() for c in choices]
        if len(choices) < 2 or len({normalize(c) for c in choices}) < len(choices):
            raise QuestionSetError(f"{where}: 'choices' needs at least 2 different options")
        matching = [c for c in choices if normalize(c) == normalize(answer)]
        if not matching:
            raise QuestionSetError(f"{where}: the answer {answer!r} is not one of the 'choices'")
        answer = matching[0]  # the exact text of the option, so scoring a picked option is an exact match

    texts = {key: _optional_str(obj, key, where) for key in ("source", "context", "fact", "cloze", "kind")}
    return QAItem(question, answer, chunk=chunk, choices=tuple(choices), **texts)


def load_set(path: Path | str, max_items: int = 2000) -> list[QAItem]:
    """Read a question set (JSON Lines). Raises `QuestionSetError` naming the line of the first problem.

    Unknown keys are ignored; two lines asking the same question (after normalisation) are an error, since a
    score per question would count that question twice.
    """
    path = Path(path)
    name = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise QuestionSetError(f"{name}: cannot read the file ({exc})") from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = "\0"
    if "\0" in text:
        raise QuestionSetError(f"{name}: not a UTF-8 text file; expected JSON Lines, one question per line")
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise QuestionSetError(f'{name}: no questions; expected JSON Lines like {{"question": ..., "answer": ...}}')
    if len(lines) > max_items:
        raise QuestionSetError(f"{name} has {len(lines)} questions; the limit is {max_items}")

    items, seen = [], {}  # seen: normalised question -> line number
    for n, line in lines:
        where = f"{name} line {n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QuestionSetError(f"{where}: not valid JSON ({exc.msg}); expected one object per line") from None
        if not isinstance(obj, dict):
            raise QuestionSetError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        item = _parse_item(obj, where)
        key = normalize(item.question)
        if key in seen:
            raise QuestionSetError(f"{where}: the same question as line {seen[key]}; remove one of them")
        seen[key] = n
        items.append(item)
    return items


def save_set(items: list[QAItem], path: Path | str) -> Path:
    """Write ``items`` as JSON Lines, atomically: a reader sees the old file or the whole new one, never half."""
    if not items:
        raise QuestionSetError("no questions to save")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(item.to_json(), ensure_ascii=False) + "\n" for item in items)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def check_set_name(name: str) -> str:
    """The name as stored (spaces and a ``.jsonl`` suffix dropped); raises `QuestionSetError` if not allowed."""
    name = name.strip().removesuffix(".jsonl")
    if not SET_NAME_RE.fullmatch(name):
        raise QuestionSetError(
            f"question set name {name!r}: use letters, digits, '-', '_' or '.', starting with a letter or digit, "
            "up to 64 characters"
        )
    return name


def set_path(sets_dir: Path | str, name: str) -> Path:
    return Path(sets_dir) / f"{check_set_name(name)}.jsonl"


def list_sets(sets_dir: Path | str) -> list[str]:
    """Names of the saved sets (files a user put there with names `set_path` would refuse are left out)."""
    sets_dir = Path(sets_dir)
    if not sets_dir.is_dir():
        return []
    names = [p.stem for p in sets_dir.glob("*.jsonl") if p.is_file() and SET_NAME_RE.fullmatch(p.stem)]
    return sorted(names, key=lambda s: (s.lower(), s))


# --- cloze generator --------------------------------------------------------------------------------------------
# A sentence ends at . ! ? (perhaps then a closing quote or bracket) before whitespace, or at a line break.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[.!?][\"'”’)\]])\s+|\n+")
# 1987, 42, 3.5, 7-4-1-9, 12,000, 42% — but no pieces of dates, times, versions or words like 1990s.
_NUMBER = re.compile(r"(?<![\w.,:/-])\d+(?:[.,-]\d+)*%?(?![\w%-]|[.,:/]\d)")
_WORD = re.compile(r"[^\W\d_]+(?:-[^\W\d_]+|['’](?=[A-Z])[^\W\d_]+)*")  # O'Brien, Saint-Denis; not Trent's
_CONNECTORS = {"of", "de", "van", "von", "der", "da", "del", "du"}  # lower case inside names: Bank of England
# Capitalised only because they open a sentence (or clause), so never the start of a name.
_STARTERS = set(
    "The A An In On At By For From To With As Of It Its This That These Those There Here He She They We You I His "
    "Her Their Our Your My When While After Before During Since Although However Then Today Each Every Some Many "
    "Most All Both Also But And Or So If Yes No Unlike Like Once".split()
)


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
    sentences = (" ".join(s.split()) for s in _SENTENCE_END.split(text))
    return [s for s in sentences if 5 <= len(s.split()) <= 45 and not _is_heading(s)]


def _names(sentence: str) -> list[tuple[int, int]]:
    """(start, end) of runs of capitalised words, longest first."""
    runs, run = [], []
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
        while run and (run[0].group() in _STARTERS or run[0].group() in _CONNECTORS):
            run = run[1:]
        opens = run and not re.search(r"\w", sentence[: run[0].start()])
        if run and not (opens and len(run) == 1):
            spans.append((run[0].start(), run[-1].end()))
    return sorted(spans, key=lambda s: s[0] - s[1])  # stable: equal lengths keep sentence order


def _cloze_fact(sentence: str) -> tuple[str, str, str] | None:
    """(answer, cloze, kind) for the best blank in ``sentence``, or None when it has no usable one."""
    numbers = [(m.start(), m.end()) for m in _NUMBER.finditer(sentence)]
    for start, end in numbers + _names(sentence):
        answer = sentence[start:end]
        if len(re.findall(rf"(?<!\w){re.escape(answer)}(?!\w)", sentence)) != 1:
            continue  # the blank would be given away (or ambiguous) elsewhere in the sentence
        cloze = sentence[:start] + BLANK + sentence[end:]
        if len(cloze.replace(BLANK, " ").split()) < 4 or f" {normalize(answer)} " in f" {normalize(cloze)} ":
            continue
        if (start, end) in numbers:
            kind = "year" if re.fullmatch(r"\d{4}", answer) and 1000 <= int(answer) <= 2100 else "number"
        else:
            kind = "name"
        return answer, cloze, kind
    return None


def _distractors(item: QAItem, pool: list[QAItem], count: int, rng: random.Random) -> list[str]:
    same, other, seen = [], [], {normalize(item.answer)}
    for p in pool:
        key = normalize(p.answer)
        if key not in seen:
            seen.add(key)
            (same if p.kind == item.kind else other).append(p.answer)
    rng.shuffle(same)
    rng.shuffle(other)
    return (same + other)[:count]


def generate_cloze(chunks: list[Hit], n: int, choices: int = 0, per_chunk: int = 2, seed: int = 0) -> list[QAItem]:
    """Up to ``n`` fill-in-the-blank questions from ``chunks``, spread over documents; no model, deterministic.

    At most ``per_chunk`` facts come from one chunk. Facts are taken round-robin over documents and, within a
    document, first facts of every chunk before second ones. ``choices`` > 1 makes multiple-choice items whose
    wrong options are answers of other facts (of the same kind first), e.g. four years for a year question.
    """
    order: dict[str, int] = {}  # documents in the order they first appear
    for h in chunks:
        order.setdefault(h.source, len(order))
    docs: dict[str, list[tuple[int, int, QAItem]]] = {}  # source -> (rank in chunk, chunk, item)
    pool, asked = [], set()
    for hit in sorted(chunks, key=lambda h: (order[h.source], h.chunk)):
        rank = 0
        for sentence in _sentences(hit.text):
            if rank >= per_chunk:
                break
            found = _cloze_fact(sentence)
            if not found:
                continue
            answer, cloze, kind = found
            question = f"Fill in the blank: {cloze}"
            if normalize(question) in asked:
                continue
            asked.add(normalize(question))
            fact = _fact_id(hit.source, hit.chunk, answer, cloze)
            item = QAItem(question, answer, hit.source, hit.chunk, hit.text, fact=fact, cloze=cloze, kind=kind)
            docs.setdefault(hit.source, []).append((rank, hit.chunk, item))
            pool.append(item)
            rank += 1

    queues = [[item for *_, item in sorted(facts, key=lambda f: f[:2])] for facts in docs.values()]
    picked = []
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


_AUX = set("is are was were has have had will can could would should may might must".split())


def _echo(item: QAItem) -> str:
    """The sentence asked as a question in place: "It plays music with how many glass bells?"."""
    before, _, after = item.cloze.rstrip(" .!?").partition(BLANK)
    if item.kind == "year":
        what = "what year"
    elif item.kind == "number" and re.match(r"\s+[a-z]", after):
        what = "how many"  # a count of something: "with ____ glass bells"
    elif not before.strip():
        what = "who" if item.kind == "name" else "what"  # the blank is the subject: mostly a person
    else:
        what = "what"
    question = f"{before}{what}{after}?"
    return question[0].upper() + question[1:]


def _fronted(item: QAItem) -> str | None:
    """The question word first, as people ask: "When was the glimmerphone invented by Ada Trent?" (a year after
    "in", with an auxiliary to invert) or "How many metres tall is the largest one?" (a count right after an
    auxiliary). None when the sentence has no such shape."""
    before, _, after = item.cloze.rstrip(" .!?").partition(BLANK)
    words = before.split()

    def subject(ws: list[str]) -> str:
        text = " ".join(ws)
        return text[0].lower() + text[1:] if ws and ws[0] in _STARTERS else text

    if item.kind == "year" and words[-1:] == ["in"]:
        aux = next((i for i, w in enumerate(words[:-1]) if i > 0 and w.lower() in _AUX), None)
        if aux is not None:
            verb = " ".join(words[aux + 1 : -1])
            return " ".join(f"When {words[aux].lower()} {subject(words[:aux])} {verb}{after}?".split())
    if item.kind == "number" and len(words) >= 2 and words[-1].lower() in _AUX and re.match(r"\s+[a-z]", after):
        after = re.split(r",|;| (?:and|but|which|while|where) ", after)[0]  # the count's own clause only
        return " ".join(f"How many{after} {words[-1].lower()} {subject(words[:-1])}?".split())
    return None


def phrasings(item: QAItem) -> list[str]:
    """Ways to ask the same fact: [fill in the blank, complete the sentence, the sentence as a question, and — when
    the sentence allows — the question word first]; one for hand-written items. The third is the one a paraphrase
    split tests on; the others are trained on."""
    if not item.cloze:
        return [item.question]
    forms = [
        f"Fill in the blank: {item.cloze}",
        f"Complete the sentence with the missing word or number: {item.cloze}",
        _echo(item),
    ]
    fronted = _fronted(item)
    return forms + [fronted] if fronted and normalize(fronted) != normalize(forms[2]) else forms


# --- train/test splits ------------------------------------------------------------------------------------------
def split_set(
    items: list[QAItem], mode: str, test_share: float = 0.5, seed: int = 0
) -> tuple[list[QAItem], list[QAItem]]:
    """(train, test). ``heldout``: about ``test_share`` of facts go to test, all of a fact's items together.
    ``paraphrase``: every fact on both sides; test asks phrasing [2], train all the others (see `phrasings`).

    Deterministic for the same items and seed; train never holds a question (normalised) that test asks.
    """
    if mode == "heldout":
        if not 0 < test_share < 1:
            raise QuestionSetError(f"test share must be between 0 and 1, got {test_share}")
        facts = list(dict.fromkeys(item.fact or normalize(item.question) for item in items))
        # Facts ranked by a stable hash (so neither item order nor Python's hash seed matters); the first
        # test_share of them is test, keeping one fact on each side whenever there are two.
        ranked = sorted(facts, key=lambda f: hashlib.sha1(f"{seed}|{f}".encode()).hexdigest())
        k = int(len(facts) * test_share + 0.5)
        if len(facts) >= 2:
            k = min(max(k, 1), len(facts) - 1)
        held = set(ranked[:k])
        test = [i for i in items if (i.fact or normalize(i.question)) in held]
        train = [i for i in items if (i.fact or normalize(i.question)) not in held]
    elif mode == "paraphrase":
        plain = sum(not item.cloze for item in items)
        if plain:
            raise QuestionSetError(
                f"the paraphrase split needs generated fill-in-the-blank questions; {plain} of {len(items)} "
                "questions have no 'cloze' sentence to rephrase: use the heldout split instead"
            )
        train, test = [], []
        for item in items:
            p = phrasings(item)
            train += [replace(item, question=q) for n, q in enumerate(p) if n != 2]
            test.append(replace(item, question=p[2]))
    else:
        raise QuestionSetError(f"unknown split {mode!r}; choose one of: {', '.join(SPLIT_MODES)}")
    asked = {normalize(i.question) for i in test}
    return [i for i in train if normalize(i.question) not in asked], test


# --- LLM-written questions --------------------------------------------------------------------------------------
LLM_PROMPT = """Read the passage, then write ONE question that the passage answers, and its short answer \
(a few words copied from the passage). Reply in exactly this format:
Question: ...
Answer: ...

Passage:
{passage}"""

# Small models often stop after writing "Answer:"; such a question gets a second, extractive prompt.
ANSWER_PROMPT = """Passage:
{passage}

Question: {question}
Answer with a few words copied from the passage."""

_LINE = re.compile(r"^[\s*#>-]*(question|answer|q|a)[\s*]*[:：]\s*(.*)$", re.I)


def _parse_reply(reply: str) -> tuple[str, str] | None:
    """(question, answer) from a reply; answer "" when only the question was written; None without a question."""
    question = answer = None
    for line in reply.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        value = m.group(2).strip().strip("*\"'“”").strip()
        if m.group(1).lower()[0] == "q" and question is None:
            question = value
        elif m.group(1).lower()[0] == "a" and question is not None and answer is None:
            answer = value
    return (question, answer or "") if question else None


def _grounded(question: str, answer: str, passage: str) -> bool:
    q, a = normalize(question), normalize(answer)
    return (
        bool(a)
        and len(a.split()) <= 12
        and f" {a} " in f" {normalize(passage)} "
        and f" {a} " not in f" {q} "
        and (question.rstrip().endswith("?") or len(question.split()) >= 4)
    )


def _parts(text: str, k: int) -> list[str]:
    """``text`` cut into up to ``k`` runs of whole sentences, so k prompts on one chunk ask about different facts."""
    sentences = [s for s in _SENTENCE_END.split(text.strip()) if s.strip()]
    if k <= 1 or len(sentences) <= 1:
        return [text.strip()] if sentences else []
    k = min(k, len(sentences))
    bounds = [round(i * len(sentences) / k) for i in range(k + 1)]
    return [" ".join(sentences[a:b]) for a, b in zip(bounds, bounds[1:])]


def llm_questions(
    chunks: list[Hit], complete: Callable[[list[str]], list[str]], n: int, per_chunk: int = 1
) -> tuple[list[QAItem], int]:
    """Up to ``n`` questions written by a model; ``complete(prompts) -> replies`` gets up to 8 prompts a call.

    Chunks are asked in order until ``n`` pairs are kept; with ``per_chunk`` > 1 each prompt shows one part of
    the chunk. Returns (items, dropped): a reply is dropped when it cannot be parsed, its answer is not in the
    chunk, is longer than 12 words or is given away by the question, or it repeats an earlier question
    (replies after the n-th kept question are neither kept nor counted).
    """
    prompts = [(hit, LLM_PROMPT.format(passage=part)) for hit in chunks for part in _parts(hit.text, per_chunk)]
    items, asked, dropped = [], set(), 0
    for start in range(0, len(prompts), LLM_BATCH):
        if len(items) >= n:
            break
        batch = prompts[start : start + LLM_BATCH]
        pairs = [_parse_reply(reply or "") for reply in complete([p for _, p in batch])]
        unanswered = [i for i, pair in enumerate(pairs) if pair and not pair[1]]
        if unanswered:
            replies = complete(
                [ANSWER_PROMPT.format(passage=batch[i][0].text, question=pairs[i][0]) for i in unanswered]
            )
            for i, reply in zip(unanswered, replies):
                pairs[i] = (pairs[i][0], (reply or "").strip().removeprefix("Answer:").strip())
        for (hit, _), pair in zip(batch, pairs):
            if len(items) >= n:
                break
            if not pair or not _grounded(*pair, hit.text) or normalize(pair[0]) in asked:
                dropped += 1
                continue
            question, answer = pair
            asked.add(normalize(question))
            fact = _fact_id(hit.source, hit.chunk, answer, question)
            items.append(QAItem(question, answer, hit.source, hit.chunk, hit.text, fact=fact))
    return items, dropped
