"""Fine-tune tab: pick data, set LoRA knobs, train in the background, watch progress and loss, cancel, manage
saved adapters. The run lives on the engine, so a reloaded page picks it up again."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from ..engine import Engine
from ..finetune import DataSpec, TrainConfig
from ..jobs import JobState
from ..knobs import bounds
from ..knobs import default as default_of
from . import messages as M
from .errors import refuses
from .jobs import busy_html, job_html, watch
from .uploads import checked

ALL_MODULES = list(TrainConfig.target_modules)


def loss_frame(losses) -> pd.DataFrame:
    # Typed columns even when empty: the plot fixes its axis types from the first value it gets.
    rows = list(losses)
    return pd.DataFrame({"step": pd.Series([s for s, _ in rows], dtype="int64"),
                         "loss": pd.Series([v for _, v in rows], dtype="float64")})


def progress_html(state: JobState) -> str:
    if state.status == "idle":
        return f"<p>{M.IDLE}</p>"
    note = state.stage if state.active and state.status != "preparing" and state.stage else state.message
    pct = 100 * state.step / state.total if state.total else 0
    line = (f"step {state.step}/{state.total or '?'} ({pct:.0f}%)"
            + (f" · {state.tokens_per_s:.0f} tokens/s" if state.tokens_per_s else "")
            + (f" · loss {state.losses[-1][1]:.4f}" if state.losses else ""))
    return job_html(state, "train-progress", line, note)


def status_html(engine: Engine) -> str:
    """The last training run; while another kind of job runs, a line naming it (training waits for it)."""
    state, other, _ = watch(engine, "train")
    return busy_html("train-busy", other, "training") if other else progress_html(state or JobState())


def as_field(field: str, value):
    """A widget's value as the `TrainConfig` field's type (an empty Number is 0, no modules an empty tuple)."""
    kind = type(default_of(TrainConfig, field))
    return tuple(value or ()) if kind is tuple else kind(value or 0)


def adapter_info(engine: Engine, name: str | None) -> str:
    if not name:
        return ""
    run = engine.adapter_run(name)
    if not run:
        return f"**{name}** (made outside ragft: no run record)"
    final = "n/a" if run.final_loss is None else f"{run.final_loss:.4f}"
    data = run.data
    return (
        f"**{name}** — {run.status} after {run.steps}/{run.planned_steps} steps in {run.seconds} s; "
        f"final loss {final}; data: {data.get('source', '?')} {data.get('file') or ''} "
        f"({data.get('examples', '?')} examples); saved {run.saved}"
    ) + (f"  \n⚠️ {stale}" if (stale := engine.adapter_staleness(name)) else "")


def create_finetune_tab(engine: Engine) -> dict:
    gr.Markdown(M.FINETUNE_INTRO)
    d = TrainConfig()

    def slider(field: str, step: float, label: str, hi: float | None = None):
        """A slider over the knob's declared range (``hi`` narrows it where the rest is never useful)."""
        lo, top = bounds(TrainConfig, field)
        return gr.Slider(lo, hi or top, value=default_of(TrainConfig, field), step=step, label=label)
    with gr.Row():
        with gr.Column(scale=3):
            source = gr.Radio(list(M.DATA_SOURCES), value=next(iter(M.DATA_SOURCES)), label="Training data",
                              elem_id="train-source")
            gr.Markdown(M.DATA_HELP)
            qa_file = gr.File(label="Question/answer file (.jsonl)", elem_id="qa-file")
            qa_set = gr.Dropdown(choices=engine.question_sets(), value=None, elem_id="qa-set",
                                 label="…or a question set saved in the Evaluate tab (e.g. NAME-train)")
        with gr.Column(scale=2):
            name = gr.Textbox(value="adapter", label="Adapter name (a version number is added)", elem_id="train-name")
            max_steps = gr.Number(value=30, precision=0, label="Max steps (0 = use epochs)", elem_id="train-steps")
            epochs = gr.Number(value=d.epochs, label="Epochs")
            lr = gr.Number(value=d.learning_rate, label="Learning rate")
    with gr.Accordion("LoRA and batch settings", open=False):
        with gr.Row():
            rank = slider("rank", 1, "Rank r")
            alpha = slider("alpha", 1, "Alpha")
            dropout = slider("dropout", 0.01, "Dropout", hi=0.5)
        modules = gr.CheckboxGroup(ALL_MODULES, value=ALL_MODULES, label="Target modules")
        with gr.Row():
            seq_len = slider("max_seq_len", 32, "Max sequence length (tokens)")
            batch = slider("batch_size", 1, "Batch size")
            distractors = slider("raft_distractors", 1, "RAFT distractor chunks")
            no_gold = slider("raft_no_gold", 0.05, "RAFT share without gold chunk")
    with gr.Row():
        preview_btn = gr.Button("Preview data")
        train_btn = gr.Button("Train", variant="primary", elem_id="train")
        cancel_btn = gr.Button("Cancel", variant="stop", elem_id="cancel-train")
    summary = gr.Markdown(elem_id="train-summary")
    examples = gr.Dataframe(label="First examples", interactive=False, wrap=True, visible=False)
    progress = gr.HTML(status_html(engine), elem_id="train-status")
    plot = gr.LinePlot(loss_frame([]), x="step", y="loss", title="Training loss", height=280, elem_id="loss-plot")
    gr.Markdown("#### Saved adapters")
    with gr.Row():
        saved = gr.Dropdown(choices=engine.adapters(), value=None, label="Adapter", scale=3, elem_id="saved-adapter")
        zip_btn = gr.Button("Zip for download", scale=1)
        del_btn = gr.Button("Delete adapter", variant="stop", scale=1)
    saved_info = gr.Markdown()
    download = gr.File(label="Download", visible=False)
    timer = gr.Timer(1.0)
    seen = gr.State(None)  # (status, step, adapters) last shown, to skip unchanged ticks

    data = {"source": source, "qa_file": qa_file, "qa_set": qa_set}
    config_knobs = {"max_steps": max_steps, "epochs": epochs, "learning_rate": lr, "rank": rank, "alpha": alpha,
                    "dropout": dropout, "target_modules": modules, "max_seq_len": seq_len, "batch_size": batch,
                    "raft_distractors": distractors, "raft_no_gold": no_gold}
    knobs = {*data.values(), *config_knobs.values()}  # handlers get {component: value}

    def spec_and_config(values: dict) -> tuple[DataSpec, TrainConfig]:
        qa_path = checked(values[qa_file]) if values[qa_file] else None
        spec = engine.data_spec(M.DATA_SOURCES[values[source]], qa_path, values[qa_set])
        return spec, TrainConfig(**{field: as_field(field, values[c]) for field, c in config_knobs.items()})

    @refuses(lambda text, _: (text, gr.update(visible=False)))
    def show_preview(values: dict):
        rows, counts = engine.preview_training(*spec_and_config(values))
        text = (f"{counts['examples']} examples · {counts['tokens']} tokens · "
                f"{counts['trained_tokens']} tokens carry loss")
        return text, gr.update(value=pd.DataFrame(rows), visible=True)

    @refuses(lambda text, _: text)
    def train(values: dict):
        return M.TRAIN_STARTED.format(name=engine.start_training(*spec_and_config(values), values[name]))

    def cancel():
        return M.CANCEL_SENT if engine.jobs.cancel("train") else M.NOTHING_TO_CANCEL

    def poll(last, current):
        state, _, (mine, other) = watch(engine, "train")
        adapters = engine.adapters()
        key = (mine, other, tuple(adapters))
        if key == last:
            return gr.skip(), gr.skip(), gr.skip(), last
        keep = current if current in adapters else (adapters[0] if adapters else None)  # newest first
        losses = state.losses if state else []
        return (status_html(engine), loss_frame(losses) if last is None or last[0] != mine else gr.skip(),
                gr.update(choices=adapters, value=keep) if last is None or last[-1] != key[-1] else gr.skip(), key)

    @refuses(lambda text, _: gr.update(visible=False))
    def make_zip(nm):
        if not nm:
            gr.Warning(M.PICK_ADAPTER)
            return gr.update(visible=False)
        return gr.update(value=str(engine.zip_adapter(nm)), visible=True)

    @refuses(lambda text, _: (gr.skip(), text))
    def delete(nm):
        if not nm:
            gr.Warning(M.PICK_ADAPTER)
            return gr.skip(), ""
        engine.delete_adapter(nm)
        return gr.update(choices=engine.adapters(), value=None), M.ADAPTER_DELETED.format(name=nm)

    preview_btn.click(show_preview, knobs, [summary, examples])
    train_btn.click(train, {name, *knobs}, summary, concurrency_id="train-control")
    cancel_btn.click(cancel, None, summary, queue=False)
    timer.tick(poll, [seen, saved], [progress, plot, saved, seen], queue=False, show_progress="hidden")
    def on_pick(nm):
        # While idle, the plot shows the picked adapter's recorded loss curve.
        losses = run.losses if (run := engine.adapter_run(nm)) else []
        training = engine.jobs.state.active and engine.jobs.state.kind == "train"
        curve = gr.skip() if training or not losses else loss_frame(losses)
        return adapter_info(engine, nm), gr.update(visible=False), curve

    saved.change(on_pick, saved, [saved_info, download, plot])
    zip_btn.click(make_zip, saved, download)
    del_btn.click(delete, saved, [saved, saved_info])
    return {"refresh_sets": lambda current: gr.update(choices=engine.question_sets(), value=current), "sets": qa_set}
