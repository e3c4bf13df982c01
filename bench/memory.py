"""Memory: resident memory of a process serving all four variants (the base model, one adapter on it, a four-way
answer with RAG context) against a process serving the base model alone (one plain answer). Target: <= 1.15 —
one base model serves every variant, never a copy per variant. Each side runs in its own fresh process.

    .venv/bin/python -m bench memory [--quick | --smoke]
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .report import Figure, report

QUESTION = "Who founded Halvorsen Cycle Works?"
CONTEXT = "Halvorsen Cycle Works was founded in 1934 by Einar Halvorsen in a rented workshop in Drammen."


def _rss_mb() -> dict:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM")}


def _child(kind: str, adapter: str) -> None:
    from ragft.backend import BASE
    from ragft.chat import build_messages
    from ragft.generation import DecodeSettings, generate_batch
    from ragft.models import load_generator
    from ragft.store import Hit

    generator = load_generator()
    decode = DecodeSettings(24)
    if kind == "base":
        generate_batch(generator, [build_messages(QUESTION)], [BASE], decode)
    else:
        generator.ensure_adapter("bench", Path(adapter))
        hits = [Hit("a.txt", 0, 1.0, CONTEXT)]
        convs = [build_messages(QUESTION), build_messages(QUESTION, hits)] * 2
        generate_batch(generator, convs, [BASE, BASE, "bench", "bench"], decode)
    print(json.dumps(_rss_mb()))


def _measure(kind: str, adapter: Path) -> dict:
    out = subprocess.run([sys.executable, "-m", "bench.memory", kind, str(adapter)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(flags: list[str]) -> list[Figure]:
    from ragft.finetune import TrainConfig, qa_examples, train_adapter
    from ragft.models import load_generator

    folder = Path(tempfile.mkdtemp(prefix="ragft-bench-memory-"))
    adapter = train_adapter(load_generator(), qa_examples([{"question": QUESTION, "answer": "Einar Halvorsen"}]),
                            folder / "bench", TrainConfig(max_steps=1, batch_size=1))
    base, four = _measure("base", adapter), _measure("four", adapter)
    figures = [
        Figure("resident memory, four variants", round(four["VmRSS"]), round(base["VmRSS"]), "MB", "<= 1.15",
               "base model alone"),
        Figure("peak memory, four variants", round(four["VmHWM"]), round(base["VmHWM"]), "MB", "",
               "base model alone"),
    ]
    report("memory", figures, {"base": base, "four": four})
    shutil.rmtree(folder, ignore_errors=True)
    return figures


if __name__ == "__main__":
    _child(sys.argv[1], sys.argv[2])
