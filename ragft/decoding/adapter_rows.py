"""Each row of a forward with its own adapter (or none), the cheapest way the batch allows: `AdapterRows`.

peft's mixed batch (``adapter_names``) gathers and scatters each adapter's rows in every LoRA layer; with one
adapter on some rows, a per-row scaling (0 on the base rows) gives one batched LoRA product per layer instead, and
a lean LoRA forward (`lean_lora_linear`) adds it into the base output in place. Both are put on the shared model's
layers for one forward loop and taken off after it (a class swap and attributes, undone on exit).
"""

from __future__ import annotations

import contextlib
import functools
from typing import Any, Self

import torch
import torch.nn.functional as F

from ..backend import BASE


class AdapterRows:
    """Gives each row of a forward its adapter, the cheapest way the batch allows (a context manager; it restores
    the model on exit):

    - no row uses an adapter: peft's adapters are switched off, a plain forward;
    - one adapter, on some of the rows: that adapter is active and each LoRA layer's scaling becomes a per-row
      tensor, 0 on the base rows. One batched LoRA product per layer, where peft's mixed batch (``adapter_names``)
      gathers and scatters each adapter's rows in every LoRA layer, which costs more on a CPU and on a GPU
      (docs/performance.md). The base rows get ``base + 0 * lora``, exactly the base output;
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
            lean = lean_lora_linear()
            for layer in layers.values():
                layer.__class__ = lean
            self._exit.callback(restore_classes, list(layers.values()), lean.__base__)
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
        module walks a switch cost more than a decode step."""
        if off != self._off:
            for module in self._tuners:
                module.enable_adapters(not off)
            self._off = off

    def kwargs(self, names: list[str]) -> dict:
        """Forward kwargs for rows using ``names``; sets the per-row scaling when that is the way. When none of
        them uses an adapter (the adapter rows have ended), the adapters are off: a plain forward, as for base rows
        alone (a LoRA product scaled by 0 is not free)."""
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


def restore_classes(layers: list, cls) -> None:
    """Undo a class swap: each layer back to ``cls``."""
    for layer in layers:
        layer.__class__ = cls


@functools.cache
def lean_lora_linear():
    """peft's LoRA ``Linear`` whose forward, for one adapter in inference, adds ``(x A^T * scaling) B^T`` into the
    base output in place (``addmm_``): the scaling multiplies the rank-wide product (or is ``addmm_``'s ``alpha``),
    not the full output, and no output-sized temporaries are made. peft's ``base + lora_B(lora_A(x)) * scaling``
    makes two (a multiply and an add over every output): with the per-row scaling they cost an adapter row's
    prefill noticeably more than a base row's. Layers that read the same input (q, k, v; gate, up) share one
    product with their A matrices stacked (`SharedInput`). Anything else (training, several adapters, another dtype) takes peft's
    own forward."""
    from peft.tuners.lora import Linear

    class LeanLoraLinear(Linear):
        lean: LeanPlan | None = None  # while `AdapterRows` holds it

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


# A lean layer's plan: (adapter, base layer, A, B, the SharedInput of its siblings or None)
LeanPlan = tuple[str, torch.nn.Module, torch.Tensor, torch.Tensor, "SharedInput | None"]


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
        self._scaling: torch.Tensor | None = None
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
        lean: dict[Any, LeanPlan] = {}  # by peft's LoRA layer (peft has no types here: `pyproject.toml`)
        for layer in layers.values():
            a, b = layer.lora_A[name].weight, layer.lora_B[name].weight
            if a.dtype == b.dtype == getattr(layer.base_layer, "weight", a).dtype:
                lean[layer] = (name, layer.base_layer, a, b, None)
        for parent in {key.rpartition(".")[0] for key in layers}:
            for names in cls.SIBLINGS:
                keys = [f"{parent}.{n}" for n in names]
                if not all(key in layers and layers[key] in lean for key in keys):
                    continue
                group = [layers[key] for key in keys]
                if len({lean[layer][2].shape[1] for layer in group}) == 1 \
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
