"""How results look: the score table, the chart, the per-question table and the answer cards of the Evaluate tab
(the cards also serve the Experiment tab). Pure functions of a result's JSON: no engine, no events."""

from __future__ import annotations

import html

import pandas as pd

from ..variants import LABELS, VARIANTS

CHART_METRICS = {"accuracy": "accuracy", "token_f1": "token F1", "recall": "recall@k"}  # summary key -> label


def pct(value) -> float | None:
    return None if value is None else round(100 * value, 1)


def retrieval_line(r: dict) -> str:
    """Vector against hybrid retrieval on the run's questions, in one paragraph (`evaluate.compare_retrieval`)."""
    if not r:
        return ""
    return (f"**Retrieval on these {r['questions']} questions** — answer in the top {r['k']} chunks: vector "
            f"{r['vector']['answer_in_top_k']}, hybrid {r['hybrid']['answer_in_top_k']} (95% intervals); MRR@10 "
            f"{r['vector']['mrr']:.2f} → {r['hybrid']['mrr']:.2f}. Hybrid alone found {r['only_hybrid']}, vector "
            f"alone {r['only_vector']} (exact McNemar p = {r['p']:.2f}).")


def summary_frame(rows: list[dict]) -> pd.DataFrame:
    recall_key = next(k for k in rows[0] if k.startswith("recall@"))
    return pd.DataFrame([{
        "variant": r["variant"], "answered": r["answered"], "correct [95% CI]": r["accuracy_ci"],
        "exact match %": pct(r["exact_match"]), "token F1 %": pct(r["token_f1"]), "contains %": pct(r["contains"]),
        f"{recall_key} %": pct(r[recall_key]), "answer in chunks %": pct(r["answer_in_chunks"]),
        "unsupported sentences %": pct(r.get("unsupported_sentences")),
        "s/answer": None if r["s_per_answer"] is None else round(r["s_per_answer"], 2),
        "tokens/s": None if r["tokens_per_s"] is None else round(r["tokens_per_s"], 1),
        "note": r["note"],
    } for r in rows])


def chart_frame(rows: list[dict]) -> pd.DataFrame:
    """Long format, one bar per (variant, metric); the x label carries both so bars sit side by side."""
    bars = []
    for r in rows:
        recall_key = next(k for k in r if k.startswith("recall@"))
        for key, metric in CHART_METRICS.items():
            value = r[recall_key if key == "recall" else key]
            if value is not None:
                bars.append((f"{r['variant']} · {metric}", metric, round(100 * value, 1)))
    return pd.DataFrame({"bar": pd.Series([b[0] for b in bars], dtype="str"),
                         "metric": pd.Series([b[1] for b in bars], dtype="str"),
                         "score %": pd.Series([b[2] for b in bars], dtype="float64")})


# Every bar the chart can show, in reading order; Gradio fixes the colours and order from the first value.
ALL_BARS = [f"{LABELS[v]} · {m}" for v in VARIANTS for m in CHART_METRICS.values()]
PLACEHOLDER = chart_frame([{"variant": LABELS[v], "accuracy": 0.0, "token_f1": 0.0, "recall@k": 0.0}
                           for v in VARIANTS])


def questions_frame(data: dict) -> pd.DataFrame:
    rows = []
    for n, q in enumerate(data["questions"], 1):
        row = {"#": n, "question": q["question"], "expected": q["answer"]}
        for v in VARIANTS:
            a = q["answers"].get(v)
            if v in data["config"]["variants"]:
                row[LABELS[v]] = "" if a is None else f"{'✓' if a['correct'] else '✗'} {a['text'][:80]}"
        row["trained on it"] = {"trained": "⚠️ yes", "paraphrase": "other wording", "document": "its document"}.get(
            q["overlap"], "")
        rows.append(row)
    return pd.DataFrame(rows)


def answer_card(label: str, a: dict, mark: str, note: str = "") -> str:
    """One variant's answer as a card: judged mark, token F1, the text, and its retrieved chunks folded away."""
    esc = html.escape
    sources = "".join(f"<li>{esc(s['source'])} · chunk {s['chunk']} · score {s['score']:.2f}</li>"
                      for s in a["sources"])
    return (f"<div class='eval-card' style='flex:1;min-width:14em;border:1px solid #ccc;border-radius:6px;"
            f"padding:6px'><b>{esc(label)}</b> — {mark} · F1 {100 * a['token_f1']:.0f}%{note}"
            f"<p style='white-space:pre-wrap'>{esc(a['text']) or '<i>(empty)</i>'}</p>"
            + (f"<details><summary>Retrieved chunks</summary><ul>{sources}</ul></details>" if sources else "")
            + "</div>")


def cards_row(cards: list[str]) -> str:
    return f"<div style='display:flex;gap:8px;flex-wrap:wrap'>{''.join(cards)}</div>"


def detail_html(data: dict | None, number) -> str:
    """Question ``number`` (1-based): expected answer, the four answers judged, and what retrieval found."""
    if not data or not data["questions"]:
        return ""
    n = min(max(int(number or 1), 1), len(data["questions"]))
    q = data["questions"][n - 1]
    esc = html.escape
    head = (f"<h4>Question {n}</h4><p>{esc(q['question'])}</p><p><b>Expected:</b> {esc(q['answer'])}"
            + (f" <i>(from {esc(q['source'])}, chunk {q['chunk']})</i>" if q.get("source") and "chunk" in q else "")
            + "</p>")
    if q.get("choices"):
        head += f"<p><b>Options:</b> {' | '.join(esc(c) for c in q['choices'])}</p>"
    cards = []
    for v in VARIANTS:
        a = q["answers"].get(v)
        if a is None:
            continue
        recall = "" if a["recall"] is None else f" · source chunk {'found' if a['recall'] else 'missed'}"
        cards.append(answer_card(LABELS[v], a, "✓ correct" if a["correct"] else "✗ wrong", recall))
    return f"<div id='eval-detail-body'>{head}{cards_row(cards)}</div>"
