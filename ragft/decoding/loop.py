"""The decode loop: prompts of different lengths on one model, each row its own adapter, every row streamed.

Not ``model.generate`` on one left-padded batch: on a CPU prefill is compute-bound, so padding a short prompt to a
long RAG prompt's length costs another RAG prompt, and every row would be computed until the longest one ends.
Here instead:

- **prefill**: rows of equal prompt length are prefilled together, shortest first, so the short prompts show text
  at once (on a GPU all rows go together, left-padded: there a wider batch is nearly free). A long prompt is
  prefilled in chunks of ``PREFILL_CHUNK`` tokens, with a decode step of the rows already running between chunks,
  so their panes keep streaming;
- **decode**: every prefilled row joins one batch (its KV cache left-padded to the batch's length, the padding
  masked); a row leaves the batch as soon as it ends;
- **adapters**: `adapter_rows.AdapterRows`; the few-row products and bfloat16 prefill: `products`; the cache that
  grows in place: `cache`; the thread count of a decode step: `threads`.

Greedy answers are the ones each row gets alone (tests/test_decoding.py, tests/test_generation.py). What each
choice saves is measured by ``python -m bench four_way`` (docs/performance.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .adapter_rows import AdapterRows
from .cache import GrowingLayer, new_cache
from .products import bf16_products, few_rows_linears
from .threads import decode_threads

PREFILL_CHUNK = 256  # tokens per prefill forward; between two, the running rows take a step


@dataclass
class Row:
    """One answer being generated: its prompt's token ids, its adapter (or ``BASE``) and its new tokens so far."""

    prompt: list[int]
    adapter: str
    tokens: list[int] = field(default_factory=list)
    done: bool = False
    changed: bool = False  # since the caller last looked


@dataclass(frozen=True)
class StopRules:
    """When a row ends: at a stop token (not kept), at ``max_new`` tokens, or when ``repeated(tokens)`` says how many
    tokens at its end repeat earlier ones (they are dropped)."""

    stop_ids: frozenset[int]
    max_new: int
    repeated: Callable[[list[int]], int]

    def accept(self, row: Row, token: int) -> None:
        row.changed = True
        if token in self.stop_ids:
            row.done = True
            return
        row.tokens.append(token)
        if cut := self.repeated(row.tokens):
            del row.tokens[-cut:]
            row.done = True
        elif len(row.tokens) >= self.max_new:
            row.done = True


class _Batch:
    """Rows decoding together: their KV cache (rows left-padded to one length), attention mask, next positions and
    last tokens."""

    def __init__(self, rows: list[Row], cache, mask, positions, last):
        self.rows, self.cache, self.mask, self.positions, self.last = rows, cache, mask, positions, last

    def mergeable(self) -> bool:
        return all(type(layer) is GrowingLayer for layer in self.cache.layers)

    def merge(self, other: _Batch) -> bool:
        """Take ``other``'s rows into this batch (the shorter cache is left-padded and joins the longer one's room,
        which its prefill made wide enough for them); False when the cache kind cannot be padded (sliding-window
        layers): then the two step side by side."""
        if not (self.mergeable() and other.mergeable()):
            return False
        long, short = (other, self) if other.mask.shape[1] >= self.mask.shape[1] else (self, other)
        for a, b in zip(long.cache.layers, short.cache.layers):
            a.append_rows(b.keys, b.values)
        self.cache = long.cache
        self.mask = torch.cat([long.mask, F.pad(short.mask, (long.mask.shape[1] - short.mask.shape[1], 0))])
        self.positions = torch.cat([long.positions, short.positions])
        self.last = torch.cat([long.last, short.last])
        self.rows = long.rows + short.rows
        return True

    def drop_finished(self) -> None:
        """Rows that ended leave the batch; the cache columns only they used go with them."""
        keep = [i for i, r in enumerate(self.rows) if not r.done]
        if len(keep) == len(self.rows):
            return
        self.rows = [self.rows[i] for i in keep]
        if not keep:
            return
        index = torch.tensor(keep, device=self.mask.device)
        self.cache.batch_select_indices(index)
        self.mask, self.positions, self.last = self.mask[index], self.positions[index], self.last[index]
        first = int(self.mask.any(0).int().argmax())  # leading columns that are padding in every row left
        if first and self.mergeable():
            for layer in self.cache.layers:
                layer.drop_columns(first)
            self.mask = self.mask[:, first:]


def run(model, rows: list[Row], rules: StopRules, pick, on_step: Callable[[], None],
        cancelled: Callable[[], bool], padded_prefill: bool = False, chunk: int = PREFILL_CHUNK,
        bf16_prefill: bool = False) -> None:
    """Generate every row to its end, calling ``on_step`` whenever rows grew; stop early when ``cancelled()``.

    ``pick(logits) -> token ids`` chooses each row's next token from its last logits (greedy or sampled).
    ``padded_prefill``: prefill all rows in one left-padded batch (the GPU way) instead of by equal length.
    ``bf16_prefill``: the prefill's weight products run in bfloat16 (see `products.FewRowsLinear`; `models.Generator.cpu_bf16`
    says when).
    """
    batches: list[_Batch] = []
    device = next(model.parameters()).device
    threads = decode_threads(model, device)

    def step(batch: _Batch) -> None:
        mask = torch.cat([batch.mask, batch.mask.new_ones(len(batch.rows), 1)], dim=1)
        with threads():
            out = model(input_ids=batch.last, attention_mask=mask, position_ids=batch.positions, cache=batch.cache,
                        use_cache=True, logits_to_keep=1, **adapters.kwargs([r.adapter for r in batch.rows]))
        batch.mask, batch.positions = mask, batch.positions + 1
        batch.last = pick(out.logits[:, -1]).view(-1, 1)
        for row, token in zip(batch.rows, batch.last.view(-1).tolist()):
            rules.accept(row, token)
        batch.drop_finished()

    def step_all() -> None:
        for batch in batches:
            step(batch)
        batches[:] = [b for b in batches if b.rows]
        on_step()

    with few_rows_linears(model), AdapterRows(model, [r.adapter for r in rows]) as adapters:
        for group in _prefill_groups(rows, padded_prefill):
            ids, mask = _left_padded([r.prompt for r in group], device)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            cache = new_cache(model, ids.shape[1], len(group) + sum(len(b.rows) for b in batches))
            names = [r.adapter for r in group]
            for start in range(0, ids.shape[1], chunk):
                if batches:
                    step_all()
                if cancelled():
                    return
                end = start + chunk
                with bf16_products(bf16_prefill):
                    out = model(input_ids=ids[:, start:end], attention_mask=mask[:, :end],
                                position_ids=positions[:, start:end], cache=cache, use_cache=True, logits_to_keep=1,
                                **adapters.kwargs(names))
            first = pick(out.logits[:, -1]).view(-1, 1)
            for row, token in zip(group, first.view(-1).tolist()):
                rules.accept(row, token)
            joining = _Batch(list(group), cache, mask, positions[:, -1:] + 1, first)
            joining.drop_finished()
            if joining.rows and not (batches and batches[0].merge(joining)):
                batches.append(joining)
            on_step()
        while batches and not cancelled():
            step_all()


def _prefill_groups(rows: list[Row], padded: bool) -> list[list[Row]]:
    if padded:
        return [list(rows)]
    by_length: dict[int, list[Row]] = {}
    for row in sorted(rows, key=lambda r: len(r.prompt)):
        by_length.setdefault(len(row.prompt), []).append(row)
    return list(by_length.values())


def _left_padded(prompts: list[list[int]], device):
    length = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), length, dtype=torch.long)
    mask = torch.zeros(len(prompts), length, dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, length - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[i, length - len(p):] = 1
    return ids.to(device), mask.to(device)
