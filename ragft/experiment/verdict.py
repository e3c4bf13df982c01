"""From an experiment's runs to its report: a row per variant, the facts each adapter learned, how much of the
documents the test covers, and the recommendation (`recommend`)."""

from __future__ import annotations

import resource

from .. import metrics, stats
from ..results import EvalResult
from ..variants import LABELS
from .causes import cause_of_miss
from .plan import Plan
from .report import PARTS, AdapterRun, ExperimentReport, VariantRow

COST_ORDER = (stats.PLAIN, stats.RAG, stats.FT, stats.RAG_FT)  # simplest first: ties go to the cheaper variant


def _label(variant: str, recipe: str, several: bool) -> str:
    return f"{LABELS[variant]} ({recipe})" if recipe and several else LABELS[variant]


def _timing(result: EvalResult, variant: str) -> tuple[float | None, float | None]:
    t = result.timings.get(variant)
    if not t or not t.answers:
        return None, None
    return t.seconds / t.answers, (t.tokens / t.seconds if t.seconds else None)


def build_report(plan: Plan, runs: list[AdapterRun], base: EvalResult | None, cancelled: bool,
                 seconds: float) -> ExperimentReport:
    """Rows, verdict, causes and costs from the runs. Only questions every scored variant answered are compared
    (all of them, unless the run was cancelled midway)."""
    several = len(runs) > 1
    trained_right: dict[str, dict[str, bool]] = {}  # adapter -> fact -> right on a trained wording
    checks: dict[str, dict] = {}
    for run in runs:
        if run.check:
            answered = [q for q in run.check.questions if "ft" in q.answers]
            trained_right[run.name] = {q.item.fact or q.item.question: q.answers["ft"].correct for q in answered}
            ci = stats.bootstrap_ci([float(q.answers["ft"].correct) for q in answered])
            checks[_label("ft", run.recipe, several)] = {"adapter": run.name, "n": ci.n, "accuracy": ci.mean,
                                                         "accuracy_ci": ci.pct()}

    sources: list[tuple[str, str, str, EvalResult]] = []  # (variant, recipe, adapter, result)
    if base:
        sources += [(v, "", "", base) for v in ("plain", "rag") if v in base.config.variants]
    for run in runs:
        if run.test:
            sources += [(v, run.recipe, run.name, run.test) for v in ("ft", "rag+ft")]
    n = min((sum(1 for q in r.questions if v in q.answers) for v, _, _, r in sources), default=0)
    trained_facts = {it.fact or it.question for it in plan.train}
    rows = []
    for variant, recipe, adapter, result in sources:
        answers = [q.answers[variant] for q in result.questions[:n]]
        causes = []
        for item, answer in zip(plan.test[:n], answers):
            fact = item.fact or item.question
            trained = None if fact not in trained_facts else trained_right.get(adapter, {}).get(fact, False)
            causes.append(cause_of_miss(variant, answer, trained))
        per_answer, tps = _timing(result, variant)
        rows.append(VariantRow(_label(variant, recipe, several), variant, recipe, adapter, answers, causes, per_answer, tps))

    # the generated questions first, then the user's own (`Plan.asked`); the headline speaks for the user's
    n_made = min(n, len(plan.test) - len(plan.asked))
    n_own = n - n_made
    coverage, weights, scope = _coverage(plan, plan.test[:n_made])
    coverage["parts"] += ["your_questions"] * n_own
    coverage["your_questions"] = n_own
    first = slice(n_made, n) if n_own else slice(0, n_made)
    first_weights = None if n_own else weights
    best_recipe, headline, recommendation, support = "", "No questions were scored.", "", ""
    comparisons: list[stats.Comparison] = []
    if rows and n:
        by = {(r.variant, r.recipe): r for r in rows}
        recipes = [run.recipe for run in runs if run.test]
        if recipes:
            def strength(recipe):
                both, ft = by[("rag+ft", recipe)].correct()[first], by[("ft", recipe)].correct()[first]
                return (_mean(both, first_weights), _mean(ft, first_weights),
                        metrics.mean(a.f1 for a in by[("rag+ft", recipe)].answers[first]))
            best_recipe = max(recipes, key=strength)
        scores = {stats.PLAIN: by[("plain", "")].correct(), stats.RAG: by[("rag", "")].correct()} if base else {}
        if best_recipe:
            scores[stats.FT] = by[("ft", best_recipe)].correct()
            scores[stats.RAG_FT] = by[("rag+ft", best_recipe)].correct()
        part = {label: right[first] for label, right in scores.items()}
        headline, comparisons = stats.verdict(part, seed=plan.config.seed, weights=first_weights)
        headline = (f"On your {n_own} questions: " if n_own else scope) + headline
        recommendation = recommend(part, plan.config.seed, weights=first_weights)
        if n_own and n_made:
            made = {label: right[:n_made] for label, right in scores.items()}
            support = scope + stats.verdict(made, seed=plan.config.seed, weights=weights)[0]
        if n_own:  # the rows' accuracy stays the documents' (the user's questions have a column of their own)
            weights = (weights or [1.0 / max(n_made, 1)] * n_made) + [0.0] * n_own if n_made else None
        if several and best_recipe:
            recommendation += f" (Fine-tuned here is the {best_recipe} adapter, the stronger of the ones trained.)"
    if cancelled:
        headline = f"Cancelled after {n} questions. " + headline
    learned = _learned(plan, runs, rows, coverage)

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return ExperimentReport(
        plan.config.name, _config_json(plan), plan.question_note, plan.test[:n], rows, checks, headline,
        recommendation, best_recipe, comparisons, [run.costs() for run in runs], len(plan.train), seconds, peak,
        cancelled, coverage=coverage, weights=weights, support=support, learned=learned,
    )


def _learned(plan: Plan, runs: list[AdapterRun], rows: list[VariantRow], coverage: dict) -> dict:
    """Per fine-tuned row: what it learned and what it cost. Facts learned: its share right on trained facts asked
    in another wording, times the facts trained (an estimate, with the interval's bounds); held-out facts right; and
    the forgetting check: of the general questions the base model answered right, how many it still does."""
    parts = coverage.get("parts", [])
    base_right: list[int] = []
    first = next((run.general for run in runs if run.general), None)
    if first is not None:
        base_right = [i for i, q in enumerate(first.questions) if "plain" in q.answers and q.answers["plain"].correct]
    out = {}
    for row in rows:
        if row.variant != "ft":
            continue
        right = row.correct()
        on_trained = [float(c) for c, p in zip(right, parts) if p == PARTS[0]]
        on_held = [float(c) for c, p in zip(right, parts) if p == PARTS[1]]
        entry: dict = {"adapter": row.adapter, "facts_in_documents": plan.facts_total or None,
                       "facts_trained": len(plan.trained_facts)}
        words = []
        if on_trained:
            ci = stats.bootstrap_ci(on_trained, seed=plan.config.seed)
            low, mid, high = (round(x * len(plan.trained_facts)) for x in (ci.low, ci.mean, ci.high))
            entry.update(trained_right=ci.pct(), facts_learned=mid, facts_learned_low=low, facts_learned_high=high)
            of = f" of the documents' {plan.facts_total}" if plan.facts_total else ""
            words.append(f"answers {ci.pct()} of trained facts asked in another wording: about {mid} [{low}–{high}] "
                         f"facts learned{of} ({len(plan.trained_facts)} trained)")
        if on_held:
            entry["heldout_right"] = stats.bootstrap_ci(on_held, seed=plan.config.seed).pct()
            words.append(f"{entry['heldout_right']} of held-out facts")
        run = next((r for r in runs if r.name == row.adapter), None)
        if run is not None and run.general is not None and base_right:
            kept = sum(1 for i in base_right if i < len(run.general.questions)
                       and "ft" in run.general.questions[i].answers and run.general.questions[i].answers["ft"].correct)
            entry.update(general_kept=kept, general_base_right=len(base_right))
            words.append(f"forgetting check: still answers {kept} of the {len(base_right)} general questions the "
                         "base model answered")
        if words:
            entry["sentence"] = f"{row.label}: " + "; ".join(words) + "."
            out[row.label] = entry
    return out


def _mean(correct: list[bool], weights: list[float] | None) -> float:
    return float(stats.weighted([float(c) for c in correct], weights).mean()) if correct else 0.0


def _coverage(plan: Plan, test: list) -> tuple[dict, list[float] | None, str]:
    """How the test speaks for the documents: (the coverage record, per-question weights or None, the headline's
    opening words). The test has two parts, questions on trained facts (other wordings) and on held-out facts;
    when the documents' facts were counted and both parts were asked, each part counts as its share of the
    documents' facts, so the verdict is for questions about the documents as a whole."""
    trained = plan.trained_facts
    part = [(it.fact or it.question) in trained for it in test]
    t, h = sum(part), len(part) - sum(part)
    share = plan.coverage
    record = {"facts_in_documents": plan.facts_total or None, "facts_trained": len(trained),
              "share_trained": share, "questions_on_trained_facts": t, "questions_on_heldout_facts": h,
              "weighted": False, "parts": [PARTS[0] if p else PARTS[1] for p in part]}
    if share is None or not test:
        return record, None, "On the given questions: " if test else ""
    if t and h:
        weights = [share / t if p else (1 - share) / h for p in part]
        record["weighted"] = True
        return record, weights, (
            f"On the documents as a whole (the adapters trained on {len(trained)} of their {plan.facts_total} facts, "
            f"{100 * share:.0f}%; {t} questions on trained facts in other wordings and {h} on held-out facts, "
            f"weighted {100 * share:.0f}:{100 - 100 * share:.0f}): ")
    if t:
        return record, None, (f"On trained facts only ({len(trained)} of the documents' {plan.facts_total} facts, "
                              f"{100 * share:.0f}%; no held-out facts were left to ask): ")
    return record, None, "On held-out facts only (facts no adapter trained on): "


def recommend(scores: dict[str, list[bool]], seed: int = 0, alpha: float = 0.05, close: float = 0.05,
              weights: list[float] | None = None) -> str:
    """Which variant to use: the best one when it is significantly ahead of all others; a simpler one that scores
    within ``close`` of it (it costs less and does as well); else the best, with the advice to ask more questions.
    ``weights``: per question, as in `stats.verdict`."""
    present = [v for v in COST_ORDER if v in scores]
    if not present or not scores[present[0]]:
        return ""
    n = len(scores[present[0]])
    mean = {v: _mean(scores[v], weights) for v in present}
    best = max(present, key=lambda v: (mean[v], -COST_ORDER.index(v)))
    tied = [v for v in present if v != best
            and stats.compare(best, scores[best], v, scores[v], seed, alpha, weights=weights).p >= alpha]
    if not tied:
        if len(present) == 1:
            return f"Only {best} was scored."
        return f"Use {best}: it answers the most questions, significantly more than every other variant."
    simpler = [v for v in tied if COST_ORDER.index(v) < COST_ORDER.index(best) and mean[best] - mean[v] <= close + 1e-9]
    if simpler:
        return (f"Use {simpler[0]}: it scores as well as {best} ({100 * mean[simpler[0]]:.0f}% vs "
                f"{100 * mean[best]:.0f}%) and is simpler.")
    return (f"{best} scores highest ({100 * mean[best]:.0f}%), but on {n} questions it is not significantly ahead of "
            f"{', '.join(tied)}: it is the best bet; ask more questions (the thorough preset) to be sure.")


def _config_json(plan: Plan) -> dict:
    c = plan.config
    return {"name": c.name, "preset": c.preset, "split": c.split, "train": list(c.train), "seed": c.seed,
            "top_k": c.top_k, "documents": sorted({h.source for h in plan.chunks}),
            "steps": {r: tc.max_steps for r, tc in plan.train_configs.items()},
            "learning_rate": next(iter(plan.train_configs.values())).learning_rate if plan.train_configs else None,
            "rank": next(iter(plan.train_configs.values())).rank if plan.train_configs else None,
            "max_new_tokens": plan.eval_config.max_new_tokens}
