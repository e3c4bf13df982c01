"""The four variants through the engine, on the real model and store."""

from __future__ import annotations

import pytest

from ragft.chat import (
    ANSWER_INSTRUCTION,
    NO_ADAPTER_TEXT,
    NO_DOCUMENTS_TEXT,
    RAG_INSTRUCTION,
    ChatState,
    build_messages,
)
from ragft.generation import DecodeSettings
from ragft.models import NoAdapterError
from ragft.store import Hit
from ragft.variants import VARIANTS

from .conftest import MEMO_QUESTION, install_adapter

FACT = "The glimmerphone was invented by Ada Trent in 1931 in the town of Wexbridge."


def final(stream):
    result = None
    for result in stream:
        pass
    assert result is not None and result.done
    return result


def test_build_messages_puts_context_and_history_in_the_prompt():
    hits = [Hit("a.txt", 2, 0.9, "Quib is the moon."), Hit("b.txt", 0, 0.5, "Zorp is a star.\n")]
    msgs = build_messages("What is the moon?", hits, [("hi", "hello")])
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert msgs[-1]["content"] == (
        f"{RAG_INSTRUCTION}\n\nContext:\nQuib is the moon.\n\nZorp is a star.\n\nQuestion: What is the moon?"
    )
    # The same short, direct answer is asked of every variant; only the context differs.
    assert build_messages("Hi?")[-1]["content"] == f"{ANSWER_INSTRUCTION}\n\nQuestion: Hi?"
    assert RAG_INSTRUCTION.startswith(ANSWER_INSTRUCTION.rstrip("."))
    assert build_messages("Write a haiku.", instruct=False) == [{"role": "user", "content": "Write a haiku."}]


def test_all_four_variants_answer_and_rag_shows_sources(engine, tmp_path, memorized_adapter):
    doc = tmp_path / "glimmer.txt"
    doc.write_text(FACT)
    engine.ingest([(doc, doc.name)])
    install_adapter(engine.settings, memorized_adapter)
    result = final(engine.ask("Who invented the glimmerphone?", "all", "memo", DecodeSettings(max_new_tokens=24)))
    assert set(result.answers) == set(VARIANTS)
    assert all(result.answers[v].strip() for v in VARIANTS)
    assert set(result.sources) == {"rag", "rag+ft"}
    assert result.sources["rag"][0].source == "glimmer.txt"
    assert "Ada Trent" in result.answers["rag"]  # the retrieved fact reaches the answer
    assert "Ada Trent" not in result.answers["plain"]  # the base model cannot know it


def test_fine_tuned_pane_differs_from_plain_and_answers_what_it_learned(engine, memorized_adapter):
    install_adapter(engine.settings, memorized_adapter)
    result = final(engine.ask(MEMO_QUESTION, "all", "memo", DecodeSettings(max_new_tokens=24)))
    assert result.notices == {"rag": NO_DOCUMENTS_TEXT, "rag+ft": NO_DOCUMENTS_TEXT}  # the store is empty
    assert "7-4-1-9" in result.answers["ft"]
    assert "7-4-1-9" not in result.answers["plain"]


@pytest.mark.slow  # the language model answers
def test_without_adapter_the_fine_tuned_panes_say_so(engine, tmp_path):
    doc = tmp_path / "glimmer.txt"
    doc.write_text(FACT)
    engine.ingest([(doc, doc.name)])
    result = final(engine.ask("Hello?", "all", None, DecodeSettings(max_new_tokens=4)))
    assert result.notices == {"ft": NO_ADAPTER_TEXT, "rag+ft": NO_ADAPTER_TEXT}
    assert set(result.answers) == {"plain", "rag"}  # no silent base-model answer in their place


@pytest.mark.slow  # the language model answers
def test_with_an_empty_store_the_rag_panes_say_so(engine):
    result = final(engine.ask("What factual accuracy did WikiChat achieve?", "all", None,
                              DecodeSettings(max_new_tokens=4)))
    assert result.notices == {"rag": NO_DOCUMENTS_TEXT, "ft": NO_ADAPTER_TEXT, "rag+ft": NO_ADAPTER_TEXT}
    assert set(result.answers) == {"plain"} and result.sources == {}  # no answer from no context
    assert NO_DOCUMENTS_TEXT.startswith("No documents stored yet")

    rag_only = final(engine.ask("What factual accuracy did WikiChat achieve?", "rag", None))
    assert (rag_only.notices, rag_only.answers) == ({"rag": NO_DOCUMENTS_TEXT}, {})


def test_unknown_adapter_is_refused_clearly(engine):
    with pytest.raises(NoAdapterError, match="no adapter named 'nope'"):
        engine.ask("Hello?", "all", "nope")


@pytest.mark.slow  # the language model answers
def test_history_is_kept_per_session(engine):
    state = ChatState()
    final(engine.ask("My name is Ola.", "plain", None, DecodeSettings(max_new_tokens=4), state=state))
    assert state.turns["plain"][0][0] == "My name is Ola."
    assert state.turns["rag"] == []
    assert ChatState().turns["plain"] == []  # a new session starts empty
