"""Four-way chat, in-process (transformers + peft) and on vLLM (the CPU build, started here), in one run.

Per engine, for each question, as the Chat tab asks them:
  four-way      the four panes (plain, RAG, fine-tuned, RAG + fine-tuned) in one call: time until all four are
                done, until the first pane shows text, until every pane shows text
  sequential    the same four variants asked one at a time (the reference): their total time, and the time until
                the RAG answer alone shows its first text
Ratios (targets from the Performance issue, CPU): four-way done / sequential total <= 0.7; first pane / RAG first
text <= 0.5; all panes / RAG first text <= 2.5. Same documents (bench/recipe/docs), same adapter (a few real
training steps), greedy, MAX_NEW new tokens; a warm-up question first on each engine. Tokens/s per pane: each
pane's new tokens over the time until its text stopped growing, against the RAG answer asked alone.

    .venv/bin/python -m bench four_way [--quick | --smoke] [--engine=local|vllm]
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from .report import Figure, report, size

ROOT = Path(__file__).resolve().parent
QUESTIONS = [
    "How much does the Aquila AX-40 pump weigh when dry?",
    "Who founded Halvorsen Cycle Works?",
    "In which year was Mirela Vostrikova elected to the Academy of Sciences?",
    "How tall is the spire of St Botolph's Church?",
]
WARM_UP = "What was the Fjordløper?"
MAX_NEW = 48
SMOKE_NEW = 4  # smoke: a few new tokens, no warm-up, one document, the top chunk only, one training step


def _timed_ask(engine, question: str, adapter: str, mode: str, max_new: int) -> dict:
    """Seconds until done, until the first pane shows text, until every pane does; tokens/s of each pane."""
    from ragft.generation import DecodeSettings

    start = time.perf_counter()
    first = every = None
    grew: dict[str, float] = {}
    texts: dict[str, str] = {}
    for result in engine.ask(question, mode=mode, adapter=adapter, decode=DecodeSettings(max_new)):
        now = time.perf_counter() - start
        for v, t in result.answers.items():
            if t.strip() and t != texts.get(v):
                texts[v], grew[v] = t, now
        shown = [t for t in result.answers.values() if t.strip()]
        if first is None and shown:
            first = now
        if every is None and result.answers and len(shown) == len(result.answers):
            every = now
    done = time.perf_counter() - start
    tok = engine.generator.tokenizer
    rates = [len(tok(t, add_special_tokens=False)["input_ids"]) / grew[v] for v, t in texts.items() if grew[v] > 0]
    return {"done": done, "first": first or done, "every": every or done, "pane_tok_s": statistics.mean(rates or [0])}


def _measure(engine, adapter: str, questions: list[str], max_new: int, warm_up: bool = True) -> dict:
    # Warm-up on another question: first-call costs (adapter registration, graph set-up) are not steady state, and
    # a timed question asked before would hit vLLM's prefix cache.
    if warm_up:
        _timed_ask(engine, WARM_UP, adapter, "all", max_new)
    four, seq, rag = [], [], []
    for q in questions:
        four.append(_timed_ask(engine, q, adapter, "all", max_new))
        alone = {m: _timed_ask(engine, q, adapter, m, max_new) for m in ("plain", "rag", "ft", "rag+ft")}
        seq.append(sum(a["done"] for a in alone.values()))
        rag.append(alone["rag"])
    med = lambda xs: round(statistics.median(xs), 3)  # noqa: E731
    return {
        "four_way_done_s": med([f["done"] for f in four]),
        "first_pane_s": med([f["first"] for f in four]),
        "all_panes_s": med([f["every"] for f in four]),
        "pane_tok_s": med([f["pane_tok_s"] for f in four]),
        "sequential_total_s": med(seq),
        "rag_first_text_s": med([r["first"] for r in rag]),
        "rag_alone_tok_s": med([r["pane_tok_s"] for r in rag]),
    }


def figures_of(engine: str, r: dict) -> list[Figure]:
    return [
        Figure(f"{engine}: four variants, wall", r["four_way_done_s"], r["sequential_total_s"], "s", "<= 0.7",
               "4 asked in turn"),
        Figure(f"{engine}: first pane shows text", r["first_pane_s"], r["rag_first_text_s"], "s", "<= 0.5",
               "RAG alone, 1st text"),
        Figure(f"{engine}: all four panes show text", r["all_panes_s"], r["rag_first_text_s"], "s", "<= 2.5",
               "RAG alone, 1st text"),
        Figure(f"{engine}: tokens/s per pane", r["pane_tok_s"], r["rag_alone_tok_s"], "tok/s", "",
               "RAG alone"),
    ]


def prepare(smoke: str = "") -> object:
    """An in-process engine on a fresh data dir holding bench/recipe's documents and a small real adapter "bench".
    ``smoke``: the one document to hold (a smoke run's, which also retrieves one chunk and trains one step)."""
    from ragft.config import Settings
    from ragft.engine import Engine
    from ragft.finetune import TrainConfig, qa_examples, train_adapter

    data = Path(tempfile.mkdtemp(prefix="ragft-bench-"))
    os.environ["RAGFT_DATA_DIR"] = str(data)
    local = Engine(Settings.from_env({"RAGFT_DATA_DIR": str(data), **({"RAGFT_TOP_K": "1"} if smoke else {})}))
    local.ingest([(p, p.name) for p in sorted((ROOT / "recipe" / "docs").iterdir()) if p.name == (smoke or p.name)])
    pairs = [{"question": q, "answer": "I do not know."} for q in QUESTIONS]  # a real adapter; its content is moot
    train_adapter(local.generator, qa_examples(pairs), local.settings.adapters_dir / "bench",
                  TrainConfig(max_steps=2, batch_size=4) if not smoke else TrainConfig(max_steps=1, batch_size=1))
    return local


def vllm_engine(local, bench: str):
    """An engine on the same data dir generating on vLLM (started here), or None when it cannot start (said why)."""
    from ragft.config import Settings
    from ragft.engine import Engine

    # No prefix cache: each question is asked several times (four-way, then each variant alone), and a cached
    # prompt would make whichever comes second look fast.
    remote = Engine(Settings.from_env({"RAGFT_DATA_DIR": str(local.settings.data_dir), "RAGFT_ENGINE": "vllm",
                                       "RAGFT_TOP_K": str(local.settings.top_k),
                                       "RAGFT_VLLM_ARGS": "--no-enable-prefix-caching"}),
                    embedder=local.embedder)
    if getattr(remote.generator, "client", None) is None:
        print(f"{bench}: vLLM unavailable, its figures left out: {remote.engine_note}", file=sys.stderr)
        return None
    return remote


def engines_of(flags: list[str], mode: str) -> list[str]:
    return [f.split("=", 1)[1] for f in flags if f.startswith("--engine=")] or (
        ["local"] if mode == "smoke" else ["local", "vllm"])


def main(flags: list[str]) -> list[Figure]:
    mode = size(flags)
    questions = QUESTIONS[:1] if mode != "full" else QUESTIONS
    max_new = SMOKE_NEW if mode == "smoke" else MAX_NEW
    engines = engines_of(flags, mode)
    local = prepare("aquila_manual.md" if mode == "smoke" else "")  # the document of QUESTIONS[0]
    details: dict = {"questions": len(questions), "max_new_tokens": max_new}
    figures: list[Figure] = []
    if "local" in engines:
        details["local"] = _measure(local, "bench", questions, max_new, mode != "smoke")
        figures += figures_of("in-process", details["local"])
    if "vllm" in engines:
        remote = vllm_engine(local, "four_way")
        if remote is None:
            details["vllm"] = {"error": "vLLM unavailable"}
        else:
            details["vllm"] = _measure(remote, "bench", questions, max_new, mode != "smoke")
            remote.close()
            figures += figures_of("vLLM", details["vllm"])
            if "local" in details:
                figures.append(Figure("four variants, vLLM vs in-process", details["vllm"]["four_way_done_s"],
                                      details["local"]["four_way_done_s"], "s", "", "in-process"))
    report("four_way", figures, details)
    return figures
