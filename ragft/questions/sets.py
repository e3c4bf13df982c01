"""Question-set files: the `QAItem` model and JSON Lines load/save.

A question set is a JSON Lines file, one ``{"question", "answer", ...}`` object per line (the fine-tune
``{"messages": [...]}`` format is read too); see `QAItem` for the optional fields.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Literal, get_args

from ..errors import RagftError
from ..knobs import NAME_RULE, valid_name
from ..metrics import normalize

BLANK = "____"
AnswerKind = Literal["", "number", "year", "name"]  # what a generated item's answer is ("": not said)
ANSWER_KINDS: tuple[AnswerKind, ...] = get_args(AnswerKind)


class QuestionSetError(RagftError, ValueError):
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
    kind: AnswerKind = ""  # generated items: what the answer is

    def to_json(self) -> dict:
        """The non-empty fields as a JSON-ready dict (``chunk`` kept whenever it is set, even 0)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["choices"] = list(self.choices)
        return {k: v for k, v in out.items() if v or (k == "chunk" and v is not None)}


def fact_id(*parts) -> str:
    return hashlib.sha1("|".join(map(str, parts)).encode()).hexdigest()[:12]


# --- files ------------------------------------------------------------------------------------------------------
def _optional_str(obj: dict, key: str, where: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise QuestionSetError(f"{where}: {key!r} must be a string, got {type(value).__name__}")
    return value


MAX_TEXT_CHARS = 4000  # per question or answer: longer would not fit a small model's prompt with its context


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
    long = [f"{k} ({len(v):,} characters)" for k, v in (("question", question), ("answer", answer))
            if len(v) > MAX_TEXT_CHARS]
    if long:
        raise QuestionSetError(f"{where}: {' and '.join(long)} over the {MAX_TEXT_CHARS:,}-character limit")

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

    texts = {key: _optional_str(obj, key, where) for key in ("source", "context", "fact", "cloze")}
    kind = _optional_str(obj, "kind", where)
    if kind not in ANSWER_KINDS:
        allowed = ", ".join(k for k in ANSWER_KINDS if k)
        raise QuestionSetError(f"{where}: 'kind' must be one of {allowed}, got {kind!r}")
    return QAItem(question, answer, chunk=chunk, choices=tuple(choices), kind=kind, **texts)


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

    items: list[QAItem] = []
    seen: dict[str, int] = {}  # normalised question -> line number
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


MAX_TYPED = 50  # questions a user types into the Experiment tab
TYPED_RULE = "one question a line, then ' | ' and the answer you expect: When was the light built? | 1871"


def parse_typed(text: str) -> list[QAItem]:
    """Questions a user typed, one a line as ``question | expected answer`` (blank lines skipped); a line that is
    not in that form, a question over 500 characters or more than `MAX_TYPED` questions raise
    `QuestionSetError` naming the line."""
    if not isinstance(text, str):
        raise QuestionSetError(f"your questions must be text: {TYPED_RULE}")
    items, seen = [], set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        question, bar, answer = line.partition("|")
        question, answer = question.strip(), answer.strip()
        if not bar or not question or not answer:
            raise QuestionSetError(f"your questions, line {n}: {TYPED_RULE}")
        if len(question) > 500 or len(answer) > 500:
            raise QuestionSetError(f"your questions, line {n}: a question or answer of over 500 characters")
        if normalize(question) in seen:
            raise QuestionSetError(f"your questions, line {n}: the same question twice")
        seen.add(normalize(question))
        items.append(QAItem(question, answer))
    if len(items) > MAX_TYPED:
        raise QuestionSetError(f"{len(items)} questions typed; at most {MAX_TYPED}")
    return items


def save_set(items: list[QAItem], path: Path | str) -> Path:
    """Write ``items`` as JSON Lines, atomically: a reader sees the old file or the whole new one, never half."""
    if not items:
        raise QuestionSetError("no questions to save")
    path, tmp = Path(path), None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(json.dumps(item.to_json(), ensure_ascii=False) + "\n" for item in items)
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError):  # a full disk, a read-only folder: said, and the old file (if any) kept
            raise QuestionSetError(f"could not save {path.name}: {exc.strerror or exc}; nothing was changed") from None
        raise
    return path


def check_set_name(name: str) -> str:
    """The name as stored (spaces and a ``.jsonl`` suffix dropped); raises `QuestionSetError` if not allowed."""
    name = name.strip().removesuffix(".jsonl")
    if not valid_name(name):
        raise QuestionSetError(f"question set name {name!r}: {NAME_RULE}, starting with a letter or digit")
    return name


def set_path(sets_dir: Path | str, name: str) -> Path:
    return Path(sets_dir) / f"{check_set_name(name)}.jsonl"


def list_sets(sets_dir: Path | str) -> list[str]:
    """Names of the saved sets (files a user put there with names `set_path` would refuse are left out)."""
    sets_dir = Path(sets_dir)
    if not sets_dir.is_dir():
        return []
    names = [p.stem for p in sets_dir.glob("*.jsonl") if p.is_file() and valid_name(p.stem)]
    return sorted(names, key=lambda s: (s.lower(), s))

