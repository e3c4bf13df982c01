"""Experiment tab: "RAG, fine-tuning, or both?" in one run — pick documents and a preset, see the plan and its time
estimate, press Run, watch the stages, read the verdict, the causes and the costs; reopen past reports.

The run is the engine's background job: a timer shows it, so a reloaded page picks it up again. Everything shown
comes from one report dict (``ExperimentReport.to_json()``), live or reopened from disk.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

import gradio as gr
import pandas as pd
from gradio.blocks import Block

from ..engine import Engine
from ..errors import RagftError
from ..experiment import (
    PRESETS,
    RECIPES,
    ExperimentConfig,
    ExperimentError,
    format_duration,
)
from ..experiment.pages import chart_svg, parts_of
from ..experiment.report import ExperimentReport
from ..jobs import JobState
from ..knobs import bounds
from ..questions import SPLIT_MODES, QAItem, parse_typed
from . import messages as M
from .chat import GENERATE as MODEL_GROUP
from .errors import refuses, user_message
from .finetune import loss_frame
from .jobs import cancel, job_html, job_line, watch
from .uploads import checked
from .views import answer_card, cards_row

GENERATE = "(generate from the documents)"


def progress_html(state: JobState) -> str:
    return job_html(state, "exp-progress-body", html.escape(state.stage), state.message)


def verdict_md(data: dict) -> str:
    support = f"{data['support']}\n\n" if data.get("support") else ""
    return (f"### {data['headline']}\n\n{support}**{data['recommendation']}**\n\n"
            f"{data['test_questions']} test questions, {data['train_questions']} training questions · split "
            f"{data['config']['split']} · preset {data['config']['preset']} · {format_duration(data['seconds'])}"
            + (" · **cancelled**" if data["cancelled"] else ""))


def summary_frame(data: dict) -> pd.DataFrame:
    def pct(v):
        return None if v is None else round(100 * v, 1)

    return pd.DataFrame([{
        "variant": r["variant"], "correct [95% CI]": r["accuracy_ci"],
        **{f"{label} [95% CI]": r[key] for label, key in parts_of(data).items()},
        "exact match %": pct(r["exact_match"]),
        "token F1 %": pct(r["token_f1"]), "answer in chunks %": pct(r["answer_in_chunks"]),
        "unsupported sentences %": pct(r.get("unsupported_sentences")),
        "recall@k %": pct(r["recall"]), "s/answer": None if r["s_per_answer"] is None else round(r["s_per_answer"], 2),
        "why wrong": ", ".join(f"{c} {n}" for c, n in r["causes"].items()),
    } for r in data["summary"]])


def comparisons_md(data: dict) -> str:
    lines = [f"- {c['sentence']} ({c['only_a']} questions only {c['a']} got right, {c['only_b']} only {c['b']})"
             for c in data["comparisons"]]
    checks = [f"- {k} on the wordings it was trained on: {v['accuracy_ci']} of {v['n']} facts"
              for k, v in data["trained_wordings"].items()]
    learned = [f"- {v['sentence']}" for v in data.get("learned", {}).values()]
    return "\n".join(["**Paired comparisons** (same questions; exact McNemar test):", *lines, "",
                      "**Memorisation check:**", *checks, *learned])


def costs_frame(data: dict) -> pd.DataFrame:
    per_answer = data["costs"]["s_per_answer"]
    return pd.DataFrame([{
        "adapter": a["adapter"], "recipe": a["recipe"], "steps": a["steps"],
        "training time": format_duration(a["train_seconds"]), "tokens trained": a["tokens_seen"],
        "adapter size MB": round(a["size_bytes"] / 1e6, 1),
        "s/answer (fine-tuned)": next((round(v, 2) for k, v in per_answer.items()
                                       if v is not None and k.startswith("Fine-tuned") and
                                       (a["recipe"] in k or len(data["costs"]["adapters"]) == 1)), None),
    } for a in data["costs"]["adapters"]])


def questions_frame(data: dict) -> pd.DataFrame:
    labels = [r["variant"] for r in data["summary"]]
    rows = []
    for n, q in enumerate(data["questions"], 1):
        row = {"#": n, "question": q["question"], "expected": q["answer"]}
        for label in labels:
            a = q["answers"][label]
            row[label] = "✓" if a["correct"] else f"✗ {a['cause']}"
        rows.append(row)
    return pd.DataFrame(rows)


def detail_html(data: dict | None, number) -> str:
    if not data or not data["questions"]:
        return ""
    n = min(max(int(number or 1), 1), len(data["questions"]))
    q, esc = data["questions"][n - 1], html.escape
    cards = [answer_card(label, a, "✓ correct" if a["correct"] else f"✗ {esc(a['cause'])}")
             for label, a in q["answers"].items()]
    return (f"<div id='exp-detail-body'><h4>Question {n}</h4><p>{esc(q['question'])}</p><p><b>Expected:</b> "
            f"{esc(q['answer'])}</p>{cards_row(cards)}</div>")


def report_outputs(data: dict, files: list[str], stale: Sequence[str] = ()) -> tuple:
    """Everything the results area shows for one report; ``stale`` lines warn that its adapters are out of date."""
    notes = "".join(f"\n\n⚠️ {line}" for line in stale if line)
    return (verdict_md(data) + notes, chart_svg(data["summary"]), summary_frame(data), comparisons_md(data),
            costs_frame(data), questions_frame(data), detail_html(data, 1), files, data)


def create_experiment_tab(engine: Engine) -> dict:
    gr.Markdown(M.EXPERIMENT_INTRO)
    with gr.Row():
        with gr.Column(scale=3):
            documents = gr.Dropdown(choices=[], value=[], multiselect=True, elem_id="exp-docs",
                                    label="Documents to ask about (none picked = all stored)")
            preset = gr.Radio(list(PRESETS), value="quick", label="Preset", info=M.PRESET_HELP, elem_id="exp-preset")
        with gr.Column(scale=2):
            qset = gr.Dropdown(choices=[GENERATE, *engine.question_sets()], value=GENERATE, elem_id="exp-set",
                               label="Questions")
            upload = gr.File(label="…or upload a JSONL question set", file_types=[".jsonl"], elem_id="exp-upload",
                             height=90)
            name = gr.Textbox(value="experiment", label="Name (prefix of its adapters and report)",
                              elem_id="exp-name")
    own = gr.Textbox(label=M.OWN_QUESTIONS, placeholder=M.OWN_QUESTIONS_EXAMPLE, lines=3, max_lines=12,
                     elem_id="exp-own")
    with gr.Accordion("Questions, split and training", open=False):
        with gr.Row():
            n_questions = gr.Number(value=0, precision=0, minimum=bounds(ExperimentConfig, "questions")[0],
                                    maximum=bounds(ExperimentConfig, "questions")[1], elem_id="exp-questions",
                                    label="Facts to train on (0 = every fact found, up to the preset's cap)")
            split = gr.Dropdown(["", *SPLIT_MODES], value="", label="Split ('' = preset's: paraphrase)")
            recipes = gr.CheckboxGroup(list(RECIPES), value=["qa", "raft"], label="Adapters to train",
                                       elem_id="exp-recipes")
            steps = gr.Number(value=0, precision=0, minimum=bounds(ExperimentConfig, "steps")[0],
                              maximum=bounds(ExperimentConfig, "steps")[1], elem_id="exp-steps",
                              label="Steps per adapter (0 = preset's epochs)")
            method = gr.Radio(list(M.EXP_METHODS), value=next(k for k, v in M.EXP_METHODS.items()
                                                              if v == engine.question_method),
                              label="Generated questions")
    plan_md = gr.Markdown(elem_id="exp-plan")
    with gr.Row():
        estimate_btn = gr.Button("Estimate time", elem_id="exp-estimate")
        run_btn = gr.Button("Run experiment", variant="primary", elem_id="exp-run")
        cancel_btn = gr.Button("Cancel", variant="stop", elem_id="exp-cancel")
    progress = gr.HTML(f"<p>{M.EXP_IDLE}</p>", elem_id="exp-progress")
    losses = gr.LinePlot(loss_frame([]), x="step", y="loss", title="Training loss (current adapter)", height=220,
                         elem_id="exp-loss")

    gr.Markdown("### Verdict")
    with gr.Row():
        past = gr.Dropdown(choices=[], value=None, label="Reopen a saved experiment", elem_id="exp-past", scale=3)
        files = gr.File(label="Report (HTML, JSON, CSV)", file_count="multiple", interactive=False,
                        elem_id="exp-files", scale=2)
    verdict = gr.Markdown(elem_id="exp-verdict")
    chart = gr.HTML(elem_id="exp-chart")
    # headers before a run, not Gradio's "1 2 3": the columns the frames below fill
    summary = gr.Dataframe(label="Scores on the test questions", interactive=False, wrap=True, elem_id="exp-table",
                           headers=["variant", "correct [95% CI]", "exact match %", "token F1 %",
                                    "answer in chunks %", "recall@k %", "s/answer", "why wrong"])
    comparisons = gr.Markdown(elem_id="exp-comparisons")
    gr.Markdown(M.CAUSES_HELP)
    costs = gr.Dataframe(label="Costs", interactive=False, elem_id="exp-costs",
                         headers=["adapter", "recipe", "steps", "training time", "tokens trained", "adapter size MB",
                                  "s/answer (fine-tuned)"])
    per_question = gr.Dataframe(label="Per question (click a row for its answers)", interactive=False, wrap=True,
                                max_height=420, elem_id="exp-questions-table",
                                headers=["#", "question", "expected", "Plain", "RAG", "Fine-tuned",
                                         "RAG + Fine-tuned"])
    picked = gr.Number(value=1, precision=0, minimum=1, label="Question #", elem_id="exp-qnum")
    detail = gr.HTML(elem_id="exp-detail")
    report_state = gr.State(None)
    seen = gr.State(None)
    timer = gr.Timer(1.0)
    results = [verdict, chart, summary, comparisons, costs, per_question, detail, files, report_state]

    fields = {"documents": documents, "preset": preset, "questions": n_questions, "split": split, "train": recipes,
              "steps": steps, "name": name, "method": method}  # ExperimentConfig field -> its widget
    knobs: set[Block] = {*fields.values(), qset, upload, own}  # handlers get {component: value}

    def plan_of(values: dict):
        v = {f: values[c] for f, c in fields.items()}
        if not v["train"]:
            raise ExperimentError(M.NEED_RECIPE)
        config = ExperimentConfig(
            name=(v["name"] or "").strip() or "experiment", preset=v["preset"], questions=int(v["questions"] or 0),
            split=v["split"] or "", train=tuple(v["train"]), steps=int(v["steps"] or 0),
            documents=tuple(v["documents"] or ()), top_k=engine.settings.top_k,
            method=M.EXP_METHODS.get(v["method"], "cloze"),
        )
        items: list[QAItem] | None
        if values[upload]:
            items = engine.read_questions(checked(values[upload]))
        else:
            items = engine.load_question_set(values[qset]) if values[qset] not in (None, GENERATE) else None
        return engine.plan_experiment(config, items, parse_typed(values[own] or ""))

    def estimate(values: dict):
        try:
            return plan_of(values).describe().replace("\n", "  \n")
        except RagftError as exc:  # the estimate is a preview: the reason in its place, no toast
            return f"❌ {user_message(exc)}"

    @refuses(lambda text, *_: (gr.skip(), text))
    def run(values: dict):
        plan = plan_of(values)
        state = engine.start_experiment(plan)
        return progress_html(state), plan.describe().replace("\n", "  \n")

    def stop():
        cancel(engine, "experiment", M.EXP_CANCEL_SENT, M.NOTHING_TO_CANCEL_EXP)

    def poll(last):
        state, other, key = watch(engine, "experiment")
        mine = key[0]
        skip = (gr.skip(),) * (len(results) + 2)
        if key == last:
            return gr.skip(), *skip, last
        line = job_line(state, other, progress_html, ("exp-busy", "an experiment"), M.EXP_IDLE)
        curve = loss_frame(state.losses) if state and state.losses else gr.skip()
        report = state.result if state and not state.active else None
        shown_before = last is not None and last[0] is not None and last[0][:2] == (mine or (None,))[:2]
        if not isinstance(report, ExperimentReport) or shown_before:
            return line, curve, *(gr.skip(),) * (len(results) + 1), key
        data = report.to_json()
        paths = [str(p) for p in sorted(report.folder.iterdir())] if report.folder else []
        reports = engine.experiments()
        past_update = gr.update(choices=[(f"{r['folder']} — {r['headline'][:80]}", r["folder"]) for r in reports],
                                value=report.folder.name if report.folder else None)
        return line, curve, *report_outputs(data, paths), past_update, key

    @refuses(lambda text, _: (gr.skip(),) * len(results))
    def reopen(folder):
        if not folder:
            return (gr.skip(),) * len(results)
        data = engine.experiment_report(folder)
        d = engine.settings.experiments_dir / Path(folder).name
        stale = [engine.adapter_staleness(a["adapter"]) for a in data["costs"]["adapters"]]
        return report_outputs(data, [str(p) for p in sorted(d.iterdir())], stale)

    def refresh():
        docs = [d.name for d in engine.documents()]
        reports = engine.experiments()
        return (gr.update(choices=docs), gr.update(choices=[GENERATE, *engine.question_sets()]),
                gr.update(choices=[(f"{r['folder']} — {r['headline'][:80]}", r["folder"]) for r in reports]))

    estimate_btn.click(estimate, knobs, plan_md, concurrency_id=MODEL_GROUP)  # the model: its speed, maybe questions
    run_btn.click(run, knobs, [progress, plan_md], api_name="start_experiment",
                  concurrency_id=MODEL_GROUP)  # the same: planning may write questions with the model
    cancel_btn.click(stop, None, None, concurrency_limit=None)
    timer.tick(poll, seen, [progress, losses, *results, past, seen], queue=False, show_progress="hidden")
    past.input(reopen, past, results)
    def pick_row(evt: gr.SelectData):
        return evt.index[0] + 1

    per_question.select(pick_row, None, picked)
    picked.change(detail_html, [report_state, picked], detail, show_progress="hidden")

    return {"refresh": refresh, "outputs": [documents, qset, past]}
