"""Train/test splits of a question set: held-out facts, or every fact asked in other wordings."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Literal, get_args

from ..metrics import normalize
from .forms import TEST_FORM, phrasings
from .sets import QAItem, QuestionSetError

SplitMode = Literal["heldout", "paraphrase"]
SPLIT_MODES: tuple[SplitMode, ...] = get_args(SplitMode)


def split_set(
    items: list[QAItem], mode: str, test_share: float = 0.5, seed: int = 0
) -> tuple[list[QAItem], list[QAItem]]:
    """(train, test) by ``mode``, one of `SPLIT_MODES` (another raises `QuestionSetError`). ``heldout``: about
    ``test_share`` of facts go to test, all of a fact's items together. ``paraphrase``: every fact on both sides;
    test asks phrasing [TEST_FORM], train all the others (see `phrasings`).

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
            train += [replace(item, question=q) for n, q in enumerate(p) if n != TEST_FORM]
            test.append(replace(item, question=p[TEST_FORM]))
    else:
        raise QuestionSetError(f"unknown split {mode!r}; choose one of: {', '.join(SPLIT_MODES)}")
    asked = {normalize(i.question) for i in test}
    return [i for i in train if normalize(i.question) not in asked], test

