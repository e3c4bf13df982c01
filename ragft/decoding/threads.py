"""How many CPU threads a decode step gets: `DecodeThreads`, chosen per model by timing both."""

from __future__ import annotations

import contextlib
import time
import weakref

import torch


class DecodeThreads:
    """How many CPU threads a decode step gets. A decode step is hundreds of tiny ops, and on a small model handing
    each to a team of threads can cost more than the second thread gains (it did while libgomp slept at every
    barrier; `ragft/__init__.py` says why it no longer does). Prefill is compute-bound and keeps every thread. Which
    is faster depends on the model and the machine, so the first ``2 * trials`` decode steps of a model alternate
    between 1 thread and all of them, and the faster stays for that model from then on. Where the process has since
    been given fewer threads than ``all`` (a forked ZeroGPU worker runs on one: `spaces._in_worker`), a step keeps
    what it finds and never raises it."""

    def __init__(self, threads: int, trials: int = 4):
        self.all, self.trials = threads, trials
        self.times: dict[int, list[float]] = {1: [], threads: []}
        self.choice: int | None = None if threads > 1 else threads

    @contextlib.contextmanager
    def __call__(self):
        if torch.get_num_threads() < self.all:
            yield
            return
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
