"""Command line over the same engine as the UI: one function per command, ``cmd_<name>(engine, args)``.

    python -m ragft ingest notes.md paper.pdf
    python -m ragft docs
    python -m ragft search "when was the glimmerphone invented?"
    python -m ragft ask "when was the glimmerphone invented?" --mode all --sources
    python -m ragft train --data qa.jsonl --raft --max-steps 60
    python -m ragft eval --generate 20 --out results.json
    python -m ragft serve            # the web UI at http://127.0.0.1:7860

Results go to stdout (``--json``: machine-readable). A mistake to fix is one line on stderr, ``ragft: error: ...``,
and exit code 2. Progress of the long commands goes to stderr through tqdm: a bar on a terminal, a line per quarter
of the work in a log.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from ..errors import RagftError
from .commands import cmd_serve
from .output import CLIError, ProgressBar, format_table
from .parser import _Exit, build_parser

if TYPE_CHECKING:
    from ..engine import Engine

__all__ = ["ProgressBar", "build_parser", "format_table", "main"]

# What the CLI adds to an error whose fix lies in another command (`RagftError.fix`).
FIX_HINTS = {
    "documents": " (python -m ragft ingest FILE)",
    "adapters": " (python -m ragft adapters lists them, adapters --delete NAME deletes one; train trains one)",
}


@contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Library chatter off for a CLI user; restored afterwards, so an in-process caller keeps its own settings."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet = {
        # stderr is for errors and our progress: no "Loading weights" bars (read by huggingface_hub on import)
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TQDM_DISABLE": "1",  # transformers' GGUF de-quantizing bar is a bare tqdm
    }
    saved = {k: os.environ.get(k) for k in quiet}
    for k, value in quiet.items():
        os.environ.setdefault(k, value)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation notes are not for users
            # peft looks for a config.json beside the base model to check the vocabulary; a GGUF file has none.
            warnings.filterwarnings("ignore", message="Could not find a config file")
            yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main(argv: list[str] | None = None, engine: Engine | None = None) -> int:
    """``python -m ragft ARGV``, callable in-process; returns the exit code: 0 done, 1 some files were refused
    (ingest), 2 a mistake to fix (one line on stderr), 130 interrupted.

    ``engine``: an `Engine` to use (tests share their loaded models); by default one from the environment.
    """
    with _quiet_libraries():
        try:
            args = build_parser().parse_args(argv)
            if engine is None and args.func is not cmd_serve:
                from ..engine import Engine

                engine = Engine()
            return args.func(engine, args)
        except _Exit as exc:  # --help
            return exc.status
        except (CLIError, RagftError) as exc:  # a mistake to fix; anything else is a bug and keeps its traceback
            print(f"ragft: error: {exc}{FIX_HINTS.get(getattr(exc, 'fix', ''), '')}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130
