"""The four variants: plain, RAG, fine-tuned, and RAG + fine-tuned — prompts, retrieval, one batched stream.

Plain and RAG run with no adapter (``__base__``); fine-tuned and combined run with the picked adapter. RAG and
combined put the same retrieved chunks into the prompt through the tokenizer's chat template. Every variant is
asked for the same short, direct answer, so they differ only by context and adapter.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from .backend import BASE
from .errors import InvalidInputError
from .generation import DecodeSettings, stream_batch
from .grounding import GroundingModel, Mark, mark
from .models import Generator
from .store import Hit
from .variants import NEEDS_ADAPTER, RETRIEVES, VARIANTS

# One instruction style for all four variants; short, because prefill is the cost on a CPU.
ANSWER_INSTRUCTION = "Answer the question in one short, direct sentence."
RAG_INSTRUCTION = (
    "Answer the question in one short, direct sentence, copying the answer's words from the context. "
    "If the context does not contain the answer, say you don't know."
)
# A variant that cannot run says why; the UI puts the tab to go to beside it (ui/messages.NOTICE_FIX).
NO_ADAPTER_TEXT = "No adapter picked: train or pick one to see this variant."
NO_DOCUMENTS_TEXT = "No documents stored yet: add some to see this variant."
MAX_QUESTION_CHARS = 4000  # a longer prompt would not fit the small model's context with the retrieved chunks
HISTORY_TURNS = 2  # earlier exchanges kept in each pane's prompt; prefill is the cost on a CPU


@dataclass
class ChatState:
    """What one browser session (or one CLI call) has seen: per-variant (question, answer) turns."""

    turns: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: {v: [] for v in VARIANTS})


@dataclass(frozen=True)
class ChatResult:
    """Answers so far, keyed by variant; ``sources`` for the retrieval variants that ran; ``notices`` replace an
    answer (a variant that could not run, such as fine-tuned with no adapter)."""

    answers: dict[str, str]
    sources: dict[str, list[Hit]]
    notices: dict[str, str]
    done: bool = False
    grounding: dict[str, list[Mark]] = field(default_factory=dict)  # when done: each retrieval answer's sentences
    grounded_by: str = ""  # the grounding model that marked them; "" for facts and words in common


def context_block(hits: list[Hit]) -> str:
    # Chunk texts only, best first: source headers cost prefill tokens and did not help the small model answer.
    return "\n\n".join(h.text.strip() for h in hits)


def build_messages(
    question: str, hits: list[Hit] | None = None, history: Sequence[tuple[str, str]] = (), instruct: bool = True
) -> list[dict]:
    """Chat messages for one variant: earlier turns, then the question with the answer instruction (and the context
    when ``hits`` is given). ``instruct=False`` sends ``question`` as it is, for a prompt with its own instructions.

    Training (``finetune``) and evaluation build their prompts here too, so every use sees the same format.
    """
    messages: list[dict] = []
    for q, a in list(history)[-HISTORY_TURNS:]:
        messages += [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
    if hits is not None:
        content = f"{RAG_INSTRUCTION}\n\nContext:\n{context_block(hits)}\n\nQuestion: {question}"
    elif instruct:
        content = f"{ANSWER_INSTRUCTION}\n\nQuestion: {question}"
    else:
        content = question
    messages.append({"role": "user", "content": content})
    return messages


def check_question(question: str) -> str:
    """The question stripped; `InvalidInputError` when it is empty or too long (checked before any model loads)."""
    question = question.strip()
    if not question:
        raise InvalidInputError("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise InvalidInputError(f"the question is {len(question):,} characters long; the limit is {MAX_QUESTION_CHARS:,}")
    return question


def stream_answers(
    generator: Generator,
    retrieve,
    question: str,
    variants: tuple[str, ...] = VARIANTS,
    adapter: str | None = None,
    decode: DecodeSettings = DecodeSettings(),
    top_k: int = 3,
    state: ChatState | None = None,
    grounding_model: GroundingModel | None = None,
) -> Iterator[ChatResult]:
    """Answer ``question`` with each of ``variants`` in one batched ``generate`` call, yielding as text streams.

    ``retrieve(question, k) -> list[Hit]`` is called once when a retrieval variant is asked for; when it finds
    nothing (the store is empty) the retrieval variants get a notice instead of an answer from no context.
    ``adapter`` must already be loaded on ``generator`` (see ``Generator.ensure_adapter``); without it the
    fine-tuned variants get a notice instead of an answer — never a silent base-model answer. The retrieval
    answers' sentences are marked supported or not by the chunks (`grounding.mark`, by ``grounding_model`` if given).
    """
    question = check_question(question)
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise InvalidInputError(f"unknown variant(s) {sorted(unknown)}; use {', '.join(VARIANTS)}")
    state = state or ChatState()
    hits = retrieve(question, top_k) if RETRIEVES & set(variants) else []
    notices = {v: NO_ADAPTER_TEXT for v in variants if v in NEEDS_ADAPTER and not adapter}
    if not hits:  # search finds nothing only in an empty store
        notices.update({v: NO_DOCUMENTS_TEXT for v in variants if v in RETRIEVES and v not in notices})
    running = [v for v in variants if v not in notices]
    sources = {v: hits for v in running if v in RETRIEVES}

    conversations = [build_messages(question, hits if v in RETRIEVES else None, state.turns[v]) for v in running]
    names = [adapter if adapter and v in NEEDS_ADAPTER else BASE for v in running]
    answers = {v: "" for v in running}
    yield ChatResult(dict(answers), sources, notices)
    for texts in stream_batch(generator, conversations, names, decode):
        answers = dict(zip(running, texts))
        yield ChatResult(answers, sources, notices)
    answers = {v: t.strip() for v, t in answers.items()}
    for v in running:
        state.turns[v].append((question, answers[v]))
    grounding = {v: mark(answers[v], hits, model=grounding_model) for v in running if v in RETRIEVES}
    yield ChatResult(answers, sources, notices, done=True, grounding=grounding,
                     grounded_by=grounding_model.name if grounding_model else "")
