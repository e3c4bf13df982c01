"""LoRA fine-tuning: training data (stored documents, a QA file, RAFT-style), the Trainer, and the training job
(run by ``jobs.JobRunner``).

Three data sources:
    docs  continued pre-training on the stored chunks (loss on every token): knowledge injection
    qa    question/answer pairs through the chat template, loss on the answer tokens only
    raft  QA pairs with retrieved context in the prompt — the gold chunk plus distractors, and for a fraction of
          examples distractors only — so the adapter learns to use (and to doubt) context (Zhang et al. 2024)

Run from a shell:
    python -m ragft train --data docs --max-steps 30
    python -m ragft train --data qa.jsonl --raft --name support-bot
"""

from __future__ import annotations

import copy
import logging
import os
import random
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from .adapters import RunRecord, file_hash, next_version_name, trained_on
from .chat import build_messages
from .errors import InvalidInputError, RagftError
from .jobs import JobState
from .knobs import check, knob
from .models import Generator
from .questions import QuestionSetError, load_set
from .store import Hit, Store

log = logging.getLogger(__name__)

IGNORE = -100  # label of tokens that carry no loss


class TrainingDataError(RagftError, ValueError):
    """Training data that cannot be used; the message names the file, line and problem."""


@dataclass(frozen=True)
class TrainConfig:
    """LoRA and optimisation settings. Defaults finish in a few minutes on 2 CPU cores for a few documents.

    Args:
        rank / alpha / dropout: LoRA rank r, scaling alpha (update scaled by alpha/r) and dropout.
        target_modules: the linear layers that get adapters (names of Llama-style blocks).
        learning_rate: AdamW peak rate; LoRA wants far higher rates than full fine-tuning.
        epochs: passes over the data; ``max_steps`` > 0 overrides it.
        max_seq_len: examples are cut to this many tokens (prefill cost grows with it).
        batch_size: examples per optimiser step.
        raft_distractors / raft_no_gold: RAFT: distractor chunks per example, and the share of examples whose
            context holds no gold chunk.
    """

    rank: int = knob(16, 1, 256, "LoRA rank r")
    alpha: int = knob(32, 1, 1024, "LoRA alpha (the update is scaled by alpha/r; 2 x rank is usual)")
    dropout: float = knob(0.05, 0.0, 1.0, "LoRA dropout", open_hi=True)
    target_modules: tuple[str, ...] = knob(("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                            "down_proj"), help="linear layers that get adapters")
    learning_rate: float = knob(1e-3, 0.0, 1.0, "AdamW peak learning rate", open_lo=True)
    epochs: float = knob(3.0, 0.0, 100.0, "passes over the data (max steps > 0 overrides it)", open_lo=True)
    max_steps: int = knob(0, 0, 100_000, "optimiser steps; 0 = use epochs", note="0 = use epochs")
    max_seq_len: int = knob(384, 32, 8192, "examples are cut to this many tokens", label="sequence length")
    batch_size: int = knob(4, 1, 256, "examples per optimiser step")
    seed: int = 0
    raft_distractors: int = knob(2, 0, 10, "RAFT: distractor chunks per example", label="RAFT distractors")
    raft_no_gold: float = knob(0.2, 0.0, 1.0, "RAFT: share of examples without the gold chunk",
                               label="RAFT no-gold share")

    def __post_init__(self):
        # epochs only count when no step count is given
        check(self, skip=("epochs",) if self.max_steps > 0 else ())
        if not self.target_modules:
            raise InvalidInputError("pick at least one target module")

    def validate(self) -> "TrainConfig":
        """Checked on construction; kept so ``TrainConfig(...).validate()`` reads as it always did."""
        return self


@dataclass(frozen=True)
class Example:
    """One training example: chat ``messages`` + ``answer`` (loss on the answer), or raw ``text`` (loss on all)."""

    messages: tuple[dict, ...] = ()
    answer: str = ""
    text: str = ""
    # Where it came from, kept in the run record so Evaluate can warn about train/test overlap.
    question: str = ""
    fact: str = ""
    source: str = ""


# --- data ----------------------------------------------------------------------------------------------------
def load_qa_file(path: Path) -> list[dict]:
    """Read a JSONL file of ``{"question", "answer"}`` or ``{"messages": [...]}`` records (a question set, see
    ``questions.load_set``) as ``{"question", "answer", "source"?, "fact"?}`` dicts.

    Raises `TrainingDataError` naming the line of the first problem.
    """
    try:
        items = load_set(path)
    except QuestionSetError as exc:
        raise TrainingDataError(str(exc)) from None
    keep = ("question", "answer", "source", "chunk", "fact")  # fact: sets saved by the Evaluate tab (overlap check)
    return [{k: v for k, v in it.to_json().items() if k in keep} for it in items]


def document_examples(store: Store) -> list[Example]:
    """Every stored chunk as raw text: continued pre-training on the user's documents."""
    examples = [Example(text=h.text, source=h.source) for h in store.all_chunks()]
    if not examples:
        raise TrainingDataError("the document store is empty: add documents first", fix="documents")
    return examples


def qa_examples(records: list[dict]) -> list[Example]:
    return [
        Example(tuple(build_messages(r["question"])), r["answer"], question=r["question"], fact=r.get("fact", ""),
                source=r.get("source", ""))
        for r in records
    ]


def raft_examples(records: list[dict], store: Store, config: TrainConfig) -> list[Example]:
    """RAFT: each question with a context of the gold chunk among distractors, or (a ``raft_no_gold`` share of
    the time) distractors only — in the same prompt format the RAG panes use at chat time."""
    if store.count() == 0:
        raise TrainingDataError("RAFT needs stored documents for its context: add documents first")
    rng = random.Random(config.seed)
    all_chunks = store.all_chunks()
    by_place = {(h.source, h.chunk): h for h in all_chunks}
    examples = []
    for r in records:
        # The gold chunk: the one the record names (a generated fact's own chunk), else the best hit of its document
        # that holds the answer, else the best hit at all. A rephrased question often ranks another chunk first.
        gold: Hit | None = by_place.get((r.get("source"), r.get("chunk")))
        if gold is None and r.get("source"):
            named = [h for h in store.search(r["question"], 10) if h.source == r["source"]]
            gold = next((h for h in named if r["answer"] in h.text), named[0] if named else None)
        if gold is None:
            hits = store.search(r["question"], 1)
            gold = hits[0] if hits else None
        others = [h for h in all_chunks if gold is None or h.id != gold.id]
        distractors = rng.sample(others, min(config.raft_distractors, len(others)))
        context = list(distractors)
        if gold is not None and rng.random() >= config.raft_no_gold:
            context.insert(rng.randrange(len(context) + 1), gold)
        examples.append(Example(tuple(build_messages(r["question"], context)), r["answer"], question=r["question"],
                                fact=r.get("fact", ""), source=r.get("source", "")))
    return examples


def tokenize(example: Example, tokenizer, max_len: int) -> dict:
    """input_ids/labels for one example; prompt tokens get label IGNORE so only the answer is learned."""
    end = tokenizer.eos_token or ""
    if example.text:
        ids = tokenizer(example.text + end, add_special_tokens=False)["input_ids"][:max_len]
        return {"input_ids": ids, "labels": list(ids), "attention_mask": [1] * len(ids)}
    prompt = tokenizer.apply_chat_template(list(example.messages), tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(example.answer + end, add_special_tokens=False)["input_ids"]
    # Keep the answer whole and cut the prompt from the left (the question sits at its end).
    prompt_ids = prompt_ids[-max(max_len - len(answer_ids), 8) :]
    ids = (prompt_ids + answer_ids)[:max_len]
    labels = ([IGNORE] * len(prompt_ids) + answer_ids)[:max_len]
    return {"input_ids": ids, "labels": labels, "attention_mask": [1] * len(ids)}


DataSource = Literal["docs", "qa", "raft"]


@dataclass(frozen=True)
class DataSpec:
    """What to train on: ``source`` is "docs", "qa" or "raft"; ``qa_path`` for the last two."""

    source: DataSource
    qa_path: Path | None = None

    def examples(self, store: Store, config: TrainConfig) -> list[Example]:
        if self.source == "docs":
            return document_examples(store)
        if self.source not in ("qa", "raft"):
            raise TrainingDataError(f"unknown data source {self.source!r}; use docs, qa or raft")
        if self.qa_path is None:
            raise TrainingDataError("upload a question/answer JSONL file first")
        records = load_qa_file(self.qa_path)
        return qa_examples(records) if self.source == "qa" else raft_examples(records, store, config)


def preview(examples: list[Example], tokenizer, max_len: int, n: int = 5) -> tuple[list[dict], dict]:
    """The first ``n`` examples as the model will see them, plus counts for the whole set."""
    rows, total, trained = [], 0, 0
    for i, ex in enumerate(examples):
        t = tokenize(ex, tokenizer, max_len)
        total += len(t["input_ids"])
        trained += sum(label != IGNORE for label in t["labels"])
        if i < n:
            shown = ex.text or f"{ex.messages[-1]['content']}\n→ {ex.answer}"
            rows.append({"example": i + 1, "tokens": len(t["input_ids"]), "trained tokens": sum(
                label != IGNORE for label in t["labels"]), "text": shown})
    summary = {"examples": len(examples), "tokens": total, "trained_tokens": trained}
    return rows, summary


# --- training -------------------------------------------------------------------------------------------------
RunState = JobState  # a run reports through the job runner's state (step, total, losses, tokens/s, ETA, status)


def train_adapter(
    generator: Generator,
    examples: list[Example],
    out_dir: Path,
    config: TrainConfig,
    state: RunState | None = None,
    cancel: threading.Event | None = None,
    data_summary: dict | None = None,
    trained_on: dict[str, str] | None = None,
    on_step: Callable[[], None] | None = None,
    own_model: bool = False,
) -> Path:
    """Train a LoRA adapter on ``examples`` in this process and save it to ``out_dir`` (written beside it, then
    renamed in, so a folder in the adapters list is always complete). Cancelling stops at the next step and saves
    what was learned. The app trains through `launch_training`, which runs this in its own processes.

    Trains on a copy of the base weights (the shared model keeps serving chat meanwhile), or on ``generator``'s
    own model when ``own_model`` (a training process's). ``trained_on`` maps the documents the data came from to
    their content hashes (kept in the run record, so a later change to one of them marks the adapter stale);
    ``on_step()`` is called after every optimiser step, once ``state`` is updated. Launched as one of several
    data-parallel processes (``WORLD_SIZE``), each takes its share of every batch and only the first saves.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        DataCollatorForSeq2Seq,
        PrinterCallback,
        Trainer,
        TrainerCallback,
        TrainingArguments,
    )

    config.validate()
    state = state or RunState()
    cancel = cancel or threading.Event()
    tokenizer = generator.tokenizer
    data = [tokenize(ex, tokenizer, config.max_seq_len) for ex in examples]
    data = [d for d in data if any(label != IGNORE for label in d["labels"])]
    if not data:
        raise TrainingDataError("no trainable tokens: every example was empty after tokenizing")
    if own_model:
        model = generator.model
    else:
        with generator.lock:  # not while a batch is being generated or an adapter loaded
            model = copy.deepcopy(generator.model)
    if generator.has_adapters:
        model = model.unload()  # drop chat's adapters: train on the plain base weights
    if getattr(model, "hf_quantizer", None) is not None and model.hf_quantizer.__class__.__name__ == "GgufHfQuantizer":
        # transformers de-quantizes GGUF weights to float on load; only the flag remains, and it blocks Trainer.
        model.is_quantized, model.hf_quantizer = False, None
    torch.manual_seed(config.seed)
    model = get_peft_model(
        model,
        LoraConfig(
            r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
            target_modules=list(config.target_modules), task_type="CAUSAL_LM",
        ),
    )
    steps_per_epoch = -(-len(data) // config.batch_size)
    total = config.max_steps or max(1, round(steps_per_epoch * config.epochs))
    tokens_per_step = sum(len(d["input_ids"]) for d in data) / steps_per_epoch
    cuda = torch.cuda.is_available()
    # one of several data-parallel processes (`train_process.launch_training` checked the batch splits evenly)
    processes, main = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")) == 0
    work_dir = out_dir.parent / f".{out_dir.name}.partial"
    if main:
        shutil.rmtree(work_dir, ignore_errors=True)

    class Monitor(TrainerCallback):
        def on_step_end(self, args, control_state, control, **kw):
            state.step = control_state.global_step
            elapsed = time.time() - state.started
            state.tokens_per_s = tokens_per_step * state.step / max(elapsed, 1e-6)
            state.eta_s = elapsed / max(state.step, 1) * (total - state.step)
            if cancel.is_set():
                state.status = "cancelling"
                control.should_training_stop = True
            if on_step:
                on_step()
            return control

        def on_log(self, args, control_state, control, logs=None, **kw):
            if logs and "loss" in logs:
                state.losses.append((control_state.global_step, float(logs["loss"])))

    args = TrainingArguments(
        output_dir=str(work_dir / "trainer"),
        max_steps=total,
        per_device_train_batch_size=config.batch_size // processes,  # the same batches, split over the processes
        learning_rate=config.learning_rate,
        lr_scheduler_type="constant_with_warmup",
        warmup_steps=min(5, total // 20),  # short runs: every step counts
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        seed=config.seed,
        bf16=cuda,
        use_cpu=not cuda,
        remove_unused_columns=False,
        disable_tqdm=True,
        dataloader_num_workers=0,
    )
    collator = DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=IGNORE)
    state.total, state.status, state.started = total, "running", time.time()
    trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=collator, callbacks=[Monitor()])
    trainer.remove_callback(PrinterCallback)  # progress goes to `state`, not stdout
    trainer.train()

    cancelled = cancel.is_set()
    if not main:
        return out_dir
    model.save_pretrained(str(work_dir))
    shutil.rmtree(work_dir / "trainer", ignore_errors=True)
    run = RunRecord(
        name=out_dir.name,
        status="cancelled" if cancelled else "done",
        steps=state.step,
        planned_steps=total,
        config=asdict(config),
        data=data_summary or {"examples": len(data)},
        tokens=sum(len(d["input_ids"]) for d in data),  # the data once
        trained_tokens=sum(label != IGNORE for d in data for label in d["labels"]),  # the data once, with loss
        tokens_seen=round(tokens_per_step * state.step),  # all steps: what the training time paid for
        document_hashes=dict(sorted((trained_on or {}).items())),
        losses=state.losses,
        questions=sorted({ex.question for ex in examples if ex.question}),
        # the pairs themselves, so the adapter can be retrained on the current documents without its source file
        pairs=list({ex.question: {"question": ex.question, "answer": ex.answer, "source": ex.source,
                                  "fact": ex.fact} for ex in examples if ex.question}.values()),
        facts=sorted({ex.fact for ex in examples if ex.fact}),
        documents=sorted({ex.source for ex in examples if ex.source and ex.text}),  # read whole (docs)
        seconds=round(time.time() - state.started, 1),
        base_model=generator.source.description,
        saved=time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    run.write(work_dir)
    work_dir.rename(out_dir)  # atomic: the folder appears complete or not at all
    state.status = run.status
    return out_dir


@dataclass(frozen=True)
class TrainingPlan:
    """A checked training run, ready to go: the versioned adapter name, its folder, the examples, a data summary."""

    name: str
    out_dir: Path
    examples: list[Example]
    config: TrainConfig
    summary: dict
    trained_on: dict[str, str] = field(default_factory=dict)  # document -> content hash, for freshness


def plan_training(spec: DataSpec, config: TrainConfig, store: Store, adapters_dir: Path,
                  name: str = "adapter") -> TrainingPlan:
    """Check the config and the data and pick the next version name; bad data raises here, before any job."""
    config.validate()
    adapters_dir.mkdir(parents=True, exist_ok=True)
    full_name = next_version_name(adapters_dir, name.strip() or "adapter")
    examples = spec.examples(store, config)
    summary = {"source": spec.source, "file": spec.qa_path.name if spec.qa_path else None, "examples": len(examples)}
    if spec.qa_path:
        summary["file_hash"] = file_hash(spec.qa_path)
    # Documents and RAFT contexts come from the whole store; QA pairs from the documents they name (if any).
    sources = None if spec.source in ("docs", "raft") else {ex.source for ex in examples if ex.source}
    return TrainingPlan(full_name, adapters_dir / full_name, examples, config, summary,
                        trained_on(store.documents(), sources))


def run_training(generator: Generator, plan: TrainingPlan, state: JobState, cancel: threading.Event,
                 processes: int = 1) -> Path:
    """A job's work: train ``plan`` in its own ``processes`` (see `train_process`) reporting into ``state``; a
    failed run leaves no partial folder behind."""
    from .train_process import launch_training

    state.stage = f"training {plan.summary['source']} adapter"
    path = launch_training(generator, plan.examples, plan.out_dir, plan.config, state, cancel, plan.summary,
                           plan.trained_on, processes=processes)
    state.message = (
        f"saved {plan.name} after {state.step} of {state.total} steps"
        + (" (cancelled: the adapter holds what was learned so far)" if state.status == "cancelled" else "")
    )
    return path


def remove_partial_adapters(adapters_dir: Path) -> list[str]:
    """Delete the ``.name.partial`` and ``.name.job`` folders a killed training run left (never listed as
    adapters); their names."""
    gone = []
    for d in [*adapters_dir.glob(".*.partial"), *adapters_dir.glob(".*.job")] if adapters_dir.is_dir() else []:
        shutil.rmtree(d, ignore_errors=True)
        gone.append(d.name)
    return gone
