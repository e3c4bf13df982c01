"""How a tab shows a background job (training, evaluation, experiment): one progress block for all three."""

from __future__ import annotations

import html

import gradio as gr

from ..engine import Engine
from ..experiment import format_duration
from ..jobs import JobState, Kind
from . import messages as M


def job_html(state: JobState, elem_id: str, line: str = "", below: str = "") -> str:
    """``<name> — <status> · <line> · about N left``, a progress bar, then ``below`` (plain text, escaped here;
    ``line`` is escaped by the caller)."""
    eta = f" · about {format_duration(state.eta_s)} left" if state.eta_s is not None and state.active else ""
    return (f"<div id='{elem_id}'><b>{html.escape(state.name)}</b> — {state.status}{' · ' + line if line else ''}"
            f"{eta}<br><progress value='{state.step}' max='{max(state.total, 1)}' style='width:100%'></progress>"
            f"{'<br>' + html.escape(below) if below else ''}</div>")


# Another kind of job running: its description and status, else ().
Other = tuple[str, str] | tuple[()]
# What a timer compares between ticks: (this kind's newest job: id, status, step, losses) and (the other job: kind,
# name, status), each None when there is none.
Key = tuple[tuple[int, str, int, int] | None, tuple[str, str, str] | None]


def watch(engine: Engine, kind: Kind) -> tuple[JobState | None, Other, Key]:
    """What a tab's timer shows of job ``kind``: its newest job (or None), a busy line's job description when
    another kind runs (else ""), and a key that changes whenever either moves on (equal keys: skip the tick)."""
    job, state = engine.jobs.state, engine.jobs.latest(kind)
    other = job.active and job.kind != kind
    mine = (id(state), state.status, state.step, len(state.losses)) if state else None
    return state, (job.describe(), job.status) if other else (), (mine, (job.kind, job.name, job.status) if other
                                                                  else None)


def busy_html(elem_id: str, other: tuple[str, str], what: str) -> str:
    """The line a tab shows while another kind of job runs (its own waits for it)."""
    job, status = other
    return f"<p id='{elem_id}'>{M.BUSY.format(job=job, status=status, what=what)}</p>"


def job_line(state: JobState | None, other: Other, progress, busy: tuple[str, str], idle: str) -> str:
    """A tab's status line: another kind of job running (``busy`` = its element id and what waits), else this
    kind's newest job drawn by ``progress``, else ``idle``."""
    if other:
        return busy_html(busy[0], other, busy[1])
    return progress(state) if state else f"<p>{idle}</p>"


def cancel(engine: Engine, kind: Kind, sent: str, nothing: str) -> None:
    """Ask job ``kind`` to stop and say so (or that none runs)."""
    if engine.jobs.cancel(kind):
        gr.Info(sent)
    else:
        gr.Warning(nothing)
