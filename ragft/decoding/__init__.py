"""The in-process decode loop behind ``generation.stream_local``: a few prompts, one base model, an adapter per row.

    loop          `run`: prefill by prompt length (in chunks), one decode batch, rows leave as they end
    adapter_rows  `AdapterRows`: each row its adapter, the cheapest way the batch allows
    products      `FewRowsLinear`: a decode step's few rows with the weight on the left; bfloat16 prefill products
    cache         `GrowingLayer`: a KV cache that grows in place as rows join and leave
    threads       `DecodeThreads`: one thread or all for a decode step, chosen per model by timing both

Everything here imports torch and transformers at the top: only generation (lazily) and the benchmarks import it.
"""

from .adapter_rows import AdapterRows
from .cache import GrowingLayer
from .loop import PREFILL_CHUNK, Row, StopRules, run
from .products import FewRowsLinear, bf16_products, few_rows_linears

__all__ = ["PREFILL_CHUNK", "AdapterRows", "FewRowsLinear", "GrowingLayer", "Row", "StopRules", "bf16_products",
           "few_rows_linears", "run"]
