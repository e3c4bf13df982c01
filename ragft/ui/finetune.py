"""Fine-tune tab (training from the UI lands with its own issue; adapters dropped in the folder already work)."""

from __future__ import annotations

import gradio as gr

from ..engine import Engine
from . import messages as M


def create_finetune_tab(engine: Engine) -> dict:
    gr.Markdown(M.FINETUNE_COMING.format(dir=engine.settings.adapters_dir))
    return {}
