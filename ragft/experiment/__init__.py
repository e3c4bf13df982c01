"""Experiment: "for my documents, RAG, fine-tuning, or both?" answered in one run.

    questions  fill-in-the-blank facts generated from the documents (or a saved / uploaded set)
    split      paraphrase (train on some wordings of each fact, test on another) or held-out facts
    train      one LoRA adapter per recipe on the train part: ``qa`` (question -> short answer), ``raft`` (the
               question with its gold chunk among distractors, some examples with distractors only), ``docs``
               (continued pre-training on the documents)
    evaluate   plain, RAG, fine-tuned and RAG + fine-tuned for every adapter on the test part, and the fine-tuned
               variant on the trained wordings too, to tell "not learned" from "did not generalise"
    report     the verdict with 95% intervals and paired tests (``stats``), the cause of every miss, the costs

Modules: ``config`` (presets, ExperimentConfig), ``plan`` (questions, split, time estimate), ``run`` (the job),
``causes`` (why each miss), ``report`` (the report model, JSON and CSV), ``pages`` (text, SVG chart, HTML page).

Run from a shell:
    python -m ragft experiment --preset quick
    python -m ragft experiment --set facts --split heldout --train qa,raft,docs --json
"""

from .causes import CAUSES, cause_of_miss
from .config import (
    PRESETS,
    QUESTION_METHODS,
    RECIPES,
    ExperimentConfig,
    ExperimentError,
    Preset,
)
from .plan import Plan, Speed, Stage, format_duration, measure_speed, plan_experiment
from .report import AdapterRun
from .run import StageProgress, run_experiment

__all__ = [
    "CAUSES", "PRESETS", "QUESTION_METHODS", "RECIPES", "AdapterRun", "ExperimentConfig", "ExperimentError", "Plan",
    "Preset", "Speed", "Stage", "StageProgress", "cause_of_miss", "format_duration", "measure_speed", "plan_experiment",
    "run_experiment",
]
