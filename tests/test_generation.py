"""BatchStreamer and repeat detection on a readable fake tokenizer (fast), then the batched path on the real model."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch

from ragft.chat import VARIANTS, build_messages
from ragft.generation import (
    BatchStreamer,
    DecodeSettings,
    generate_batch,
    repeat_stopper,
    repeated_tail,
    stream_batch,
)
from ragft.models import BASE

from .conftest import MEMO_QUESTION, install_adapter

FACTS = Path(__file__).parent / "fixtures" / "facts"


class LetterTokenizer:
    """Token i decodes to the i-th letter; 0 is EOS."""

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(ord("a") + i - 1) for i in ids if i)


def test_batch_streamer_splits_rows_and_stops_each_at_its_eos():
    s = BatchStreamer(LetterTokenizer(), rows=3, stop_ids={0})
    s.put(torch.tensor([[9, 9], [9, 9], [9, 9]]))  # the prompt: ignored
    s.put(torch.tensor([1, 2, 3]))
    s.put(torch.tensor([[0], [2], [3]]))  # row 0 ends
    s.put(torch.tensor([4, 0, 3]))  # row 0 is padding now; row 1 ends
    s.end()
    assert list(s) == [["a", "b", "c"], ["a", "bb", "cc"], ["a", "bb", "ccc"]]


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


def test_batch_streamer_stops_a_row_that_repeats_itself_and_keeps_the_first_occurrence():
    s = BatchStreamer(LetterTokenizer(), rows=3, stop_ids={0}, stop_repeats=3)
    s.put(torch.tensor([letters("abc")] * 3))  # the prompt: not counted, so row 0 may start by copying it
    rows = ["abcdabcdabcd", "xyzzyxwvutsr", "qqqqqqqqqqqq"]
    for step in zip(*(letters(r) for r in rows)):
        s.put(torch.tensor(step))
    s.end()
    assert s.texts() == ["abcd", "xyzzyxwvutsr", "q"]  # "abcd" + "abc" -> "abcd"; "qqqq" -> "q"
    assert s.finished == [True, False, True]
    steps = list(s)
    assert steps[6] == ["abcd", "xyzzyxw", "q"]  # row 0 stopped when "abc" came round again
    assert all(step[0] == "abcd" for step in steps[6:])  # and never grew after


def test_repeat_stopper_looks_at_new_tokens_only():
    prompt = letters("abc")
    ids = torch.tensor([prompt + letters("abca"), prompt + letters("abcd"), prompt + letters("xyxy")])
    assert repeat_stopper(prompt_len=3, n=3)(ids, None).tolist() == [False, False, False]
    ids = torch.tensor([prompt + letters("abcabc"), prompt + letters("abcdab"), prompt + letters("aaaabb")])
    assert repeat_stopper(prompt_len=3, n=3)(ids, None).tolist() == [True, False, False]


def test_stream_batch_streams_every_row_together(generator):
    convs = [build_messages("Name a colour."), build_messages("Name a fruit.")]
    steps = list(stream_batch(generator, convs, [BASE, BASE], DecodeSettings(max_new_tokens=8)))
    assert len(steps) >= 8  # one update per generated token, not one at the end
    assert all(len(step) == 2 for step in steps)
    assert steps[0][0] and steps[0][1]  # both rows had text after the first step
    assert all(steps[-1])


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
