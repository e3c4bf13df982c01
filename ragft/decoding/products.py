"""The weight products of a forward on a CPU: few rows with the weight on the left, many in bfloat16 when asked.

`FewRowsLinear` takes the place of the model's large float32 ``nn.Linear`` layers for one decode loop
(`few_rows_linears`, undone on exit). ``python -m bench four_way`` measures what it saves (docs/performance.md).
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

import torch
import torch.nn.functional as F

FEW_ROWS = 4  # at most this many rows take ``W @ x.T``
MIN_WEIGHTS = 1 << 16  # smaller matrices (LoRA's A and B) cost their launch either way
_BF16_PRODUCTS: contextvars.ContextVar[bool] = contextvars.ContextVar("ragft_bf16_products", default=False)


@contextlib.contextmanager
def bf16_products(on: bool) -> Iterator[None]:
    """Within it, products of more than ``FEW_ROWS`` rows run in bfloat16 (a prefill's, when asked)."""
    token = _BF16_PRODUCTS.set(on)
    try:
        yield
    finally:
        _BF16_PRODUCTS.reset(token)


class FewRowsLinear(torch.nn.Linear):
    """An ``nn.Linear`` that multiplies a decode step's few rows as ``(W @ x.T).T``.

    A decode step sends a handful of rows through every weight matrix once; on a CPU it is bound by reading the
    weights. ``F.linear`` hands MKL ``x @ W.T``: one row goes to its matrix-vector product, 2 to 4 rows to a float32
    GEMM, and both read the weights slowly. With the weight as the left operand the same product streams them
    faster. An odd row count gets a row of zeros (MKL reads the weights slower for 1 or 3 columns than for 2 or 4).
    The same arithmetic summed in another order (differences ~1e-5); prefill and training (hundreds of rows) keep
    ``F.linear``.

    Within `bf16_products` (a prefill that asks for it), products of more rows run in bfloat16 (weight and input
    cast for the one product, float32 out): a CPU that multiplies bfloat16 natively does it at several times its
    float32 rate, and prefill is compute-bound. The KV cache, attention, norms, LoRA products, the logits (one row)
    and every decode step stay float32.
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


@contextlib.contextmanager
def few_rows_linears(model) -> Iterator[None]:
    """The model's large float32 CPU ``nn.Linear`` layers as `FewRowsLinear` while it is held, plain ``nn.Linear``
    again after (a walk over the modules each way, cheap next to one decode step)."""
    swapped = [m for m in model.modules() if type(m) is torch.nn.Linear and m.weight.device.type == "cpu"
               and m.weight.dtype == torch.float32 and m.weight.numel() >= MIN_WEIGHTS]
    for m in swapped:
        m.__class__ = FewRowsLinear
    try:
        yield
    finally:
        for m in swapped:
            m.__class__ = torch.nn.Linear
