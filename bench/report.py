"""How every benchmark reports: one line per figure with the reference measured in the same run and their ratio,
and the run's figures as JSON under ``bench/results/`` (with the machine they ran on)."""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


@dataclass(frozen=True)
class Figure:
    """``value`` measured against ``reference`` (same run, same unit). ``target`` bounds ``ratio`` ("<= 0.7",
    ">= 0.9"), ``limit`` bounds ``value`` itself ("<= 50" ms); empty when the figure is for information."""

    name: str
    value: float
    reference: float
    unit: str
    target: str = ""
    reference_name: str = ""
    limit: str = ""

    @property
    def ratio(self) -> float:
        return round(self.value / self.reference, 3) if self.reference else float("nan")

    @property
    def met(self) -> bool | None:
        checks = [(self.ratio, self.target), (self.value, self.limit)]
        results = [_holds(x, bound) for x, bound in checks if bound]
        return all(results) if results else None


def _holds(x: float, bound: str) -> bool:
    op, number = bound.split()
    return x <= float(number) if op == "<=" else x >= float(number)


def size(flags: list[str]) -> str:
    """The run's size from its flags: "smoke", "quick" or "full"."""
    return "smoke" if "--smoke" in flags else "quick" if "--quick" in flags else "full"


def machine() -> str:
    try:
        import torch

        if torch.cuda.is_available():
            return f"{torch.cuda.get_device_name(0)}, {os.cpu_count()} CPU cores"
    except ImportError:
        pass
    cpu = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
        cpu = model
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} CPU cores, no GPU"


def line(bench: str, f: Figure) -> str:
    verdict = {None: "", True: "met", False: "MISSED"}[f.met]
    ref = f" ({f.reference_name})" if f.reference_name else ""
    target = " and ".join(filter(None, [f.target and f"ratio {f.target}", f.limit and f"{f.limit} {f.unit}"]))
    return (f"{bench:10} {f.name:44} {f.value:>10.4g} {f.unit:5} vs {f.reference:>10.4g}{ref:22}"
            f" ratio {f.ratio:>7.3g}  {target:22} {verdict}")


def report(bench: str, figures: list[Figure], details: dict | None = None, out: Path | None = None) -> Path:
    """Print ``figures`` and write them (and ``details``) to ``bench/results/<bench>.json``; returns that path."""
    for f in figures:
        print(line(bench, f), flush=True)
    out = out or Path(os.environ.get("RAGFT_BENCH_RESULTS", RESULTS)) / f"{bench}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({
        "machine": machine(),
        "figures": [asdict(f) | {"ratio": f.ratio, "met": f.met} for f in figures],
        "details": details or {},
    }, indent=2) + "\n")
    return out
