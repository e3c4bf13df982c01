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
    assert "judged by numbers, names and words in common" in message["content"]
    assert "judged by nli-x: entailment probability ≥ 0.5" in grounding_message(marks, hits, "nli-x")["content"]


# --- a grounding model (RAGFT_GROUNDING_MODEL) --------------------------------------------------------------------
ANSWER = ("The lighthouse was built in 1872 by Ada Fenwick. The ferry carries 98.4% tourists. Tobias Marr kept it "
          "in 1901. Yes.")
NLI_LABELS = ["contradiction", "entailment", "neutral"]  # as cross-encoder/nli-deberta-v3-* name them


@pytest.fixture(scope="module")
def nli_folder(tmp_path_factory):
    from .helpers import tiny_cross_encoder

    return tiny_cross_encoder(tmp_path_factory.mktemp("nli"), [*CHUNKS, ANSWER], NLI_LABELS)


class Judge:
    """A stand-in model: the probabilities it is told, keyed by (chunk index, a word of the sentence); records the
    pairs it was asked about."""

    config = type("Config", (), {"id2label": {0: "contradiction", 1: "entailment", 2: "neutral"}})()
    num_labels = 3

    def __init__(self, entails: dict[tuple[int, str], float]):
        self.entails, self.asked = entails, []

    def predict(self, pairs, apply_softmax=False, show_progress_bar=None):
        self.asked += list(pairs)
        out = []
        for chunk, sentence in pairs:
            p = max((v for (i, w), v in self.entails.items() if CHUNKS[i] == chunk and w in sentence), default=0.0)
            out.append([(1 - p) / 2, p, (1 - p) / 2])
        return out


def test_a_grounding_model_decides_among_the_chunks_that_hold_every_fact():
    from ragft.grounding import GroundingModel

    # "handled by": every fact and most words are in chunk 1, but the relation is not what it says
    sentence = "Tobias Marr handled the ferry in 1901."
    assert mark(sentence, CHUNKS)[0].supported is True  # words in common cannot see it
    judge_model = Judge({(1, "keeper"): 0.97, (1, "handled"): 0.08, (0, "built"): 0.9})
    model = GroundingModel(judge_model, "stand-in")
    marks = mark(f"{sentence} Tobias Marr was the keeper in 1901. It was built in 1873. Yes.", CHUNKS, model=model)
    assert [(m.supported, m.chunk, m.score) for m in marks] == [
        (False, None, 0.08), (True, 1, 0.97), (False, None, 0.0), (None, None, 0.0)]
    assert marks[2].missing == ("1873",)  # a missing fact is never the model's to judge: no pair was sent for it
    assert all("1873" not in s for _, s in judge_model.asked) and all("Yes" not in s for _, s in judge_model.asked)
    assert {c for c, _ in judge_model.asked} == {CHUNKS[1]}  # only the chunk holding "Tobias", "Marr" and "1901"


def test_a_real_nli_cross_encoder_marks_by_its_entailment_probability(nli_folder):
    from sentence_transformers import CrossEncoder

    from ragft.grounding import MODEL_THRESHOLD, unsupported_share
    from ragft.models import load_grounding_model

    model = load_grounding_model(str(nli_folder))
    assert model.entails == 1
    marks = mark(ANSWER, CHUNKS, model=model)
    assert [m.supported is None for m in marks] == [False, False, False, True]
    assert marks[1].supported is False and marks[1].missing == ("98.4",)
    direct = CrossEncoder(str(nli_folder), device="cpu")
    for m, gold in ((marks[0], 0), (marks[2], 1)):
        p = float(direct.predict([(CHUNKS[gold], m.sentence)], apply_softmax=True)[0][1])
        assert m.score == round(p, 3) and m.supported == (p >= MODEL_THRESHOLD)
    checked = [m for m in marks if m.supported is not None]
    assert unsupported_share(ANSWER, CHUNKS, model) == sum(not m.supported for m in checked) / len(checked)


def test_a_one_score_model_is_read_as_a_probability_and_a_model_without_entailment_is_refused(tmp_path):
    from ragft.models import ModelError, load_grounding_model

    from .helpers import tiny_cross_encoder

    one = load_grounding_model(str(tiny_cross_encoder(tmp_path / "one", [*CHUNKS, ANSWER])))
    assert one.entails is None
    scores = [m.score for m in mark(ANSWER, CHUNKS, model=one) if m.supported is not None and not m.missing]
    assert scores and all(0 < s < 1 for s in scores)  # a sigmoid
    two = tiny_cross_encoder(tmp_path / "two", CHUNKS, ["LABEL_0", "LABEL_1"])
    with pytest.raises(ModelError, match=r"RAGFT_GROUNDING_MODEL.*no 'entailment'"):
        load_grounding_model(str(two))
    with pytest.raises(ModelError, match="cannot load the grounding model .*RAGFT_GROUNDING_MODEL"):
        load_grounding_model(str(tmp_path / "no-such-model"))


def test_the_engine_marks_rag_answers_with_the_model_the_setting_names(monkeypatch, tmp_path, nli_folder, embedder,
                                                                       generator, fake_engine):
    from ragft.config import Settings
    from ragft.engine import Engine
    from ragft.generation import DecodeSettings
    from ragft.grounding import GroundingModel

    assert fake_engine.grounding_model is None  # unset: facts and words in common
    monkeypatch.setenv("RAGFT_GROUNDING_MODEL", str(nli_folder))
    engine = Engine(Settings.from_env(), embedder=embedder, generator=lambda: generator)
    doc = tmp_path / "light.txt"
    doc.write_text(" ".join(CHUNKS))
    engine.ingest([(doc, doc.name)])
    *_, result = engine.ask("When was the Kestrel lighthouse built?", "rag", decode=DecodeSettings(max_new_tokens=24))
    marks, hits = result.grounding["rag"], result.sources["rag"]
    assert isinstance(engine.grounding_model, GroundingModel) and any(m.supported is not None for m in marks)
    assert marks == engine.grounding_model.mark([m.sentence for m in marks], [h.text for h in hits])
