"""Question-set verbs: list, read (by name, or a JSONL file), save (whole or split), generate from the documents."""

from __future__ import annotations

from pathlib import Path

from ..backend import BASE
from ..chat import (
    build_messages,
)
from ..generation import DecodeSettings, generate_batch
from ..questions import (
    MAX_CHOICES,
    QAItem,
    QuestionSetError,
    check_set_name,
    generate_cloze,
    list_sets,
    llm_questions,
    load_set,
    save_set,
    set_path,
    split_set,
)
from .base import EngineBase

MAX_SET_ITEMS = 2000  # questions in one set (`load_set` reads no more)
MAX_SETS = 100  # question sets in one workspace


class QuestionVerbs(EngineBase):
    def question_sets(self) -> list[str]:
        return list_sets(self.settings.questions_dir)

    def question_set_path(self, name: str) -> Path:
        """The file of saved question set ``name`` (a name, never a path: `QuestionSetError` if there is none)."""
        path = set_path(self.settings.questions_dir, check_set_name(name))
        if not path.is_file():
            raise QuestionSetError(
                f"no question set named {name!r}; saved sets: {', '.join(self.question_sets()) or 'none yet'}"
            )
        return path

    def load_question_set(self, name: str) -> list[QAItem]:
        return load_set(self.question_set_path(name))

    def save_question_set(self, name: str, items: list[QAItem], split: str = "") -> list[str]:
        """Save ``items`` as set ``name``; with ``split`` ("heldout" or "paraphrase") as ``name-train`` (for the
        Fine-tune tab) and ``name-test`` (for Evaluate). Returns the names saved."""
        name = check_set_name(name)
        if not items:
            raise QuestionSetError("nothing to save: the set has no questions")
        if len(items) > MAX_SET_ITEMS:  # before anything is written: a set this long could not be read back
            raise QuestionSetError(f"the set has {len(items)} questions; the limit is {MAX_SET_ITEMS}")
        d = self.settings.questions_dir
        parts = dict(zip(("train", "test"), split_set(items, split))) if split else {"": items}
        names = [f"{name}-{part}" if part else name for part in parts]
        existing = self.question_sets()
        if len(existing) + len(set(names) - set(existing)) > MAX_SETS:
            raise QuestionSetError(f"this workspace holds {len(existing)} question sets, the most is {MAX_SETS}: "
                                   "delete or reuse one")
        for full, part_items in zip(names, parts.values()):
            save_set(part_items, set_path(d, full))
        return names

    def generate_questions(self, n: int, method: str = "cloze", choices: int = 0) -> tuple[list[QAItem], str]:
        """Up to ``n`` questions grounded in the stored chunks, and a line saying what was made.

        ``cloze`` needs no model (fill-in-the-blank on names, numbers and years); ``llm`` asks the base model to
        write questions and keeps only those whose answer is found in their chunk.
        """
        if not 1 <= n <= 2000:
            raise QuestionSetError("the number of questions must be 1..2000")
        if choices and not 2 <= choices <= MAX_CHOICES:
            raise QuestionSetError(f"multiple choice takes 2..{MAX_CHOICES} options (0: open questions)")
        chunks = self.store.all_chunks()
        if not chunks:
            raise QuestionSetError("the document store is empty: add documents first", fix="documents")
        if method == "cloze":
            items = generate_cloze(chunks, n, choices=choices)
            note = f"{len(items)} fill-in-the-blank questions from {len(chunks)} chunks"
        elif method == "llm":
            items, dropped = llm_questions(chunks, self._complete, n)
            note = (f"{len(items)} questions written by {self.generator.source.description}; {dropped} replies "
                    "dropped (answer not found in the chunk, or not in Question/Answer form)")
        else:
            raise QuestionSetError(f"unknown method {method!r}; use cloze or llm")
        if not items:
            raise QuestionSetError(f"no questions could be made from the stored documents ({note})")
        return items, note

    def _complete(self, prompts: list[str]) -> list[str]:
        conversations = [build_messages(p, instruct=False) for p in prompts]  # the prompt carries its own
        return generate_batch(self.generator, conversations, [BASE] * len(prompts), DecodeSettings(80))

    def read_questions(self, name_or_file: str | Path) -> list[QAItem]:
        """A saved question set by name, or a JSONL file by path."""
        path = Path(name_or_file)
        if path.suffix.lower() == ".jsonl" or path.is_file():
            if not path.is_file():
                raise QuestionSetError(f"{name_or_file}: no such file")
            return load_set(path)
        return self.load_question_set(str(name_or_file))
