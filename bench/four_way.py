"""Four-way chat, in-process (transformers + peft) and on vLLM (the CPU build, started here), in one run.

Per engine, for each question, as the Chat tab asks them:
  four-way      the four panes (plain, RAG, fine-tuned, RAG + fine-tuned) in one call: time until all four are
                done, until the first pane shows text, until every pane shows text
  sequential    the same four variants asked one at a time (the reference): their total time, and the time until
                the RAG answer alone shows its first text
Ratios (targets from the Performance issue, CPU): four-way done / sequential total <= 0.7; first pane / RAG first
text <= 0.5; all panes / RAG first text <= 2.5. Same documents (bench/recipe/docs), same adapter (a few real
training steps), greedy, MAX_NEW new tokens; a warm-up question first on each engine.

    .venv/bin/python -m bench four_way [--quick]
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
QUESTIONS = [
    "How much does the Aquila AX-40 pump weigh when dry?",
    "Who founded Halvorsen Cycle Works?",
    "In which year was Mirela Vostrikova elected to the Academy of Sciences?",
    "How tall is the spire of St Botolph's Church?",
]
WARM_UP = "What was the Fjordløper?"
MAX_NEW = 48
TARGETS = {"four_way_over_sequential": 0.7, "first_pane_over_rag_first_text": 0.5,
           "all_panes_over_rag_first_text": 2.5}


def _timed_ask(engine, question: str, adapter: str, mode: str = "all") -> dict:
    """Seconds until done, until the first pane shows text and until every pane shows text."""
    from ragft.generation import DecodeSettings

    start = time.perf_counter()
    first = every = None
    for result in engine.ask(question, mode=mode, adapter=adapter, decode=DecodeSettings(MAX_NEW)):
        shown = [t for t in result.answers.values() if t.strip()]
        now = time.perf_counter() - start
        if first is None and shown:
            first = now
        if every is None and result.answers and len(shown) == len(result.answers):
            every = now
    done = time.perf_counter() - start
    return {"done": done, "first": first or done, "every": every or done}


def _measure(engine, adapter: str, questions: list[str]) -> dict:
    # Warm-up on another question: first-call costs (adapter registration, graph set-up) are not steady state, and
    # a timed question asked before would hit vLLM's prefix cache.
    _timed_ask(engine, WARM_UP, adapter)
    four, seq, rag_first = [], [], []
    for q in questions:
        four.append(_timed_ask(engine, q, adapter))
        alone = {m: _timed_ask(engine, q, adapter, m) for m in ("plain", "rag", "ft", "rag+ft")}
        seq.append(sum(a["done"] for a in alone.values()))
        rag_first.append(alone["rag"]["first"])
    med = lambda xs: round(statistics.median(xs), 2)  # noqa: E731
    figures = {
        "four_way_done_s": med([f["done"] for f in four]),
        "first_pane_s": med([f["first"] for f in four]),
        "all_panes_s": med([f["every"] for f in four]),
        "sequential_total_s": med(seq),
        "rag_first_text_s": med(rag_first),
    }
    figures["four_way_over_sequential"] = round(figures["four_way_done_s"] / figures["sequential_total_s"], 2)
    figures["first_pane_over_rag_first_text"] = round(figures["first_pane_s"] / figures["rag_first_text_s"], 2)
    figures["all_panes_over_rag_first_text"] = round(figures["all_panes_s"] / figures["rag_first_text_s"], 2)
    return figures


def main(argv: list[str] | None = None) -> None:
    from ragft.config import Settings
    from ragft.engine import Engine
    from ragft.finetune import TrainConfig, qa_examples, train_adapter

    quick = "--quick" in (sys.argv[1:] if argv is None else argv)
    questions = QUESTIONS[:1] if quick else QUESTIONS
    data = Path(tempfile.mkdtemp(prefix="ragft-bench-"))
    os.environ["RAGFT_DATA_DIR"] = str(data)
    local = Engine(Settings.from_env({"RAGFT_DATA_DIR": str(data)}))
    local.ingest([(p, p.name) for p in sorted((ROOT / "recipe" / "docs").iterdir())])
    pairs = [{"question": q, "answer": "I do not know."} for q in QUESTIONS]  # a real adapter; its content is moot
    train_adapter(local.generator, qa_examples(pairs), local.settings.adapters_dir / "bench",
                  TrainConfig(max_steps=2, batch_size=4))
    results = {"questions": len(questions), "max_new_tokens": MAX_NEW, "cpu_count": os.cpu_count(),
               "targets": TARGETS}
    print("four-way chat: in-process ...", flush=True)
    results["local"] = _measure(local, "bench", questions)

    remote = Engine(Settings.from_env({"RAGFT_DATA_DIR": str(data), "RAGFT_ENGINE": "vllm"}))
    remote._embedder = local.embedder
    if getattr(remote.generator, "client", None) is None:
        print(f"vLLM unavailable: {remote.engine_note}", file=sys.stderr)
        results["vllm"] = {"error": remote.engine_note}
    else:
        print("four-way chat: vLLM ...", flush=True)
        results["vllm"] = _measure(remote, "bench", questions)
        remote.close()

    out = ROOT / "results" / "four_way.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{'figure':34} {'engine':8} {'value':>8} {'reference':>10} {'ratio':>6} {'target':>7}")
    rows = [("four-way done vs sequential", "four_way_done_s", "sequential_total_s", "four_way_over_sequential"),
            ("first pane vs RAG first text", "first_pane_s", "rag_first_text_s", "first_pane_over_rag_first_text"),
            ("all panes vs RAG first text", "all_panes_s", "rag_first_text_s", "all_panes_over_rag_first_text")]
    for engine in ("local", "vllm"):
        r = results[engine]
        if "error" in r:
            continue
        for label, value, ref, ratio in rows:
            print(f"{label:34} {engine:8} {r[value]:>7}s {r[ref]:>9}s {r[ratio]:>6} {'<= ' + str(TARGETS[ratio]):>7}")
    if "error" not in results["vllm"]:
        print(f"{'four-way done, vLLM vs in-process':34} {'both':8} {results['vllm']['four_way_done_s']:>7}s "
              f"{results['local']['four_way_done_s']:>9}s "
              f"{round(results['vllm']['four_way_done_s'] / results['local']['four_way_done_s'], 2):>6}")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
