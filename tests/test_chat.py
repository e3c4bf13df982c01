"""The four variants through the engine, on the real model and store."""

from __future__ import annotations

import pytest

from ragft.chat import NO_ADAPTER_TEXT, VARIANTS, ChatState, build_messages
from ragft.generation import DecodeSettings
from ragft.models import NoAdapterError
from ragft.store import Hit

from .conftest import MEMO_ANSWER, MEMO_QUESTION, install_adapter

FACT = "The glimmerphone was invented by Ada Trent in 1931 in the town of Wexbridge."


def final(stream):
    result = None
    for result in stream:
        pass
    assert result is not None and result.done
    return result


def test_build_messages_puts_context_and_history_in_the_prompt():
    hits = [Hit("a.txt", 2, 0.9, "Quib is the moon.")]
    msgs = build_messages("What is the moon?", hits, [("hi", "hello")])
    assert [m["role"] for m in msgs] == ["user", "assistant", "user"]
    assert "[1] (a.txt, chunk 2)\nQuib is the moon." in msgs[-1]["content"]
    assert msgs[-1]["content"].endswith("Question: What is the moon?")
    assert build_messages("Hi?")[-1]["content"] == "Hi?"


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
    assert result.answers["ft"] != result.answers["plain"]
    assert "7-4-1-9" in result.answers["ft"]
    assert "7-4-1-9" not in result.answers["plain"]


def test_without_adapter_the_fine_tuned_panes_say_so(engine):
    result = final(engine.ask("Hello?", "all", None, DecodeSettings(max_new_tokens=4)))
    assert result.notices == {"ft": NO_ADAPTER_TEXT, "rag+ft": NO_ADAPTER_TEXT}
    assert set(result.answers) == {"plain", "rag"}  # no silent base-model answer in their place


def test_unknown_adapter_is_refused_clearly(engine):
    with pytest.raises(NoAdapterError, match="no adapter named 'nope'"):
        engine.ask("Hello?", "all", "nope")


def test_history_is_kept_per_session(engine):
    state = ChatState()
    final(engine.ask("My name is Ola.", "plain", None, DecodeSettings(max_new_tokens=4), state=state))
    assert state.turns["plain"][0][0] == "My name is Ola."
    assert state.turns["rag"] == []
    assert ChatState().turns["plain"] == []  # a new session starts empty
