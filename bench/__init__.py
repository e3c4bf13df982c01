"""Benchmarks: speed and memory targets, reported as ratios measured in one run (never in timed tests).

    .venv/bin/python -m bench              # every benchmark
    .venv/bin/python -m bench four_way     # one of them

Each writes its numbers to bench/results/<name>.json and prints a table.
"""
