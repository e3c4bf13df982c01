"""LoRA fine-tuning: training data (stored documents, a QA file, RAFT-style), the Trainer, and a runner.

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
import json
import logging
import random
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .chat import build_messages
from .models import Generator
from .questions import QuestionSetError, load_set
from .store import Hit, Store

log = logging.getLogger(__name__)

RUN_FILE = "ragft_run.json"  # written beside the adapter weights: config, data summary, loss history
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
IGNORE = -100  # label of tokens that carry no loss


class TrainingDataError(ValueError):
    """Training data that cannot be used; the message names the file, line and problem."""


class TrainingBusyError(RuntimeError):
    """A training run is already going; only one runs at a time."""


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

    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
    learning_rate: float = 1e-3
    epochs: float = 3.0
    max_steps: int = 0
    max_seq_len: int = 384
    batch_size: int = 4
    seed: int = 0
    raft_distractors: int = 2
    raft_no_gold: float = 0.2

    def validate(self) -> "TrainConfig":
        checks = [
            (1 <= self.rank <= 256, "rank must be 1..256"),
            (1 <= self.alpha <= 1024, "alpha must be 1..1024"),
            (0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)"),
            (bool(self.target_modules), "pick at least one target module"),
            (0 < self.learning_rate <= 1.0, "learning rate must be in (0, 1]"),
            (0 < self.epochs <= 100 or self.max_steps > 0, "epochs must be in (0, 100]"),
            (0 <= self.max_steps <= 100_000, "max steps must be 0..100000 (0 = use epochs)"),
            (32 <= self.max_seq_len <= 8192, "sequence length must be 32..8192"),
            (1 <= self.batch_size <= 256, "batch size must be 1..256"),
            (0 <= self.raft_distractors <= 10, "RAFT distractors must be 0..10"),
            (0.0 <= self.raft_no_gold <= 1.0, "RAFT no-gold share must be in [0, 1]"),
        ]
        for ok, message in checks:
            if not ok:
                raise ValueError(message)
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
    keep = ("question", "answer", "source", "fact")  # fact: sets saved by the Evaluate tab (overlap check)
    return [{k: v for k, v in it.to_json().items() if k in keep} for it in items]


def document_examples(store: Store) -> list[Example]:
    """Every stored chunk as raw text: continued pre-training on the user's documents."""
    examples = [Example(text=h.text, source=h.source) for h in store.all_chunks()]
    if not examples:
        raise TrainingDataError("the document store is empty: add documents in the Documents tab first")
    return examples


def qa_examples(records: list[dict]) -> list[Example]:
    return [
        Example(tuple(build_messages(r["question"])), r["answer"], question=r["question"], fact=r.get("fact", ""))
        for r in records
    ]


def raft_examples(records: list[dict], store: Store, config: TrainConfig) -> list[Example]:
    """RAFT: each question with a context of the gold chunk among distractors, or (a ``raft_no_gold`` share of
    the time) distractors only — in the same prompt format the RAG panes use at chat time."""
    if store.count() == 0:
        raise TrainingDataError("RAFT needs stored documents for its context: add documents first")
    rng = random.Random(config.seed)
    all_chunks = store.all_chunks()
    examples = []
    for r in records:
        gold: Hit | None = None
        if r.get("source"):
            named = [h for h in store.search(r["question"], 10) if h.source == r["source"]]
            gold = named[0] if named else None
        if gold is None:
            hits = store.search(r["question"], 1)
            gold = hits[0] if hits else None
        others = [h for h in all_chunks if gold is None or h.id != gold.id]
        distractors = rng.sample(others, min(config.raft_distractors, len(others)))
        context = list(distractors)
        if gold is not None and rng.random() >= config.raft_no_gold:
            context.insert(rng.randrange(len(context) + 1), gold)
        examples.append(Example(tuple(build_messages(r["question"], context)), r["answer"], question=r["question"],
                                fact=r.get("fact", "")))
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


@dataclass(frozen=True)
class DataSpec:
    """What to train on: ``source`` is "docs", "qa" or "raft"; ``qa_path`` for the last two."""

    source: str
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
@dataclass
class RunState:
    """What a run has done so far; the UI polls it (so a reloaded page picks the run up again)."""

    status: str = "idle"  # idle | preparing | running | cancelling | done | cancelled | failed
    name: str = ""
    step: int = 0
    total: int = 0
    losses: list[tuple[int, float]] = field(default_factory=list)
    tokens_per_s: float = 0.0
    started: float = 0.0
    eta_s: float | None = None
    message: str = ""

    @property
    def active(self) -> bool:
        return self.status in ("preparing", "running", "cancelling")


def next_version_name(adapters_dir: Path, base: str) -> str:
    """``base-v1``, ``base-v2``, … — never reusing a folder name, so a saved adapter is never overwritten."""
    if not NAME_RE.match(base):
        raise ValueError(f"adapter name {base!r}: use letters, digits, '-', '_' or '.', up to 64 characters")
    n = 1
    while (adapters_dir / f"{base}-v{n}").exists():
        n += 1
    return f"{base}-v{n}"


def train_adapter(
    generator: Generator,
    examples: list[Example],
    out_dir: Path,
    config: TrainConfig,
    state: RunState | None = None,
    cancel: threading.Event | None = None,
    data_summary: dict | None = None,
) -> Path:
    """Train a LoRA adapter on ``examples`` and save it to ``out_dir`` (written beside it, then renamed in, so a
    folder in the adapters list is always complete). Cancelling stops at the next step and saves what was learned.

    Trains on a copy of the base weights: the shared model keeps serving chat meanwhile.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import DataCollatorForSeq2Seq, PrinterCallback, Trainer, TrainerCallback, TrainingArguments

    config.validate()
    state = state or RunState()
    cancel = cancel or threading.Event()
    tokenizer = generator.tokenizer
    data = [tokenize(ex, tokenizer, config.max_seq_len) for ex in examples]
    data = [d for d in data if any(label != IGNORE for label in d["labels"])]
    if not data:
        raise TrainingDataError("no trainable tokens: every example was empty after tokenizing")
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
    work_dir = out_dir.parent / f".{out_dir.name}.partial"
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
            return control

        def on_log(self, args, control_state, control, logs=None, **kw):
            if logs and "loss" in logs:
                state.losses.append((control_state.global_step, float(logs["loss"])))

    args = TrainingArguments(
        output_dir=str(work_dir / "trainer"),
        max_steps=total,
        per_device_train_batch_size=config.batch_size,
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
    model.save_pretrained(str(work_dir))
    shutil.rmtree(work_dir / "trainer", ignore_errors=True)
    run = {
        "name": out_dir.name,
        "status": "cancelled" if cancelled else "done",
        "steps": state.step,
        "planned_steps": total,
        "config": asdict(config),
        "data": data_summary or {"examples": len(data)},
        "losses": state.losses,
        "questions": sorted({ex.question for ex in examples if ex.question}),
        "facts": sorted({ex.fact for ex in examples if ex.fact}),
        "documents": sorted({ex.source for ex in examples if ex.source}),
        "seconds": round(time.time() - state.started, 1),
        "base_model": generator.source.description,
        "saved": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    (work_dir / RUN_FILE).write_text(json.dumps(run, indent=2))
    work_dir.rename(out_dir)  # atomic: the folder appears complete or not at all
    state.status = run["status"]
    return out_dir


class TrainingRunner:
    """One training run at a time, in a background thread; ``state`` is read by pollers, ``cancel`` stops it."""

    def __init__(self, generator_fn: Callable[[], Generator], store_fn: Callable[[], Store], adapters_dir: Path):
        self._generator_fn = generator_fn
        self._store_fn = store_fn
        self.adapters_dir = adapters_dir
        self.state = RunState()
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self, spec: DataSpec, config: TrainConfig, name: str = "adapter") -> str:
        """Check the inputs, then train in the background. Returns the versioned adapter name."""
        config.validate()
        with self._lock:
            if self.state.active:
                raise TrainingBusyError(
                    f"a training run ({self.state.name}) is already going: wait for it or cancel it first"
                )
            self.adapters_dir.mkdir(parents=True, exist_ok=True)
            full_name = next_version_name(self.adapters_dir, name.strip() or "adapter")
            examples = spec.examples(self._store_fn(), config)  # bad data fails here, in the caller's hands
            self._cancel.clear()
            self.state = RunState(status="preparing", name=full_name, message="copying the base model")
            state = self.state
            summary = {"source": spec.source, "file": spec.qa_path.name if spec.qa_path else None,
                       "examples": len(examples)}
            self._thread = threading.Thread(
                target=self._run, args=(examples, config, full_name, state, summary), daemon=True,
                name="ragft-train",
            )
            self._thread.start()
            return full_name

    def _run(self, examples, config, name, state: RunState, summary) -> None:
        try:
            train_adapter(self._generator_fn(), examples, self.adapters_dir / name, config, state, self._cancel,
                          summary)
            state.message = (
                f"saved {name} after {state.step} of {state.total} steps"
                + (" (cancelled: the adapter holds what was learned so far)" if state.status == "cancelled" else "")
            )
        except Exception as exc:  # the runner thread must report, never die silently
            log.exception("training failed")
            state.status, state.message = "failed", f"training failed: {exc}"
            shutil.rmtree(self.adapters_dir / f".{name}.partial", ignore_errors=True)

    def cancel(self) -> bool:
        if self.state.active:
            self._cancel.set()
            self.state.status = "cancelling"
            return True
        return False

    def wait(self, timeout: float | None = None) -> RunState:
        if self._thread:
            self._thread.join(timeout)
        return self.state


def read_run(adapter_dir: Path) -> dict:
    """The run record saved beside an adapter (empty for adapters made elsewhere)."""
    try:
        return json.loads((adapter_dir / RUN_FILE).read_text())
    except (OSError, ValueError):
        return {}


def delete_adapter(adapters_dir: Path, name: str) -> None:
    path = adapters_dir / name
    if not NAME_RE.match(name) or not path.is_dir():
        raise ValueError(f"no adapter named {name!r}")
    shutil.rmtree(path)


def zip_adapter(adapters_dir: Path, name: str, out_dir: Path) -> Path:
    """A zip of the adapter folder, for download."""
    path = adapters_dir / name
    if not NAME_RE.match(name) or not path.is_dir():
        raise ValueError(f"no adapter named {name!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    return Path(shutil.make_archive(str(out_dir / name), "zip", root_dir=adapters_dir, base_dir=name))
