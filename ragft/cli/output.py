"""What the CLI prints: results (text or ``--json``), tables, a progress bar on stderr, and one-line errors."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Self

if TYPE_CHECKING:
    from tqdm import tqdm

    from ..engine import Engine
    from ..jobs import JobState

POLL_S = 0.5  # how often a background job's progress is read


class CLIError(Exception):
    """A user mistake, printed as one line."""


def _print(args, data, text: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text)


def format_table(rows: list[dict]) -> str:
    """`EvalResult.summary` rows as aligned text: rates as percentages, n/a where a metric does not apply."""
    def cell(key: str, value) -> str:
        if value is None:
            return "n/a"
        if key in ("accuracy", "exact_match", "token_f1", "contains", "answer_in_chunks") or key.startswith("recall@"):
            return f"{100 * value:.0f}%"
        if key == "s_per_answer":
            return f"{value:.2f}"
        if key == "tokens_per_s":
            return f"{value:.1f}"
        return str(value)

    keys = [k for k in rows[0] if k not in ("note", "accuracy_ci")]
    table = [keys] + [[r["accuracy_ci"] if k == "accuracy" and r["answered"] else cell(k, r[k]) for k in keys]
                      for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(keys))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in table]
    return "\n".join(lines + [f"{r['variant']}: {r['note']}" for r in rows if r["note"]])


class ProgressBar:
    """A long command's progress on stderr, drawn by tqdm.

    On a terminal: a bar redrawn in place. In a log (stderr not a terminal) each redraw would be kept — one per
    update, ~1100 for a 60-step training run — so there it writes one line as each quarter of the work is done, at
    most four per run (``in_logs=False``: none). With ``--json``: nothing.
    """

    def __init__(self, args, desc: str, unit: str = "", in_logs: bool = True):
        self.tty = getattr(sys.stderr, "isatty", lambda: False)()
        self.on = not args.json and (self.tty or in_logs)
        self.desc, self.unit = desc, unit
        self.format = ("{desc}: {percentage:3.0f}%" + ("|{bar}|" if self.tty else "")
                       + (" {n_fmt}/{total_fmt} {unit}" if unit else "") + " [{elapsed}<{remaining}]{postfix}")
        self.bar: tqdm | None = None  # the terminal's tqdm bar, opened on the first update (not before an early error)
        self.started = time.monotonic()
        self.n: float = 0
        self.total: float = 0
        self.note = ""
        self.quarter = 0
        self.logged: float | None = None

    def show(self, n: float, total: float, note: str = "") -> None:
        """``n`` of ``total`` done (a total of 0: not known yet, nothing shown)."""
        if not self.on or not total:
            return
        self.n, self.total, self.note = n, total, note
        if self.tty:
            if self.bar is None:
                from tqdm import tqdm

                # disable=False: main sets TQDM_DISABLE for the libraries' own bars, not this one
                self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, bar_format=self.format, file=sys.stderr,
                                disable=False, dynamic_ncols=True, leave=True)
            self.bar.total = total
            self.bar.set_postfix_str(note, refresh=False)
            self.bar.update(n - self.bar.n)
        elif (quarter := int(4 * n / total)) > self.quarter:
            self.quarter = quarter
            self._log()

    def _log(self) -> None:
        from tqdm import tqdm

        print(tqdm.format_meter(self.n, self.total, time.monotonic() - self.started, prefix=self.desc,
                                unit=self.unit, bar_format=self.format, postfix=self.note), file=sys.stderr, flush=True)
        self.logged = self.n

    def write(self, text: str) -> None:
        """A line on stderr that does not break the bar."""
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.on and not self.tty and self.total and self.logged != self.n:  # stopped inside a quarter
            self._log()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _follow_job(engine: Engine, bar: ProgressBar, note: Callable[[JobState], str], cancelling: str) -> JobState:
    """Show the running job's progress until it ends (Ctrl-C cancels it, keeping what it did); its final state."""
    state = engine.jobs.state
    with bar:
        try:
            while engine.jobs.wait(POLL_S).active:
                bar.show(state.step, state.total, note(state))
        except KeyboardInterrupt:
            engine.jobs.cancel()
            bar.write(cancelling)
        # The job reports its end just before its thread ends; exiting while that thread still frees the model's
        # tensors aborts the interpreter ("terminate called without an active exception"), so join it first.
        engine.jobs.wait()
        bar.show(state.step, state.total, note(state))
    if state.status == "failed":
        raise CLIError(state.message)
    return state
