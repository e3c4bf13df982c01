"""The LoRA training loop: transformers' Trainer on a peft model built on a copy of the base weights; progress,
losses and cancel through the job's state; the adapter folder appears complete or not at all."""

from __future__ import annotations

import copy
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

from ..adapters import RunRecord
from ..jobs import JobState, Status
from ..models import Generator
from .config import TrainConfig
from .data import IGNORE, Example, TrainingDataError, tokenize

log = logging.getLogger(__name__)


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
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments
    from transformers.trainer_callback import PrinterCallback, TrainerCallback  # mypy checks Monitor against these

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
    total = config.steps_for(len(data))
    tokens_per_step = sum(len(d["input_ids"]) for d in data) / steps_per_epoch
    cuda = torch.cuda.is_available()
    # one of several data-parallel processes (`train_process.launch_training` checked the batch splits evenly)
    processes, main = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0")) == 0
    work_dir = out_dir.parent / f".{out_dir.name}.partial"
    if main:
        shutil.rmtree(work_dir, ignore_errors=True)

    job, stop = state, cancel  # the callbacks' names for them (their own ``state`` is the Trainer's)

    class Monitor(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            job.step = state.global_step
            elapsed = time.time() - job.started
            job.tokens_per_s = tokens_per_step * job.step / max(elapsed, 1e-6)
            job.eta_s = elapsed / max(job.step, 1) * (total - job.step)
            if stop.is_set():
                job.status = "cancelling"
                control.should_training_stop = True
            if on_step:
                on_step()
            return control

        def on_log(self, args, state, control, logs=None, **kw):
            if logs and "loss" in logs:
                job.losses.append((state.global_step, float(logs["loss"])))

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
        bf16=cuda or generator.cpu_bf16,  # autocast: weights and LoRA stay float32 (on this CPU ~1.6x faster)
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

    status: Status = "cancelled" if cancel.is_set() else "done"
    if not main:
        return out_dir
    model.save_pretrained(str(work_dir))
    shutil.rmtree(work_dir / "trainer", ignore_errors=True)
    run = RunRecord(
        name=out_dir.name,
        status=status,
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
    state.status = status
    return out_dir
