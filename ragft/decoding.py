"""The in-process decode loop behind ``generation.stream_batch``: a few prompts, one base model, an adapter per row.

Why not ``model.generate`` on one left-padded batch (measured on a 2-core CPU in the Performance issue: the four
variants took 1.3× as long together as one at a time): prefill is compute-bound on a CPU, so padding a 40-token
prompt to an 800-token RAG prompt costs as much as another RAG prompt, and every row is computed until the longest
one ends. Here instead:

- **prefill**: rows of equal prompt length are prefilled together, shortest first, so the short prompts show text
  at once (on a GPU all rows go together, left-padded: there a wider batch is nearly free). A long prompt is
  prefilled in chunks of ``PREFILL_CHUNK`` tokens, with a decode step of the rows already running between chunks,
  so their panes keep streaming;
- **decode**: every prefilled row joins one batch (its KV cache left-padded to the batch's length, the padding
  masked); a row leaves the batch as soon as it ends;
- **adapters**: see `AdapterRows`.

Greedy answers are the ones each row gets alone (tests/test_generation.py compares them). This module imports torch
and transformers at the top: only generation (lazily) and the benchmarks import it.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

import torch
import torch.nn.functional as F
from transformers import DynamicCache
from transformers.cache_utils import DynamicLayer

from .backend import BASE

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


class AdapterRows:
    """Gives each row of a forward its adapter, the cheapest way the batch allows (a context manager; it restores
    the model on exit):

    - no row uses an adapter: peft's adapters are switched off, a plain forward;
    - one adapter, on some of the rows: that adapter is active and each LoRA layer's scaling becomes a per-row
      tensor, 0 on the base rows. One batched LoRA product per layer, where peft's mixed batch (``adapter_names``)
      gathers and scatters each adapter's rows in every LoRA layer: +20% per decode step on a CPU, 1.65× a forward
      on a GPU (Performance issue). The base rows get ``base + 0 * lora``, exactly the base output;
    - several adapters, or LoRA layers of another kind (DoRA, merged): peft's mixed batch.
    """

    def __init__(self, model, names: list[str]):
        self.model = model
        self.used = sorted(set(names) - {BASE})
        self._scaled: list = []  # (layer, scaling) of the one adapter, when the per-row scaling applies
        self._tensors: dict[tuple[bool, ...], dict[float, object]] = {}
        self._exit = contextlib.ExitStack()
        self._mixed = False
        self._off = False  # adapters switched off while only base rows run
        self._modules: dict = {}
        self._tuners: list = []

    def __enter__(self) -> Self:
        from peft import PeftModel
        from peft.tuners.tuners_utils import BaseTunerLayer
        from peft.utils.other import AuxiliaryTrainingWrapper

        if not isinstance(self.model, PeftModel):
            if self.used:
                raise ValueError(f"no adapter is loaded, cannot use {self.used}")
            return self
        self._modules = dict(self.model.named_modules())  # one walk, for all below
        # what peft's own switch (``disable_adapter_layers``) toggles, found once instead of at each switch
        self._tuners = [m for m in self._modules.values() if isinstance(m, (BaseTunerLayer, AuxiliaryTrainingWrapper))]
        if not self.used:
            self._switch_off(True)
        elif len(self.used) == 1 and (layers := self._plain_lora_layers(self.used[0])):
            name = self.used[0]
            previous = self.model.active_adapter
            if previous != name:  # peft's set_adapter walks every module: only when it changes anything
                self.model.set_adapter(name, inference_mode=True)
                if isinstance(previous, str):
                    self._exit.callback(self.model.set_adapter, previous, inference_mode=True)
            self._scaled = [(layer, layer.scaling[name]) for layer in layers.values()]
            self._exit.callback(self._restore_scaling)
            lean = _lean_lora()
            for layer in layers.values():
                layer.__class__ = lean
            self._exit.callback(_restore_classes, list(layers.values()), lean.__base__)
            SharedInput.attach(name, layers)
            self._exit.callback(SharedInput.detach, list(layers.values()))
        else:
            self._mixed = True
        self._exit.callback(self._switch_off, False)  # first thing on exit
        return self

    def __exit__(self, *exc) -> None:
        self._exit.close()

    def _plain_lora_layers(self, name: str) -> dict:
        """Adapter ``name``'s LoRA layers by their qualified names, when all are plain (unmerged, no variant)."""
        from peft.tuners.lora import Linear, LoraLayer

        layers = {key: m for key, m in self._modules.items() if isinstance(m, LoraLayer) and name in m.lora_A}
        plain = all(type(m) is Linear and not m.merged and name not in m.lora_variant for m in layers.values())
        return layers if layers and plain else {}

    def _restore_scaling(self) -> None:
        name = self.used[0]
        for layer, scaling in self._scaled:
            layer.scaling[name] = scaling

    def _switch_off(self, off: bool) -> None:
        """Adapters off (a plain forward) or back on, layer by layer as peft's ``disable_adapter_layers`` does. Not
        peft's ``disable_adapter()`` context: it first reads the status of every layer and parameter, and with the
        module walks a switch cost ~15 ms on SmolLM2-135M, more than a decode step."""
        if off != self._off:
            for module in self._tuners:
                module.enable_adapters(not off)
            self._off = off

    def kwargs(self, names: list[str]) -> dict:
        """Forward kwargs for rows using ``names``; sets the per-row scaling when that is the way. When none of
        them uses an adapter (the adapter rows have ended), the adapters are off: a plain forward, as for base rows
        alone (a LoRA product scaled by 0 cost a one-row step ~25% on a CPU)."""
        if self.used:
            self._switch_off(all(n == BASE for n in names))
            if self._off:
                return {}
        if self._mixed:
            return {"adapter_names": list(names)}
        if self._scaled:
            name = self.used[0]
            on = tuple(n == name for n in names)
            if on not in self._tensors:
                ref = self._scaled[0][0].lora_B[name].weight
                self._tensors[on] = {
                    s: torch.tensor([s if o else 0.0 for o in on], dtype=ref.dtype, device=ref.device).view(-1, 1, 1)
                    for s in {scaling for _, scaling in self._scaled}
                }
            by_value = self._tensors[on]
            for layer, scaling in self._scaled:
                layer.scaling[name] = scaling if all(on) else by_value[scaling]
        return {}


def _restore_classes(layers: list, cls) -> None:
    for layer in layers:
        layer.__class__ = cls


@functools.cache
def _lean_lora():
    """peft's LoRA ``Linear`` whose forward, for one adapter in inference, adds ``(x A^T * scaling) B^T`` into the
    base output in place (``addmm_``): the scaling multiplies the rank-wide product (or is ``addmm_``'s ``alpha``),
    not the full output, and no output-sized temporaries are made. peft's ``base + lora_B(lora_A(x)) * scaling``
    makes two (a multiply and an add over every output): with the per-row scaling they cost an adapter row's
    prefill ~15% more than a base row's. Layers that read the same input (q, k, v; gate, up) share one product with
    their A matrices stacked (`SharedInput`). Anything else (training, several adapters, another dtype) takes peft's
    own forward."""
    from peft.tuners.lora import Linear

    class LeanLoraLinear(Linear):
        lean: tuple | None = None  # (adapter, base layer, A, B, SharedInput or None) while `AdapterRows` holds it

        def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
            lean = self.lean
            if lean is None or args or kwargs or self._disable_adapters or self.training or x.dim() != 3 \
                    or x.dtype != lean[2].dtype:
                return super().forward(x, *args, **kwargs)
            name, base, a, b, shared = lean
            result = base(x).contiguous()
            scaling = self.scaling[name]  # a float, or a (rows, 1, 1) tensor: 0 on the base rows
            if shared is not None:
                h = shared.product(x, scaling)[self]
            elif isinstance(scaling, torch.Tensor):
                h = (F.linear(x, a) * scaling).view(-1, b.shape[1])
            else:
                h = F.linear(x, a).view(-1, b.shape[1])
            per_row = isinstance(scaling, torch.Tensor)
            result.view(-1, b.shape[0]).addmm_(h, b.t(), alpha=1 if per_row else scaling)
            return result

    return LeanLoraLinear


class SharedInput:
    """LoRA layers of one block that read the same input (Llama's q, k and v projections; gate and up): the first
    of them to see an input computes ``x A^T`` for all of them at once, with their A matrices stacked, and the
    others take their columns of it. One matrix product and one scaling instead of three (a decode step on a CPU
    costs per op: a LoRA layer's three small ops cost about as much as its base product)."""

    SIBLINGS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))

    def __init__(self, name: str, layers: list):
        self.name = name
        self.weight = torch.cat([layer.lora_A[name].weight for layer in layers])
        ranks = [layer.lora_A[name].weight.shape[0] for layer in layers]
        starts = [sum(ranks[:i]) for i in range(len(ranks))]
        self.columns = {layer: slice(start, start + rank) for layer, start, rank in zip(layers, starts, ranks)}
        self._input: torch.Tensor | None = None
        self._scaling = None
        self._parts: dict = {}

    def product(self, x: torch.Tensor, scaling) -> dict:
        """Each layer's ``x A^T`` (times the scaling when it is a per-row tensor) as a (rows * tokens, rank) view;
        computed once per input (the same tensor object: an input held here is not freed, so its id is not
        reused)."""
        per_row = scaling if isinstance(scaling, torch.Tensor) else None  # a float scales in ``addmm_``
        if x is not self._input or per_row is not self._scaling:
            h = F.linear(x, self.weight)
            if per_row is not None:
                h.mul_(per_row)
            h = h.view(-1, self.weight.shape[0])
            self._parts = {layer: h[:, columns] for layer, columns in self.columns.items()}
            self._input, self._scaling = x, per_row
        return self._parts

    @classmethod
    def attach(cls, name: str, layers: dict) -> None:
        """Give each lean layer (``layers``: by qualified name) its plan (adapter ``name``'s weights, when their dtype
        is the base layer's), and sibling layers that share an input, the same A dtype and the same scaling one
        `SharedInput`."""
        lean = {}
        for layer in layers.values():
            a, b = layer.lora_A[name].weight, layer.lora_B[name].weight
            if a.dtype == b.dtype == getattr(layer.base_layer, "weight", a).dtype:
                lean[layer] = (name, layer.base_layer, a, b, None)
        for parent in {key.rpartition(".")[0] for key in layers}:
            for names in cls.SIBLINGS:
                group = [layers.get(f"{parent}.{n}") for n in names]
                if all(layer in lean for layer in group) and len({lean[layer][2].shape[1] for layer in group}) == 1 \
                        and len({layer.scaling[name] for layer in group}) == 1:
                    shared = cls(name, group)
                    for layer in group:
                        lean[layer] = (*lean[layer][:4], shared)
        for layer, plan in lean.items():
            layer.lean = plan

    @staticmethod
    def detach(layers: list) -> None:
        for layer in layers:
            layer.__dict__.pop("lean", None)


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
    ``bf16_prefill``: the prefill's weight products run in bfloat16 (see `FewRowsLinear`; `models.Generator.cpu_bf16`
    says when).
    """
    batches: list[_Batch] = []
    device = next(model.parameters()).device
    threads = decode_threads(model, device)
    few_rows_linears(model)

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

    with AdapterRows(model, [r.adapter for r in rows]) as adapters:
        for group in _prefill_groups(rows, padded_prefill):
            ids, mask = _left_padded([r.prompt for r in group], device)
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            cache = _new_cache(model, ids.shape[1], len(group) + sum(len(b.rows) for b in batches))
            names = [r.adapter for r in group]
            for start in range(0, ids.shape[1], chunk):
                if batches:
                    step_all()
                if cancelled():
                    return
                end = start + chunk
                token = _BF16_PRODUCTS.set(bf16_prefill)
                try:
                    out = model(input_ids=ids[:, start:end], attention_mask=mask[:, :end],
                                position_ids=positions[:, start:end], cache=cache, use_cache=True, logits_to_keep=1,
                                **adapters.kwargs(names))
                finally:
                    _BF16_PRODUCTS.reset(token)
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


class DecodeThreads:
    """How many CPU threads a decode step gets. A decode step is hundreds of tiny ops, and on a small model handing
    each to a team of threads can cost more than the second thread gains (on this 2-core machine, in a worker thread,
    a 4-row step of SmolLM2-135M with its adapter took ~160 ms on 2 threads and ~90 ms on 1 while libgomp slept at
    every barrier; `ragft/__init__.py` says why it no longer does, and both now take about as long).
    Prefill is compute-bound and keeps every thread. Which is faster depends on the model and the machine, so the
    first ``2 * trials`` decode steps of a model alternate between 1 thread and all of them, and the faster stays
    for that model from then on."""

    def __init__(self, threads: int, trials: int = 4):
        self.all, self.trials = threads, trials
        self.times: dict[int, list[float]] = {1: [], threads: []}
        self.choice: int | None = None if threads > 1 else threads

    @contextlib.contextmanager
    def __call__(self):
        n = self.choice or (1 if len(self.times[1]) <= len(self.times[self.all]) else self.all)
        if n != self.all:
            torch.set_num_threads(n)
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.choice is None:
                self.times[n].append(time.perf_counter() - start)
                if min(len(t) for t in self.times.values()) >= self.trials:
                    self.choice = min(self.times, key=lambda k: sorted(self.times[k])[self.trials // 2])
            if n != self.all:
                torch.set_num_threads(self.all)


_THREADS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def decode_threads(model, device) -> DecodeThreads:
    """The model's `DecodeThreads` (on a GPU: nothing to choose)."""
    if device.type != "cpu":
        return DecodeThreads(1)
    if model not in _THREADS:
        _THREADS[model] = DecodeThreads(torch.get_num_threads())
    return _THREADS[model]


class FewRowsLinear(torch.nn.Linear):
    """An ``nn.Linear`` that multiplies a decode step's few rows as ``(W @ x.T).T``.

    A decode step sends a handful of rows through every weight matrix once; on a CPU it is bound by reading the
    weights. ``F.linear`` hands MKL ``x @ W.T``: one row goes to its matrix-vector product, 2 to 4 rows to a float32
    GEMM, and both read the weights slowly. With the weight as the left operand (one row doubled, one copy kept)
    the same product streams them faster. Measured on this 2-core EPYC over all of SmolLM2-135M's layer weights,
    one thread, ms for 1/2/3/4 rows: ``F.linear`` 37/56/65/49, ``W @ x.T`` 24/24/38/41 (two threads in the main
    thread: 37/60/67/48 vs 22/19/21/23); from 6 rows on neither way wins on one thread. An odd row count gets a
    row of zeros: 1 row is MKL's matrix-vector product, and 3 columns read the weights slower than 4 (30 layers'
    weights in a worker thread, 1 / 2 threads: 25.6 / 13.0 ms for 3 rows, 21.3 / 12.0 padded to 4). Same
    arithmetic summed in another order (differences ~1e-5); prefill and training (hundreds of rows) keep
    ``F.linear``.

    Within a prefill that asks for it (`run`'s ``bf16_prefill``), products of more rows run in bfloat16 (weight and
    input cast for the one product, float32 out): a CPU with AVX512-BF16 or AMX multiplies bfloat16 at ~2.7x its
    float32 rate (this EPYC: 196 vs 73 GFLOP/s), and two ~600-token RAG prompts prefill in ~1.5 s instead of
    ~2.4. The KV cache, attention, norms, LoRA products, the logits (one row) and every decode step stay float32.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // self.in_features
        if rows > FEW_ROWS and _BF16_PRODUCTS.get():
            out = F.linear(x.to(torch.bfloat16), self.weight.to(torch.bfloat16)).float()
            return out if self.bias is None else out + self.bias
        if rows > FEW_ROWS or torch.is_autocast_enabled(x.device.type):
            return F.linear(x, self.weight, self.bias)
        flat = x.reshape(rows, self.in_features)
        wide = F.pad(flat, (0, 0, 0, 1)) if rows % 2 else flat  # MKL is slow at 1 and 3 columns
        out = torch.mm(self.weight, wide.t())[:, :rows].t().contiguous()
        if self.bias is not None:
            out = out + self.bias
        return out.view(*x.shape[:-1], self.out_features)


FEW_ROWS = 4  # at most this many rows take ``W @ x.T``
_BF16_PRODUCTS: contextvars.ContextVar[bool] = contextvars.ContextVar("ragft_bf16_products", default=False)
MIN_WEIGHTS = 1 << 16  # smaller matrices (LoRA's A and B) cost their launch either way


def few_rows_linears(model) -> None:
    """Make the model's large float32 CPU ``nn.Linear`` layers `FewRowsLinear` (idempotent; a walk over the
    modules, cheap next to one decode step)."""
    for m in model.modules():
        if type(m) is torch.nn.Linear and m.weight.device.type == "cpu" and m.weight.dtype == torch.float32 \
                and m.weight.numel() >= MIN_WEIGHTS:
            m.__class__ = FewRowsLinear


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


def _new_cache(model, length: int = 0, rows: int = 0):
    """A DynamicCache whose full-attention layers are `GrowingLayer`s (sliding-window ones stay as they are), with
    room for ``rows`` rows of ``length`` tokens from the start: a prompt prefilled in chunks is not copied at each
    chunk, and the rows already running can join it without a copy of its cache."""
    cache = DynamicCache(config=model.config)
    cache.layers = [GrowingLayer(length, rows) if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


class GrowingLayer(DynamicLayer):
    """A DynamicLayer that appends into spare room instead of concatenating its whole cache at every step
    (profiled: that concatenation was 37% of a four-row decode step on this CPU). ``keys`` and ``values`` stay the
    filled part (views of the room's first rows and tokens). Rows leaving, rows joining (`append_rows`) and leading
    columns dropped keep the room where they can, so the next step copies nothing; a caller that replaces ``keys``
    and ``values`` itself makes the next update copy them into fresh room."""

    spare = 64  # tokens of room added whenever the layer runs full

    def __init__(self, length: int = 0, rows: int = 0):
        super().__init__()
        self.length, self.rows = length, rows  # tokens and rows the first room holds at least

    def update(self, key_states, value_states, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
            self._room = None
        filled = self.keys.shape[-2] if self.keys.dim() == 4 else 0
        total, rows = filled + key_states.shape[-2], key_states.shape[0]
        room = self._room if self._owns_room() and self.keys.shape[0] == rows else None
        if room is None or room[0].shape[-2] < total:
            shape = (max(rows, self.rows), key_states.shape[1], max(total, self.length) + self.spare,
                     key_states.shape[-1])
            room = (key_states.new_empty(shape), value_states.new_empty(shape))
            if filled:
                room[0][:rows, :, :filled] = self.keys
                room[1][:rows, :, :filled] = self.values
            self._room = room
        room[0][:rows, :, filled:total] = key_states
        room[1][:rows, :, filled:total] = value_states
        self.keys, self.values = room[0][:rows, :, :total], room[1][:rows, :, :total]
        return self.keys, self.values

    def _owns_room(self) -> bool:
        room = getattr(self, "_room", None)
        return room is not None and self.keys.dim() == 4 and room[0].data_ptr() == self.keys.data_ptr() \
            and room[0].shape[0] >= self.keys.shape[0]

    def append_rows(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Append another cache's rows, left-padded with zeros to this one's length (at least theirs): into the
        spare rows of the room when it has them, else with this cache's rows into fresh room (one copy)."""
        mine, length = self.keys.shape[0], self.keys.shape[-2]
        rows = mine + keys.shape[0]
        room = self._room if self._owns_room() and self._room[0].shape[0] >= rows else None
        if room is None:
            shape = (rows, keys.shape[1], length + self.spare, keys.shape[-1])
            room = (keys.new_empty(shape), values.new_empty(shape))
            room[0][:mine, :, :length], room[1][:mine, :, :length] = self.keys, self.values
        pad = length - keys.shape[-2]
        for into, part in zip(room, (keys, values)):
            into[mine:rows, :, :pad] = 0  # masked, but garbage could be NaN, and 0 * NaN is NaN
            into[mine:rows, :, pad:length] = part
        self._room = room
        self.keys, self.values = room[0][:rows, :, :length], room[1][:rows, :, :length]

    def batch_select_indices(self, indices: torch.Tensor) -> None:
        """Keep the rows ``indices``: the first rows keep their room as it is; others are copied, with their room."""
        if not self._owns_room():
            return super().batch_select_indices(indices)
        filled, rows = self.keys.shape[-2], len(indices)
        if torch.equal(indices.cpu(), torch.arange(rows)):  # the room keeps its spare rows too
            room = self._room
        else:
            room = (self._room[0].index_select(0, indices), self._room[1].index_select(0, indices))
        self._room = room
        self.keys, self.values = room[0][:rows, :, :filled], room[1][:rows, :, :filled]

    def drop_columns(self, first: int) -> None:
        """Drop the first ``first`` tokens' columns (padding in every row), keeping the room behind them."""
        rows, filled = self.keys.shape[0], self.keys.shape[-2]
        if self._owns_room():
            self._room = (self._room[0][:, :, first:], self._room[1][:, :, first:])
            self.keys, self.values = (part[:rows, :, :filled - first] for part in self._room)
        else:
            self.keys, self.values = self.keys[:, :, first:], self.values[:, :, first:]
