"""Why each wrong answer was wrong: the retrieval missed, the context was ignored, the adapter did not learn or
did not generalise, and so on."""

from __future__ import annotations

from ..variants import NEEDS_ADAPTER, RETRIEVES

CAUSES = {
    "retrieval miss": "no retrieved chunk contains the expected answer",
    "context ignored": "a retrieved chunk contains the expected answer, the reply does not",
    "buried": "the reply contains the expected answer, but in a long reply (not counted as correct)",
    "not learned": "the adapter misses this fact even in the wording it was trained on",
    "did not generalise": "the adapter answers the trained wording right, this held-out wording wrong",
    "not trained": "the fact was held out of training: the adapter never saw it",
    "not known": "the base model does not know it without the documents",
}


def cause_of_miss(variant: str, answer, trained: bool | None) -> str:
    """Why one wrong answer was wrong ("" when it is right). ``answer`` is an `evaluate.Answer`; ``trained`` is the
    adapter's result on a trained wording of the same fact (True right, False wrong), None if it was not trained.

    Retrieval variants are judged by their context first: the adapter only matters once the answer was in it.
    """
    if answer.correct:
        return ""
    if answer.contains:
        return "buried"
    if variant in RETRIEVES:
        return "context ignored" if answer.in_context else "retrieval miss"
    if variant in NEEDS_ADAPTER:
        if trained is None:
            return "not trained"
        return "did not generalise" if trained else "not learned"
    return "not known"
