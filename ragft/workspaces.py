"""Workspaces: what one user owns — a Chroma collection and the folders under ``<data>/workspaces/<id>/``.

``RAGFT_WORKSPACES`` picks how users map to workspaces:

- ``shared`` (the default on a private machine): one workspace, the data dir itself and the ``documents``
  collection, for everyone who opens the app.
- ``private`` (the default on a Space, where ``SPACE_ID`` is set): one per user. A visitor signed in with Hugging
  Face (the Space has ``hf_oauth: true``) gets ``user-<name>-<hash>`` and finds it again on any browser. Anyone
  else gets ``anon-<hash>``, keyed by a random token kept in their browser (a reload keeps it), and an API client
  (``gradio_client``) gets ``api-<hash>`` for its session. Anonymous and API workspaces unused for
  ``RAGFT_WORKSPACE_IDLE_HOURS`` are deleted, with their collection and adapters.

All workspaces share the one base model, embedder and Chroma client of the root engine; each has its own engine
(`ragft.engine.Engine` with ``parent``), so its documents, adapters, question sets, evaluations, experiments and
background job are its own. Ids are hashes or cleaned names, so no user input ever becomes a path.

    spaces = Workspaces(Engine())                 # the root engine: models and the Chroma client
    alice = spaces.enter("session-1", token="…")  # an anonymous browser: its workspace id
    spaces.engine(alice).ingest(...)              # that workspace's verbs
    spaces.sweep()                                # drop anonymous workspaces idle too long
"""

from __future__ import annotations

import hashlib
import logging
import re
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import replace

from .engine import Engine

log = logging.getLogger(__name__)

ANONYMOUS = ("anon-", "api-")  # id prefixes of workspaces deleted when idle
TOUCH_EVERY_S = 60  # how often a workspace's last use is written to disk
SWEEP_EVERY_S = 600
MAX_SESSIONS = 20_000  # page loads remembered (oldest forgotten first: they reload into their workspace again)


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def user_id(username: str) -> str:
    """``user-<name>-<hash>``: readable in the data dir, and two names that clean alike still differ."""
    slug = re.sub(r"[^a-z0-9]+", "-", username.lower()).strip("-")[:40] or "x"
    return f"user-{slug}-{_digest('user:' + username)[:8]}"


def anonymous_id(token: str) -> str:
    return f"anon-{_digest('anon:' + token)}"


def api_id(session_hash: str) -> str:
    return f"api-{_digest('api:' + session_hash)}"


class Workspaces:
    """The workspaces of one app: ids from sessions, one engine per workspace, idle anonymous ones deleted."""

    def __init__(self, root: Engine) -> None:
        self.root = root
        self.mode = root.settings.workspaces
        self.folder = root.settings.data_dir / "workspaces"
        self.idle_s = root.settings.workspace_idle_hours * 3600
        self._engines: dict[str, Engine] = {}
        self._sessions: OrderedDict[str, str] = OrderedDict()  # gradio session hash -> workspace id
        self._touched: dict[str, float] = {}
        self._last_sweep = 0.0
        self._lock = threading.RLock()
        # read at build time, outside any request (default values, dropdown choices): an empty workspace's
        self.blank = self.root if self.mode == "shared" else self._make("none")

    # --- ids ---------------------------------------------------------------------------------------------------
    def enter(self, session_hash: str, token: str = "", username: str = "") -> str:
        """The workspace of a page that loaded with ``token`` (kept in the browser) and, when signed in,
        ``username``; later requests of the same page (``session_hash``) go to it."""
        if self.mode == "shared":
            return ""
        wid = user_id(username) if username else anonymous_id(token) if token else api_id(session_hash)
        with self._lock:
            self._sessions[session_hash] = wid
            self._sessions.move_to_end(session_hash)
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return wid

    def of_session(self, session_hash: str | None, username: str = "") -> str:
        """The workspace of a request: its page's (see `enter`), else the signed-in user's, else the API session's."""
        if self.mode == "shared":
            return ""
        with self._lock:
            wid = self._sessions.get(session_hash or "")
        if wid:
            return wid
        return user_id(username) if username else api_id(session_hash or "")

    # --- engines -----------------------------------------------------------------------------------------------
    def engine(self, wid: str) -> Engine:
        """The engine of workspace ``wid`` ("" in shared mode: the root), built on first use."""
        if self.mode == "shared":
            return self.root
        if not wid:
            return self.blank
        with self._lock:
            engine = self._engines.get(wid)
            if engine is None:
                engine = self._engines[wid] = self._make(wid)
        self._touch(wid)
        self.sweep_now_and_then()
        return engine

    def _make(self, wid: str) -> Engine:
        settings = replace(self.root.settings, data_dir=self.folder / wid, collection=f"ws-{wid}")
        return Engine(settings, parent=self.root, workspace=wid)

    def _touch(self, wid: str) -> None:
        now = time.time()
        if now - self._touched.get(wid, 0.0) < TOUCH_EVERY_S:
            return
        self._touched[wid] = now
        try:
            (self.folder / wid).mkdir(parents=True, exist_ok=True)
            (self.folder / wid / ".last-used").touch()
        except OSError:  # a full disk shows at the action itself, with its own message
            log.warning("cannot mark workspace %s as used", wid)

    def last_used(self, wid: str) -> float:
        mark = self.folder / wid / ".last-used"
        try:
            return max(self._touched.get(wid, 0.0), mark.stat().st_mtime)
        except OSError:
            return self._touched.get(wid, 0.0)

    # --- idle anonymous workspaces -------------------------------------------------------------------------------
    def sweep_now_and_then(self) -> None:
        if time.time() - self._last_sweep >= SWEEP_EVERY_S:
            self.sweep()

    def sweep(self, now: float | None = None) -> list[str]:
        """Delete the anonymous workspaces unused for the idle time (none with a job running); their ids."""
        now = time.time() if now is None else now
        self._last_sweep = now
        if self.mode == "shared" or not self.folder.is_dir():
            return []
        dropped = []
        for wid in self.ids():
            if not wid.startswith(ANONYMOUS) or now - self.last_used(wid) < self.idle_s:
                continue
            engine = self._engines.get(wid)
            if engine is not None and engine.jobs.state.active:
                continue
            self.drop(wid)
            dropped.append(wid)
        if dropped:
            log.info("deleted %d idle anonymous workspaces", len(dropped))
        return dropped

    def drop(self, wid: str) -> None:
        """Delete workspace ``wid``: its collection, its adapters on the base model and its folder."""
        with self._lock:
            engine = self._engines.pop(wid, None) or self._make(wid)
            self._touched.pop(wid, None)
            for session in [s for s, w in self._sessions.items() if w == wid]:
                del self._sessions[session]
        generator = self.root.generator_loaded
        if generator is not None:
            for name in engine.adapters():
                generator.unload_adapter(engine.adapter_key(name))
        existing = {c.name for c in self.root.chroma.list_collections()}
        for name in (engine.settings.collection, f"{engine.settings.collection}__docs"):
            if name in existing:  # a workspace that only looked around never made one
                self.root.chroma.delete_collection(name)
        shutil.rmtree(self.folder / wid, ignore_errors=True)

    def ids(self) -> list[str]:
        """The workspaces with a folder under the data dir."""
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir() if p.is_dir() and not p.name.startswith("."))

