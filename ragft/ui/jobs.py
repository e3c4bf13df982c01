"""How a tab shows a background job (training, evaluation, experiment): one progress block for all three."""

from __future__ import annotations

import html

from ..experiment import format_duration
from ..jobs import JobState


def job_html(state: JobState, elem_id: str, line: str = "", below: str = "") -> str:
    """``<name> — <status> · <line> · about N left``, a progress bar, then ``below`` (plain text, escaped here;
    ``line`` is escaped by the caller)."""
    eta = f" · about {format_duration(state.eta_s)} left" if state.eta_s is not None and state.active else ""
    return (f"<div id='{elem_id}'><b>{html.escape(state.name)}</b> — {state.status}{' · ' + line if line else ''}"
            f"{eta}<br><progress value='{state.step}' max='{max(state.total, 1)}' style='width:100%'></progress>"
            f"{'<br>' + html.escape(below) if below else ''}</div>")
