"""The workspace of each request (see `ragft.workspaces`), for the tabs' handlers.

The tabs call ``engine.<verb>`` in their handlers. With private workspaces ``engine`` is a `CurrentEngine`: every
attribute is looked up on the engine of the workspace of the request being handled, which Gradio keeps in a
context variable for the duration of each call (also across a generator's steps). A page registers its workspace
when it loads (`add_workspace_bar`): a random token kept in the browser's localStorage, or the Hugging Face account
it signed in with, which Gradio hands to the load event as a `gr.OAuthProfile` (its public way; nothing else here
reads the sign-in). After a restart Gradio's page reloads itself when it reconnects, and so registers again.
"""

from __future__ import annotations

import ipaddress
import os
import secrets

import gradio as gr
from gradio.context import LocalContext

from ..engine import Engine
from ..gpu_calls import zero_gpu
from ..workspaces import WorkspaceLimitError, Workspaces
from . import messages as M

# The verbs a visitor may call before their workspace exists: they only read, so they read the empty `blank`
# workspace and nothing is made. Every other attribute is taken as a write and makes the workspace (within the
# limits of `Workspaces.engine`).
READS = frozenset({
    "settings", "workspace", "adapter_key", "engine_line", "engine_note", "question_method", "jobs", "store",
    "documents", "document_chunks", "search", "delete_document", "ask",
    "adapters", "adapter_run", "adapter_staleness", "delete_adapter",
    "question_sets", "load_question_set", "question_set_path", "read_questions", "generate_questions",
    "data_spec", "preview_training", "training_overlap", "plan_experiment", "experiments", "experiment_report",
})


def client_address(request) -> str:
    """The caller's address. On a Space the peer is Hugging Face's proxy, which appends the address it saw to
    ``X-Forwarded-For``: the right-most public address there (entries further left are the caller's own to write).
    Elsewhere the peer's."""
    peer = request.client.host if request.client else ""
    if os.environ.get("SPACE_ID"):
        for hop in reversed(request.headers.get("x-forwarded-for", "").split(",")):
            try:
                if ipaddress.ip_address(hop.strip()).is_global:
                    return hop.strip()
            except ValueError:
                continue
    return peer or "unknown"


class CurrentEngine:
    """Stands in for the engine in handlers: each attribute is that of the calling user's workspace's engine. A
    read (`READS`) of a workspace not made yet reads the empty one; anything else makes it."""

    def __init__(self, spaces: Workspaces) -> None:
        self._spaces = spaces

    def now(self, write: bool = True) -> Engine:
        request = LocalContext.request.get(None)
        if request is None:  # building the page: defaults only, from an empty workspace
            return self._spaces.blank
        wid = self._spaces.of_session(request.session_hash)
        return self._spaces.engine(wid, create=write, client=client_address(request))

    def __getattr__(self, name: str):
        return getattr(self.now(write=name not in READS), name)


def login_available() -> bool:
    """Hugging Face login works on a Space with ``hf_oauth: true`` (Spaces then sets ``OAUTH_CLIENT_ID``). Elsewhere
    Gradio would fake it with the machine's own token, which is not a login: no button then."""
    return bool(os.environ.get("SPACE_ID") and os.environ.get("OAUTH_CLIENT_ID"))


def _secret(spaces: Workspaces) -> str:
    """The key Gradio encrypts the browser's stored token with. Gradio sends it to every page (``/config``), so it
    protects nothing: the token itself is signed with a key that stays on the server (`Workspaces.issue_token`).
    Kept under the data dir only so that a restart can still read what browsers stored."""
    path = spaces.folder / ".browser-secret"
    try:
        return path.read_text().strip()
    except OSError:
        value = secrets.token_hex(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value)
        path.chmod(0o600)
        return value


def add_workspace_bar(demo: gr.Blocks, spaces: Workspaces):
    """The sign-in button and a line saying whose workspace this is; returns the load event that binds the page
    to its workspace (the tabs' own loading goes ``.then`` it)."""
    hours = f"{spaces.idle_s / 3600:g}"
    on_space = bool(os.environ.get("SPACE_ID"))
    with gr.Row():
        if login_available():
            gr.LoginButton(scale=0)
        line = gr.Markdown(elem_id="workspace-line")
    token = gr.BrowserState("", storage_key="ragft-workspace", secret=_secret(spaces))

    def enter(saved, profile: gr.OAuthProfile | None, request: gr.Request):
        name = profile.username if profile else ""
        try:
            _, issued = spaces.enter(request.session_hash or "", saved, name, client_address(request))
        except WorkspaceLimitError as exc:
            return gr.skip(), f"⚠️ {exc}"
        kept = issued or gr.skip()  # a page already bound keeps its workspace and its token
        gpu = M.ZERO_GPU if zero_gpu() else ""
        if name:
            return kept, M.WORKSPACE_USER.format(name=name) + (M.WORKSPACE_KEPT if spaces.snapshots else
                                                               M.WORKSPACE_NOT_KEPT if on_space else "") + gpu
        return kept, (M.WORKSPACE_ANONYMOUS.format(hours=hours) + (M.WORKSPACE_RESTART if on_space else "")
                      + (M.WORKSPACE_SIGN_IN if login_available() else "") + gpu)

    return demo.load(enter, token, [token, line], queue=False)
