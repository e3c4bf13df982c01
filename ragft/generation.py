"""Batched, streamed generation on the one base model: each row of a batch may use its own adapter.

``stream_batch`` renders the chat prompts and hands the rows to the backend (`backend.Backend.stream_rows`). In
this process that is `stream_local`: the decode loop of `decoding` in a worker thread, short prompts started at
once, every running row decoded in one batch, each pane streaming its own text; a vLLM server gets one streamed
request per row, ZeroGPU GPU calls (`spaces`). ``option_logprobs`` likewise (`score_local`). A row that starts
repeating itself (its last ``stop_repeats`` new tokens already occurred among its new tokens) stops there, and its
text keeps the first occurrence only: a small greedy model otherwise loops until ``max_new_tokens``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .backend import Backend
    from .models import Generator


@dataclass(frozen=True)
class DecodeSettings:
    """How to decode. Same settings and seed for every row, so variants differ only by prompt and adapter."""

    max_new_tokens: int = 96
    temperature: float = 0.0  # 0 = greedy
    seed: int = 0
    # Stop a row once its last n new tokens already occurred among its new tokens (0 = off). Only the answer is
    # looked at, never the prompt, so copying words out of the retrieved context is never held against a row.
    stop_repeats: int = 8


def repeated_tail(tokens: list[int], n: int) -> int:
    """How many tokens at the end of ``tokens`` repeat earlier ones: ``n`` when its last ``n`` tokens already
    occurred in it, else 0 (always 0 when ``n`` is 0). Overlaps count: n + 1 equal tokens in a row repeat too."""
    if n <= 0 or len(tokens) <= n:
        return 0
    tail = tokens[-n:]
    return n if any(tokens[i:i + n] == tail for i in range(len(tokens) - n)) else 0


def stop_token_ids(tokenizer, generation_config=None) -> set[int]:
    """The ids that end an answer: the tokenizer's end of sequence and end of turn, and those of the model's
    generation config when there is one here."""
    ids = {tokenizer.eos_token_id}
    if generation_config is not None:
        eos = generation_config.eos_token_id
        ids.update(eos if isinstance(eos, list) else [eos])
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != tokenizer.unk_token_id:
        ids.add(im_end)
    return {i for i in ids if i is not None}


def render_prompts(generator: Backend, conversations: list[list[dict]]) -> list[str]:
    # transformers annotates apply_chat_template with every form it can return; with tokenize=False it is the text
    return [
        generator.tokenizer.apply_chat_template(  # type: ignore[misc]
            messages, tokenize=False, add_generation_prompt=True
        )
        for messages in conversations
    ]


def stream_batch(
    generator: Backend, conversations: list[list[dict]], adapter_names: list[str], decode: DecodeSettings
) -> Iterator[list[str]]:
    """Generate one answer per conversation, all in one batch; yield all texts each time any of them grows.

    ``adapter_names[i]`` is a loaded adapter's name or ``BASE``.
    """
    if len(conversations) != len(adapter_names):
        raise ValueError("one adapter name per conversation")
    if not conversations:
        return
    yield from generator.stream_rows(prompt_tokens(generator, conversations), adapter_names, decode)


def prompt_tokens(generator: Backend, conversations: list[list[dict]]) -> list[list[int]]:
    """Each conversation's chat-template prompt as token ids (the template has the special tokens)."""
    tok = generator.tokenizer
    return [tok(p, add_special_tokens=False)["input_ids"] for p in render_prompts(generator, conversations)]


def stream_local(generator: Generator, prompt_ids: list[list[int]], adapter_names: list[str],
                 decode: DecodeSettings) -> Iterator[list[str]]:
    """``stream_batch`` on the in-process model: `decoding.run` in a worker thread (the lock is held by one thread
    from start to end, however the caller's iteration hops between threads), texts passed back through a queue.
    Closing this iterator early (a stopped chat) ends the generation at its next step."""
    import torch

    from .decoding import Row, StopRules, run

    tokenizer = generator.tokenizer
    rows = [Row(list(ids), name) for ids, name in zip(prompt_ids, adapter_names)]
    rules = StopRules(frozenset(stop_token_ids(tokenizer, generator.model.generation_config)), decode.max_new_tokens,
                      lambda tokens: repeated_tail(tokens, decode.stop_repeats))
    texts = [""] * len(rows)
    updates: queue.Queue = queue.Queue()
    end, stop = object(), threading.Event()
    errors: list[BaseException] = []

    def on_step() -> None:
        for i, row in enumerate(rows):
            if row.changed:
                row.changed = False
                # transformers annotates decode as str | list[str] (a list of rows decodes to a list); this is one row
                texts[i] = tokenizer.decode(row.tokens, skip_special_tokens=True)  # type: ignore[assignment]
        updates.put(list(texts))

    def work() -> None:
        try:
            with generator.lock, torch.inference_mode():
                device = generator.device
                run(generator.model, rows, rules, _picker(decode, device), on_step, stop.is_set,
                    padded_prefill=device.type == "cuda", bf16_prefill=generator.cpu_bf16)
        except BaseException as exc:  # noqa: BLE001 - surfaced to the caller's thread below
            errors.append(exc)
        finally:
            updates.put(end)

    thread = threading.Thread(target=work, name="ragft-generate", daemon=True)
    thread.start()
    try:
        while (item := updates.get()) is not end:
            yield item
    finally:
        stop.set()
    thread.join()
    if errors:
        raise errors[0]


def _picker(decode: DecodeSettings, device):
    """Next-token choice from the last logits of each row: argmax, or a seeded sample (temperature, top-p 0.95)."""
    import torch

    if decode.temperature <= 0:
        return lambda logits: logits.argmax(-1)
    from transformers import (
        LogitsProcessorList,
        TemperatureLogitsWarper,
        TopPLogitsWarper,
    )

    warp = LogitsProcessorList([TemperatureLogitsWarper(decode.temperature), TopPLogitsWarper(0.95)])
    rng = torch.Generator(device=device).manual_seed(decode.seed)
    return lambda logits: torch.multinomial(warp(None, logits.float()).softmax(-1), 1, generator=rng).view(-1)


def generate_batch(
    generator: Backend, conversations: list[list[dict]], adapter_names: list[str], decode: DecodeSettings
) -> list[str]:
    """The final texts of ``stream_batch``."""
    texts: list[str] = [""] * len(conversations)
    for texts in stream_batch(generator, conversations, adapter_names, decode):
        pass
    return [t.strip() for t in texts]


SCORE_ROWS = 16  # (question, option) rows per log-likelihood forward pass: bounds the logits' memory


def option_logprobs(
    generator: Backend, conversations: list[list[dict]], continuations: list[str], adapter_names: list[str]
) -> list[float]:
    """Total log-probability of each continuation as the assistant's reply to its conversation.

    Rows are left-padded (with explicit position ids) so every continuation ends at the right edge; only the last
    positions' logits are computed (``logits_to_keep``), which keeps memory small for a 49k-token vocabulary.
    """
    tok = generator.tokenizer
    rows = [(p, tok(c, add_special_tokens=False)["input_ids"] or [tok.eos_token_id])
            for p, c in zip(prompt_tokens(generator, conversations), continuations)]
    return generator.score_rows(rows, adapter_names)


def score_local(generator: Generator, token_rows: list[tuple[list[int], list[int]]], adapter_names: list[str]
                ) -> list[float]:
    """`option_logprobs` on the in-process model, for (prompt ids, continuation ids) rows."""
    import torch

    tok = generator.tokenizer
    scores: list[float] = []
    for start in range(0, len(token_rows), SCORE_ROWS):
        rows = token_rows[start:start + SCORE_ROWS]
        width = max(len(p) + len(c) for p, c in rows)
        keep = max(len(c) for _, c in rows) + 1
        ids = torch.tensor([[tok.pad_token_id] * (width - len(p) - len(c)) + p + c for p, c in rows])
        mask = torch.tensor([[0] * (width - len(p) - len(c)) + [1] * (len(p) + len(c)) for p, c in rows])
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        kwargs = {"adapter_names": adapter_names[start:start + SCORE_ROWS]} if generator.has_adapters else {}
        with generator.lock, torch.inference_mode():
            device = generator.device
            logits = generator.model(
                input_ids=ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                logits_to_keep=keep, **kwargs,
            ).logits.float()
        logp = torch.log_softmax(logits, dim=-1).cpu()  # (rows, keep, vocab)
        for r, (_, c) in enumerate(rows):
            # the token at window position keep-len(c)+t is predicted by the logits one position earlier
            predicted = [logp[r, keep - len(c) + t - 1, c[t]].item() for t in range(len(c))]
            scores.append(sum(predicted))
    return scores
