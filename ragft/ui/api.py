"""The app's API for programs (`gradio_client`, the "Use via API" page): one endpoint per user action, with named
parameters, JSON results and the caller's workspace. The tabs' own events are UI wiring and hidden (`hide_wiring`).

    from gradio_client import Client, handle_file
    app = Client("http://127.0.0.1:7860")
    app.predict([handle_file("notes.md")], api_name="/ingest")
    app.predict("Who keeps the light?", api_name="/ask")["RAG"]["answer"]
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
from gradio import FileData

from ..chat import LABELS, MODE_VARIANTS, VARIANTS
from ..engine import Engine
from ..errors import RagftError
from ..evaluate import EvalConfig
from ..experiment import ExperimentConfig
from ..finetune import DataSpec, TrainConfig
from ..generation import DecodeSettings

ENDPOINTS = ("ingest", "documents", "delete_document", "search", "ask", "adapters", "train", "job_status", "cancel",
             "evaluate", "experiment")


def _hit(h) -> dict:
    return {"source": h.source, "chunk": h.chunk, "score": round(h.score, 4), "text": h.text}


def _wait(engine: Engine, state) -> None:
    while state.active:
        engine.jobs.wait(1.0)
    if state.status == "failed":
        raise gr.Error(state.message)


def add_api(engine: Engine) -> None:
    """Declare the endpoints (inside the app's Blocks); ``engine`` resolves to the caller's workspace."""

    @gr.api(api_name="ingest")
    def ingest(files: list[FileData]) -> list[dict]:
        """Add files (txt, md, pdf, docx, html) to the document store. One report per file: name, ok, status
        (added, replaced, unchanged, duplicate, refused, failed), chunks and a message; a refused file changes
        nothing."""
        paths = [Path(f if isinstance(f, str) else f["path"]) for f in files]
        return [vars(r) for r in engine.ingest([(p, p.name) for p in paths])]

    @gr.api(api_name="documents")
    def documents() -> list[dict]:
        """The stored documents: name, chunks, chars, size_bytes, added."""
        return [{"name": d.name, "chunks": d.chunks, "chars": d.chars, "size_bytes": d.size_bytes, "added": d.added}
                for d in engine.documents()]

    @gr.api(api_name="delete_document")
    def delete_document(name: str) -> int:
        """Delete a stored document by name; returns the number of chunks removed (an unknown name is an error)."""
        try:
            return engine.delete_document(name)
        except RagftError as exc:
            raise gr.Error(str(exc)) from None

    @gr.api(api_name="search")
    def search(query: str, k: int = 3) -> list[dict]:
        """The ``k`` stored chunks closest to ``query``: source, chunk, score (cosine), text."""
        if not query.strip() or not 1 <= k <= 20:
            raise gr.Error("give a query, and k in 1..20")
        return [_hit(h) for h in engine.search(query, k)]

    @gr.api(api_name="ask")
    def ask(question: str, mode: str = "all", adapter: str = "", max_new_tokens: int = 0, top_k: int = 0) -> dict:
        """Answer ``question`` with the variants of ``mode`` (plain, rag, ft, rag+ft or all) and return, per
        variant label, {"answer", "sources"} (sources for the retrieval variants) or {"notice"} when a variant could
        not run (no adapter). 0 for max_new_tokens / top_k means the app's settings."""
        s = engine.settings
        try:
            decode = DecodeSettings(max_new_tokens or s.max_new_tokens, s.temperature)
            result = None
            for result in engine.ask(question, mode, adapter or None, decode, top_k or None):
                pass
        except RagftError as exc:
            raise gr.Error(str(exc)) from None
        out = {}
        for v in (v for v in VARIANTS if v in MODE_VARIANTS.get(mode, VARIANTS)):
            if v in result.notices:
                out[LABELS[v]] = {"notice": result.notices[v]}
            else:
                out[LABELS[v]] = {"answer": result.answers.get(v, ""),
                                  "sources": [_hit(h) for h in result.sources.get(v, [])]}
        return out

    @gr.api(api_name="adapters")
    def adapters() -> list[str]:
        """The saved adapters, newest first."""
        return engine.adapters()

    @gr.api(api_name="train")
    def train(data: str = "docs", question_set: str = "", name: str = "adapter", steps: int = 0, rank: int = 16,
              learning_rate: float = 1e-3, batch_size: int = 4) -> str:
        """Start training a LoRA adapter in the background on ``data``: docs (the stored documents), qa or raft
        (a saved ``question_set``). Returns the new adapter's versioned name; follow it with /job_status."""
        try:
            path = engine.question_set_path(question_set) if data in ("qa", "raft") else None
            config = TrainConfig(rank=rank, alpha=2 * rank, learning_rate=learning_rate, max_steps=steps,
                                 batch_size=batch_size)
            return engine.start_training(DataSpec(data, path), config, name)
        except RagftError as exc:
            raise gr.Error(str(exc)) from None

    @gr.api(api_name="job_status")
    def job_status() -> dict:
        """The background job (training, evaluation or experiment), running or last: kind, name, status, step,
        total, eta_s, message, losses."""
        s = engine.jobs.state
        return {"kind": s.kind, "name": s.name, "status": s.status, "step": s.step, "total": s.total,
                "eta_s": s.eta_s, "message": s.message, "losses": [list(x) for x in s.losses]}

    @gr.api(api_name="cancel")
    def cancel() -> bool:
        """Ask the running job to stop (training keeps what it learned); False when nothing runs."""
        return engine.jobs.cancel()

    @gr.api(api_name="evaluate")
    def evaluate(question_set: str, adapter: str = "", variants: str = "plain,rag,ft,rag+ft") -> dict:
        """Run a saved question set on the chosen variants (comma-separated) to the end and return the results:
        scores per variant with intervals, and every answer. Runs as the workspace's background job."""
        try:
            config = EvalConfig(variants=tuple(v.strip() for v in variants.split(",") if v.strip()),
                                top_k=engine.settings.top_k).validate()
            state = engine.start_evaluation(engine.load_question_set(question_set), adapter or None, config,
                                            question_set)
        except RagftError as exc:
            raise gr.Error(str(exc)) from None
        _wait(engine, state)
        return state.result.to_json()

    @gr.api(api_name="experiment")
    def experiment(preset: str = "quick", questions: int = 0, split: str = "", train: str = "qa,raft",
                   steps: int = 0, question_set: str = "", name: str = "experiment") -> dict:
        """Run an experiment to the end and return its report: verdict, per-variant scores with 95% intervals,
        paired tests, causes of misses, costs and the adapters' names. ``question_set``: a saved set (else questions
        are made from the documents)."""
        try:
            config = ExperimentConfig(name=name, preset=preset, questions=int(questions), split=split,
                                      train=tuple(t.strip() for t in train.split(",") if t.strip()), steps=int(steps),
                                      top_k=engine.settings.top_k, method=engine.question_method)
            items = engine.load_question_set(question_set) if question_set else None
            state = engine.start_experiment(engine.plan_experiment(config, items))
        except RagftError as exc:
            raise gr.Error(str(exc)) from None
        _wait(engine, state)
        report = state.result
        return {**report.to_json(), "adapters": [a["adapter"] for a in report.adapters],
                "folder": str(report.folder)}


def hide_wiring(demo: gr.Blocks) -> None:
    """Hide every event but the API's from the API page and the client libraries: they are the tabs' wiring (the
    browser still calls them)."""
    for fn in demo.fns.values():
        if fn.api_name not in ENDPOINTS:
            fn.api_visibility = "private"
