"""The experiment's report for people: a text for the terminal, an inline SVG chart, and a self-contained HTML page
(no scripts, no network). All read the report's JSON (`report.ExperimentReport.to_json`)."""

from __future__ import annotations

import html

from .plan import format_duration


# --- text ------------------------------------------------------------------------------------------------------------
def format_text(data: dict) -> str:
    """The report for a terminal: verdict, the score table with intervals, comparisons, causes and costs."""
    parts = parts_of(data)
    head = ["variant", "correct [95% CI]", *parts, "exact", "F1", "in chunks", "unsupported", "s/answer"]
    rows = [[r["variant"], r["accuracy_ci"], *(r[k] or "n/a" for k in parts.values()), _pct(r["exact_match"]),
             _pct(r["token_f1"]), _pct(r["answer_in_chunks"]), _pct(r.get("unsupported_sentences")),
             "n/a" if r["s_per_answer"] is None else f"{r['s_per_answer']:.2f}"]
            for r in data["summary"]]
    widths = [max(len(str(x[i])) for x in [head, *rows]) for i in range(len(head))]
    table = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in [head, *rows]]
    causes = [f"  {label}: " + ", ".join(f"{c} {n}" for c, n in counts.items())
              for label, counts in data["causes"].items() if counts]
    costs = [f"  {a['adapter']}: {a['steps']} steps in {format_duration(a['train_seconds'])}, {a['tokens_seen']} "
             f"tokens, {a['size_bytes'] / 1e6:.1f} MB" for a in data["costs"]["adapters"]]
    checks = [f"  {k} on its trained wordings: {v['accuracy_ci']} of {v['n']} facts"
              for k, v in data["trained_wordings"].items()]
    return "\n".join([
        data["headline"], *([data["support"]] if data.get("support") else []), data["recommendation"], "", *table, "",
        *(c["sentence"] for c in data["comparisons"]), "",
        "why answers were wrong:", *(causes or ["  (none wrong)"]), "", "memorisation:", *checks,
        *(f"  {v['sentence']}" for v in data.get("learned", {}).values()), "",
        "costs:", *costs, f"  peak memory {data['costs']['peak_memory_mb']} MB",
    ])


# --- HTML --------------------------------------------------------------------------------------------------------------
def chart_svg(summary: list[dict], width: int = 640) -> str:
    """Horizontal bars: accuracy with its 95% interval as a whisker, and token F1 as a thin bar beneath."""
    left, bar, gap = 190, 14, 12
    height = len(summary) * (2 * bar + gap) + 40
    scale = (width - left - 20) / 100
    parts = [(f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img' "
              "aria-label='accuracy with 95% intervals, and token F1, per variant' font-family='sans-serif' "
              "font-size='12'>")]
    for t in range(0, 101, 25):
        x = left + t * scale
        parts.append(f"<line x1='{x:.0f}' y1='10' x2='{x:.0f}' y2='{height - 20}' stroke='#ddd'/>"
                     f"<text x='{x:.0f}' y='{height - 6}' text-anchor='middle' fill='#555'>{t}%</text>")
    for i, r in enumerate(summary):
        y = 10 + i * (2 * bar + gap)
        acc = 100 * (r["accuracy"] or 0)
        f1 = 100 * (r["token_f1"] or 0)
        parts.append(f"<text x='{left - 8}' y='{y + bar}' text-anchor='end'>{html.escape(r['variant'])}</text>"
                     f"<rect x='{left}' y='{y}' width='{acc * scale:.1f}' height='{bar}' fill='#4f6bd8'>"
                     f"<title>accuracy {r['accuracy_ci']}</title></rect>"
                     f"<rect x='{left}' y='{y + bar + 2}' width='{f1 * scale:.1f}' height='{bar / 2:.0f}' "
                     f"fill='#2fa37a'><title>token F1 {f1:.0f}%</title></rect>")
        if r["answered"]:
            lo, hi = 100 * r["accuracy_low"], 100 * r["accuracy_high"]
            cy = y + bar / 2
            parts.append(f"<line x1='{left + lo * scale:.1f}' y1='{cy}' x2='{left + hi * scale:.1f}' y2='{cy}' "
                         "stroke='#111' stroke-width='1.5'/>")
    parts.append("</svg>")
    return "".join(parts)


def parts_of(data: dict) -> dict[str, str]:
    """The columns of the test's parts (trained facts in other wordings, held-out facts, the user's own questions),
    where it has them."""
    first = data["summary"][0] if data["summary"] else {}
    return {label: key for label, key in (("trained facts", "trained_facts"), ("held-out facts", "heldout_facts"),
                                          ("your questions", "your_questions")) if first.get(key)}


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.0f}%"


def _table(head: list[str], rows: list[list]) -> str:
    cells = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def render_html(data: dict) -> str:
    """A self-contained page: verdict, chart, tables, causes, costs and every question's answers."""
    esc = html.escape
    summary = data["summary"]
    parts = parts_of(data)
    scores = _table(
        ["variant", "correct [95% CI]", *parts, "exact match", "token F1", "answer in chunks",
         "unsupported sentences", "recall@k", "s/answer"],
        [[r["variant"], r["accuracy_ci"], *(r[k] or "n/a" for k in parts.values()), _pct(r["exact_match"]),
          _pct(r["token_f1"]), _pct(r["answer_in_chunks"]), _pct(r.get("unsupported_sentences")),
          _pct(r["recall"]),
          "n/a" if r["s_per_answer"] is None else f"{r['s_per_answer']:.2f}"] for r in summary])
    weighted = (data.get("coverage") or {}).get("weighted")
    comparisons = _table(["comparison", "only the first right", "only the second right",
                          "p (paired bootstrap, weighted)" if weighted else "p (exact McNemar)",
                          "difference [95% CI]"],
                         [[f"{c['a']} vs {c['b']}", c["only_a"], c["only_b"], f"{c['p']:.3g}",
                           (f"{100 * c['difference']:+.0f} points [{100 * c['difference_low']:+.0f}, "
                            f"{100 * c['difference_high']:+.0f}]")] for c in data["comparisons"]])
    cause_names = list(data["cause_meanings"])
    causes = _table(["variant", *cause_names], [[label, *(counts.get(c, 0) for c in cause_names)]
                                                for label, counts in data["causes"].items()])
    meanings = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in data["cause_meanings"].items())
    costs = _table(["adapter", "recipe", "steps", "training time", "tokens trained", "adapter size", "final loss"],
                   [[a["adapter"], a["recipe"], a["steps"], format_duration(a["train_seconds"]), a["tokens_seen"],
                     f"{a['size_bytes'] / 1e6:.1f} MB",
                     "n/a" if a["final_loss"] is None else f"{a['final_loss']:.3f}"]
                    for a in data["costs"]["adapters"]])
    checks = _table(["adapter", "right on its trained wordings [95% CI]", "facts"],
                    [[k, v["accuracy_ci"], v["n"]] for k, v in data["trained_wordings"].items()])
    labels = [r["variant"] for r in summary]
    questions = _table(
        ["#", "question", "expected", *labels],
        [[n, q["question"], q["answer"], *(
            ("✓ " if q["answers"][lb]["correct"] else f"✗ [{q['answers'][lb]['cause']}] ") + q["answers"][lb]["text"]
            for lb in labels)] for n, q in enumerate(data["questions"], 1)])
    c = data["config"]
    support = f"<p>{esc(data['support'])}</p>" if data.get("support") else ""
    learned = "".join(f"<li>{esc(v['sentence'])}</li>" for v in data.get("learned", {}).values())
    learned = f"<h3>What each adapter learned, and forgot</h3><ul>{learned}</ul>" if learned else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ragft experiment {esc(data['name'])}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:0.5em 0 1.5em}}td,th{{border:1px solid #ccc;padding:3px 8px;
vertical-align:top;font-size:13px}}th{{background:#f3f3f3}}.verdict{{font-size:1.25em;background:#eef3ff;
padding:0.7em 1em;border-radius:6px}}</style></head><body>
<h1>RAG, fine-tuning, or both? — {esc(data['name'])}</h1>
<p>{esc(data['started'])} · {len(data['questions'])} test questions, {data['train_questions']} training questions ·
split {esc(c['split'])} · preset {esc(c['preset'])} · documents: {esc(', '.join(c['documents']))} ·
{format_duration(data['seconds'])}{' · <b>cancelled</b>' if data['cancelled'] else ''}</p>
<p class="verdict">{esc(data['headline'])}</p>{support}<p><b>{esc(data['recommendation'])}</b></p>
<h2>Scores on the test questions</h2>{chart_svg(summary)}
<p>Blue: correct, with its 95% bootstrap interval (black line). Green: token F1. Correct means
{esc(data['correct_rule'])}.</p>{scores}
<h2>Paired comparisons (same questions)</h2>{comparisons}
<h2>Why answers were wrong</h2>{causes}<ul>{meanings}</ul>
<h2>Memorisation: the adapters on the wordings they were trained on</h2>{checks}{learned}
<h2>Costs</h2>{costs}<p>Peak memory of the process: {data['costs']['peak_memory_mb']} MB.</p>
<h2>Every question</h2>{questions}
</body></html>
"""
