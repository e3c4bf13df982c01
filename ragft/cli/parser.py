"""The command line's flags, read from the config fields that declare them (range, default, help)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from ..config import Settings
from ..evaluate import EvalConfig
from ..experiment import PRESETS, ExperimentConfig
from ..finetune import TrainConfig
from ..knobs import bounds, default, help_of, range_of
from ..questions import MAX_CHOICES, SPLIT_MODES
from ..variants import MODE_VARIANTS
from .commands import (
    cmd_adapters,
    cmd_ask,
    cmd_delete,
    cmd_docs,
    cmd_eval,
    cmd_experiment,
    cmd_ingest,
    cmd_search,
    cmd_serve,
    cmd_train,
)
from .output import CLIError


class _Exit(Exception):
    """argparse is done (``--help``): `main` returns ``status`` instead of the process exiting."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + traceback-looking text
        raise CLIError(f"{message} (see: python -m {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            self._print_message(message, sys.stderr)
        raise _Exit(status)


def _in_range(lo: float, hi: float, kind: type = int) -> Callable[[str], int | float]:
    """An argparse type: a number within ``lo..hi``, else argparse's usage error (exit 2). For flags that no config
    checks on the way (they go straight to the engine)."""

    def parse(text: str):
        value = kind(text)  # a ValueError: argparse says "invalid int value: 'many'"
        if not lo <= value <= hi:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be between {lo:g} and {hi:g}, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _help(cls, field: str, what: str = "", default_text: str = "") -> str:
    """A flag's help from its config field: what it is, its range and its default."""
    text = f"{what or help_of(cls, field)} ({range_of(cls, field)}; default: {default_text or default(cls, field)})"
    return text.replace("%", "%%")  # argparse formats help with %


def _setting(parser, field: str, *flags: str, kind: type = int, what: str = "") -> None:
    """A flag overriding `Settings` field ``field`` (default: its RAGFT_ variable), checked by argparse."""
    from_env = f"RAGFT_{field.upper()} or {default(Settings, field)}"
    parser.add_argument(*flags, dest=field, type=_in_range(*bounds(Settings, field), kind), default=None,
                        metavar=_metavar(flags), help=_help(Settings, field, what, from_env))


def _knob(parser, cls, field: str, *flags: str, kind: type = int, default_text: str = "") -> None:
    """A flag for ``cls.field``; the config checks the value when it is built."""
    parser.add_argument(*flags, dest=field, type=kind, default=None, metavar=_metavar(flags),
                        help=_help(cls, field, "", default_text))


def _metavar(flags: tuple[str, ...]) -> str:
    return flags[-1].lstrip("-").replace("-", "_").upper()  # --lr LR, not --lr LEARNING_RATE




def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output (and no progress)")
    p = _Parser(prog="ragft", description="RAG vs fine-tuning on your own documents.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, func, help: str, parents=(common,)) -> argparse.ArgumentParser:
        s = sub.add_parser(name, parents=list(parents), help=help, description=help)
        s.set_defaults(func=func)
        return s

    s = command("ingest", cmd_ingest, "add files to the document store")
    s.add_argument("files", nargs="+", type=Path)
    command("docs", cmd_docs, "list stored documents")
    s = command("delete", cmd_delete, "delete a stored document and its chunks")
    s.add_argument("name")
    s = command("search", cmd_search, "top-k chunks for a query")
    s.add_argument("query")
    _setting(s, "top_k", "-k", "--top-k", what="chunks to show")
    s = command("ask", cmd_ask, "answer with plain, RAG, fine-tuned and/or combined")
    s.add_argument("question")
    s.add_argument("--mode", choices=list(MODE_VARIANTS), default="all")
    s.add_argument("--adapter", default=None, help="adapter name (see: python -m ragft adapters); default: newest")
    s.add_argument("--sources", action="store_true", help="also print the retrieved chunks")
    _setting(s, "top_k", "-k", "--top-k")
    _setting(s, "max_new_tokens", "--max-new-tokens")
    _setting(s, "temperature", "--temperature", kind=float, what="sampling temperature, 0 = greedy")
    s = command("adapters", cmd_adapters, "list saved adapters, newest first (or delete one)")
    s.add_argument("--delete", metavar="NAME", help="delete adapter NAME (its folder, weights and run record)")

    s = command("train", cmd_train, "train a LoRA adapter")
    s.add_argument("--data", required=True,
                   help="'docs' (the stored documents), a question/answer .jsonl file or a saved question set")
    s.add_argument("--raft", action="store_true", help="train QA with retrieved context (gold + distractor chunks)")
    _knob(s, TrainConfig, "max_steps", "--max-steps")
    _knob(s, TrainConfig, "epochs", "--epochs", kind=float)
    _knob(s, TrainConfig, "learning_rate", "--lr", kind=float)
    _knob(s, TrainConfig, "rank", "--rank")
    _knob(s, TrainConfig, "alpha", "--alpha")
    _knob(s, TrainConfig, "batch_size", "--batch-size")
    s.add_argument("--name", default="adapter", help="adapter name; a version suffix -vN is added")

    s = command("eval", cmd_eval, "score plain, RAG, fine-tuned and combined on a question set")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--questions", help="a question set: a .jsonl file, or the name of a saved set")
    g.add_argument("--generate", type=int, metavar="N", help="make N fill-in-the-blank questions from the documents")
    s.add_argument("--choices", type=int, default=0,
                   help=f"with --generate: multiple choice with this many options (2..{MAX_CHOICES}; 0: open "
                        "questions), scored by log-likelihood")
    s.add_argument("--save-set", metavar="NAME", help="with --generate: also save the questions as a named set")
    s.add_argument("--adapter", default=None, help="adapter for the fine-tuned variants (default: newest; 'none')")
    s.add_argument("--variants", default="all", help="comma-separated: plain,rag,ft,rag+ft (default: all)")
    _knob(s, EvalConfig, "top_k", "-k", "--top-k", default_text=f"RAGFT_TOP_K or {default(Settings, 'top_k')}")
    _knob(s, EvalConfig, "max_new_tokens", "--max-new-tokens")
    _knob(s, EvalConfig, "batch_size", "--batch-size")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", type=Path, help="write the results: .json (everything) or .csv (one row per answer)")

    s = command("experiment", cmd_experiment,
                "RAG, fine-tuning, or both? questions -> split -> train -> evaluate -> verdict")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--questions", type=int, metavar="N", help=_help(ExperimentConfig, "questions"))
    g.add_argument("--set", metavar="NAME|FILE", help="a saved question set, or a .jsonl file")
    s.add_argument("--split", choices=list(SPLIT_MODES), help="default: paraphrase (heldout for hand-written sets)")
    s.add_argument("--method", choices=["cloze", "llm"],
                   help="how to make questions (default: llm with a configured RAGFT_BASE_MODEL, else cloze)")
    s.add_argument("--train", help="adapters to train, comma-separated: qa,raft,docs (default: qa,raft)")
    s.add_argument("--preset", choices=list(PRESETS), default="quick", help="quick (~5 min on 2 cores) or thorough")
    _knob(s, ExperimentConfig, "steps", "--steps")
    s.add_argument("--documents", help="comma-separated document names to ask about (default: all stored)")
    s.add_argument("--name", default="experiment", help="prefix of the adapters and the report folder")
    s.add_argument("--my-questions", type=Path, metavar="FILE",
                   help="your own questions, never trained on; the verdict speaks for them first: a .jsonl set, or "
                        "a text file with one 'question | expected answer' a line")
    s.add_argument("--out", type=Path, help="also copy the report (JSON, CSV, HTML) into this folder")
    s.add_argument("--estimate", action="store_true", help="print the plan and its time estimate, then stop")

    s = command("serve", cmd_serve, "start the web UI", parents=())
    s.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    s.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    return p
