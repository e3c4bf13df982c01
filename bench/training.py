"""Training speed: optimiser steps/s of the app's training path (``finetune.train_adapter``: peft + Trainer, with
its progress, loss curve and cancel) against a minimal hand-written loop (peft + AdamW, no Trainer) on the same
model, LoRA settings, data, batch size and sequence length. Target: >= 0.9 on a CPU and on a GPU.

Data: the RAFT-style prompts are the longest the app trains on, so each example here is a bench/recipe question
with a document as its context and the person-written answer. Step times are medians after two warm-up steps.

    .venv/bin/python -m bench training [--quick | --smoke]
"""

from __future__ import annotations

import copy
import itertools
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from .report import Figure, report, size

ROOT = Path(__file__).resolve().parent
STEPS = {"full": 12, "quick": 6, "smoke": 2}
WARM_UP = {"full": 2, "quick": 2, "smoke": 1}  # the first steps, not timed (the app's first has no start stamp)


def _examples():
    from ragft.chat import build_messages
    from ragft.finetune import Example
    from ragft.store import Hit

    docs = {p.name: p.read_text() for p in (ROOT / "recipe" / "docs").iterdir()}
    pairs = [json.loads(line) for line in (ROOT / "recipe" / "person_questions.jsonl").open()]
    return [Example(tuple(build_messages(p["question"], [Hit(p["source"], 0, 1.0, docs[p["source"]][:1500])])),
                    p["answer"], question=p["question"], source=p["source"]) for p in pairs]


def _hand_loop(generator, data, config, steps: int, bf16: bool) -> list[float]:
    """The same work without Trainer: peft model, AdamW, padded batches, loss.backward, step; the products under
    bfloat16 autocast when ``bf16`` (as the app's Trainer has them on a GPU, and on a CPU with native bfloat16)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq

    from ragft.finetune import IGNORE

    with generator.lock:
        model = copy.deepcopy(generator.model)
    if getattr(model, "hf_quantizer", None) is not None:
        model.is_quantized, model.hf_quantizer = False, None
    torch.manual_seed(config.seed)
    model = get_peft_model(model, LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                                             target_modules=list(config.target_modules), task_type="CAUSAL_LM"))
    model.train()
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate)
    collate = DataCollatorForSeq2Seq(generator.tokenizer, padding=True, label_pad_token_id=IGNORE)
    cuda = torch.cuda.is_available()
    times = []
    for step in range(steps):
        start = time.perf_counter()
        batch = collate([data[(step * config.batch_size + i) % len(data)] for i in range(config.batch_size)])
        batch = {k: v.to(generator.device) for k, v in batch.items()}
        with torch.autocast(generator.device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def main(flags: list[str]) -> list[Figure]:
    from ragft.finetune import TrainConfig, tokenize, train_adapter
    from ragft.models import load_generator

    steps, warm = STEPS[size(flags)], WARM_UP[size(flags)]
    generator = load_generator()
    examples = _examples()
    # smoke: the same code on a small batch of short examples (only the output's format is checked)
    config = TrainConfig(max_steps=steps, batch_size=4) if size(flags) != "smoke" else \
        TrainConfig(max_steps=steps, batch_size=1, max_seq_len=32)
    data = [tokenize(ex, generator.tokenizer, config.max_seq_len) for ex in examples]
    folder = Path(tempfile.mkdtemp(prefix="ragft-bench-training-"))
    stamps: list[float] = []
    train_adapter(generator, examples, folder / "app", config, on_step=lambda: stamps.append(time.perf_counter()))
    app_steps = [b - a for a, b in itertools.pairwise(stamps)][warm - 1:]  # from step warm + 1 on (the 3rd): warm
    bf16 = generator.device.type == "cuda" or generator.cpu_bf16
    hand_steps = _hand_loop(generator, data, config, steps, bf16)[warm:]
    app, hand = statistics.median(app_steps), statistics.median(hand_steps)
    tokens = statistics.mean(len(d["input_ids"]) for d in data) * config.batch_size
    precision = "bfloat16 products" if bf16 else "float32"
    figures = [Figure(f"training steps/s, app path ({precision})", round(1 / app, 3), round(1 / hand, 3), "st/s",
                      ">= 0.9", "hand-written loop, same precision")]
    details = {"steps": steps, "batch_size": config.batch_size, "tokens_per_step": round(tokens), "precision": precision,
               "app_step_s": app_steps, "hand_step_s": hand_steps}
    if generator.device.type == "cpu" and bf16:  # what RAGFT_CPU_PRECISION=bfloat16 buys over float32
        float32 = _hand_loop(generator, data, config, steps, False)[warm:]
        figures.append(Figure("training steps/s, bfloat16 products vs float32 (hand loop)", round(1 / hand, 3),
                              round(1 / statistics.median(float32), 3), "st/s", "", "float32"))
        details["hand_float32_step_s"] = float32
    report("training", figures, details)
    shutil.rmtree(folder, ignore_errors=True)
    return figures
