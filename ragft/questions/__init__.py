"""Question sets for Evaluate and Experiment: load, save, generate, rephrase and split them.

    sets.py    the `QAItem` model; JSON Lines files (load_set, save_set, named sets in a folder)
    cloze.py   facts from the stored chunks as fill-in-the-blank questions: no model, every answer in its chunk
    llm.py     the base model writes one question per chunk; pairs whose answer is not in the chunk are dropped
    forms.py   one fact asked several ways: fill in the blank, in place, question word first (as people ask)
    splits.py  train (what the adapter is fine-tuned on) / test (what is asked):
               heldout     whole facts held out: does fine-tuning teach facts it never saw? (it should not)
               paraphrase  every fact on both sides, worded differently: is a fact learned in one wording
                           recalled in another? (Ovadia et al. 2023, "Fine-Tuning or Retrieval?")

    >>> items = generate_cloze(store_chunks, n=50, choices=4)              # doctest: +SKIP
    >>> train, test = split_set(items, "paraphrase")                       # doctest: +SKIP
"""

from .cloze import MAX_CHOICES, generate_cloze, sentence_facts
from .forms import TEST_FORM, natural_forms, phrasings
from .llm import llm_questions
from .sets import (
    BLANK,
    QAItem,
    QuestionSetError,
    check_set_name,
    fact_id,
    list_sets,
    load_set,
    parse_typed,
    save_set,
    set_path,
)
from .splits import SPLIT_MODES, split_set

__all__ = [
    "BLANK",
    "MAX_CHOICES",
    "SPLIT_MODES",
    "TEST_FORM",
    "QAItem",
    "QuestionSetError",
    "check_set_name",
    "fact_id",
    "generate_cloze",
    "list_sets",
    "llm_questions",
    "load_set",
    "natural_forms",
    "parse_typed",
    "phrasings",
    "save_set",
    "sentence_facts",
    "set_path",
    "split_set",
]
