"""Documents tab: upload, list, inspect, delete, search."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd

from ..engine import Engine
from ..knobs import from_request
from ..requests import SearchRequest
from . import messages as M
from .errors import refuses
from .uploads import checked

DOC_COLUMNS = ["document", "chunks", "characters", "size (KB)", "added"]
HIT_COLUMNS = ["score", "document", "chunk", "text"]


def docs_table(engine: Engine) -> pd.DataFrame:
    rows = [[d.name, d.chunks, d.chars, round(d.size_bytes / 1024, 1), d.added] for d in engine.documents()]
    return pd.DataFrame(rows, columns=DOC_COLUMNS)


def hits_table(hits) -> pd.DataFrame:
    return pd.DataFrame([[h.score, h.source, h.chunk, h.text] for h in hits], columns=HIT_COLUMNS)


def create_documents_tab(engine: Engine) -> dict:
    gr.Markdown(M.INTRO)
    with gr.Row():
        with gr.Column(scale=2):
            files = gr.File(label=M.UPLOAD_LABEL, file_count="multiple", elem_id="upload-files")
            add_btn = gr.Button("Add to store", variant="primary", elem_id="add-docs")
        ingest_log = gr.Markdown(elem_id="ingest-log")
    table = gr.Dataframe(label="Stored documents", headers=DOC_COLUMNS, interactive=False, elem_id="docs-table")
    with gr.Row():
        picked = gr.Dropdown(label="Document", choices=[], elem_id="doc-picked", scale=3)
        show_btn = gr.Button("Show chunks", scale=1)
        delete_btn = gr.Button("Delete", variant="stop", scale=1)
    doc_status = gr.Markdown()
    chunks_view = gr.Dataframe(label="Chunks", headers=HIT_COLUMNS, interactive=False, wrap=True, visible=False)
    gr.Markdown(f"#### Search the store\n{M.RETRIEVAL[engine.settings.retrieval]}", elem_id="search-how")
    with gr.Row():
        query = gr.Textbox(label="Query", scale=4, elem_id="search-query")
        k = gr.Slider(1, 20, value=engine.settings.top_k, step=1, label="top k", scale=1)
    hits = gr.Dataframe(label="Top chunks", headers=HIT_COLUMNS, interactive=False, wrap=True, elem_id="search-hits")

    def refresh(keep: str | None = None):
        df = docs_table(engine)
        names = df["document"].tolist()
        return df, gr.update(choices=names, value=keep if keep in names else None)

    @refuses(lambda text, *_: (text, *refresh()))
    def add(paths, progress=gr.Progress()):
        if not paths:
            gr.Warning(M.NO_FILES)
            return (M.NO_FILES, *refresh())
        files_in = [(checked(p), Path(p).name) for p in paths]
        reports = engine.ingest(files_in, progress=lambda frac, what: progress(frac, desc=what))
        lines = [("✅ " if r.ok else "❌ ") + r.message for r in reports]
        failed = [r for r in reports if not r.ok]
        if failed:
            gr.Warning(f"{len(failed)} of {len(reports)} file(s) not added — see the list.")
        return ("\n".join(f"- {line}" for line in lines), *refresh())

    @refuses(lambda text, _: (text, gr.update(visible=False)))
    def show(name):
        if not name:
            return M.PICK_DOC, gr.update(visible=False)
        chunks = engine.document_chunks(name)
        return f"**{name}**: {len(chunks)} chunks", gr.update(value=hits_table(chunks), visible=True)

    @refuses(lambda text, _: (text, gr.update(visible=False), *refresh()))
    def delete(name):
        if not name:
            return (M.PICK_DOC, gr.update(visible=False), *refresh())
        n = engine.delete_document(name)
        return (M.DELETED.format(name=name, n=n), gr.update(visible=False), *refresh())

    @refuses(lambda text, *_: hits_table([]))
    def search(q, k):
        if not q.strip():
            gr.Warning(M.SEARCH_EMPTY)
            return hits_table([])
        request = from_request(SearchRequest, query=q, k=k)
        return hits_table(engine.search(request.query, request.k))

    add_btn.click(add, files, [ingest_log, table, picked]).then(lambda: None, None, files)
    show_btn.click(show, picked, [doc_status, chunks_view])
    delete_btn.click(delete, picked, [doc_status, chunks_view, table, picked])
    query.submit(search, [query, k], hits)
    def notice() -> str:
        """Said once the page loads: ingests a killed process left half-done, undone when the store opened."""
        names = engine.store.recovered
        return M.INTERRUPTED_INGEST.format(names=", ".join(names)) if names else ""

    return {"refresh": refresh, "table": table, "picked": picked, "notice": notice, "ingest_log": ingest_log}
