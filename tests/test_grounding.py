"""Grounding marks (`ragft.grounding`): each answer sentence supported or not by the chunks it was given."""

from __future__ import annotations

import pytest

from ragft.grounding import judge, mark

CHUNKS = [
    "The Kestrel lighthouse was built in 1872 by the engineer Ada Fenwick. It stands 41 metres tall.",
    "Its keeper in 1901 was Tobias Marr. Visitors may climb it from May to September. It is not open in winter.",
    "The island's ferry runs twice a day; 98% of its passengers are tourists.",
]


@pytest.mark.parametrize("sentence, supported, chunk", [
    ("The lighthouse was built in 1872.", True, 0),
    ("Ada Fenwick built the Kestrel lighthouse in 1872.", True, 0),
    ("Tobias Marr was the keeper in 1901.", True, 1),
    ("About 98% of the ferry's passengers are tourists.", True, 2),
    ("The lighthouse was built in 1873.", False, None),  # a number changed
    ("The lighthouse was built in 1872 by Tobias Fenwick.", False, None),  # a name changed
    ("The ferry carries 98.4% tourists.", False, None),  # the fluent wrong number
    ("The lighthouse is open in winter.", False, None),  # the negation dropped
    ("Visitors may not climb it from May to September.", False, None),  # a negation added
    ("The lighthouse has a famous red roof and a cafe.", False, None),  # nothing of it in the sources
])
def test_a_sentence_is_supported_only_by_a_chunk_holding_all_its_facts(sentence, supported, chunk):
    (m,) = mark(sentence, CHUNKS)
    assert (m.supported, m.chunk) == (supported, chunk), m


def test_marks_say_which_facts_no_chunk_holds():
    marks = mark("It was built in 1872. The ferry carries 98.4% tourists. Yes.", CHUNKS)
    assert [m.supported for m in marks] == [True, False, None]  # "Yes." has nothing to check
    assert marks[1].missing == ("98.4",) and marks[1].chunk is None
    assert marks[0].chunk == 0 and marks[0].score == 1.0


def test_facts_spread_over_two_chunks_do_not_make_one_sentence_supported():
    (m,) = mark("Ada Fenwick was the keeper in 1901.", CHUNKS)
    assert m.supported is False


def test_no_chunks_no_support_and_hits_work_like_texts():
    from ragft.store import Hit

    assert mark("Built in 1872.", [])[0].supported is False
    hits = [Hit("a.txt", i, 0.5, t) for i, t in enumerate(CHUNKS)]
    assert [m.chunk for m in mark("Tobias Marr was the keeper in 1901.", hits)] == [1]


def test_judge_scores_the_share_of_content_words_and_zero_on_a_missing_fact():
    assert judge("The lighthouse stands 41 metres tall.", CHUNKS[0]) == (1.0, ())
    assert judge("The lighthouse stands 42 metres tall.", CHUNKS[0]) == (0.0, ("42",))
    score, _ = judge("The lighthouse overlooks a stormy harbour full of boats.", CHUNKS[0])
    assert 0 < score < 0.5


def test_the_chat_pane_counts_the_supported_sentences_and_marks_each_one():
    from ragft.store import Hit
    from ragft.ui.chat import grounding_message

    hits = [Hit("light.txt", i, 0.5, t) for i, t in enumerate(CHUNKS)]
    marks = mark("It was built in 1872. The ferry carries 98.4% tourists. Yes.", hits)
    message = grounding_message(marks, hits)
    assert message["metadata"]["title"] == ("Grounding: 1 of 2 sentences supported by the sources; "
                                            "not in them: 98.4")
    assert "✅ It was built in 1872. — light.txt, chunk 0" in message["content"]
    assert "⚠️ The ferry carries 98.4% tourists. — not in the sources: 98.4" in message["content"]
    assert "· Yes. — nothing to check" in message["content"]
