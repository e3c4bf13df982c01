"""Evaluation on both engines, side by side: bench/recipe's person-written questions, the four variants (with a
small real adapter), greedy, as the Evaluate tab runs them — wall time and answers/s on vLLM against in-process,
and each engine's scores beside (they should agree: same model, same prompts, greedy).

    .venv/bin/python -m bench evaluation [--quick | --smoke] [--engine=local|vllm]
"""

from __future__ import annotations

import json
import time

from .four_way import ROOT, SMOKE_NEW, engines_of, prepare, vllm_engine
from .report import Figure, report, size

QUESTIONS = {"full": 20, "quick": 8, "smoke": 1}


def _run(engine, items, max_new: int, smoke: bool) -> dict:
    from ragft.evaluate import EvalConfig

    config = EvalConfig(max_new_tokens=max_new) if not smoke else EvalConfig(max_new_tokens=max_new, top_k=1)
    start = time.perf_counter()
    *_, last = engine.evaluate(items, "bench", config, "bench")
    seconds = time.perf_counter() - start
    answers = sum(len(q.answers) for q in last.result.questions)
    return {"seconds": round(seconds, 2), "answers": answers, "answers_per_s": round(answers / seconds, 3),
            "scores": last.result.summary()}


def main(flags: list[str]) -> list[Figure]:
    from ragft.questions import QAItem

    mode = size(flags)
    records = [json.loads(line) for line in (ROOT / "recipe" / "person_questions.jsonl").open()]
    items = [QAItem(r["question"], r["answer"], r.get("source", "")) for r in records[:QUESTIONS[mode]]]
    max_new = SMOKE_NEW if mode == "smoke" else 48
    engines = engines_of(flags, mode)
    local = prepare(items[0].source if mode == "smoke" else "")
    details: dict = {"questions": len(items), "max_new_tokens": max_new}
    if "local" in engines:
        details["local"] = _run(local, items, max_new, mode == "smoke")
    if "vllm" in engines and (remote := vllm_engine(local, "evaluation")) is not None:
        details["vllm"] = _run(remote, items, max_new, mode == "smoke")
        remote.close()
    figures = []
    for engine, label in (("local", "in-process"), ("vllm", "vLLM")):
        if engine in details:
            d = details[engine]
            figures.append(Figure(f"{label}: evaluation, {d['answers']} answers", d["seconds"],
                                  details.get("local", d)["seconds"], "s", "", "in-process"))
    report("evaluation", figures, details)
    return figures
