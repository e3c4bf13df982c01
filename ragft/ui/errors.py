"""Errors at the UI edge. A `RagftError` is something the user can fix: it becomes a warning toast and the
handler's fallback outputs (usually "❌ message" in the tab's status line). Anything else is a bug and keeps its
traceback (Gradio shows its own error)."""

from __future__ import annotations

from collections.abc import Callable

import gradio as gr

from ..errors import RagftError, instead_of_raising
from . import messages as M


def user_message(exc: RagftError) -> str:
    """The core's message, plus the tab that fixes it when that is another one."""
    where = M.FIX_IN_TAB.get(exc.fix, "")
    return f"{exc} {where}" if where else str(exc)


def refuses(fallback: Callable[..., object]):
    """Decorate a Gradio handler (plain or generator): on a `RagftError` show a warning and return (or yield)
    ``fallback("❌ message", *args)``, where ``args`` are the handler's own inputs.

        @refuses(lambda text, *_: (text, gr.update(visible=False)))
        def show_preview(values): ...
    """

    def refused(exc: RagftError, args: tuple, kwargs: dict):
        message = user_message(exc)
        gr.Warning(message)
        return fallback(f"❌ {message}", *args, **kwargs)

    return lambda handler: instead_of_raising(handler, refused)
