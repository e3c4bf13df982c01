"""Questions written by the base model, one per chunk (or per part of a chunk), kept only when grounded."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable

from ..documents import split_sentences
from ..metrics import normalize
from ..store import Hit
from .sets import QAItem, fact_id

LLM_BATCH = 8  # prompts per `complete` call

LLM_PROMPT = """Read the passage, then write ONE question that the passage answers, and its short answer \
(a few words copied from the passage). Reply in exactly this format:
Question: ...
Answer: ...

Passage:
{passage}"""

# Small models often stop after writing "Answer:"; such a question gets a second, extractive prompt.
ANSWER_PROMPT = """Passage:
{passage}

Question: {question}
Answer with a few words copied from the passage."""

_LINE = re.compile(r"^[\s*#>-]*(question|answer|q|a)[\s*]*[:：]\s*(.*)$", re.IGNORECASE)


def _parse_reply(reply: str) -> tuple[str, str] | None:
    """(question, answer) from a reply; answer "" when only the question was written; None without a question."""
    question = answer = None
    for line in reply.splitlines():
        m = _LINE.match(line)
        if not m:
            continue
        value = m.group(2).strip().strip("*\"'“”").strip()
        if m.group(1).lower()[0] == "q" and question is None:
            question = value
        elif m.group(1).lower()[0] == "a" and question is not None and answer is None:
            answer = value
    return (question, answer or "") if question else None


def _grounded(question: str, answer: str, passage: str) -> bool:
    q, a = normalize(question), normalize(answer)
    return (
        bool(a)
        and len(a.split()) <= 12
        and f" {a} " in f" {normalize(passage)} "
        and f" {a} " not in f" {q} "
        and (question.rstrip().endswith("?") or len(question.split()) >= 4)
    )


def _parts(text: str, k: int) -> list[str]:
    """``text`` cut into up to ``k`` runs of whole sentences, so k prompts on one chunk ask about different facts."""
    sentences = split_sentences(text, lines=True)
    if k <= 1 or len(sentences) <= 1:
        return [text.strip()] if sentences else []
    k = min(k, len(sentences))
    bounds = [round(i * len(sentences) / k) for i in range(k + 1)]
    return [" ".join(sentences[a:b]) for a, b in itertools.pairwise(bounds)]


def llm_questions(
    chunks: list[Hit], complete: Callable[[list[str]], list[str]], n: int, per_chunk: int = 1
) -> tuple[list[QAItem], int]:
    """Up to ``n`` questions written by a model; ``complete(prompts) -> replies`` gets up to 8 prompts a call.

    Chunks are asked in order until ``n`` pairs are kept; with ``per_chunk`` > 1 each prompt shows one part of
    the chunk. Returns (items, dropped): a reply is dropped when it cannot be parsed, its answer is not in the
    chunk, is longer than 12 words or is given away by the question, or it repeats an earlier question
    (replies after the n-th kept question are neither kept nor counted).
    """
    prompts = [(hit, LLM_PROMPT.format(passage=part)) for hit in chunks for part in _parts(hit.text, per_chunk)]
    items: list[QAItem] = []
    asked: set[str] = set()
    dropped = 0
    for start in range(0, len(prompts), LLM_BATCH):
        if len(items) >= n:
            break
        batch = prompts[start : start + LLM_BATCH]
        pairs = [_parse_reply(reply or "") for reply in complete([p for _, p in batch])]
        unanswered = [(i, pair[0]) for i, pair in enumerate(pairs) if pair and not pair[1]]  # (index, question)
        if unanswered:
            replies = complete(
                [ANSWER_PROMPT.format(passage=batch[i][0].text, question=question) for i, question in unanswered]
            )
            for (i, question), reply in zip(unanswered, replies):
                pairs[i] = (question, (reply or "").strip().removeprefix("Answer:").strip())
        for (hit, _), pair in zip(batch, pairs):
            if len(items) >= n:
                break
            if not pair or not _grounded(*pair, hit.text) or normalize(pair[0]) in asked:
                dropped += 1
                continue
            question, answer = pair
            asked.add(normalize(question))
            fact = fact_id(hit.source, hit.chunk, answer, question)
            items.append(QAItem(question, answer, hit.source, hit.chunk, hit.text, fact=fact))
    return items, dropped
