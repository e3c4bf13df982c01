"""GPU decode step: ragft's four-way step (``decoding.run``: plain, RAG, fine-tuned, RAG + fine-tuned — two short
and two ~800-token prompts, one LoRA adapter on two rows) against plain ``model.generate`` on the same batch with
no adapter at all. Target: <= 1.3. Random weights of the real shapes of SmolLM2-135M, SmolLM2-1.7B and an 8B
Llama, bf16; step time = (time for N new tokens - time for 1) / (N - 1), every row running all N.

Runs where CUDA is; elsewhere it says so and reports nothing (``--smoke`` runs a tiny shape on the CPU instead, to
check the code path).

    python -m bench gpu_step [--quick | --smoke]
"""

from __future__ import annotations

import sys
import time

from .report import Figure, report, size

SHAPES = {
    "SmolLM2-135M": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True),
    "SmolLM2-1.7B": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=24, num_attention_heads=32,
                         num_key_value_heads=32, vocab_size=49152, tie_word_embeddings=True),
    "Llama-8B": dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                     num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=False),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512, tie_word_embeddings=True),
}
TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _model(shape: dict, device, dtype):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            base = LlamaForCausalLM(LlamaConfig(max_position_embeddings=4096, **shape)).eval()
    finally:
        torch.set_default_dtype(default)
    lora = LoraConfig(r=16, lora_alpha=32, target_modules=list(TARGETS), init_lora_weights=False)
    return base, get_peft_model(base, lora, adapter_name="lora1").eval()


def _timed(fn, device, repeats: int = 3) -> float:
    """The fastest of ``repeats`` runs: the least disturbed by whatever else the machine is doing."""
    import torch

    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def _step_times(name: str, shape: dict, new: int, device) -> dict:
    import torch

    from ragft.backend import BASE
    from ragft.decoding import Row, StopRules, run

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    base, peft = _model(shape, device, dtype)
    g = torch.Generator().manual_seed(1)
    vocab = shape["vocab_size"]
    short, long = (torch.randint(3, vocab, (n,), generator=g).tolist() for n in (40, 800 if vocab > 512 else 80))
    prompts, adapters = [short, long, short, long], [BASE, BASE, "lora1", "lora1"]

    def ragft(n: int) -> None:
        rows = [Row(p, a) for p, a in zip(prompts, adapters)]
        with torch.inference_mode():
            run(peft, rows, StopRules(frozenset(), n, lambda t: 0), lambda logits: logits.argmax(-1), lambda: None,
                lambda: False, padded_prefill=device.type == "cuda")

    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)

    def generate(n: int) -> None:
        with torch.inference_mode(), peft.disable_adapter():
            base.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                          pad_token_id=0)

    result = {}
    for label, fn in (("ragft", ragft), ("generate", generate)):
        fn(2)  # warm-up
        for _ in range(3):  # on a busy CPU a tiny model's steps can drown in the noise: measure again
            one, many = _timed(lambda fn=fn: fn(1), device), _timed(lambda fn=fn: fn(new), device)
            if many > one:
                break
        result[label] = max(many - one, 0.0) / (new - 1) * 1000
    return result


def main(flags: list[str]) -> list[Figure]:
    import torch

    mode = size(flags)
    if mode == "smoke":
        device, shapes, new = torch.device("cpu"), ["tiny"], 8
    elif torch.cuda.is_available():
        device, new = torch.device("cuda"), 128
        shapes = ["SmolLM2-135M", "SmolLM2-1.7B"] + (["Llama-8B"] if mode == "full" else [])
    else:
        print("gpu_step: no GPU here, nothing measured (run it where CUDA is)", file=sys.stderr)
        return []
    figures, details = [], {"new_tokens": new}
    for name in shapes:
        times = _step_times(name, SHAPES[name], new, device)
        if device.type == "cuda":
            torch.cuda.empty_cache()  # the shape's model is gone with _step_times' frame
        details[name] = times
        figures.append(Figure(f"four-way decode step, {name}", round(times["ragft"], 2), round(times["generate"], 2),
                              "ms", "<= 1.3", "generate, no peft"))
    report("gpu_step", figures, details)
    return figures
