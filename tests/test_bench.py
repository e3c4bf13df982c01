"""Every benchmark runs at its smoke size and reports in the one format: a line per figure with its reference and
ratio, and the JSON beside it. Timings at this size mean nothing, so nothing here looks at them."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import BENCHMARKS
from bench.report import Figure

ROOT = Path(__file__).resolve().parents[1]
BROWSER = {"load"}  # browsers (and a training run): the e2e tier


def _marks(name: str) -> list:
    # each runs in a subprocess that loads models (several train a small adapter first): the slow tier
    return [pytest.mark.e2e] if name in BROWSER else [pytest.mark.slow]


@pytest.mark.parametrize("name", [pytest.param(n, marks=_marks(n)) for n in BENCHMARKS])
def test_benchmark_runs_and_reports_ratios(name, tmp_path):
    env = os.environ | {"RAGFT_BENCH_RESULTS": str(tmp_path), "RAGFT_DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run([sys.executable, "-m", "bench", "--smoke", name], cwd=ROOT, env=env, capture_output=True, check=False,
                         text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads((tmp_path / f"{name}.json").read_text())
    assert result["machine"] and result["figures"]
    lines = [line for line in out.stdout.splitlines() if line.startswith(name)]
    assert len(lines) == len(result["figures"])
    for figure, line in zip(result["figures"], lines):
        assert figure["value"] > 0 and figure["reference"] > 0
        # the ratio is rounded to 3 decimals
        assert math.isclose(figure["ratio"], figure["value"] / figure["reference"], rel_tol=1e-2, abs_tol=5e-4)
        assert f"ratio {figure['ratio']:>7.3g}" in line and figure["name"] in line
        if figure["target"] or figure["limit"]:
            assert figure["met"] in (True, False) and ("met" in line or "MISSED" in line)
    if name == "load":  # its one target is correctness: every request served, nobody seeing another's things
        assert result["details"]["errors"] == [] and result["figures"][0]["met"], result["details"]["errors"]


def test_a_smoke_run_leaves_the_reported_results_alone(monkeypatch):
    import types

    from bench import __main__ as bench_main

    seen = []
    fake = types.SimpleNamespace(main=lambda flags: seen.append(os.environ.get("RAGFT_BENCH_RESULTS")))
    monkeypatch.delenv("RAGFT_BENCH_RESULTS", raising=False)
    monkeypatch.setattr(bench_main.importlib, "import_module", lambda name: fake)
    assert bench_main.main(["--smoke", "retrieval"]) == 0
    assert seen and Path(seen[0]).is_dir() and Path(seen[0]) != ROOT / "bench" / "results"
    monkeypatch.delenv("RAGFT_BENCH_RESULTS")
    assert bench_main.main(["retrieval"]) == 0 and seen[1] is None  # a real run writes the README's figures


def test_a_unknown_benchmark_is_refused():
    out = subprocess.run([sys.executable, "-m", "bench", "nope"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert out.returncode == 2 and "choose from" in out.stderr


@pytest.mark.parametrize("figure, met", [
    (Figure("x", 0.6, 1.0, "s", "<= 0.7"), True),
    (Figure("x", 0.8, 1.0, "s", "<= 0.7"), False),
    (Figure("x", 0.95, 1.0, "s", ">= 0.9"), True),
    (Figure("x", 40, 10, "ms", "", "", "<= 50"), True),
    (Figure("x", 60, 10, "ms", "", "", "<= 50"), False),
    (Figure("x", 1, 2, "s"), None),
])
def test_targets(figure, met):
    assert figure.met is met
