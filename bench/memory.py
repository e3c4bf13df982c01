"""Memory: resident memory of a process serving all four variants (the base model, one adapter on it, a four-way
answer with RAG context) against a process serving the base model alone (one plain answer). Target: <= 1.15 —
one base model serves every variant, never a copy per variant. Each side runs in its own fresh process.

    .venv/bin/python -m bench memory [--quick | --smoke]

``--smoke`` loads the model twice, not three times: the two processes start at once, the base model's trains the
small adapter once it has measured (the parent loads no model) and the other waits for it; a few new tokens.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .report import Figure, report, size

QUESTION = "Who founded Halvorsen Cycle Works?"
CONTEXT = "Halvorsen Cycle Works was founded in 1934 by Einar Halvorsen in a rented workshop in Drammen."
NEW_TOKENS = {"full": 24, "quick": 24, "smoke": 4}


def _rss_mb() -> dict:
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return {k: int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM")}


def _train(generator, out: Path) -> Path:
    from ragft.finetune import TrainConfig, qa_examples, train_adapter

    return train_adapter(generator, qa_examples([{"question": QUESTION, "answer": "Einar Halvorsen"}]), out,
                         TrainConfig(max_steps=1, batch_size=1))


def _child(kind: str, adapter: str, flags: list[str]) -> None:
    from ragft.backend import BASE
    from ragft.chat import build_messages
    from ragft.generation import DecodeSettings, generate_batch
    from ragft.models import load_generator
    from ragft.store import Hit

    smoke = size(flags) == "smoke"
    generator = load_generator()
    decode = DecodeSettings(NEW_TOKENS[size(flags)])
    if kind == "base":
        generate_batch(generator, [build_messages(QUESTION)], [BASE], decode)
        rss = _rss_mb()
        if smoke:  # measured: now the adapter the other process waits for
            _train(generator, Path(adapter))
    else:
        deadline = time.time() + 600
        while smoke and not Path(adapter).is_dir():  # the base model's process is training it (moved in when done)
            if time.time() > deadline:
                raise SystemExit(f"bench memory: no adapter at {adapter} after 600 s")
            time.sleep(0.2)
        generator.ensure_adapter("bench", Path(adapter))
        hits = [Hit("a.txt", 0, 1.0, CONTEXT)]
        convs = [build_messages(QUESTION), build_messages(QUESTION, hits)] * 2
        generate_batch(generator, convs, [BASE, BASE, "bench", "bench"], decode)
        rss = _rss_mb()
    print(json.dumps(rss))


def _command(kind: str, adapter: Path, flags: list[str]) -> list[str]:
    return [sys.executable, "-m", "bench.memory", kind, str(adapter), *flags]


def _measure(kind: str, adapter: Path, flags: list[str]) -> dict:
    out = subprocess.run(_command(kind, adapter, flags), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _measure_both(adapter: Path, flags: list[str]) -> tuple[dict, dict]:
    """Smoke: both processes at once (stderr passes through); the base model's makes the adapter."""
    procs = [subprocess.Popen(_command(kind, adapter, flags), stdout=subprocess.PIPE, text=True)
             for kind in ("base", "four")]
    results = []
    try:
        for proc in procs:
            out, _ = proc.communicate()
            if proc.returncode:
                raise subprocess.CalledProcessError(proc.returncode, proc.args, out)
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results[0], results[1]


def main(flags: list[str]) -> list[Figure]:
    from ragft.models import load_generator

    folder = Path(tempfile.mkdtemp(prefix="ragft-bench-memory-"))
    if size(flags) == "smoke":
        base, four = _measure_both(folder / "bench", ["--smoke"])
    else:
        adapter = _train(load_generator(), folder / "bench")
        base, four = _measure("base", adapter, flags), _measure("four", adapter, flags)
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
    _child(sys.argv[1], sys.argv[2], sys.argv[3:])
