"""The app's API for programs (`gradio_client`, the "Use via API" page): one endpoint per user action, with named
parameters, JSON results and the caller's workspace. The tabs' own events are UI wiring and hidden (`hide_wiring`).

    from gradio_client import Client, handle_file
    app = Client("http://127.0.0.1:7860")
    app.predict([handle_file("notes.md")], api_name="/ingest")
    app.predict("Who keeps the light?", api_name="/ask")["RAG"]["answer"]
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import TypeVar

import gradio as gr
from gradio import FileData

from ..engine import Engine
from ..errors import InvalidInputError, RagftError
from ..evaluate import EvalConfig
from ..experiment import ExperimentConfig
from ..experiment.report import ExperimentReport
from ..finetune import TrainConfig
from ..grounding import as_dict
from ..jobs import JobState
from ..knobs import bounds, from_request
from ..questions import parse_typed
from ..requests import AskRequest, SearchRequest
from ..results import EvalResult
from ..variants import LABELS, MODE_VARIANTS, VARIANTS
from . import messages as M
from .chat import GENERATE
from .errors import user_message
from .uploads import uploaded_files

log = logging.getLogger(__name__)
R = TypeVar("R")

ENDPOINTS = ("ingest", "documents", "delete_document", "search", "ask", "adapters", "train", "job_status", "cancel",
             "evaluate", "experiment")


def _hit(h) -> dict:
    return {"source": h.source, "chunk": h.chunk, "score": round(h.score, 4), "text": h.text}


def _result(engine: Engine, state: JobState, kind: type[R]) -> R:
    """The job's result (a ``kind``) once it has ended; its message as the error when it failed or left none."""
    while state.active:
        engine.jobs.wait(1.0)
    if state.status == "failed" or not isinstance(state.result, kind):
        raise gr.Error(state.message)
    return state.result


def _text(value, label: str) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{label} must be text")
    return value


def _names(value, label: str) -> tuple[str, ...]:
    """A comma-separated list ("qa,raft") as a tuple of names."""
    return tuple(t.strip() for t in _text(value, label).split(",") if t.strip())


def endpoint(fn):
    """An API endpoint's one way out for errors: a `RagftError` is its message; anything else is logged and the
    caller reads one line, never the exception's text (it may name server paths)."""

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except RagftError as exc:
            raise gr.Error(user_message(exc)) from None
        except Exception:
            log.exception("API endpoint %s failed", fn.__name__)
            raise gr.Error(M.INTERNAL_ERROR) from None

    return call


def add_api(engine: Engine) -> None:
    """Declare the endpoints (inside the app's Blocks); ``engine`` resolves to the caller's workspace."""

    @gr.api(api_name="ingest")
    @endpoint
    def ingest(files: list[FileData]) -> list[dict]:
        """Add uploaded files (txt, md, pdf, docx, html) to the document store. One report per file: name, ok,
        status (added, replaced, unchanged, duplicate, refused, failed), chunks and a message; a refused file
        changes nothing. Only uploads are taken (gradio_client: handle_file), never a path on the server."""
        paths = uploaded_files(files)
        return [vars(r) for r in engine.ingest([(p, p.name) for p in paths])]

    @gr.api(api_name="documents")
    @endpoint
    def documents() -> list[dict]:
        """The stored documents: name, chunks, chars, size_bytes, added."""
        return [{"name": d.name, "chunks": d.chunks, "chars": d.chars, "size_bytes": d.size_bytes, "added": d.added}
                for d in engine.documents()]

    @gr.api(api_name="delete_document")
    @endpoint
    def delete_document(name: str) -> int:
        """Delete a stored document by name; returns the number of chunks removed (an unknown name is an error)."""
        return engine.delete_document(_text(name, "name"))

    @gr.api(api_name="search")
    @endpoint
    @described(k=bounds(SearchRequest, "k"))
    def search(query: str, k: int = SearchRequest.k) -> list[dict]:
        """The ``k`` (<k>) stored chunks closest to ``query``: source, chunk, score (cosine), text."""
        request = from_request(SearchRequest, query=query, k=k)
        if not request.query.strip():
            raise InvalidInputError("the query is empty")
        return [_hit(h) for h in engine.search(request.query, request.k)]

    @gr.api(api_name="ask", concurrency_id=GENERATE)
    @endpoint
    @described(tokens=bounds(AskRequest, "max_new_tokens"), top_k=bounds(AskRequest, "top_k"))
    def ask(question: str, mode: str = AskRequest.mode, adapter: str = "", max_new_tokens: int = 0,
            top_k: int = 0) -> dict:
        """Answer ``question`` with the variants of ``mode`` (plain, rag, ft, rag+ft or all) and return, per
        variant label, {"answer", "sources"} (sources for the retrieval variants) or {"notice"} when a variant could
        not run (no adapter). max_new_tokens <tokens> and top_k <top_k>; 0 means the app's settings."""
        request = from_request(AskRequest, question=question, mode=mode, adapter=adapter,
                               max_new_tokens=max_new_tokens, top_k=top_k)
        result = None
        for result in engine.ask(request.question, request.mode, request.adapter or None,
                                 request.decode(engine.settings), request.top_k or None):
            pass
        assert result is not None  # the stream always yields, at least the finished answers
        out: dict[str, dict[str, object]] = {}  # variant label -> its answer, sources and grounding, or its notice
        for v in (v for v in VARIANTS if v in MODE_VARIANTS[request.mode]):
            if v in result.notices:
                out[LABELS[v]] = {"notice": result.notices[v]}
            else:
                out[LABELS[v]] = {"answer": result.answers.get(v, ""),
                                  "sources": [_hit(h) for h in result.sources.get(v, [])]}
                if v in result.grounding:  # each sentence: supported by which source (index), or its missing facts
                    out[LABELS[v]]["grounding"] = [as_dict(m) for m in result.grounding[v]]
                    out[LABELS[v]]["grounded_by"] = result.grounded_by or "words"  # or the grounding model's name
        return out

    @gr.api(api_name="adapters")
    @endpoint
    def adapters() -> list[str]:
        """The saved adapters, newest first."""
        return engine.adapters()

    @gr.api(api_name="train")
    @endpoint
    def train(data: str = "docs", question_set: str = "", name: str = "adapter", steps: int = 0,
              rank: int = TrainConfig.rank, learning_rate: float = TrainConfig.learning_rate,
              batch_size: int = TrainConfig.batch_size) -> str:
        """Start training a LoRA adapter in the background on ``data``: docs (the stored documents), qa or raft
        (a saved ``question_set``). Returns the new adapter's versioned name; follow it with /job_status."""
        config = from_request(TrainConfig, rank=rank, learning_rate=learning_rate, max_steps=steps,
                              batch_size=batch_size)
        config = TrainConfig(**{**vars(config), "alpha": min(2 * config.rank, bounds(TrainConfig, "alpha")[1])})
        spec = engine.data_spec(_text(data, "data"), qa_set=_text(question_set, "question set") or None)
        return engine.start_training(spec, config, _text(name, "name"))

    @gr.api(api_name="job_status")
    @endpoint
    def job_status() -> dict:
        """The background job (training, evaluation or experiment), running or last: kind, name, status, step,
        total, eta_s, message, losses."""
        s = engine.jobs.state
        return {"kind": s.kind, "name": s.name, "status": s.status, "step": s.step, "total": s.total,
                "eta_s": s.eta_s, "message": s.message, "losses": [list(x) for x in s.losses]}

    @gr.api(api_name="cancel")
    @endpoint
    def cancel() -> bool:
        """Ask the running job to stop (training keeps what it learned); False when nothing runs."""
        return engine.jobs.cancel()

    @gr.api(api_name="evaluate")
    @endpoint
    def evaluate(question_set: str, adapter: str = "", variants: str = "plain,rag,ft,rag+ft") -> dict:
        """Run a saved question set on the chosen variants (comma-separated) to the end and return the results:
        scores per variant with intervals, and every answer. Runs as the workspace's background job."""
        config = EvalConfig(variants=_names(variants, "variants"), top_k=engine.settings.top_k)
        state = engine.start_evaluation(engine.load_question_set(_text(question_set, "question set")),
                                        _text(adapter, "adapter") or None, config, question_set)
        return _result(engine, state, EvalResult).to_json()

    @gr.api(api_name="experiment")
    @endpoint
    def experiment(preset: str = "quick", questions: int = 0, split: str = "", train: str = "qa,raft",
                   steps: int = 0, question_set: str = "", name: str = "experiment", my_questions: str = "") -> dict:
        """Run an experiment to the end and return its report: verdict, per-variant scores with 95% intervals,
        paired tests, causes of misses, costs and the adapters' names. ``question_set``: a saved set (else questions
        are made from the documents). ``my_questions``: your own questions, one a line as "question | expected
        answer"; never trained on, and the verdict speaks for them first."""
        config = from_request(ExperimentConfig, name=name, preset=preset, questions=questions, split=split,
                              steps=steps, top_k=engine.settings.top_k, method=engine.question_method)
        config = ExperimentConfig(**{**vars(config), "train": _names(train, "train")})
        question_set = _text(question_set, "question set")
        items = engine.load_question_set(question_set) if question_set else None
        state = engine.start_experiment(engine.plan_experiment(config, items, parse_typed(my_questions)))
        report = _result(engine, state, ExperimentReport)
        return {**report.to_json(), "adapters": [a["adapter"] for a in report.adapters],
                "report": report.folder.name if report.folder else ""}


def described(**ranges: tuple) -> Callable:
    """Put each knob's declared range into the endpoint's docstring (``<name>`` -> ``lo..hi``), where the API page
    and the client libraries show it, before ``gr.api`` reads it."""
    def fill(fn: Callable) -> Callable:
        for name, (lo, hi) in ranges.items():
            fn.__doc__ = (fn.__doc__ or "").replace(f"<{name}>", f"{lo}..{hi}")
        return fn
    return fill


def hide_wiring(demo: gr.Blocks) -> None:
    """Hide every event but the API's from the API page and the client libraries: they are the tabs' wiring (the
    browser still calls them)."""
    for fn in demo.fns.values():
        if fn.api_name not in ENDPOINTS:
            fn.api_visibility = "private"
