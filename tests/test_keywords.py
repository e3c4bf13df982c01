"""Hybrid retrieval (`ragft.keywords`, `Store.search`): BM25 over the chunks fused with vector search, in step with
Chroma through uploads, replacements, deletions and other processes' writes. Real Chroma, the fake embedder."""

from __future__ import annotations

import re

import pytest

from ragft.config import ConfigError, Settings
from ragft.documents import load_document
from ragft.keywords import fuse, words
from ragft.store import Store, make_client

from .helpers import FakeEmbedder, write


class NumberBlindEmbedder(FakeEmbedder):
    """Sees words, not numbers: as a small embedder places "2303.16199" near any other number."""

    def encode(self, texts, *args, **kwargs):
        return super().encode([re.sub(r"[\d.\-]", " ", t) for t in texts], *args, **kwargs)


# Ten notes that share only stop words with the question below: close to it for the embedder, nothing for BM25.
FILLER = [f"It is the note {i} of the log, and it is the one of the weather." for i in range(10)]
QUESTION = "What is it the code of? 2303.16199"


def add(store: Store, folder, name: str, text: str) -> None:
    store.add(load_document(write(folder, name, text), name, 40, 0, 10_000_000))


@pytest.fixture
def store(tmp_path):
    s = Store(make_client(tmp_path / "chroma"), NumberBlindEmbedder(), retrieval="hybrid")
    for i, text in enumerate(FILLER):
        add(s, tmp_path, f"filler{i}.txt", text)
    return s


@pytest.mark.parametrize("text, expected", [
    ("See Section 3.4 of Exhibit B.", ["see", "section", "3.4", "exhibit", "b"]),
    ("arXiv 2303.16199 (LLaMA-Adapter)", ["arxiv", "2303.16199", "llama-adapter"]),
    ("The code is 7-4-1-9, and it is the one.", ["code", "7-4-1-9", "one"]),
])
def test_words_keep_numbers_names_and_section_titles_whole(text, expected):
    from ragft.keywords import stop_words

    assert words(text, stop_words()) == expected


def test_reciprocal_rank_fusion_rewards_agreement_and_keeps_first_seen_order_on_ties():
    assert fuse([["a", "b", "c"], ["c", "d"]]) == ["c", "a", "b", "d"]
    assert fuse([["x", "y"], ["y", "x"]]) == ["x", "y"]
    assert fuse([[], []]) == []


def test_hybrid_finds_the_chunk_that_shares_a_rare_number_where_vector_search_ranks_it_low(store, tmp_path):
    add(store, tmp_path, "paper.txt", "The adapter paper has arXiv number 2303.16199.")
    vector = [h.source for h in store.search(QUESTION, 3, "vector")]
    hybrid = store.search(QUESTION, 3)
    assert "paper.txt" not in vector  # blind to the number, the vector side ranks the notes first
    assert hybrid[0].source == "paper.txt"
    assert all(-1.0 <= h.score <= 1.0 for h in hybrid)  # cosine for every hit, keyword-only ones too


def test_the_keyword_index_follows_replacements_and_deletions(store, tmp_path):
    add(store, tmp_path, "code.txt", "The vault code is 7-4-1-9.")
    assert [h.source for h in store.search("7-4-1-9", 1)] == ["code.txt"]
    add(store, tmp_path, "code.txt", "The vault code changed to 5-5-0-1.")  # replaced
    hits = store.search("7-4-1-9 5-5-0-1", 3)
    assert not any("7-4-1-9" in h.text for h in hits) and "5-5-0-1" in hits[0].text
    store.delete("code.txt")
    assert not any(h.source == "code.txt" for h in store.search("5-5-0-1", 5))


def test_another_process_writing_to_the_same_collection_is_seen(store, tmp_path, monkeypatch):
    import ragft.store

    monkeypatch.setattr(ragft.store, "KEY_TTL_S", 0.0)  # seen within KEY_TTL_S (5 s): here at once
    store.search("harbour", 3)  # the index is built
    other = Store(store.client, FakeEmbedder())  # the CLI, say, on the same data dir
    add(other, tmp_path, "late.txt", "Zyzzyva is the last word of the dictionary.")
    assert store.search("zyzzyva", 1)[0].source == "late.txt"


def test_a_slow_rebuild_runs_in_the_background_while_the_index_as_it_was_answers():
    import threading

    from ragft.keywords import BACKGROUND_AFTER_S, KeywordIndex

    index = KeywordIndex()
    index.top("harbour", 5, "v1", lambda: (["a"], ["the harbour master"]))  # no index yet: built at once
    index.build_s = BACKGROUND_AFTER_S + 15  # as a build at 100k chunks takes
    release, loads = threading.Event(), []

    def load():
        loads.append(1)
        release.wait(10)
        return ["a", "b"], ["the harbour master", "the lighthouse keeper"]

    assert index.top("lighthouse keeper", 5, "v2", load) == []  # answered at once, from the index as it was
    assert [cid for cid, _ in index.top("harbour", 5, "v2", load)] == ["a"]
    thread = index.building
    release.set()
    thread.join(10)
    assert [cid for cid, _ in index.top("lighthouse keeper", 5, "v2", load)] == ["b"]
    assert loads == [1] and index.building is None  # one rebuild for the three searches


def test_a_failed_background_rebuild_keeps_the_old_index_and_is_tried_again(caplog):
    from ragft.keywords import BACKGROUND_AFTER_S, KeywordIndex

    index = KeywordIndex()
    index.top("harbour", 5, "v1", lambda: (["a"], ["the harbour master"]))
    index.build_s = BACKGROUND_AFTER_S + 15

    def broken():
        raise OSError("disk gone")

    assert [cid for cid, _ in index.top("harbour", 5, "v2", broken)] == ["a"]
    if (thread := index.building) is not None:  # it may have failed already
        thread.join(10)
    assert "rebuilding the keyword index failed" in caplog.text
    # tried again: this search is still answered by the old index, the next one by the new
    assert [cid for cid, _ in index.top("harbour", 5, "v2", lambda: (["c"], ["harbour"]))] == ["a"]
    if (thread := index.building) is not None:
        thread.join(10)
    assert [cid for cid, _ in index.top("harbour", 5, "v2", lambda: (["c"], ["harbour"]))] == ["c"]


def test_while_the_store_rebuilds_in_the_background_a_deleted_chunk_is_never_found(store, tmp_path):
    add(store, tmp_path, "code.txt", "The vault code is 7-4-1-9.")
    assert store.search("7-4-1-9", 1)[0].source == "code.txt"
    store._keywords.build_s = 99.0  # as if the store were large: the next rebuild runs in the background
    store.delete("code.txt")
    add(store, tmp_path, "new.txt", "The new vault code is 5-5-0-1.")
    assert not any(h.source == "code.txt" for h in store.search("7-4-1-9", 5))  # the old index still names it
    if (thread := store._keywords.building) is not None:  # it may have ended already
        thread.join(10)
    assert store.search("5-5-0-1", 1)[0].source == "new.txt"


def test_vector_mode_is_vector_search_alone(store, tmp_path):
    add(store, tmp_path, "paper.txt", "The adapter paper has arXiv number 2303.16199.")
    assert [h.id for h in store.search(QUESTION, 3, "vector")] == \
        [h.id for h in Store(store.client, store.embedder).search(QUESTION, 3)]


def test_an_empty_store_or_query_finds_nothing(tmp_path):
    s = Store(make_client(tmp_path / "empty"), FakeEmbedder(), retrieval="hybrid")
    assert s.search("anything", 3) == []
    add(s, tmp_path, "a.txt", "Some words here.")
    assert s.search("   ", 3) == [] and s.search("the of and", 3)  # stop words only: the vector side answers


def test_retrieval_is_a_setting_with_hybrid_by_default():
    assert Settings.from_env({}).retrieval == "hybrid"
    assert Settings.from_env({"RAGFT_RETRIEVAL": "vector"}).retrieval == "vector"
    with pytest.raises(ConfigError, match="RAGFT_RETRIEVAL"):
        Settings.from_env({"RAGFT_RETRIEVAL": "bm25"})


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory):
    from .helpers import tiny_cross_encoder

    return tiny_cross_encoder(tmp_path_factory.mktemp("reranker"),
                              [*FILLER, QUESTION, "The adapter paper has arXiv number 2303.16199."])


def test_a_reranker_orders_the_fused_candidates_by_its_own_score(store, tmp_path, tiny_cross_encoder):
    from ragft.keywords import POOL
    from ragft.models import load_reranker

    add(store, tmp_path, "paper.txt", "The adapter paper has arXiv number 2303.16199.")
    reranker = load_reranker(str(tiny_cross_encoder))
    candidates = store.search(QUESTION, POOL)
    scores = reranker.predict([(QUESTION, h.text) for h in candidates])
    expected = [candidates[i].id for i in sorted(range(len(candidates)), key=lambda i: -float(scores[i]))[:3]]
    reranked = Store(store.client, store.embedder, retrieval="hybrid", reranker=reranker)
    assert [h.id for h in reranked.search(QUESTION, 3)] == expected
    assert expected != [h.id for h in candidates[:3]]  # the random reranker did change the order


def test_the_engine_loads_the_reranker_the_setting_names(tmp_path, monkeypatch, tiny_cross_encoder):
    from ragft.engine import Engine
    from ragft.models import ModelError

    monkeypatch.setenv("RAGFT_RERANKER", str(tiny_cross_encoder))
    engine = Engine(Settings.from_env(), embedder=FakeEmbedder())
    assert engine.store.reranker is not None and engine.search("harbour") == []
    monkeypatch.setenv("RAGFT_RERANKER", str(tmp_path / "no-such-model"))
    with pytest.raises(ModelError, match="RAGFT_RERANKER"):
        Engine(Settings.from_env(), embedder=FakeEmbedder()).store


def test_evaluate_compares_vector_and_hybrid_retrieval_on_its_own_questions(store, tmp_path):
    from ragft.evaluate import compare_retrieval
    from ragft.questions import QAItem
    from ragft.ui.views import retrieval_line

    add(store, tmp_path, "paper.txt", "The adapter paper has arXiv number 2303.16199.")
    items = [QAItem(QUESTION, "2303.16199"), QAItem("Which adapter paper has an arXiv number?", "arXiv number")]
    r = compare_retrieval(items, store.search, 3)
    assert (r["questions"], r["k"], r["only_hybrid"]) == (2, 3, 1)  # the number: found by hybrid only
    assert r["hybrid"]["share"] > r["vector"]["share"] and r["hybrid"]["mrr"] > r["vector"]["mrr"]
    line = retrieval_line(r)
    assert line.startswith("**Retrieval on these 2 questions** — answer in the top 3 chunks: vector 50%")
    assert "Hybrid alone found 1, vector alone 0 (exact McNemar p = 1.00)" in line
