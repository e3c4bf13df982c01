"""Chat tab: one textbox, four panes streaming side by side from one batched generate call."""

from __future__ import annotations

import html

import gradio as gr

from ..chat import ChatState
from ..engine import Engine
from ..grounding import MODEL_THRESHOLD, summary
from ..knobs import bounds, from_request
from ..requests import AskRequest
from ..variants import LABELS, VARIANTS
from . import messages as M
from .errors import refuses

GENERATE = "generate"  # the concurrency group of everything that answers with the model (chat, /ask)


def adapter_choices(engine: Engine, keep: str | None = None):
    names = engine.adapters()
    value = keep if keep in names else (names[0] if names else M.NO_ADAPTER_CHOICE)
    return gr.update(choices=[M.NO_ADAPTER_CHOICE, *names], value=value)


def plain_html(text: str) -> str:
    """Show a chunk as the text it is: escaped, one HTML block (so '# Title' in a chunk is not a heading)."""
    return f"<div class='chunk'>{html.escape(text).replace(chr(10), '<br>')}</div>"


def source_messages(hits) -> list[dict]:
    """One collapsed 'thought' per retrieved chunk: title = file, chunk, score; body = the chunk text."""
    return [
        {
            "role": "assistant",
            "content": plain_html(h.text),
            "metadata": {"title": f"Source: {h.source} · chunk {h.chunk} · score {h.score:.2f}", "status": "done"},
        }
        for h in hits
    ]


def grounding_message(marks, hits, grounded_by: str = "") -> dict:
    """A collapsed 'thought' over the sources: its title counts the supported sentences, its body marks each one
    and names the chunk that supports it, or the facts no source holds, and says what judged them."""
    lines = []
    for m in marks:
        if m.supported is None:
            lines.append(f"· {m.sentence} — nothing to check")
        elif m.supported:
            h = hits[m.chunk]
            lines.append(f"✅ {m.sentence} — {h.source}, chunk {h.chunk}")
        else:
            why = f"not in the sources: {', '.join(m.missing)}" if m.missing else "not supported by the sources"
            lines.append(f"⚠️ {m.sentence} — {why}")
    lines.append(f"(judged by {grounded_by}: entailment probability ≥ {MODEL_THRESHOLD})" if grounded_by else
                 "(judged by numbers, names and words in common with one chunk; a changed relation can pass)")
    return {"role": "assistant", "content": plain_html("\n".join(lines)),
            "metadata": {"title": f"Grounding: {summary(marks)}", "status": "done"}}


def message_text(content) -> str:
    """Gradio 6 hands message content back as a list of blocks ({"type": "text", "text": ...})."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return content.get("text", "")
    return " ".join(message_text(part) for part in content or [])


def stale_notice(engine: Engine, name: str | None):
    """The adapter's freshness note and the retrain button, shown only when a document it learned has changed."""
    note = engine.adapter_staleness(None if name in (None, M.NO_ADAPTER_CHOICE) else name)
    return (f"⚠️ {note}" if note else ""), gr.update(visible=bool(note))


def notice_text(notice: str) -> str:
    """A pane's notice (no adapter, no documents) with the tab that fixes it."""
    return notice + M.NOTICE_FIX.get(notice, "")


@refuses(lambda text, *_: text)  # no record, bad data, or another job running
def retrain(engine: Engine, name: str | None) -> str:
    if not name:
        return M.PICK_ADAPTER
    return M.RETRAIN_STARTED.format(name=engine.retrain_adapter(name))


def create_chat_tab(engine: Engine) -> dict:
    state = gr.State(None)  # this browser session's ChatState, made on its first question
    with gr.Row():
        adapter = gr.Dropdown(
            label="Adapter",
            choices=[M.NO_ADAPTER_CHOICE],
            value=M.NO_ADAPTER_CHOICE,
            info=M.ADAPTER_INFO,
            elem_id="adapter-picked",
            scale=3,
        )
        refresh_btn = gr.Button("↻ Refresh adapters", scale=1)
    with gr.Row():
        stale = gr.Markdown(elem_id="adapter-stale")
        retrain_btn = gr.Button(M.RETRAIN, visible=False, scale=0, elem_id="retrain")
    with gr.Row(equal_height=True):
        panes = [
            gr.Chatbot(label=LABELS[v], elem_id=f"pane-{v.replace('+', '-')}", height=460, min_width=220)
            for v in VARIANTS
        ]
    with gr.Row():
        question = gr.Textbox(
            placeholder="Ask about your documents…", show_label=False, scale=5, elem_id="question", autofocus=True
        )
        send = gr.Button("Send", variant="primary", scale=1, elem_id="send")
        clear = gr.Button("Clear", scale=1, elem_id="clear")
    with gr.Accordion("Generation settings", open=False):
        s = engine.settings
        max_new = gr.Slider(8, 512, value=s.max_new_tokens, step=8, label="Max new tokens")
        temperature = gr.Slider(*bounds(s, "temperature"), value=s.temperature, step=0.05,
                                label="Temperature (0 = greedy)")
        top_k = gr.Slider(*bounds(s, "top_k"), value=s.top_k, step=1, label="Retrieved chunks (top k) for RAG panes")

    def add_user(text: str, *histories):
        if not text.strip():
            gr.Warning(M.EMPTY_QUESTION)
            return ("", *histories)
        return ("", *[h + [{"role": "user", "content": text.strip()}] for h in histories])

    @refuses(lambda text, chat_state, *inputs: (chat_state, *[h + [{"role": "assistant", "content": text}]
                                                                for h in inputs[-len(panes):]]))
    def respond(chat_state: ChatState, adapter_name, n_tokens, temp, k, *given):
        histories = [list(h) for h in given]
        if not histories[0] or histories[0][-1]["role"] != "user":
            yield (chat_state, *histories)  # nothing asked (empty question was refused)
            return
        question_text = message_text(histories[0][-1]["content"])
        chat_state = chat_state or ChatState()
        adapter_name = "" if adapter_name in (None, M.NO_ADAPTER_CHOICE) else adapter_name
        ask = from_request(AskRequest, question=question_text, adapter=adapter_name, max_new_tokens=n_tokens,
                           top_k=k, temperature=temp)
        for result in engine.ask(ask.question, ask.mode, ask.adapter or None, ask.decode(engine.settings), ask.top_k,
                                 chat_state):
            out = []
            for v, hist in zip(VARIANTS, histories):
                text = notice_text(result.notices[v]) if v in result.notices else result.answers.get(v) or "…"
                extra = source_messages(result.sources[v]) if result.done and v in result.sources else []
                if result.done and v in result.grounding:
                    extra = [grounding_message(result.grounding[v], result.sources[v], result.grounded_by), *extra]
                out.append(hist + [{"role": "assistant", "content": text}] + extra)
            yield (chat_state, *out)

    inputs = [state, adapter, max_new, temperature, top_k, *panes]
    for trigger in (question.submit, send.click):
        trigger(add_user, [question, *panes], [question, *panes], queue=False).then(
            respond, inputs, [state, *panes], concurrency_id=GENERATE
        )
    clear.click(lambda: (None, *[[] for _ in panes]), None, [state, *panes], queue=False)
    refresh_btn.click(lambda current: adapter_choices(engine, current), adapter, adapter, queue=False)
    adapter.change(lambda name: stale_notice(engine, name), adapter, [stale, retrain_btn], show_progress="hidden")
    retrain_btn.click(lambda name: retrain(engine, name), adapter, stale)
    return {"adapter": adapter, "refresh": lambda current=None: adapter_choices(engine, current)}
