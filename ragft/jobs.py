"""The background runner for long work (train, evaluate, experiment): one heavy job at a time per workspace.

A job is a function ``work(state, cancel)`` run in a daemon thread. It reports through ``state`` (a `JobState`
that pollers read: the UI's timers, the CLI's progress bar) and stops early when ``cancel`` is set. The runner
lives on the engine, not on a page, so a reloaded page finds the running job again.

    runner = JobRunner()
    runner.start("evaluate", "facts", work)   # JobBusyError while another job is active
    runner.state.step, runner.state.total     # progress, read by any thread
    runner.cancel()                           # work sees the event and stops after its current step
    runner.wait().status                      # "done" | "cancelled" | "failed"
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from .errors import RagftError

log = logging.getLogger(__name__)

Kind = Literal["train", "evaluate", "experiment"]
# kind -> the noun that names such a job in messages
KINDS: dict[Kind, str] = {"train": "a training run", "evaluate": "an evaluation", "experiment": "an experiment"}
FINISHED = ("done", "cancelled", "failed", "interrupted")  # interrupted: the process died during the job


class JobBusyError(RagftError, RuntimeError):
    """A job is already running; only one heavy job runs at a time. The message names it."""


# idle, then preparing -> running (-> cancelling) -> done | cancelled | failed; interrupted: the app stopped mid-job
Status = Literal["idle", "preparing", "running", "cancelling", "done", "cancelled", "failed", "interrupted"]


@dataclass
class JobState:
    """What a job has done so far. Written by the job's thread, read by pollers (so keep fields simple)."""

    kind: Kind | Literal[""] = ""
    name: str = ""  # adapter name, question set, experiment name
    status: Status = "idle"
    stage: str = ""  # the current stage in words, e.g. "training raft adapter"
    step: int = 0
    total: int = 0
    started: float = 0.0  # time.time() when the job (or its main phase) started
    eta_s: float | None = None
    message: str = ""
    losses: list[tuple[int, float]] = field(default_factory=list)  # training: (step, loss)
    tokens_per_s: float = 0.0
    result: object = None  # what the job produced so far / at the end (an EvalResult for "evaluate")

    @property
    def active(self) -> bool:
        return self.status in ("preparing", "running", "cancelling")

    def describe(self) -> str:
        """``a training run (memo-v2)``: the job in words, for busy messages."""
        noun = KINDS[self.kind] if self.kind else "a background job"
        return f"{noun} ({self.name})" if self.name else noun


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` is running (possibly someone else's)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


class JobRunner:
    """Runs one job at a time in a background thread; ``state`` is the current (or last) job's state."""

    def __init__(self, record: Path | None = None, slots: threading.BoundedSemaphore | None = None) -> None:
        """``record``: a file that names the running job while it runs. Found at start-up, it means the process
        died during that job (killed, out of memory, a restart): the job is shown as "interrupted". ``slots``:
        shared by the runners of all workspaces, it bounds how many of their jobs run at once (``RAGFT_MAX_JOBS``).
        """
        self._slots = slots
        self.state = JobState()
        self._latest: dict[Kind, JobState] = {}  # kind -> newest job of that kind, running or finished
        self._cancel = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._record = record
        if record is not None and record.is_file():
            self._interrupted(record)

    def _interrupted(self, record: Path) -> None:
        try:
            was = json.loads(record.read_text())
            kind, name, started, pid = str(was["kind"]), str(was["name"]), float(was["started"]), int(was["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            kind, name, started, pid = "", "", 0.0, 0
        if pid and pid_alive(pid):  # still running, in this process or another one on the same data dir
            return
        # a kind this version does not know (a hand-edited record) reads as "a background job"
        state = JobState(kind=kind if kind in KINDS else "", name=name, status="interrupted", started=started)
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(started)) if started else "an earlier run"
        state.message = (f"{state.describe()} started {when} was interrupted: the app stopped while it ran. Nothing "
                         "half-done was kept; start it again.")
        self.state = state
        if state.kind:
            self._latest[state.kind] = state
        record.unlink(missing_ok=True)

    def _write_record(self, state: JobState) -> None:
        if self._record is None:
            return
        try:
            self._record.parent.mkdir(parents=True, exist_ok=True)
            self._record.write_text(json.dumps({"kind": state.kind, "name": state.name, "started": state.started,
                                                "pid": os.getpid()}))
        except OSError:  # a record is a courtesy; the job itself must not fail for it
            log.warning("cannot write the job record %s", self._record)

    def check_idle(self) -> None:
        """Raise `JobBusyError` if a job is active: callers check before slow preparation, ``start`` again after."""
        state = self.state
        if state.active:
            raise JobBusyError(f"{state.describe()} is already going: wait for it or cancel it first")

    def start(
        self, kind: Kind, name: str, work: Callable[[JobState, threading.Event], object], message: str = ""
    ) -> JobState:
        """Run ``work(state, cancel)`` in the background and return its fresh state (status "preparing").

        Its return value (unless None) becomes ``state.result``. It may set the final status itself ("done",
        "cancelled"); otherwise the job ends "cancelled" if cancel was asked for, else "done". An exception ends it
        "failed" with the message "<kind> failed: <error>". Raises `JobBusyError` while another job is active.
        """
        with self._lock:
            self.check_idle()
            if self._slots is not None and not self._slots.acquire(blocking=False):
                raise JobBusyError("the server is running as many jobs as it allows at once (RAGFT_MAX_JOBS), for "
                                   "other users: try again in a few minutes")
            self._cancel = cancel = threading.Event()
            state = JobState(kind=kind, name=name, status="preparing", started=time.time(), message=message)
            self.state = self._latest[kind] = state
            self._write_record(state)
            # in the caller's context: on ZeroGPU, the job's GPU calls carry the visitor's request (their quota)
            context = contextvars.copy_context()
            self._thread = threading.Thread(target=context.run, args=(self._run, work, state, cancel), daemon=True,
                                            name=f"ragft-{kind}")
            self._thread.start()
            return state

    def _run(self, work, state: JobState, cancel: threading.Event) -> None:
        try:
            result = work(state, cancel)
        except Exception as exc:  # the job's thread must report, never die silently
            log.exception("%s job %r failed", state.kind, state.name)
            with self._lock:
                state.status, state.message, state.eta_s = "failed", f"{state.kind} failed: {exc}", None
            return
        finally:
            if self._record is not None:  # ended, however: no longer running
                self._record.unlink(missing_ok=True)
            if self._slots is not None:
                self._slots.release()
        with self._lock:  # not between cancel()'s check and its write: a finished job never turns "cancelling"
            if result is not None:
                state.result = result
            if state.status not in FINISHED:
                state.status = "cancelled" if cancel.is_set() else "done"
            state.eta_s = None

    def cancel(self, kind: Kind | None = None) -> bool:
        """Ask the active job (only if it is of ``kind``, when given) to stop; False if there is none."""
        with self._lock:
            state = self.state
            if not state.active or (kind and state.kind != kind):
                return False
            self._cancel.set()
            state.status = "cancelling"
            return True

    def wait(self, timeout: float | None = None) -> JobState:
        """Wait for the current job's thread to end (up to ``timeout`` seconds); its state either way."""
        thread = self._thread
        if thread:
            thread.join(timeout)
        return self.state

    def latest(self, kind: Kind) -> JobState | None:
        """The newest job of ``kind``, running or finished (a tab shows it even after another kind ran)."""
        return self._latest.get(kind)
