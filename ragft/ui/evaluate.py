"""Evaluate tab: make or pick a question set, run the four variants on it, read the table, the chart and each
question's four answers, download the results. Programs run a saved set through ``/evaluate`` (`ui.api`).

A run is the engine's background job: the Run button starts it and returns; a timer shows the job as it goes, so
a reloaded page picks a running evaluation up again."""

from __future__ import annotations

import html
from dataclasses import replace

import gradio as gr
import pandas as pd
from gradio.blocks import Block

from ..engine import Engine
from ..evaluate import EvalConfig
from ..jobs import JobBusyError, JobState
from ..knobs import bounds
from ..questions import QAItem
from ..results import EvalResult
from ..variants import LABELS, VARIANTS
from . import messages as M
from .chat import GENERATE
from .errors import refuses
from .jobs import cancel, job_html, job_line, watch
from .uploads import checked
from .views import (
    ALL_BARS,
    PLACEHOLDER,
    chart_frame,
    detail_html,
    questions_frame,
    retrieval_line,
    summary_frame,
)

SET_COLUMNS = ["keep", "question", "answer", "choices", "source", "chunk"]


# --- question set <-> table ----------------------------------------------------------------------------------------
def items_frame(items: list[QAItem]) -> pd.DataFrame:
    rows = [[True, it.question, it.answer, " | ".join(it.choices), it.source,
             "" if it.chunk is None else str(it.chunk)] for it in items]
    return pd.DataFrame(rows, columns=SET_COLUMNS)


def items_from_frame(frame: pd.DataFrame | None, base: list[dict] | None) -> list[QAItem]:
    """The kept rows, with the user's edits applied to the items they came from (rows added by hand are new)."""
    if frame is None or len(frame) == 0:
        return []
    base_items = [QAItem(**b) for b in base or []]
    rows = [(row + ("",) * len(SET_COLUMNS))[: len(SET_COLUMNS)] for row in frame.itertuples(index=False)]
    # Each row's item: the one with its question (rows may have been sorted); rows whose question was edited take
    # the unclaimed items in order; rows beyond those were typed in by hand and start empty.
    shown = {str(r[1] or "").strip() for r in rows}
    unclaimed = iter([it for it in base_items if it.question not in shown])
    by_question = {it.question: it for it in base_items}
    items = []
    for keep, question, answer, choices, source, chunk in rows:
        question, answer = str(question or "").strip(), str(answer or "").strip()
        item = by_question.get(question) or next(unclaimed, None) or QAItem(question, answer)
        if keep in (False, "false", "False", 0) or not question or not answer:
            continue
        options = tuple(c.strip() for c in str(choices or "").split("|") if c.strip())
        chunk_text = str(chunk).strip()
        items.append(replace(
            item, question=question, answer=answer, choices=options, source=str(source or "").strip(),
            chunk=int(float(chunk_text)) if chunk_text not in ("", "nan", "None") else None,
        ))
    return items


def as_state(items: list[QAItem]) -> list[dict]:
    return [{**it.to_json(), "choices": tuple(it.choices)} for it in items]


def progress_html(state: JobState) -> str:
    """The evaluation job: set, status, current stage, steps done and time left."""
    return job_html(state, "eval-progress-body", html.escape(state.message), f"{state.step}/{state.total or '?'}")


def create_evaluate_tab(engine: Engine) -> dict:
    gr.Markdown(M.EVAL_INTRO)
    items_state = gr.State([])  # the set's items as dicts: fields the table does not show (context, fact, …)
    result_state = gr.State(None)  # the last run's results JSON, for the per-question view

    gr.Markdown("### 1. Question set")
    with gr.Row():
        with gr.Column():
            saved = gr.Dropdown(choices=engine.question_sets(), value=None, label="Saved question sets",
                                elem_id="eval-saved")
            upload = gr.File(label="…or upload a JSONL question set", file_types=[".jsonl"], elem_id="eval-upload")
        with gr.Column():
            method = gr.Radio(list(M.QGEN_METHODS), value=next(iter(M.QGEN_METHODS)), label="…or generate from the "
                              "stored documents")
            qformat = gr.Radio(list(M.QFORMATS), value=next(iter(M.QFORMATS)), label="Question format")
            with gr.Row():
                count = gr.Number(value=12, precision=0, label="How many", elem_id="eval-count", minimum=1,
                                  maximum=2000)
                gen_btn = gr.Button("Generate questions", elem_id="eval-generate")
    gr.Markdown(M.QSET_HELP)
    table = gr.Dataframe(
        items_frame([]), headers=SET_COLUMNS, datatype=["bool", "str", "str", "str", "str", "str"],
        interactive=True, wrap=True, max_height=360, label="Questions (edit cells; untick keep to drop)",
        elem_id="eval-set",
    )
    with gr.Row():
        set_name = gr.Textbox(label="Set name", placeholder="e.g. handbook-facts", elem_id="eval-set-name", scale=2)
        split = gr.Dropdown(list(M.SPLITS), value=next(iter(M.SPLITS)), label="Save as", scale=3)
        save_btn = gr.Button("Save set", scale=1, elem_id="eval-save")
    set_status = gr.Markdown(elem_id="eval-set-status")

    gr.Markdown("### 2. Run")
    with gr.Row():
        adapter = gr.Dropdown(choices=[M.NO_ADAPTER_CHOICE, *engine.adapters()], value=M.NO_ADAPTER_CHOICE,
                              label="Adapter for Fine-tuned and RAG + Fine-tuned", elem_id="eval-adapter", scale=2)
        variants = gr.CheckboxGroup([LABELS[v] for v in VARIANTS], value=[LABELS[v] for v in VARIANTS],
                                    label="Variants", elem_id="eval-variants", scale=3)
    d = EvalConfig(top_k=engine.settings.top_k)
    with gr.Accordion("Decoding and retrieval", open=False):
        with gr.Row():
            top_k = gr.Slider(*bounds(d, "top_k"), value=d.top_k, step=1, label="Retrieved chunks (k)")
            max_new = gr.Slider(8, 256, value=d.max_new_tokens, step=8, label="Max new tokens per answer")
            batch = gr.Slider(*bounds(d, "batch_size"), value=d.batch_size, step=1, label="Questions per batch",
                              elem_id="eval-batch")
            seed = gr.Number(value=d.seed, precision=0, label="Seed")
    overlap = gr.Markdown(elem_id="eval-overlap")
    with gr.Row():
        run_btn = gr.Button("Run evaluation", variant="primary", elem_id="eval-run")
        stop_btn = gr.Button("Stop", variant="stop", elem_id="eval-stop")
    progress = gr.HTML(f"<p>{M.EVAL_IDLE}</p>", elem_id="eval-progress")

    gr.Markdown("### 3. Results")
    summary = gr.Dataframe(label="Scores by variant", interactive=False, elem_id="eval-table")
    retrieval = gr.Markdown(elem_id="eval-retrieval")
    chart = gr.BarPlot(PLACEHOLDER, x="bar", y="score %", color="metric", y_lim=[0, 100], x_label_angle=-35,
                       sort=ALL_BARS, title="Scores by variant (%)", height=340, elem_id="eval-chart")
    gr.Markdown(M.METRICS_HELP)
    per_question = gr.Dataframe(label="Per question (click a row for details)", interactive=False, wrap=True,
                                max_height=400, elem_id="eval-questions")
    picked = gr.Number(value=1, precision=0, label="Question #", minimum=1, elem_id="eval-qnum")
    detail = gr.HTML(elem_id="eval-detail")
    files = gr.File(label="Download results (JSON, CSV)", file_count="multiple", interactive=False,
                    elem_id="eval-files")
    timer = gr.Timer(1.0)
    seen = gr.State(None)  # the job (identity, status, step) this page last showed, to skip unchanged ticks

    def adapter_arg(name: str | None) -> str | None:
        return None if not name or name == M.NO_ADAPTER_CHOICE else name

    def overlap_text(table_value, base, name) -> str:
        note = engine.training_overlap(items_from_frame(table_value, base), adapter_arg(name))[1]
        stale = engine.adapter_staleness(adapter_arg(name))
        return "  \n".join(x for x in (f"⚠️ {stale} (Chat tab: {M.RETRAIN})" if stale else "", note) if x)

    def show_set(items: list[QAItem], note: str, name_value=gr.skip()):
        return items_frame(items), as_state(items), note, name_value

    set_refused = refuses(lambda text, *_: (gr.skip(), gr.skip(), text, gr.skip()))

    @set_refused
    def pick_saved(name):
        if not name:
            return gr.skip(), gr.skip(), "", gr.skip()
        items = engine.load_question_set(name)
        return show_set(items, f"Loaded **{name}**: {len(items)} questions.", name)

    @set_refused
    def load_upload(path):
        if not path:
            return gr.skip(), gr.skip(), "", gr.skip()
        items = engine.read_questions(checked(path))
        stem = path.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        return show_set(items, f"Read {len(items)} questions from the upload. Save them to reuse them.", stem)

    @set_refused
    def generate(n, how, fmt):
        items, note = engine.generate_questions(int(n or 0), M.QGEN_METHODS[how], M.QFORMATS[fmt])
        return show_set(items, f"{note}. Review them, then save or run.", "generated")

    @refuses(lambda text, *_: (gr.skip(), text, gr.skip(), gr.skip()))
    def save(table_value, base, name, how):
        items = items_from_frame(table_value, base)
        if not items:
            gr.Warning(M.NO_QUESTIONS)
            return gr.skip(), f"❌ {M.NO_QUESTIONS}", gr.skip(), gr.skip()
        if not (name or "").strip():
            gr.Warning(M.NEED_SET_NAME)
            return gr.skip(), f"❌ {M.NEED_SET_NAME}", gr.skip(), gr.skip()
        names = engine.save_question_set(name.strip(), items, M.SPLITS[how])
        saved_sets = {n: engine.load_question_set(n) for n in names}  # each file read back once
        shown = names[-1]  # the test part, ready to run
        loaded = saved_sets[shown]
        sizes = ", ".join(f"**{n}** ({len(got)} questions)" for n, got in saved_sets.items())
        text = f"Saved {sizes}."
        if len(names) == 2:
            text += (f" Train an adapter on **{names[0]}** in the Fine-tune tab (question/answer or RAFT data), "
                     f"then evaluate it here on **{names[1]}** (loaded below).")
        return gr.update(choices=engine.question_sets(), value=shown), text, items_frame(loaded), as_state(loaded)

    # EvalConfig field -> its widget; the run handler gets {component: value}
    config_knobs = {"top_k": top_k, "max_new_tokens": max_new, "batch_size": batch, "seed": seed}
    run_inputs: set[Block] = {table, items_state, set_name, adapter, variants, *config_knobs.values()}

    @refuses(lambda text, _: f"<p>{text}</p>")
    def run(values: dict):
        """Start the evaluation job and return; the timer shows it from here on."""
        items = items_from_frame(values[table], values[items_state])
        if not items:
            gr.Warning(M.NO_QUESTIONS)
            return f"<p>❌ {M.NO_QUESTIONS}</p>"
        picked = values[variants] or []
        config = EvalConfig(variants=tuple(v for v in VARIANTS if LABELS[v] in picked),
                            **{field: int(values[c] or 0) for field, c in config_knobs.items()})
        try:
            state = engine.start_evaluation(items, adapter_arg(values[adapter]), config,
                                            (values[set_name] or "").strip())
        except JobBusyError as exc:  # someone else's job: say so, change nothing (the timer shows it)
            gr.Warning(str(exc))
            return gr.skip()
        return progress_html(state)

    def stop():
        cancel(engine, "evaluate", M.EVAL_STOP_SENT, M.NOTHING_TO_STOP)

    def poll(last):
        """Show the newest evaluation job when it has moved on since this page last looked (on a fresh page:
        at once, so a reload finds the running job); other jobs only as a busy line."""
        state, other, key = watch(engine, "evaluate")
        mine = key[0]
        skip = (gr.skip(),) * 9
        if key == last:
            return gr.skip(), *skip, last
        line = job_line(state, other, progress_html, ("eval-busy", "an evaluation"), M.EVAL_IDLE)
        result = state.result if state else None
        if state is None or not isinstance(result, EvalResult) or (last is not None and last[0] == mine):
            return line, *skip, key  # nothing (new) to show but the line
        finished = not state.active
        rows, data = result.summary(), result.to_json()
        return (
            line, summary_frame(rows), retrieval_line(result.retrieval), chart_frame(rows), questions_frame(data),
            result.overlap_note,
            [str(f) for f in result.files] if finished else gr.skip(), data,
            detail_html(data, 1) if finished else gr.skip(), 1 if finished else gr.skip(), key,
        )

    def pick_row(evt: gr.SelectData):
        return evt.index[0] + 1

    def refresh_adapters(current):
        names = [M.NO_ADAPTER_CHOICE, *engine.adapters()]
        return gr.update(choices=names, value=current if current in names else M.NO_ADAPTER_CHOICE)

    set_outputs = [table, items_state, set_status, set_name]
    saved.input(pick_saved, saved, set_outputs)
    upload.upload(load_upload, upload, set_outputs)
    gen_btn.click(generate, [count, method, qformat], set_outputs, concurrency_id=GENERATE)  # may write with the model
    save_btn.click(save, [table, items_state, set_name, split], [saved, set_status, table, items_state])
    for trigger in (table.change, adapter.change):
        trigger(overlap_text, [table, items_state, adapter], overlap, show_progress="hidden")
    run_btn.click(run, run_inputs, progress)
    stop_btn.click(stop, None, None, concurrency_limit=None)  # queued (for its message), never waiting
    timer.tick(poll, seen, [progress, summary, retrieval, chart, per_question, overlap, files, result_state, detail,
                            picked, seen], queue=False, show_progress="hidden")
    per_question.select(pick_row, None, picked)
    picked.change(detail_html, [result_state, picked], detail, show_progress="hidden")

    return {"adapter": adapter, "refresh": refresh_adapters, "saved": saved,
            "refresh_sets": lambda: gr.update(choices=engine.question_sets())}
