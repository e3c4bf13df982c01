"""Four-way chat, local (in-process transformers + peft) vs vLLM (the CPU build, started here), in one run.

For each question the four panes (plain, RAG, fine-tuned, RAG + fine-tuned) are asked through the engine as the
Chat tab asks them; measured: the wall time until all four answers are done, and the time until every pane shows
text. Same documents (bench/recipe/docs), same adapter (a few real training steps), same greedy decoding and
max_new_tokens on both; each engine answers every question once before timing (warm-up), then QUESTIONS are timed.

    .venv/bin/python -m bench four_way
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


def _timed_ask(engine, question: str, adapter: str) -> tuple[float, float]:
    from ragft.generation import DecodeSettings

    start = time.perf_counter()
    all_text = None
    for result in engine.ask(question, adapter=adapter, decode=DecodeSettings(MAX_NEW)):
        if all_text is None and len(result.answers) == 4 and all(t.strip() for t in result.answers.values()):
            all_text = time.perf_counter() - start
    done = time.perf_counter() - start
    return done, all_text if all_text is not None else done


def _run(engine, adapter: str) -> dict:
    # Warm-up on another question: first-call costs (adapter registration, graph set-up) are not steady state, and
    # a timed question asked before would hit vLLM's prefix cache.
    _timed_ask(engine, WARM_UP, adapter)
    times = [_timed_ask(engine, q, adapter) for q in QUESTIONS]
    return {"done_s": [round(d, 2) for d, _ in times], "all_panes_text_s": [round(t, 2) for _, t in times],
            "done_median_s": round(statistics.median(d for d, _ in times), 2),
            "all_panes_text_median_s": round(statistics.median(t for _, t in times), 2)}


def main() -> None:
    from ragft.config import Settings
    from ragft.engine import Engine
    from ragft.finetune import TrainConfig, qa_examples, train_adapter

    data = Path(tempfile.mkdtemp(prefix="ragft-bench-"))
    os.environ["RAGFT_DATA_DIR"] = str(data)
    local = Engine(Settings.from_env({"RAGFT_DATA_DIR": str(data)}))
    local.ingest([(p, p.name) for p in sorted((ROOT / "recipe" / "docs").iterdir())])
    pairs = [{"question": q, "answer": "I do not know."} for q in QUESTIONS]  # a real adapter; its content is moot
    train_adapter(local.generator, qa_examples(pairs), local.settings.adapters_dir / "bench",
                  TrainConfig(max_steps=2, batch_size=4))
    results = {"questions": len(QUESTIONS), "max_new_tokens": MAX_NEW, "cpu_count": os.cpu_count()}
    print("four-way chat: local ...", flush=True)
    results["local"] = _run(local, "bench")

    remote = Engine(Settings.from_env({"RAGFT_DATA_DIR": str(data), "RAGFT_ENGINE": "vllm"}))
    remote._embedder = local.embedder
    if remote.engine_line.startswith("⚠️") or not getattr(remote.generator, "client", None):
        print(f"vLLM unavailable: {remote.engine_note}", file=sys.stderr)
        results["vllm"] = {"error": remote.engine_note}
    else:
        print("four-way chat: vLLM ...", flush=True)
        results["vllm"] = _run(remote, "bench")
        remote.close()
        for key in ("done_median_s", "all_panes_text_median_s"):
            results[f"ratio_vllm_over_local_{key.removesuffix('_median_s')}"] = round(
                results["vllm"][key] / results["local"][key], 2)

    out = ROOT / "results" / "four_way.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{'engine':8} {'all done (median s)':>20} {'all panes show text (median s)':>32}")
    for name in ("local", "vllm"):
        r = results[name]
        if "error" not in r:
            print(f"{name:8} {r['done_median_s']:>20} {r['all_panes_text_median_s']:>32}")
    for key, value in results.items():
        if key.startswith("ratio_"):
            print(f"{key}: {value}")
    print(f"written: {out}")


if __name__ == "__main__":
    main()
