"""Run benchmarks by name: ``python -m bench [--quick | --smoke] [NAME ...]`` (no name: all of them).

Sizes: default = the figures the README reports; ``--quick`` = smaller, minutes; ``--smoke`` = tiny, to check that a
benchmark runs and computes its ratios (tests/test_bench.py), its timings meaningless. Each benchmark prints one
line per figure (value, the reference measured in the same run, their ratio, the target) and writes
``bench/results/<name>.json`` (``RAGFT_BENCH_RESULTS`` moves that folder; a smoke run writes to a temporary one
unless it is set).
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile

import ragft  # noqa: F401  (sets torch's OpenMP waiting before torch loads)

BENCHMARKS = ("four_way", "evaluation", "gpu_step", "training", "ingest", "retrieval", "retrieval_quality", "grounding",
              "memory", "load")


def main(argv: list[str]) -> int:
    flags = [a for a in argv if a.startswith("--")]
    names = [a for a in argv if not a.startswith("--")] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    if "--smoke" in flags and "RAGFT_BENCH_RESULTS" not in os.environ:  # meaningless timings: keep the README's
        os.environ["RAGFT_BENCH_RESULTS"] = tempfile.mkdtemp(prefix="ragft-bench-smoke-")
        print(f"smoke run: results go to {os.environ['RAGFT_BENCH_RESULTS']}", file=sys.stderr)
    for name in names:
        importlib.import_module(f"bench.{name}").main(flags)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
