"""The Gradio app: one builder per tab, wired to one shared engine."""

from __future__ import annotations

import inspect
import logging
from typing import cast

import gradio as gr

from ..config import ConfigError, Settings
from ..engine import Engine, get_engine
from ..errors import RagftError
from ..workspaces import Workspaces
from . import messages as M
from .api import ENDPOINTS, add_api, hide_wiring
from .chat import GENERATE, create_chat_tab
from .documents import create_documents_tab
from .evaluate import create_evaluate_tab
from .experiment import create_experiment_tab
from .finetune import create_finetune_tab
from .uploads import screen
from .workspace import CurrentEngine, add_workspace_bar

log = logging.getLogger(__name__)

MAX_QUEUE = 64  # events waiting at once, all visitors together; past it Gradio answers "queue is full"
UPLOADS_KEPT_S = 3600  # Gradio's copies of uploads and downloads are deleted after an hour (checked every 10 min)


def admission(demo: gr.Blocks) -> None:
    """Checks made where Gradio admits an event to its queue, the one place that sees every queued event of the
    API and the browser alike, before anything runs:

    - a file in the request that Gradio's upload route did not write, or a component inside a message, is refused
      (`uploads.screen`; Gradio refuses the first too, later, with a message that names the path, or none; the
      second it would build from the caller's values). Events outside the queue are screened the same way;
    - an endpoint sent too few or too many values is refused naming its parameters (Gradio's own refusal
      reaches a visitor without its message);
    - per-visitor fairness: a session with a generation queued or running cannot queue another one, so one
      visitor's twenty asks never put everyone else behind them.
    """
    queue = demo._queue
    admit = queue.push

    def generating(event_id) -> bool:
        event = queue.event_ids_to_events.get(event_id)
        return event is not None and event.fn.concurrency_id == GENERATE

    async def push(body, request, username):
        try:
            screen(body.data, demo)
        except RagftError as exc:
            return False, str(exc), "error"
        fn = demo.fns.get(body.fn_index) if body.fn_index is not None else None
        if fn is not None and fn.fn is not None and fn.api_name in ENDPOINTS and isinstance(body.data, list) \
                and len(body.data) != len(fn.inputs):
            names = ", ".join(inspect.signature(fn.fn).parameters)
            return False, (f"/{fn.api_name} takes {len(fn.inputs)} value(s) ({names}); {len(body.data)} sent"), \
                "error"
        if fn is not None and fn.concurrency_id == GENERATE and body.session_hash and any(
                generating(e) for e in queue.pending_event_ids_session.get(body.session_hash, ())):
            return False, M.ONE_GENERATION, "error"
        return await admit(body, request, username)

    queue.push = push  # type: ignore[method-assign]  # this app's queue, wrapped on purpose (no hook for it)

    # the same screen for every event, queued or not (the page's own events outside the queue, /run/predict, too),
    # on the values of the request before Gradio preprocesses them
    process = demo.process_api

    async def screened(*args, **kwargs):
        inputs = kwargs.get("inputs", args[1] if len(args) > 1 else None)
        if kwargs.get("iterator") is None:  # a generator's later steps carry the same values, screened already
            try:
                screen(inputs, demo)
            except RagftError as exc:
                raise gr.Error(str(exc)) from None
        return await process(*args, **kwargs)

    demo.process_api = screened  # type: ignore[method-assign]  # wrapped on purpose, as the queue's push above


def create_ui(engine: Engine | None = None) -> gr.Blocks:
    """The app on ``engine`` (the root engine: models and store); with private workspaces each request works in
    its user's workspace, built on it (see `ragft.workspaces`)."""
    root = engine or get_engine()
    spaces = Workspaces(root)
    # private workspaces: a proxy whose every attribute is the calling user's workspace's Engine's
    engine = root if spaces.mode == "shared" else cast(Engine, CurrentEngine(spaces))
    with gr.Blocks(title="ragft", delete_cache=(600, UPLOADS_KEPT_S)) as demo:
        gr.Markdown(f"# {M.TITLE}")
        if root.settings.engine != "local" or root.engine_note:
            gr.Markdown(root.engine_line, elem_id="engine-line")
        entered = add_workspace_bar(demo, spaces) if spaces.mode == "private" else None
        add_api(engine)  # first, so its names are taken before the tabs' wiring (hidden below) gets any
        with gr.Tabs():
            with gr.Tab("Documents", id="documents"):
                docs = create_documents_tab(engine)
            with gr.Tab("Experiment", id="experiment") as experiment_tab:
                experiment = create_experiment_tab(engine)
            with gr.Tab("Fine-tune", id="finetune") as finetune_tab:
                finetune = create_finetune_tab(engine)
            with gr.Tab("Chat", id="chat") as chat_tab:
                chat = create_chat_tab(engine)
            with gr.Tab("Evaluate", id="evaluate") as eval_tab:
                evaluation = create_evaluate_tab(engine)
        (entered.then if entered else demo.load)(lambda: (*docs["refresh"](), chat["refresh"](), docs["notice"]()),
                                                 None, [docs["table"], docs["picked"], chat["adapter"], docs["ingest_log"]])
        experiment_tab.select(experiment["refresh"], None, experiment["outputs"], queue=False)
        chat_tab.select(chat["refresh"], chat["adapter"], chat["adapter"], queue=False)
        finetune_tab.select(finetune["refresh_sets"], finetune["sets"], finetune["sets"], queue=False)
        eval_tab.select(lambda current: (evaluation["refresh"](current), evaluation["refresh_sets"]()),
                        evaluation["adapter"], [evaluation["adapter"], evaluation["saved"]], queue=False)
    hide_wiring(demo)
    # one generation at a time (one model serves all); the rest wait in Gradio's queue, which shows their place
    demo.queue(default_concurrency_limit=1, max_size=MAX_QUEUE)
    admission(demo)
    if spaces.snapshots:
        spaces.snapshots.start()
    return demo


def launch_options(settings: Settings) -> dict:
    """What `gr.Blocks.launch` needs for a public app: the upload limit; at most ``RAGFT_MAX_SESSIONS`` pages' state
    in memory; and show_error=False: a visitor reads the messages of errors meant for them (gr.Error, warnings),
    never the text of an unexpected exception (it may name server paths), which goes to the log."""
    return {"max_file_size": f"{settings.max_upload_mb}mb", "state_session_capacity": settings.max_sessions,
            "show_error": False}


def launch(host: str = "127.0.0.1", port: int = 7860) -> None:
    """Load the models, then serve the UI (blocking). Prints the address to open."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one line per request to the vLLM server
    engine = get_engine()
    print("ragft: loading models (first start takes a few seconds)…", flush=True)
    try:  # the Chroma client (it checks the data dir first), then the embedder
        _ = engine.chroma, engine.embedder
    except ConfigError as exc:  # a read-only or full data dir: say so once and stop, no traceback
        raise SystemExit(f"ragft: error: {exc}") from None
    _ = engine.generator  # the one base model, before the first request rather than during it
    try:
        demo = create_ui(engine)  # restores signed-in users' workspaces from persistent storage, if any
    except ConfigError as exc:  # persistent storage that cannot be written
        raise SystemExit(f"ragft: error: {exc}") from None
    print(f"ragft: open http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}", flush=True)
    demo.launch(server_name=host, server_port=port, **launch_options(engine.settings))
