"""Batched, streamed generation on the one base model: each row of a batch may use its own adapter.

``stream_batch`` runs ``model.generate`` in a worker thread with ``BatchStreamer``, which splits the batch's
new tokens into one growing text per row, so every pane starts streaming at the same step. With a vLLM server
(RAGFT_ENGINE=vllm) every row is its own streamed request instead, all sent at once. A row that starts
repeating itself (its last ``stop_repeats`` new tokens already occurred among its new tokens) stops there, and its
text keeps the first occurrence only: a small greedy model otherwise loops until ``max_new_tokens``.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from .models import BASE, Generator


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


class BatchStreamer:
    """A transformers streamer for batches: ``put`` gets the prompt once, then one new token per row per step.

    Iterating yields the list of per-row texts each time any row grows; a row stops growing at its first EOS, or
    when it starts repeating itself (``stop_repeats``, see ``repeated_tail``), whose repeated tail is dropped.
    """

    def __init__(self, tokenizer, rows: int, stop_ids: set[int], stop_repeats: int = 0):
        self.tokenizer = tokenizer
        self.tokens: list[list[int]] = [[] for _ in range(rows)]
        self.finished = [False] * rows
        self.stop_ids = stop_ids
        self.stop_repeats = stop_repeats
        self._seen_prompt = False
        self._queue: queue.Queue = queue.Queue()
        self._end = object()

    def put(self, value) -> None:
        if not self._seen_prompt:  # the first call carries the (padded) prompts
            self._seen_prompt = True
            return
        step = value.reshape(len(self.tokens), -1).tolist()  # (rows, 1) or (rows,) -> rows lists
        for row, new in enumerate(step):
            for tok in new:
                if self.finished[row]:
                    break
                if tok in self.stop_ids:
                    self.finished[row] = True
                    continue
                self.tokens[row].append(tok)
                if cut := repeated_tail(self.tokens[row], self.stop_repeats):
                    del self.tokens[row][-cut:]
                    self.finished[row] = True
        self._queue.put(self.texts())

    def end(self) -> None:
        self._queue.put(self._end)

    def texts(self) -> list[str]:
        return [self.tokenizer.decode(t, skip_special_tokens=True) for t in self.tokens]

    def __iter__(self) -> Iterator[list[str]]:
        while (item := self._queue.get()) is not self._end:
            yield item


def repeat_stopper(prompt_len: int, n: int):
    """Stopping criteria for ``generate`` that end each row of a left-padded batch (every prompt is ``prompt_len``
    tokens) once ``repeated_tail`` fires on its new tokens; ``BatchStreamer`` drops that tail from the text."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    class RepeatStop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):  # -> (rows,) bool: True ends that row
            new = input_ids[:, prompt_len:].tolist()
            return torch.tensor([repeated_tail(row, n) > 0 for row in new], device=input_ids.device)

    return StoppingCriteriaList([RepeatStop()])


def stop_token_ids(generator: Generator) -> set[int]:
    ids = {generator.tokenizer.eos_token_id}
    if isinstance(generator, Generator):  # a remote generator's server reads the same from its model folder
        eos = generator.model.generation_config.eos_token_id
        ids.update(eos if isinstance(eos, list) else [eos])
    im_end = generator.tokenizer.convert_tokens_to_ids("<|im_end|>")
    if isinstance(im_end, int) and im_end != generator.tokenizer.unk_token_id:
        ids.add(im_end)
    return {i for i in ids if i is not None}


def render_prompts(generator: Generator, conversations: list[list[dict]]) -> list[str]:
    return [
        generator.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        for messages in conversations
    ]


def stream_batch(
    generator: Generator, conversations: list[list[dict]], adapter_names: list[str], decode: DecodeSettings
) -> Iterator[list[str]]:
    """Generate one answer per conversation in a single ``generate`` call; yield all texts as they grow.

    ``adapter_names[i]`` is a loaded adapter's name or ``BASE``. Rows are left-padded so every row's next
    token sits at the same position.
    """
    if len(conversations) != len(adapter_names):
        raise ValueError("one adapter name per conversation")
    if not conversations:
        return
    if getattr(generator, "client", None) is not None:
        yield from _stream_remote(generator, conversations, adapter_names, decode)
        return
    import torch

    tokenizer = generator.tokenizer
    stops = stop_token_ids(generator)
    streamer = BatchStreamer(tokenizer, len(conversations), stops, decode.stop_repeats)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            with generator.lock, torch.inference_mode():
                enc = tokenizer(
                    render_prompts(generator, conversations),
                    return_tensors="pt",
                    padding=True,
                    add_special_tokens=False,  # the chat template already has them
                ).to(generator.device)
                kwargs = dict(
                    max_new_tokens=decode.max_new_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=sorted(stops),
                    streamer=streamer,
                )
                if decode.stop_repeats > 0:  # the same rule for every row; the streamer trims what it ends
                    kwargs["stopping_criteria"] = repeat_stopper(enc["input_ids"].shape[1], decode.stop_repeats)
                if decode.temperature > 0:
                    torch.manual_seed(decode.seed)
                    kwargs.update(do_sample=True, temperature=decode.temperature, top_p=0.95)
                else:
                    kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
                if generator.has_adapters:  # else peft would apply its active adapter to every row
                    kwargs["adapter_names"] = adapter_names
                elif any(name != BASE for name in adapter_names):
                    raise ValueError(f"no adapter is loaded, cannot use {sorted(set(adapter_names) - {BASE})}")
                generator.model.generate(**enc, **kwargs)
        except BaseException as exc:  # surfaced to the caller's thread below
            errors.append(exc)
            streamer.end()

    thread = threading.Thread(target=work, name="ragft-generate", daemon=True)
    thread.start()
    last: list[str] | None = None
    for texts in streamer:
        last = texts
        yield texts
    thread.join()
    if errors:
        raise errors[0]
    if last is None:
        yield streamer.texts()


def _stream_remote(generator, conversations: list[list[dict]], adapter_names: list[str], decode: DecodeSettings
                   ) -> Iterator[list[str]]:
    """``stream_batch`` on a vLLM server (see `serving.remote.RemoteGenerator`): the same prompt tokens, one request
    per row. The repetition rule is the same, checked on each row's text re-tokenised as it grows (the server sends
    pieces of text, not token ids), so a row may run a few tokens past the point the local path stops it."""
    tok = generator.tokenizer
    prompt_ids = [tok(p, add_special_tokens=False)["input_ids"] for p in render_prompts(generator, conversations)]

    def stop_row(_row: int, text: str) -> str | None:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        cut = repeated_tail(ids, decode.stop_repeats)
        return tok.decode(ids[:-cut], skip_special_tokens=True) if cut else None

    yield from generator.stream(prompt_ids, adapter_names, decode.max_new_tokens, sorted(stop_token_ids(generator)),
                                decode.temperature, decode.seed, stop_row)


def generate_batch(
    generator: Generator, conversations: list[list[dict]], adapter_names: list[str], decode: DecodeSettings
) -> list[str]:
    """The final texts of ``stream_batch``."""
    texts: list[str] = [""] * len(conversations)
    for texts in stream_batch(generator, conversations, adapter_names, decode):
        pass
    return [t.strip() for t in texts]
