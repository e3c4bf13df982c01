"""The decode loop on a tiny random Llama with a random LoRA adapter: every way of batching gives each row the
tokens it gets alone (greedy), and the pieces (stop rules, per-row adapters, cache merging) do what they say."""

from __future__ import annotations

import pytest
import torch

from ragft.backend import BASE
from ragft.decoding import AdapterRows, Row, StopRules, run
from ragft.generation import repeated_tail

VOCAB = 64


@pytest.fixture(scope="module")
def tiny():
    """A 2-layer Llama with random weights and a random (non-zero) LoRA adapter "a" on every linear layer."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    base = LlamaForCausalLM(config).eval()
    lora = LoraConfig(r=4, lora_alpha=8, init_lora_weights=False, task_type="CAUSAL_LM",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    model = get_peft_model(base, lora, adapter_name="a").eval()
    model.add_adapter("b", lora)
    with torch.no_grad():  # "b" differs from "a"
        for name, p in model.named_parameters():
            if ".b." in name or name.endswith(".b.weight"):
                p.add_(torch.randn_like(p))
    return model


def generate(model, prompts, adapters, max_new=12, **kwargs) -> list[list[int]]:
    rows = [Row(p, a) for p, a in zip(prompts, adapters)]
    rules = StopRules(frozenset({0}), max_new, lambda t: 0)
    with torch.inference_mode():
        run(model, rows, rules, lambda logits: logits.argmax(-1), lambda: None, lambda: False, **kwargs)
    return [r.tokens for r in rows]


PROMPTS = [list(range(1, 6)), list(range(3, 40)), list(range(1, 6)), list(range(3, 40)), list(range(7, 22))]


@pytest.mark.parametrize("kwargs", [{}, {"chunk": 8}, {"padded_prefill": True}, {"padded_prefill": True, "chunk": 8}])
@pytest.mark.parametrize("adapters", [[BASE, BASE, "a", "a", BASE], [BASE, "a", "b", "a", BASE], ["a"] * 5,
                                      [BASE] * 5])
def test_batched_rows_get_what_they_get_alone(tiny, adapters, kwargs):
    alone = [generate(tiny, [p], [a])[0] for p, a in zip(PROMPTS, adapters)]
    assert generate(tiny, PROMPTS, adapters, **kwargs) == alone
    assert all(len(t) > 0 for t in alone)


def test_the_adapter_acts_only_on_its_rows(tiny):
    plain, tuned = generate(tiny, PROMPTS[:2], [BASE, BASE]), generate(tiny, PROMPTS[:2], ["a", "a"])
    assert plain != tuned
    assert generate(tiny, PROMPTS[:2] * 2, [BASE, BASE, "a", "a"]) == plain + tuned


def test_rows_leave_the_batch_when_they_end(tiny, monkeypatch):
    from ragft.decoding import loop

    rows = [Row(PROMPTS[0], BASE), Row(PROMPTS[1], BASE)]
    short = rows[0].tokens  # this row "repeats itself" at its 5th token: the last 3 are dropped and it ends
    rules = StopRules(frozenset(), 8, lambda tokens: 3 if tokens is short and len(tokens) == 5 else 0)
    sizes: list[int] = []
    original = loop._Batch.drop_finished

    def spy(batch):
        original(batch)
        sizes.append(len(batch.rows))

    monkeypatch.setattr(loop._Batch, "drop_finished", spy)
    with torch.inference_mode():
        run(tiny, rows, rules, lambda logits: logits.argmax(-1), lambda: None, lambda: False)
    assert rows[0].done and len(rows[0].tokens) == 2
    assert rows[1].done and len(rows[1].tokens) == 8
    assert 2 in sizes and 1 in sizes and sizes[-1] == 0  # both ran together, then the long one alone


def test_the_cache_grows_joins_and_sheds_rows_in_its_room():
    from ragft.decoding import GrowingLayer

    def filled(rows, tokens, start=0):
        return [torch.arange(start, start + rows * 2 * tokens * 4, dtype=torch.float).view(rows, 2, tokens, 4)] * 2

    long = GrowingLayer(length=10, rows=3)  # a 2-row prompt of 10 tokens, a running row to join it
    long.update(*filled(2, 6))
    long.update(*filled(2, 4, 100))  # the second chunk goes into the same room
    room = long._room[0]
    assert room.shape == (3, 2, 10 + GrowingLayer.spare, 4) and long.keys.shape == (2, 2, 10, 4)
    short = GrowingLayer()
    short.update(*filled(1, 3, 500))
    expected = torch.cat([long.keys, torch.nn.functional.pad(short.keys, (0, 0, 7, 0))])
    long.append_rows(short.keys, short.values)
    assert long._room[0] is room and torch.equal(long.keys, expected)  # joined the spare row: nothing copied
    long.update(*filled(3, 1, 900))
    assert long._room[0] is room and torch.equal(long.keys[:, :, :10], expected)
    kept = long.keys[:2].clone()
    long.batch_select_indices(torch.tensor([0, 1]))  # the last row ended: the room stays
    assert long._room[0] is room and torch.equal(long.keys, kept)
    long.batch_select_indices(torch.tensor([1]))  # the first ended: a copy
    assert long._room[0] is not room and torch.equal(long.keys, kept[1:])
    long.drop_columns(3)
    assert torch.equal(long.keys, kept[1:, :, 3:])
    long.update(*filled(1, 1, 1000))
    assert long.keys.shape == (1, 2, 9, 4) and torch.equal(long.keys[:, :, :8], kept[1:, :, 3:])


def test_cancel_stops_at_the_next_step(tiny):
    rows = [Row(PROMPTS[0], BASE), Row(PROMPTS[1], "a")]
    steps = []
    with torch.inference_mode():
        run(tiny, rows, StopRules(frozenset(), 50, lambda t: 0), lambda logits: logits.argmax(-1),
            lambda: steps.append(1), lambda: len(steps) >= 3)
    assert len(steps) == 3 and all(len(r.tokens) < 50 for r in rows)


def test_stop_rules():
    rules = StopRules(frozenset({0}), 6, lambda t: repeated_tail(t, 2))
    row = Row([1], BASE)
    for token in (5, 6, 7):
        rules.accept(row, token)
    assert row.tokens == [5, 6, 7] and not row.done
    rules.accept(row, 0)  # a stop token ends the row and is not kept
    assert row.done and row.tokens == [5, 6, 7]
    row = Row([1], BASE)
    for token in (5, 6, 7, 5, 6):
        rules.accept(row, token)
    assert row.done and row.tokens == [5, 6, 7]  # "5 6" again: dropped
    row = Row([1], BASE)
    for token in range(1, 7):
        rules.accept(row, token)
    assert row.done and len(row.tokens) == 6  # max_new


def test_one_adapter_uses_per_row_scaling_and_restores_it(tiny):
    from peft.tuners.lora import LoraLayer

    layer = next(m for m in tiny.modules() if isinstance(m, LoraLayer))
    before = dict(layer.scaling)
    with AdapterRows(tiny, [BASE, "a"]) as rows:
        assert rows.kwargs([BASE, "a"]) == {}  # no adapter_names: the scaling does it
        assert layer.scaling["a"].view(-1).tolist() == [0.0, before["a"]]
        assert rows.kwargs(["a"]) == {} and layer.scaling["a"] == before["a"]
        assert rows.kwargs([BASE, BASE]) == {} and layer.disable_adapters  # the adapter rows ended: adapters off
        assert rows.kwargs([BASE, "a"]) == {} and not layer.disable_adapters
        rows.kwargs([BASE])
    assert layer.scaling == before and not layer.disable_adapters
    with AdapterRows(tiny, [BASE, "a", "b"]) as rows:
        assert rows.kwargs([BASE, "a", "b"]) == {"adapter_names": [BASE, "a", "b"]}


def test_the_lean_lora_forward_gives_peft_s_output_and_is_undone_on_exit(tiny):
    from peft.tuners.lora import Linear

    layer = next(m for m in tiny.modules() if type(m) is Linear)
    x = torch.randn(2, 5, layer.in_features)
    with torch.no_grad(), AdapterRows(tiny, ["a", "a"]):
        expected = Linear.forward(layer, x)
    with torch.no_grad(), AdapterRows(tiny, [BASE, "a"]) as rows:
        assert type(layer) is not Linear and isinstance(layer, Linear)
        assert torch.allclose(layer(x), expected, atol=1e-6)  # the whole-batch scaling
        rows.kwargs([BASE, "a"])  # row 0 base, row 1 adapter: per-row scaling
        mixed = layer(x)
        assert torch.equal(mixed[0], layer.base_layer(x)[0]) and torch.allclose(mixed[1], expected[1], atol=1e-6)
        rows.kwargs(["a", "a"])
        assert torch.allclose(layer(x[0]), expected[0], atol=1e-6)  # not 3-D: peft's own forward
    assert type(layer) is Linear


def test_layers_reading_one_input_share_one_lora_product(tiny):
    from peft.tuners.lora import Linear

    attention = next(m for n, m in tiny.named_modules() if n.endswith("layers.0.self_attn"))
    mlp = next(m for n, m in tiny.named_modules() if n.endswith("layers.0.mlp"))
    qkv = [attention.q_proj, attention.k_proj, attention.v_proj]
    x = torch.randn(2, 5, attention.q_proj.in_features)
    with torch.no_grad():
        expected = [Linear.forward(layer, x) for layer in qkv]
        base = [layer.base_layer(x) for layer in qkv]
        with AdapterRows(tiny, [BASE, "a"]) as rows:
            shared = {layer.lean[-1] for layer in qkv}
            assert len(shared) == 1 and None not in shared
            assert mlp.gate_proj.lean[-1] is mlp.up_proj.lean[-1] is not None
            assert attention.o_proj.lean[-1] is None and mlp.down_proj.lean[-1] is None
            rows.kwargs(["a", "a"])
            for layer, want in zip(qkv, expected):
                torch.testing.assert_close(layer(x), want)
            rows.kwargs([BASE, "a"])  # a new scaling: the product is made again
            for layer, want, plain in zip(qkv, expected, base):
                out = layer(x)
                assert torch.equal(out[0], plain[0])
                torch.testing.assert_close(out[1], want[1])
    assert all("lean" not in vars(layer) for layer in qkv)


def test_no_adapter_loaded_is_a_clear_error():
    from transformers import LlamaConfig, LlamaForCausalLM

    model = LlamaForCausalLM(LlamaConfig(vocab_size=VOCAB, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                         num_attention_heads=2, num_key_value_heads=1))
    with pytest.raises(ValueError, match="no adapter is loaded"), AdapterRows(model, [BASE, "memo"]):
        pass


def test_few_rows_linear_gives_the_linear_product():
    from ragft.decoding import FewRowsLinear, few_rows_linears

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.Linear(512, 8, bias=False))
    with few_rows_linears(model):
        assert [type(m) for m in model] == [FewRowsLinear, torch.nn.Linear]  # 512 x 8 is too small to matter
        big = model[0]
        for shape in [(1, 256), (3, 256), (2, 1, 256), (4, 1, 256), (2, 5, 256), (16, 256)]:
            x = torch.randn(shape)
            out = big(x)
            assert out.shape == (*shape[:-1], 512) and out.is_contiguous()
            torch.testing.assert_close(out, torch.nn.functional.linear(x, big.weight, big.bias))
    assert [type(m) for m in model] == [torch.nn.Linear, torch.nn.Linear]  # undone: the shared model as it was


def test_bf16_prefill_products_run_in_bfloat16_within_the_prefill_only():
    from ragft.decoding import FewRowsLinear, bf16_products

    torch.manual_seed(0)
    layer = torch.nn.Linear(256, 512)
    layer.__class__ = FewRowsLinear
    many, few = torch.randn(2, 9, 256), torch.randn(3, 1, 256)
    exact = torch.nn.functional.linear(many, layer.weight, layer.bias)
    assert torch.equal(layer(many), exact)  # outside a bfloat16 prefill: float32 as it was
    with bf16_products(True):
        rounded, small = layer(many), layer(few)
    assert rounded.dtype == torch.float32 and rounded.shape == exact.shape
    assert not torch.equal(rounded, exact)  # it really ran in bfloat16 ...
    torch.testing.assert_close(rounded, exact, atol=0.05, rtol=0.02)  # ... to bfloat16's precision
    assert torch.equal(small, layer(few))  # a decode step's few rows stay float32
    assert torch.equal(layer(many), exact)  # float32 again after the prefill


@pytest.mark.parametrize("bf16_prefill", [False, True])
def test_few_rows_linears_keep_batched_rows_equal_to_alone(bf16_prefill, monkeypatch):
    """A Llama big enough for its linears to be swapped, an adapter on some rows: the rows still get what they get
    alone, with the prefill's products in float32 or in bfloat16 (then the first tokens mostly agree with float32's:
    bfloat16 rounding may flip a near tie, not the whole text)."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    from ragft.decoding import FewRowsLinear

    swapped = []
    forward = FewRowsLinear.forward
    monkeypatch.setattr(FewRowsLinear, "forward", lambda self, x: (swapped.append(self), forward(self, x))[1])
    torch.manual_seed(1)
    config = LlamaConfig(vocab_size=VOCAB, hidden_size=256, intermediate_size=512, num_hidden_layers=1,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256)
    lora = LoraConfig(r=4, lora_alpha=8, init_lora_weights=False, task_type="CAUSAL_LM",
                      target_modules=["q_proj", "v_proj", "up_proj"])
    model = get_peft_model(LlamaForCausalLM(config).eval(), lora, adapter_name="a").eval()
    adapters = [BASE, "a", BASE, "a", BASE]
    alone = [generate(model, [p], [a], bf16_prefill=bf16_prefill)[0] for p, a in zip(PROMPTS, adapters)]
    assert generate(model, PROMPTS, adapters, bf16_prefill=bf16_prefill) == alone
    assert generate(model, PROMPTS, adapters, bf16_prefill=bf16_prefill, chunk=8) == alone
    assert swapped and not any(type(m) is FewRowsLinear for m in model.modules())  # used, then undone
    float32 = generate(model, PROMPTS, adapters)
    assert sum(a[0] == f[0] for a, f in zip(alone, float32)) >= (4 if bf16_prefill else 5)


def test_decode_threads_keep_a_lower_count_a_forked_worker_set():
    from ragft.decoding.threads import DecodeThreads

    threads, was = DecodeThreads(2, trials=1), torch.get_num_threads()
    threads.choice = 1  # timed: one thread was faster for decode steps
    try:
        torch.set_num_threads(2)
        with threads():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2  # put back for prefill
        torch.set_num_threads(1)  # a forked ZeroGPU worker (`spaces._in_worker`): its team did not survive the fork
        threads.choice = 2
        with threads():
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 1  # never raised back to the count this model was timed with
    finally:
        torch.set_num_threads(was)
