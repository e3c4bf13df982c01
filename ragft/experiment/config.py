"""What an experiment runs: the presets (quick, thorough) and the user's choices over them (`ExperimentConfig`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import RagftError
from ..knobs import NAME_RULE, check, knob, valid_name
from ..questions import (
    SPLIT_MODES,
)

RECIPES = ("qa", "raft", "docs")
QUESTION_METHODS = ("cloze", "llm")


class ExperimentError(RagftError, ValueError):
    """An experiment that cannot run as asked; the message says what to change."""


@dataclass(frozen=True)
class Preset:
    """How much work an experiment does. ``quick`` aims at 15 minutes on 2 CPU cores, ``thorough`` at 45: the caps on
    trained facts and test questions bound the work whatever the documents' length."""

    questions: int  # trained facts asked again in another wording (a sample of them: testing costs more)
    split: str
    train: tuple[str, ...]
    epochs: dict  # recipe -> passes over its training data
    learning_rate: dict  # recipe -> peak rate
    rank: int
    max_seq_len: int  # long enough for the gold chunk and the distractors: a cut context teaches nothing
    raft_distractors: int
    raft_no_gold: float
    max_new_tokens: int
    trained_checks: int  # trained facts asked again in their trained wording (memorisation check)
    heldout: int = 24  # facts no adapter trains on, asked too: the documents beyond the trained facts
    pool: int = 400  # at most this many facts are counted in the documents (the coverage's denominator)
    train_facts: int = 80  # at most this many of the documents' facts are trained on (all of a short document's)
    wordings: dict = field(default_factory=lambda: {"qa": 4, "raft": 1})  # wordings of each fact per recipe
    batch: dict = field(default_factory=lambda: {"qa": 8, "raft": 4, "docs": 4})  # examples per optimiser step


# Measured on four documents of a few pages with 20 person-written questions (bench/recipe, tuned on): with every
# fact trained (96 of 122, a fourth held out), RAFT over all of them with the next-ranked chunk as the distractor,
# the quick preset's raft adapter lifts RAG + fine-tuned to 55% [35-75] correct against RAG's 30% [10-50] (24 facts
# in the earlier recipe: 50%). What RAFT needs: the gold chunk always present, one distractor and an uncut prompt;
# names as well as numbers, trained in question-word-first wordings (questions.forms). The qa adapter answers 5%.
# Never tuned on: bench/recipe/check2 (see its README).
PRESETS = {
    "quick": Preset(24, "paraphrase", ("qa", "raft"), {"qa": 2.0, "raft": 1.0, "docs": 2.0},
                    {"qa": 2e-3, "raft": 1e-3, "docs": 1e-3}, 16, 576, 1, 0.0, 32, 10, heldout=24, train_facts=80),
    "thorough": Preset(40, "paraphrase", ("qa", "raft"), {"qa": 2.0, "raft": 1.0, "docs": 3.0},
                       {"qa": 2e-3, "raft": 1e-3, "docs": 1e-3}, 16, 768, 2, 0.1, 48, 40, heldout=40,
                       train_facts=160, wordings={"qa": 5, "raft": 1}),
}


@dataclass(frozen=True)
class ExperimentConfig:
    """What to run. Zero / empty fields take the preset's value.

    Args:
        name: prefix of the adapters and of the report folder.
        preset: ``quick`` or ``thorough``.
        questions: facts to train on (ignored when a question set is given; 0: every fact the documents give, up to
            the preset's ``train_facts``).
        split: ``paraphrase`` or ``heldout``.
        train: recipes, some of ``qa``, ``raft``, ``docs``.
        steps: optimiser steps per adapter (0 = the preset's epochs).
        documents: documents to ask about and pre-train on (empty = all stored).
    """

    name: str = "experiment"
    preset: str = knob("quick", choices=tuple(PRESETS), help="how much work: quick or thorough")
    questions: int = knob(0, 0, 500, "facts to train on", note="0 = every fact found, up to the preset's cap")
    split: str = knob("", help="paraphrase or heldout; empty = the preset's")
    train: tuple[str, ...] = knob((), help=f"training recipes, some of {', '.join(RECIPES)}; empty = the preset's")
    steps: int = knob(0, 0, 10_000, "optimiser steps per adapter", note="0 = the preset's epochs")
    documents: tuple[str, ...] = ()
    top_k: int = knob(3, 1, 20, "chunks retrieved per question", label="top k")
    seed: int = 0
    method: str = knob("cloze", choices=QUESTION_METHODS, label="question method",
                       help="how questions are made: cloze (no model) or llm (the base model writes them)")

    def __post_init__(self):
        if not valid_name(self.name):
            raise ExperimentError(f"experiment name: {NAME_RULE}")
        check(self, ExperimentError)
        if self.split not in ("", *SPLIT_MODES):
            raise ExperimentError(f"split must be one of {', '.join(SPLIT_MODES)}")
        if not set(self.train) <= set(RECIPES):
            raise ExperimentError(f"training recipes must be some of {', '.join(RECIPES)}")

    @property
    def recipe(self) -> Preset:
        return PRESETS[self.preset]
