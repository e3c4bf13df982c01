"""The verbs of one workspace, one module per area; the base model, embedder and Chroma client are loaded once, on
first use, and shared.

    base         settings, workspace, models, Chroma client, store, job runner
    documents    ingest, documents, document_chunks, delete_document, search (quotas, disk space)
    adapters     adapters, use_adapter, adapter_run, zip_adapter, delete_adapter, adapter_staleness
    chat         ask
    training     data_spec, preview_training, start_training, retrain_adapter
    questions    question_sets, load/save/generate question sets, read_questions
    evaluation   training_overlap, evaluate, start_evaluation
    experiments  speed, plan_experiment, start_experiment, experiments, experiment_report
"""

from __future__ import annotations

from .chat import ChatVerbs
from .documents import DocumentVerbs, IngestReport, NoDocumentError, QuotaError
from .evaluation import EvaluationVerbs
from .experiments import ExperimentVerbs
from .training import TrainingVerbs


class Engine(DocumentVerbs, ChatVerbs, TrainingVerbs, EvaluationVerbs, ExperimentVerbs):
    """The verbs behind the UI, the CLI and the tests, on one workspace's documents, adapters and question sets.

    Each verb class names the others it uses as its bases (training uses the adapters' and the question sets'
    verbs), and all stand on `EngineBase`. The heavy pieces (base model, embedder, Chroma client) are loaded once, on first use, by the root engine; an
    engine built with ``parent`` (a workspace of `ragft.workspaces.Workspaces`) uses its parent's, and keeps its
    own collection (``settings.collection``) and folders (``settings.data_dir``).
    """


_engine: Engine | None = None


def get_engine() -> Engine:
    """The process's engine, built from the environment on first call."""
    global _engine
    if _engine is None:
        _engine = Engine()
    return _engine


__all__ = ["Engine", "IngestReport", "NoDocumentError", "QuotaError", "get_engine"]
