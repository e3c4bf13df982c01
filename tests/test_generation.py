"""BatchStreamer on a readable fake tokenizer (fast), then the batched path on the real model."""

from __future__ import annotations

import torch

from ragft.chat import build_messages
from ragft.generation import BatchStreamer, DecodeSettings, generate_batch, stream_batch
from ragft.models import BASE

from .conftest import MEMO_QUESTION


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
