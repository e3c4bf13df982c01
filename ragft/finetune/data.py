"""Training data: the stored documents (continued pre-training), question/answer pairs, or RAFT (pairs with
retrieved context: the gold chunk among distractors); tokenised with the loss on the answer only."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ..chat import build_messages
from ..errors import RagftError
from ..questions import QuestionSetError, load_set
from ..store import Hit, Store
from .config import TrainConfig

IGNORE = -100  # label of tokens that carry no loss


class TrainingDataError(RagftError, ValueError):
    """Training data that cannot be used; the message names the file, line and problem."""


@dataclass(frozen=True)
class Example:
    """One training example: chat ``messages`` + ``answer`` (loss on the answer), or raw ``text`` (loss on all)."""

    messages: tuple[dict, ...] = ()
    answer: str = ""
    text: str = ""
    # Where it came from, kept in the run record so Evaluate can warn about train/test overlap.
    question: str = ""
    fact: str = ""
    source: str = ""


def load_qa_file(path: Path) -> list[dict]:
    """Read a JSONL file of ``{"question", "answer"}`` or ``{"messages": [...]}`` records (a question set, see
    ``questions.load_set``) as ``{"question", "answer", "source"?, "fact"?}`` dicts.

    Raises `TrainingDataError` naming the line of the first problem.
    """
    try:
        items = load_set(path)
    except QuestionSetError as exc:
        raise TrainingDataError(str(exc)) from None
    keep = ("question", "answer", "source", "chunk", "fact")  # fact: sets saved by the Evaluate tab (overlap check)
    return [{k: v for k, v in it.to_json().items() if k in keep} for it in items]


def document_examples(store: Store) -> list[Example]:
    """Every stored chunk as raw text: continued pre-training on the user's documents."""
    examples = [Example(text=h.text, source=h.source) for h in store.all_chunks()]
    if not examples:
        raise TrainingDataError("the document store is empty: add documents first", fix="documents")
    return examples


def qa_examples(records: list[dict]) -> list[Example]:
    return [
        Example(tuple(build_messages(r["question"])), r["answer"], question=r["question"], fact=r.get("fact", ""),
                source=r.get("source", ""))
        for r in records
    ]


def raft_examples(records: list[dict], store: Store, config: TrainConfig) -> list[Example]:
    """RAFT: each question with a context of the gold chunk among distractors (the chunks retrieval ranks next),
    or (a ``raft_no_gold`` share of the time) distractors only — in the same prompt format the RAG panes use at
    chat time. The answer is the span the gold chunk holds: the adapter learns to read it out."""
    if store.count() == 0:
        raise TrainingDataError("RAFT needs stored documents for its context: add documents first")
    rng = random.Random(config.seed)
    all_chunks = store.all_chunks()
    by_place: dict[tuple[str | None, int | None], Hit] = {(h.source, h.chunk): h for h in all_chunks}
    examples = []
    for r in records:
        # The gold chunk: the one the record names (a generated fact's own chunk), else the best hit of its document
        # that holds the answer, else the best hit at all. A rephrased question often ranks another chunk first.
        gold: Hit | None = by_place.get((r.get("source"), r.get("chunk")))
        if gold is None and r.get("source"):
            named = [h for h in store.search(r["question"], 10) if h.source == r["source"]]
            gold = next((h for h in named if r["answer"] in h.text), named[0] if named else None)
        if gold is None:
            hits = store.search(r["question"], 1)
            gold = hits[0] if hits else None
        # Distractors: what retrieval ranks highest for the question besides the gold chunk — the chunks a RAG
        # prompt shows next to (or instead of) the answer, so the adapter learns to pick the answer out of them.
        n = config.raft_distractors
        near = [h for h in (store.search(r["question"], n + 1) if n else []) if gold is None or h.id != gold.id][:n]
        taken = {h.id for h in near} | ({gold.id} if gold is not None else set())
        others = [h for h in all_chunks if h.id not in taken]
        distractors = near + rng.sample(others, min(n - len(near), len(others)))
        context = list(distractors)
        if gold is not None and rng.random() >= config.raft_no_gold:
            context.insert(rng.randrange(len(context) + 1), gold)
        examples.append(Example(tuple(build_messages(r["question"], context)), r["answer"], question=r["question"],
                                fact=r.get("fact", ""), source=r.get("source", "")))
    return examples


def tokenize(example: Example, tokenizer, max_len: int) -> dict:
    """input_ids/labels for one example; prompt tokens get label IGNORE so only the answer is learned."""
    end = tokenizer.eos_token or ""
    if example.text:
        ids = tokenizer(example.text + end, add_special_tokens=False)["input_ids"][:max_len]
        return {"input_ids": ids, "labels": list(ids), "attention_mask": [1] * len(ids)}
    prompt = tokenizer.apply_chat_template(list(example.messages), tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(example.answer + end, add_special_tokens=False)["input_ids"]
    # Keep the answer whole and cut the prompt from the left (the question sits at its end).
    prompt_ids = prompt_ids[-max(max_len - len(answer_ids), 8) :]
    ids = (prompt_ids + answer_ids)[:max_len]
    labels = ([IGNORE] * len(prompt_ids) + answer_ids)[:max_len]
    return {"input_ids": ids, "labels": labels, "attention_mask": [1] * len(ids)}


DataSource = Literal["docs", "qa", "raft"]
DATA_SOURCES: tuple[DataSource, ...] = ("docs", "qa", "raft")


@dataclass(frozen=True)
class DataSpec:
    """What to train on: ``source`` is "docs", "qa" or "raft"; ``qa_path`` for the last two."""

    source: DataSource
    qa_path: Path | None = None

    def examples(self, store: Store, config: TrainConfig) -> list[Example]:
        if self.source == "docs":
            return document_examples(store)
        if self.source not in ("qa", "raft"):
            raise TrainingDataError(f"unknown data source {self.source!r}; use docs, qa or raft")
        if self.qa_path is None:
            raise TrainingDataError("upload a question/answer JSONL file first")
        records = load_qa_file(self.qa_path)
        return qa_examples(records) if self.source == "qa" else raft_examples(records, store, config)


def preview(examples: list[Example], tokenizer, max_len: int, n: int = 5) -> tuple[list[dict], dict]:
    """The first ``n`` examples as the model will see them, plus counts for the whole set."""
    rows, total, trained = [], 0, 0
    for i, ex in enumerate(examples):
        t = tokenize(ex, tokenizer, max_len)
        total += len(t["input_ids"])
        trained += sum(label != IGNORE for label in t["labels"])
        if i < n:
            shown = ex.text or f"{ex.messages[-1]['content']}\n→ {ex.answer}"
            rows.append({"example": i + 1, "tokens": len(t["input_ids"]), "trained tokens": sum(
                label != IGNORE for label in t["labels"]), "text": shown})
    summary = {"examples": len(examples), "tokens": total, "trained_tokens": trained}
    return rows, summary
