"""Repeat detection (fast), then the batched, streamed path on the real model (the loop itself: test_decoding)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ragft.backend import BASE
from ragft.chat import build_messages
from ragft.generation import DecodeSettings, generate_batch, repeated_tail, stream_batch
from ragft.variants import VARIANTS

from .conftest import MEMO_QUESTION, install_adapter

FACTS = Path(__file__).parent / "fixtures" / "facts"


def letters(text: str) -> list[int]:
    return [ord(c) - ord("a") + 1 for c in text]


@pytest.mark.parametrize(
    "text, n, cut",
    [
        ("abcab", 3, 0),  # "cab" is new
        ("abcabc", 3, 3),  # "abc" again
        ("abcdxabc", 3, 3),  # again after something else
        ("aaaa", 3, 3),  # overlapping: "aaa" at 0 and at 1
        ("aaa", 3, 0),  # one occurrence only
        ("abcabc", 0, 0),  # 0 = off
        ("abab", 4, 0),  # shorter than n + 1
    ],
)
def test_repeated_tail(text, n, cut):
    assert repeated_tail(letters(text), n) == cut


def test_stream_batch_streams_every_row_together(generator):
    convs = [build_messages("Name a colour."), build_messages("Name a fruit.")]
    steps = list(stream_batch(generator, convs, [BASE, BASE], DecodeSettings(max_new_tokens=8)))
    assert len(steps) >= 8  # one update per generated token, not one at the end
    assert all(len(step) == 2 for step in steps)
    assert steps[0][0] and steps[0][1]  # both rows had text after the first step
    assert all(steps[-1])


def test_closing_the_stream_stops_the_generation(generator, monkeypatch):
    """A chat the user stops (the UI drops its iterator) frees the model at the next step, not after 200 tokens."""
    from ragft import decoding

    accepted: list[int] = []
    accept = decoding.StopRules.accept
    monkeypatch.setattr(decoding.StopRules, "accept", lambda self, row, token: (accepted.append(token),
                                                                                accept(self, row, token)))
    stream = stream_batch(generator, [build_messages("Tell me a long story.")], [BASE],
                          DecodeSettings(200, stop_repeats=0))
    first = next(stream)
    stream.close()
    with generator.lock:  # the worker let go of the model
        pass
    assert len(first) == 1 and len(accepted) < 10


def test_batched_equals_unbatched_for_each_variant(generator, memorized_adapter):
    """The mixed-adapter batch (left padded) gives each row the text it gets alone, greedy.

    Padding changes matmul shapes, so float sums may round differently; on this model and these short prompts
    the texts match exactly. Should a kernel change make them drift late in a sequence, the first tokens are the
    part that must agree — we compare the first 24 new tokens, all of a short answer.
    """
    generator.ensure_adapter("memo", memorized_adapter)
    context = [type("H", (), {"source": "a.txt", "chunk": 0, "text": "The Zorblax vault code is 7-4-1-9."})()]
    convs = [
        build_messages(MEMO_QUESTION),
        build_messages(MEMO_QUESTION, context),
        build_messages(MEMO_QUESTION),
        build_messages(MEMO_QUESTION, context),
    ]
    names = [BASE, BASE, "memo", "memo"]
    decode = DecodeSettings(max_new_tokens=24)
    batched = generate_batch(generator, convs, names, decode)
    alone = [generate_batch(generator, [c], [n], decode)[0] for c, n in zip(convs, names)]
    assert batched == alone
    assert batched[0] != batched[2]  # the adapter really acts on its rows


def test_unloading_the_last_adapter_returns_to_the_plain_model(memorized_adapter):
    from ragft.models import load_generator

    g = load_generator()  # its own model: the session's shared one may hold other tests' adapters
    plain = generate_batch(g, [build_messages("Hi?")], [BASE], DecodeSettings(max_new_tokens=6))
    g.ensure_adapter("memo", memorized_adapter)
    g.unload_adapter("memo")
    assert not g.has_adapters and g.loaded_adapters == []
    assert generate_batch(g, [build_messages("Hi?")], [BASE], DecodeSettings(max_new_tokens=6)) == plain


def repeats(ids: list[int], n: int = 8) -> int:
    """How often the most repeated span of ``n`` tokens occurs in ``ids``."""
    return max(Counter(tuple(ids[i:i + n]) for i in range(len(ids) - n + 1)).values(), default=0)


def test_no_variant_loops_on_the_fixture_questions(engine, memorized_adapter):
    """Greedy decoding made the 135M model repeat one sentence until max_new_tokens; now a row stops when it
    starts repeating itself — every variant alike, looking at its own answer only, never at the prompt."""
    assert all(r.ok for r in engine.ingest([(p, p.name) for p in sorted(FACTS.glob("*.md"))]))
    name = install_adapter(engine.settings, memorized_adapter)
    items, _ = engine.generate_questions(12)
    tokenizer = engine.generator.tokenizer
    for item in items:
        *_, result = engine.ask(item.question, "all", name, DecodeSettings(max_new_tokens=96))
        assert set(result.answers) == set(VARIANTS) and not result.notices
        for variant, text in result.answers.items():
            assert text.strip(), variant
            assert repeats(tokenizer(text, add_special_tokens=False)["input_ids"]) < 3, (variant, text)


def test_the_embedded_gguf_is_converted_once_and_loads_the_same_from_the_folder(tmp_path, monkeypatch, generator):
    """The first load of a GGUF keeps a safetensors copy in the user's cache; the next loads read it (no GGUF parsing)
    and give the same tokenizer and weights, so the same answers, as the session's model."""
    import torch

    from ragft.models import gguf_conversion, load_generator, resolve_base_model

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = gguf_conversion(resolve_base_model())
    assert folder is not None and folder.is_relative_to(tmp_path / "cache" / "ragft" / "gguf") and not folder.exists()
    first = load_generator()  # from the GGUF file, converting it
    assert (folder / "model.safetensors").is_file() and [p.name for p in folder.parent.iterdir()] == [folder.name]
    again = load_generator()  # from the folder
    conversation = build_messages(MEMO_QUESTION)
    for g in (first, again):
        assert g.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True) == \
            generator.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
        state, session = g.model.state_dict(), generator.model.state_dict()
        assert state.keys() == session.keys() and all(torch.equal(state[k], session[k]) for k in state)
    assert generate_batch(again, [conversation], [BASE], DecodeSettings(12)) == \
        generate_batch(generator, [conversation], [BASE], DecodeSettings(12))
