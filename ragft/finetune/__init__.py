"""LoRA fine-tuning: ``config`` (TrainConfig), ``data`` (stored documents, a QA file, RAFT-style), ``trainer`` (the
Trainer loop) and ``runner`` (the training job, run by ``jobs.JobRunner`` in ``train_process``).

Three data sources:
    docs  continued pre-training on the stored chunks (loss on every token): knowledge injection
    qa    question/answer pairs through the chat template, loss on the answer tokens only
    raft  QA pairs with retrieved context in the prompt — the gold chunk plus distractors, and for a fraction of
          examples distractors only — so the adapter learns to use (and to doubt) context (Zhang et al. 2024)

Run from a shell:
    python -m ragft train --data docs --max-steps 30
    python -m ragft train --data qa.jsonl --raft --name support-bot
"""

from .config import TrainConfig
from .data import (
    DATA_SOURCES,
    IGNORE,
    DataSource,
    DataSpec,
    Example,
    TrainingDataError,
    document_examples,
    load_qa_file,
    preview,
    qa_examples,
    raft_examples,
    tokenize,
)
from .runner import TrainingPlan, plan_training, remove_partial_adapters, run_training
from .trainer import RunState, train_adapter

__all__ = [
    "DATA_SOURCES", "IGNORE", "DataSource", "DataSpec", "Example", "RunState", "TrainConfig", "TrainingDataError",
    "TrainingPlan", "document_examples", "load_qa_file", "plan_training", "preview", "qa_examples", "raft_examples",
    "remove_partial_adapters", "run_training", "tokenize", "train_adapter",
]
