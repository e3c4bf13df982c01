"""How a LoRA adapter is trained: rank, alpha, dropout, target layers, rate, epochs or steps, sequence length,
batch and the RAFT mix. Every field declares its range (`knobs`): the Fine-tune tab's sliders and the CLI read it."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InvalidInputError
from ..knobs import check, knob


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
    max_steps: int = knob(0, 0, 100_000, "optimiser steps", note="0 = use epochs")
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

    def steps_for(self, examples: int) -> int:
        """The optimiser steps this config takes over ``examples`` examples."""
        return self.max_steps or max(1, round(-(-examples // self.batch_size) * self.epochs))

    def check_steps(self, examples: int, limit: int) -> None:
        """Refuse a run of more than ``limit`` steps (``RAGFT_MAX_TRAIN_STEPS``), before anything starts."""
        steps = self.steps_for(examples)
        if steps > limit:
            how = "max steps" if self.max_steps else f"{self.epochs:g} epochs over {examples} examples"
            raise InvalidInputError(f"{how} would take {steps} steps; this app allows 1..{limit} per adapter "
                                    "(RAGFT_MAX_TRAIN_STEPS): ask for fewer steps or epochs")
