"""Workspaces: what one user owns — a Chroma collection and the folders under ``<data>/workspaces/<id>/``.

``RAGFT_WORKSPACES`` picks how users map to workspaces:

- ``shared`` (the default on a private machine): one workspace, the data dir itself and the ``documents``
  collection, for everyone who opens the app.
- ``private`` (the default on a Space, where ``SPACE_ID`` is set): one per user. A visitor signed in with Hugging
  Face (the Space has ``hf_oauth: true``) gets ``user-<name>-<hash>`` and finds it again on any browser. Anyone
  else gets ``anon-<hash>``, keyed by a random token kept in their browser (a reload keeps it), and an API client
  (``gradio_client``) gets ``api-<hash>`` for its session. Anonymous and API workspaces unused for
  ``RAGFT_WORKSPACE_IDLE_HOURS`` are deleted, with their collection and adapters. With persistent storage
  (``RAGFT_PERSIST_DIR``, or a Space's ``/data``) signed-in users' workspaces outlive restarts (`ragft.snapshots`);
  the others are temporary.

A workspace is made on its first write (an upload, a training run, a saved set): a visitor who only looks around
reads an empty workspace (`blank`) and leaves nothing on disk, in Chroma or in memory. At most
``RAGFT_MAX_WORKSPACES`` exist at once, and one client address makes at most ``RAGFT_NEW_WORKSPACES_PER_HOUR``.
An anonymous browser's token is issued here and signed with a key that never leaves the server (`issue_token`); a
page's session, once bound to a workspace, stays bound to it (`enter`).

All workspaces share the one base model, embedder and Chroma client of the root engine; each has its own engine
(`ragft.engine.Engine` with ``parent``), so its documents, adapters, question sets, evaluations, experiments and
background job are its own. Ids are hashes or cleaned names, so no user input ever becomes a path.

    spaces = Workspaces(Engine())                 # the root engine: models and the Chroma client
    alice, token = spaces.enter("session-1", token=saved)  # an anonymous browser: its workspace id (and token)
    spaces.engine(alice, create=True).ingest(...) # that workspace's verbs (made now, on its first write)
    spaces.sweep()                                # drop anonymous workspaces idle too long
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import shutil
import threading
import time
from collections import OrderedDict, deque
from dataclasses import replace

from .engine import Engine
from .errors import RagftError
from .snapshots import Snapshots

log = logging.getLogger(__name__)

ANONYMOUS = ("anon-", "api-")  # id prefixes of workspaces deleted when idle
TOUCH_EVERY_S = 60  # how often a workspace's last use is written to disk
SWEEP_EVERY_S = 600
MAX_SESSIONS = 20_000  # page loads remembered (oldest forgotten first: they reload into their workspace again)
KEEP_IN_MEMORY_S = 3600  # an engine unused this long leaves memory (its workspace stays on disk)
RATE_WINDOW_S = 3600
LOADS_PER_WINDOW, LOADS_WINDOW_S = 120, 600  # page loads one address may bind (a person reloads far less)


class WorkspaceLimitError(RagftError, RuntimeError):
    """No new workspace now: the app holds its maximum, or this address made too many lately."""


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


def _key(folder) -> bytes:
    """The key that signs anonymous tokens: made once, kept under the data dir (a restart keeps the workspaces),
    readable by the server only, and never sent anywhere."""
    path = folder / ".token-key"
    try:
        return bytes.fromhex(path.read_text().strip())
    except (OSError, ValueError):
        key = secrets.token_bytes(32)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(key.hex())
        path.chmod(0o600)
        return key


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
        self._made: dict[str, deque[float]] = {}  # client address -> when it made its recent workspaces
        self._loads: dict[str, deque[float]] = {}  # client address -> when its recent pages were bound
        self._last_sweep = 0.0
        self._lock = threading.RLock()
        s = root.settings
        self.max_workspaces, self.per_hour = s.max_workspaces, s.new_workspaces_per_hour
        self._token_key = _key(self.folder) if self.mode == "private" else b""
        # what a workspace not yet made reads (and what the page is built from): empty, never written, one for all
        self.blank = self.root if self.mode == "shared" else self._make("blank", ".blank")
        # signed-in users' workspaces on persistent storage (a Space's mount), back from it before anyone comes in
        self.snapshots = None
        if self.mode == "private" and s.persist_dir is not None:
            self.snapshots = Snapshots(self, s.persist_dir, s.snapshot_seconds)
            self.snapshots.check()
            self.snapshots.restore_all()

    # --- ids ---------------------------------------------------------------------------------------------------
    def issue_token(self) -> str:
        """A new anonymous token: random, signed with the server's key."""
        nonce = secrets.token_urlsafe(24)
        return f"{nonce}.{self._sign(nonce)}"

    def _sign(self, nonce: str) -> str:
        return hmac.new(self._token_key, nonce.encode(), hashlib.sha256).hexdigest()[:32]

    def token_ok(self, token) -> bool:
        """Whether ``token`` is one this server issued (any other string, forged or malformed, is not)."""
        if not isinstance(token, str) or token.count(".") != 1 or len(token) > 100:
            return False
        nonce, signature = token.split(".")
        return bool(nonce) and hmac.compare_digest(signature, self._sign(nonce))

    def enter(self, session_hash: str, token: str = "", username: str = "", client: str = "") -> tuple[str, str]:
        """Bind a page that just loaded (``session_hash``) to its workspace; returns the workspace id and the
        token for the browser to keep. Signed in: ``username``'s workspace. Else the workspace of ``token`` when
        this server signed it, else of a fresh token. A page already bound stays where it is: a later load call
        with its session hash cannot move it into another workspace. One address (``client``) binds at most
        `LOADS_PER_WINDOW` pages in `LOADS_WINDOW_S` (`WorkspaceLimitError`), so a flood of page loads cannot push
        other pages out of the bindings kept (`MAX_SESSIONS`)."""
        if self.mode == "shared":
            return "", ""
        with self._lock:
            bound = self._sessions.get(session_hash)
            if bound:
                return bound, ""
            if not self._allowed(self._loads, client, LOADS_PER_WINDOW, LOADS_WINDOW_S):
                raise WorkspaceLimitError("too many pages were opened from your address in the last minutes: wait "
                                          "a few minutes, then reload")
            if not username and not self.token_ok(token):
                token = self.issue_token()
            wid = user_id(username) if username else anonymous_id(token)
            self._sessions[session_hash] = wid
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return wid, token

    def of_session(self, session_hash: str | None) -> str:
        """The workspace of a request: its page's (see `enter`: a signed-in page's is its user's), else the API
        session's."""
        if self.mode == "shared":
            return ""
        with self._lock:
            wid = self._sessions.get(session_hash or "")
        if wid:
            return wid
        return api_id(session_hash or "")

    # --- engines -----------------------------------------------------------------------------------------------
    def engine(self, wid: str, create: bool = False, client: str = "") -> Engine:
        """The engine of workspace ``wid`` ("" in shared mode: the root). A workspace that does not exist yet is
        made when ``create`` (a write: subject to the limits, `WorkspaceLimitError`; ``client`` is the caller's
        address), else read as the empty `blank`."""
        if self.mode == "shared":
            return self.root
        if not wid:
            return self.blank
        with self._lock:
            engine = self._engines.get(wid)
            if engine is None:
                if not (self.folder / wid).is_dir():
                    if not create:
                        return self.blank
                    self._admit(client)
                    (self.folder / wid).mkdir(parents=True, exist_ok=True)
                engine = self._engines[wid] = self._make(wid)
        self._touch(wid)
        self.sweep_now_and_then()
        return engine

    def _admit(self, client: str) -> None:
        """Refuse a new workspace past ``RAGFT_MAX_WORKSPACES``, or past this address's hourly share."""
        if len(self.ids()) >= self.max_workspaces:
            raise WorkspaceLimitError(f"the app is full ({self.max_workspaces} workspaces in use): try again later")
        if not self._allowed(self._made, client, self.per_hour, RATE_WINDOW_S):
            raise WorkspaceLimitError(f"{self.per_hour} new workspaces were made from your address within the "
                                      "hour: try again later")

    @staticmethod
    def _allowed(log: dict[str, deque], client: str, limit: int, window_s: float) -> bool:
        """Whether ``client`` may do one more of what ``log`` counts (at most ``limit`` in ``window_s``); counts it."""
        now = time.time()
        times = log.setdefault(client, deque())
        while times and now - times[0] > window_s:
            times.popleft()
        if len(times) >= limit:
            return False
        times.append(now)
        if len(log) > MAX_SESSIONS:  # forget addresses whose window has passed
            for address in [a for a, t in log.items() if not t or now - t[-1] > window_s]:
                del log[address]
        return True

    def _make(self, wid: str, folder: str = "") -> Engine:
        settings = replace(self.root.settings, data_dir=self.folder / (folder or wid), collection=self.collection(wid))
        return Engine(settings, parent=self.root, workspace=wid)

    @staticmethod
    def collection(wid: str) -> str:
        """The Chroma collection of workspace ``wid`` (its documents' records are in ``<name>__docs``)."""
        return f"ws-{wid}"

    def engines(self) -> dict[str, Engine]:
        """The engines in memory now, by workspace id."""
        with self._lock:
            return dict(self._engines)

    def _touch(self, wid: str) -> None:
        now = time.time()
        if now - self._touched.get(wid, 0.0) < TOUCH_EVERY_S:
            return
        self._touched[wid] = now
        try:
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
        with self._lock:  # engines unused for a while leave memory; their workspaces stay on disk
            for wid in [w for w, e in self._engines.items()
                        if now - self.last_used(w) > KEEP_IN_MEMORY_S and not e.jobs.state.active]:
                del self._engines[wid]
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

