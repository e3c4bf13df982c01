"""Score plain, RAG, fine-tuned and RAG + fine-tuned on one question set — the same questions, decoding and seed
for every variant, batched through the one base model.

Open questions are answered by greedy (or seeded) generation and compared to the expected answer
(``metrics``: exact match, token F1, contains). Multiple-choice questions are answered by log-likelihood, as in
Ovadia et al. 2023: each option is scored as the continuation of the variant's prompt (mean log-probability per
token) and the best one is the answer. Retrieval variants also get recall@k against the question's source chunk.

Run from a shell:
    python -m ragft eval --generate 20
    python -m ragft eval --questions my-set.jsonl --adapter support-bot-v1 --out results.json
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from . import metrics, stats
from .adapters import RunRecord
from .backend import BASE
from .chat import build_messages
from .errors import InvalidInputError
from .generation import DecodeSettings, generate_batch, option_logprobs
from .grounding import GroundingModel, unsupported_share
from .knobs import check, knob
from .models import Generator
from .questions import BLANK, QAItem
from .results import Answer, EvalResult, QuestionResult, VariantTiming
from .store import Hit
from .variants import LABELS, NEEDS_ADAPTER, RETRIEVES, VARIANTS


@dataclass(frozen=True)
class EvalConfig:
    """How to run an evaluation. Every variant gets the same decoding, so they differ only by prompt and adapter.

    Args:
        variants: which of plain, rag, ft, rag+ft to score.
        top_k: chunks retrieved per question for the retrieval variants (and recall@k's k).
        max_new_tokens / temperature / seed: decoding; temperature 0 is greedy.
        batch_size: questions per ``generate`` call.
    """

    variants: tuple[str, ...] = knob(VARIANTS, choices=VARIANTS, some=True, help="variants to score")
    top_k: int = knob(3, 1, 20, "chunks retrieved per question (and recall@k's k)", label="top k")
    max_new_tokens: int = knob(48, 1, 1024, "answer length limit in tokens")
    temperature: float = knob(0.0, 0.0, 5.0, "0 = greedy")
    seed: int = 0
    batch_size: int = knob(8, 1, 64, "questions per generate call")

    def __post_init__(self):
        check(self)


@dataclass(frozen=True)
class EvalProgress:
    """Yielded as the run goes: ``done`` of ``total`` steps, and the result so far (complete when ``finished``)."""

    done: int
    total: int
    message: str
    result: EvalResult
    finished: bool = False


# --- judging ---------------------------------------------------------------------------------------------------
def gold_matcher(item: QAItem) -> Callable[[Hit], bool] | None:
    """How to recognise the question's source among retrieved chunks: its (document, chunk), else its context
    passage, else its document; None when the question names no source."""
    if item.source and item.chunk is not None:
        return lambda h: h.source == item.source and h.chunk == item.chunk
    if item.context.strip():
        gold = metrics.normalize(item.context)
        return lambda h: gold in metrics.normalize(h.text) or metrics.normalize(h.text) in gold
    if item.source:
        return lambda h: h.source == item.source
    return None


def judge(text: str, item: QAItem, hits: list[Hit] | None, option_scores: Sequence[float] = (),
          grounding_model: GroundingModel | None = None) -> Answer:
    correct = text == item.answer if item.choices else bool(metrics.correct(text, item.answer, item.question))
    recall = metrics.recall_at_k(hits, gold_matcher(item)) if hits is not None else None
    in_context = metrics.in_context([h.text for h in hits], item.answer) if hits is not None else None
    unsupported = unsupported_share(text, hits, grounding_model) if hits is not None and not item.choices else None
    return Answer(unsupported=unsupported,
        text=text, correct=correct, exact=metrics.exact_match(text, item.answer),
        f1=metrics.token_f1(text, item.answer), contains=metrics.contains(text, item.answer),
        recall=recall, in_context=in_context, sources=list(hits or []), option_scores=list(option_scores),
    )


# --- train/test overlap ------------------------------------------------------------------------------------------
def training_overlap(items: list[QAItem], run: RunRecord | None) -> tuple[list[str], str]:
    """Per question: "trained" (the adapter was trained on this very question), "paraphrase" (on another phrasing
    of its fact), "document" (on the document holding its answer) or "". Plus a note for the user."""
    if not run:
        return [""] * len(items), ""
    if run.questions is None and run.source in ("qa", "raft"):
        return [""] * len(items), (
            f"Adapter {run.name} has no record of its training questions (trained by an older ragft): "
            "cannot check whether these questions were in its training data."
        )
    questions = {metrics.normalize(q) for q in run.questions or []}
    facts, docs = set(run.facts), set(run.documents)
    marks = [
        "trained" if metrics.normalize(it.question) in questions
        else "paraphrase" if it.fact and it.fact in facts
        else "document" if it.source and it.source in docs
        else ""
        for it in items
    ]
    n, name, notes = len(items), run.name or "the adapter", []
    if k := marks.count("trained"):
        notes.append(
            f"⚠️ {k} of {n} questions are in {name}'s training data: its scores on them measure memorisation, not "
            "knowledge. Evaluate on a held-out or paraphrase split of the set instead."
        )
    if k := marks.count("paraphrase"):
        notes.append(f"{k} of {n} questions rephrase facts {name} was trained on (another wording): a fair test "
                     "of whether the fact, not the sentence, was learned.")
    if k := marks.count("document"):
        notes.append(f"{name} read the documents holding {k} of {n} answers (continued pre-training): knowledge "
                     "injection, as intended.")
    return marks, "  \n".join(notes)


# --- running -------------------------------------------------------------------------------------------------------
def option_reply(item: QAItem, option: str) -> str:
    """The reply scored for one option: a fill-in-the-blank sentence completed with it (a natural sentence for a
    small model to judge), else the option alone. Options differ only in their own words, so totals compare."""
    return item.cloze.replace(BLANK, option, 1) if BLANK in item.cloze else option


def _count_tokens(generator: Generator, text: str) -> int:
    return len(generator.tokenizer(text, add_special_tokens=False)["input_ids"]) if text else 0


RANK_DEPTH = 10  # MRR looks this deep


def compare_retrieval(items: list[QAItem], search: Callable[..., list[Hit]], k: int) -> dict:
    """Vector against hybrid retrieval on ``items``: how often the expected answer is in the top ``k`` chunks
    (with 95% intervals), the mean reciprocal rank of the first chunk holding it (top ``RANK_DEPTH``), and the
    questions only one of them found (exact McNemar p). ``search(question, n, mode)`` is `Store.search`."""
    ranks = {}
    for mode in ("vector", "hybrid"):
        ranks[mode] = [next((r for r, h in enumerate(search(it.question, RANK_DEPTH, mode), start=1)
                             if metrics.contains(h.text, it.answer)), None) for it in items]
    top = {m: [r is not None and r <= k for r in rs] for m, rs in ranks.items()}
    c = stats.compare("hybrid", top["hybrid"], "vector", top["vector"])
    return {"k": k, "questions": len(items), "only_hybrid": c.only_a, "only_vector": c.only_b, "p": c.p,
            **{m: {"answer_in_top_k": stats.bootstrap_ci(top[m]).pct(), "share": sum(top[m]) / max(len(items), 1),
                   "mrr": round(sum(1 / r for r in rs if r) / max(len(items), 1), 3)} for m, rs in ranks.items()}}


def run_evaluation(
    generator: Generator,
    retrieve: Callable[[str, int], list[Hit]],
    items: list[QAItem],
    adapter: str | None,
    config: EvalConfig = EvalConfig(),
    cancel: threading.Event | None = None,
    set_name: str = "",
    run_record: RunRecord | None = None,
    search: Callable[..., list[Hit]] | None = None,
    grounding_model: GroundingModel | None = None,
) -> Iterator[EvalProgress]:
    """Score ``config.variants`` on ``items``; yields progress after each (batch, variant) step.

    ``adapter`` must already be loaded on ``generator``; without one the fine-tuned variants are listed with a
    notice instead of scores. ``run_record`` (the adapter's ``ragft_run.json``) enables the train/test overlap
    check. Setting ``cancel`` stops after the current step, keeping the scores so far. ``search`` (`Store.search`)
    adds vector against hybrid retrieval on these questions (`compare_retrieval`) to the result; retrieval answers'
    unsupported sentences are counted by ``grounding_model`` when given (`grounding.mark`).
    """
    if not items:
        raise InvalidInputError("the question set is empty")
    cancel = cancel or threading.Event()
    notices = {v: "no adapter picked" for v in config.variants if v in NEEDS_ADAPTER and not adapter}
    running = [v for v in config.variants if v not in notices]
    marks, note = training_overlap(items, run_record) if adapter else ([""] * len(items), "")
    result = EvalResult(
        [QuestionResult(it, overlap=m) for it, m in zip(items, marks)], config, adapter, set_name, notices,
        {v: VariantTiming() for v in running}, note, time.strftime("%Y-%m-%d %H:%M:%S"),
    )
    started = time.perf_counter()
    batches = [list(range(i, min(i + config.batch_size, len(items)))) for i in range(0, len(items), config.batch_size)]
    total = 1 + len(batches) * len(running)
    yield EvalProgress(0, total, f"retrieving top {config.top_k} chunks for {len(items)} questions", result)

    hits = [retrieve(it.question, config.top_k) for it in items] if RETRIEVES & set(running) else [[]] * len(items)
    if search is not None and RETRIEVES & set(running):
        result.retrieval = compare_retrieval(items, search, config.top_k)
    decode = DecodeSettings(config.max_new_tokens, config.temperature, config.seed)
    done = 1
    for b, batch in enumerate(batches):
        for v in running:
            if cancel.is_set():
                result.cancelled = True
                result.seconds = time.perf_counter() - started
                yield EvalProgress(done, total, "cancelled: scores so far are kept", result, finished=True)
                return
            yield EvalProgress(done, total, f"{LABELS[v]}: questions {batch[0] + 1}–{batch[-1] + 1} of {len(items)}",
                               result)
            _score_batch(generator, v, adapter, [items[i] for i in batch], [hits[i] for i in batch], decode,
                         [result.questions[i] for i in batch], result.timings[v], grounding_model)
            done += 1
    result.seconds = time.perf_counter() - started
    yield EvalProgress(total, total, f"done: {len(items)} questions × {len(running)} variants in "
                       f"{result.seconds:.0f} s", result, finished=True)


def _score_batch(generator, variant, adapter, items, hits, decode, out: list[QuestionResult], timing: VariantTiming,
                 grounding_model: GroundingModel | None = None):
    retrieves = variant in RETRIEVES
    name = adapter if variant in NEEDS_ADAPTER else BASE
    conversations = [build_messages(it.question, h if retrieves else None) for it, h in zip(items, hits)]
    t0 = time.perf_counter()
    open_rows = [i for i, it in enumerate(items) if not it.choices]
    texts = generate_batch(generator, [conversations[i] for i in open_rows], [name] * len(open_rows), decode) \
        if open_rows else []
    answers: dict[int, Answer] = {}
    for i, text in zip(open_rows, texts):
        answers[i] = judge(text, items[i], hits[i] if retrieves else None, grounding_model=grounding_model)
        answers[i].tokens = _count_tokens(generator, text)
    mc_rows = [i for i, it in enumerate(items) if it.choices]
    if mc_rows:
        pairs = [(i, option) for i in mc_rows for option in items[i].choices]
        scores = option_logprobs(generator, [conversations[i] for i, _ in pairs],
                                 [option_reply(items[i], o) for i, o in pairs], [name] * len(pairs))
        for i in mc_rows:
            mine = [s for (j, _), s in zip(pairs, scores) if j == i]
            best = items[i].choices[max(range(len(mine)), key=mine.__getitem__)]
            answers[i] = judge(best, items[i], hits[i] if retrieves else None, mine)
    timing.seconds += time.perf_counter() - t0
    timing.answers += len(items)
    timing.tokens += sum(a.tokens for a in answers.values())
    for i, q in enumerate(out):
        q.answers[variant] = answers[i]
