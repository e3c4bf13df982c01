"""The four variants every screen compares: their ids, labels, and what each needs.

    plain    the base model alone
    rag      the base model with the retrieved chunks in its prompt
    ft       the picked adapter (fine-tuned), no retrieval
    rag+ft   the adapter with the retrieved chunks

Chat, evaluation, the experiment, its report and the UI, CLI and API all name them from here.
"""

from __future__ import annotations

VARIANTS = ("plain", "rag", "ft", "rag+ft")
LABELS = {"plain": "Plain", "rag": "RAG", "ft": "Fine-tuned", "rag+ft": "RAG + Fine-tuned"}
RETRIEVES = {"rag", "rag+ft"}  # retrieved chunks in the prompt
NEEDS_ADAPTER = {"ft", "rag+ft"}  # run with the picked adapter; without one they say so instead of answering
MODE_VARIANTS = {"plain": ("plain",), "rag": ("rag",), "ft": ("ft",), "rag+ft": ("rag+ft",), "all": VARIANTS}
