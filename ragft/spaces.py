"""ZeroGPU, the GPU hardware of Hugging Face Spaces: all model work runs in `@spaces.GPU` functions.

On ZeroGPU (the ``spaces`` package installed and ``SPACES_ZERO_GPU`` set, as a ZeroGPU Space does) ``import spaces``
patches torch: CUDA looks available, and ``model.to("cuda")`` only marks the weights. A GPU exists only inside a
function decorated with ``spaces.GPU``: each call asks the Space's GPU scheduler for a GPU for ``duration`` seconds
(charged to the visitor's daily quota, refused when it runs out), then runs the function in a forked worker
process, its arguments and results pickled. So here:

- `load_generator` returns a `ZeroGpuGenerator`: the app's process loads the model and places it on "cuda" (as
  ZeroGPU requires), but never runs it and never puts an adapter on it; it only records which adapter folders are
  wanted. The worker, a fork, puts them on its own copy of the model (`ZeroGpuGenerator.sync`) at each call.
- Four entry points hold every piece of model work, each with a duration computed from the work: `gpu_stream`
  (answers: the four-way chat, evaluations, generated questions), `gpu_score` (log-likelihood of options),
  `gpu_train` (a training run, in the worker's process instead of ``accelerate launch``, which would see no GPU)
  and `gpu_measure` (the speed the Experiment's estimate uses). Evaluations and experiment stages are made of them.
- A call longer than ZeroGPU allows (``RAGFT_ZERO_GPU_MAX_S``, 300 s) is split (rows), or refused before it starts
  with what to change (training steps).
- A refusal of the scheduler (quota spent, no GPU free) reaches the visitor as a `GpuRefusedError` with its own
  words ("You have exceeded your ZeroGPU quota (60s requested vs. 12s left). Try again in 0:05:00").

Elsewhere (no ``spaces``, or its no-op mode on other hardware) the entry points are plain functions. How a
function becomes a GPU call (the decorator, refusals, errors carried out of the worker) is `ragft.gpu_calls`.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .backend import ThreadRun
from .errors import InvalidInputError
from .gpu_calls import gpu, zero_gpu
from .models import Generator

_GENERATORS: dict[int, ZeroGpuGenerator] = {}  # a worker (a fork) finds the app's generator by its key
_APP_PID = os.getpid()  # a GPU call runs in a fork of this process: another pid


def load_generator(configured: str = "", cpu_precision: str = "auto") -> Generator:
    """`models.load_generator`: a `ZeroGpuGenerator` on ZeroGPU, else the in-process `Generator`."""
    from .models import load_generator

    return load_generator(configured, cpu_precision=cpu_precision, kind=ZeroGpuGenerator if zero_gpu() else None)


@dataclass
class GpuRates:
    """What a ZeroGPU call's duration is computed from. The defaults are conservative guesses for a model of up to
    a billion parameters on an H200 slice (not measured there: no ZeroGPU was at hand); a bigger model scales them
    by its size. Each call measures its own throughput, and later calls of that kind use the measured one.

    ``max_s`` is the longest call ZeroGPU grants a signed-in visitor (300 s; ``RAGFT_ZERO_GPU_MAX_S``), ``margin``
    what a duration adds to the estimate: only the time used is charged to the quota, but a call that runs past
    its duration may be stopped."""

    start_s: float = 20.0  # a worker forked, CUDA started, the weights moved to the GPU
    prefill_tokens_per_s: float = 20_000.0
    decode_step_s: float = 0.05  # one new token for every row of a batch
    train_tokens_per_s: float = 4_000.0
    model_load_s: float = 20.0  # a training run copies the model and sets up its trainer before its first step
    max_s: float = 300.0
    margin: float = 1.5
    measured: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GpuRates:
        env = os.environ if env is None else env
        try:
            max_s = float(env.get("RAGFT_ZERO_GPU_MAX_S") or cls.max_s)
        except ValueError:
            raise InvalidInputError("RAGFT_ZERO_GPU_MAX_S must be a number of seconds") from None
        if not 10 <= max_s <= 3600:
            raise InvalidInputError(f"RAGFT_ZERO_GPU_MAX_S={max_s:g} is out of range 10..3600 seconds")
        return cls(max_s=max_s)

    def rate(self, kind: str, default: float) -> float:
        return self.measured.get(kind, default)

    def observe(self, kind: str, value: float) -> None:
        if value > 0:
            self.measured[kind] = value

    def answer_s(self, prompt_tokens: int, max_new_tokens: int, size: float = 1.0) -> float:
        work = (prompt_tokens / self.rate("prefill", self.prefill_tokens_per_s)
                + max_new_tokens * self.rate("decode_step", self.decode_step_s)) * size
        return self.start_s + self.margin * work

    def score_s(self, tokens: int, size: float = 1.0) -> float:
        return self.start_s + self.margin * tokens / self.rate("prefill", self.prefill_tokens_per_s) * size

    def train_s(self, tokens: int, size: float = 1.0) -> float:
        work = tokens / self.rate("train", self.train_tokens_per_s) * size
        return self.start_s + self.model_load_s + self.margin * work

    def bounded(self, seconds: float) -> int:
        """A duration ZeroGPU accepts: whole seconds, at most ``max_s``."""
        return int(min(self.max_s, max(1.0, seconds) + 0.999))


class ZeroGpuGenerator(Generator):
    """The base model on ZeroGPU: loaded by the app's process, run only in GPU calls (see the module's docstring).

    ``ensure_adapter`` / ``unload_adapter`` only record the wanted folders; `sync`, in a GPU call, makes the model
    of that process carry exactly those (a folder changed since is loaded again)."""

    def __init__(self, *args, rates: GpuRates | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.rates = rates or GpuRates.from_env()
        self._on_model: dict[str, tuple[str, int]] = {}  # what this process's model carries: name -> folder, time
        # how much slower than a billion-parameter model this one runs (at least 1)
        self.size = max(1.0, sum(p.numel() for p in self.model.parameters()) / 1e9)
        _GENERATORS[id(self)] = self

    @property
    def key(self) -> int:
        return id(self)

    def _load(self, name: str, path: Path) -> None:
        pass  # the GPU call loads it (`sync`)

    def _unload(self, name: str) -> None:
        pass

    # the backend's work, each piece in GPU calls
    def stream_rows(self, prompt_ids, adapter_names, decode):
        return stream(self, prompt_ids, adapter_names, decode)

    def score_rows(self, rows, adapter_names):
        return score(self, rows, adapter_names)

    def check_training(self, config, examples: int) -> None:
        check_training(self, config, examples)

    def start_training(self, folder: Path, config, examples: int, command, env: dict) -> ThreadRun:
        steps, tokens = check_training(self, config, examples)  # in a GPU call of this process, whatever ``command``
        return ThreadRun(folder, functools.partial(gpu_train, self.key, str(folder), steps, tokens))

    def trained(self, tokens_per_s: float) -> None:
        self.rates.observe("train", tokens_per_s * self.size)

    def measure(self, probe):
        return gpu_measure(self.key, probe)

    def wanted(self) -> dict[str, tuple[str, int]]:
        """The adapters the app wants on the model: name -> (folder, its weights' modification time)."""
        return {name: (str(path), _mtime(path)) for name, path in self._adapter_paths.items()}

    def sync(self, wanted: dict[str, tuple[str, int]]) -> None:
        """Make this process's model carry exactly the ``wanted`` adapters (in a GPU call)."""
        with self.lock:
            for name in [n for n, v in self._on_model.items() if wanted.get(n) != tuple(v)]:
                del self._on_model[name]
                if self._on_model:
                    self.model.delete_adapter(name)
                    self.model.set_adapter(next(iter(self._on_model)))
                else:
                    self.model = self.model.unload()
            for name, (path, stamp) in wanted.items():
                if name not in self._on_model:
                    Generator._load(self, name, Path(path))
                    self._on_model[name] = (path, stamp)


def _mtime(folder: Path) -> int:
    try:
        return max(p.stat().st_mtime_ns for p in Path(folder).iterdir())
    except (OSError, ValueError):
        return 0


# --- entry points ----------------------------------------------------------------------------------------------------
def _in_worker() -> None:
    """In a forked worker, torch's CPU ops run on one thread: the OpenMP thread team of the app's process did not
    survive the fork, and GNU OpenMP waits for it forever at the first parallel CPU op (seen here: an embedding
    lookup hung). The model's work is on the GPU; what stays on the CPU is small."""
    if os.getpid() != _APP_PID:
        import torch

        torch.set_num_threads(1)


def _generator(key: int, adapters: dict[str, tuple[str, int]]) -> ZeroGpuGenerator:
    _in_worker()
    generator = _GENERATORS[key]
    generator.sync(adapters)
    return generator


def _stream_seconds(key: int, prompt_ids: list[list[int]], adapter_names, adapters, decode) -> int:
    generator = _GENERATORS[key]
    rates = generator.rates
    return rates.bounded(rates.answer_s(sum(map(len, prompt_ids)), decode.max_new_tokens, generator.size))


@gpu(_stream_seconds)
def gpu_stream(key: int, prompt_ids: list[list[int]], adapter_names: list[str],
               adapters: dict[str, tuple[str, int]], decode) -> Iterator[tuple[list[str], float, int]]:
    """Generate answers on the GPU: yields (texts, seconds since the start, decode steps so far)."""
    from .generation import stream_local

    started = time.perf_counter()
    generator = _generator(key, adapters)
    for steps, texts in enumerate(stream_local(generator, prompt_ids, adapter_names, decode), start=1):
        yield texts, time.perf_counter() - started, steps


def _score_seconds(key: int, rows, adapter_names, adapters) -> int:
    generator = _GENERATORS[key]
    return generator.rates.bounded(generator.rates.score_s(sum(len(p) + len(c) for p, c in rows), generator.size))


@gpu(_score_seconds)
def gpu_score(key: int, rows: list[tuple[list[int], list[int]]], adapter_names: list[str],
              adapters: dict[str, tuple[str, int]]) -> tuple[list[float], float]:
    """Log-likelihood of each (prompt, continuation) row on the GPU, and the seconds it took."""
    from .generation import score_local

    started = time.perf_counter()
    scores = score_local(_generator(key, adapters), rows, adapter_names)
    return scores, time.perf_counter() - started


def _train_seconds(key: int, folder: str, steps: int, tokens: int) -> int:
    generator = _GENERATORS[key]
    return generator.rates.bounded(generator.rates.train_s(tokens, generator.size))


@gpu(_train_seconds)
def gpu_train(key: int, folder: str, steps: int, tokens: int) -> int:
    """One training run (``train_process``'s job folder) on the GPU, on a copy of the model already there (no
    second load); ``steps`` steps of at most ``tokens`` tokens in all make its duration."""
    from .train_process import main

    _in_worker()
    return main(Path(folder), _GENERATORS[key])


def _measure_seconds(key: int, probe: Callable) -> int:
    rates = _GENERATORS[key].rates
    return rates.bounded(rates.start_s + 30.0)


@gpu(_measure_seconds)
def gpu_measure(key: int, probe: Callable):
    """``probe(generator)`` on the GPU: `experiment.measure_speed` (a module-level function: it is pickled by
    name)."""
    return probe(_generator(key, {}))


# --- what the rest of ragft calls ------------------------------------------------------------------------------------
def stream(generator: ZeroGpuGenerator, prompt_ids: list[list[int]], adapter_names: list[str], decode
           ) -> Iterator[list[str]]:
    """`generation.stream_batch` on ZeroGPU: the rows in as few GPU calls as fit ``max_s`` each, in order; yields
    all texts each time one grows."""
    rates, size = generator.rates, generator.size
    groups: list[list[int]] = []
    tokens = 0  # the last group's prompt tokens
    for i, ids in enumerate(prompt_ids):
        if groups and rates.answer_s(tokens + len(ids), decode.max_new_tokens, size) <= rates.max_s:
            groups[-1].append(i)
            tokens += len(ids)
        else:
            groups.append([i])
            tokens = len(ids)
    texts = [""] * len(prompt_ids)
    wanted = generator.wanted()
    for group in groups:
        seconds = steps = 0
        for part, seconds, steps in gpu_stream(generator.key, [prompt_ids[i] for i in group],
                                               [adapter_names[i] for i in group], wanted, decode):
            for i, text in zip(group, part):
                texts[i] = text
            yield list(texts)
        if steps:  # the whole call counted as decode steps: errs long, as a duration should
            rates.observe("decode_step", seconds / steps / size)


def score(generator: ZeroGpuGenerator, rows: list[tuple[list[int], list[int]]], adapter_names: list[str]
          ) -> list[float]:
    """`generation.option_logprobs` on ZeroGPU, in as few GPU calls as fit ``max_s`` each."""
    rates, size, scores = generator.rates, generator.size, []
    start = 0
    while start < len(rows):
        end, tokens = start, 0
        while end < len(rows) and (end == start or rates.score_s(tokens + sum(map(len, rows[end])), size)
                                   <= rates.max_s):
            tokens += sum(map(len, rows[end]))
            end += 1
        part, seconds = gpu_score(generator.key, rows[start:end], adapter_names[start:end], generator.wanted())
        rates.observe("prefill", tokens * size / max(seconds, 1e-6))
        scores += part
        start = end
    return scores


def check_training(generator: ZeroGpuGenerator, config, examples: int) -> tuple[int, int]:
    """Refuse, before it starts, a training run (``config`` over ``examples`` examples) longer than one GPU call may
    be; its steps and the most tokens it reads."""
    rates, steps = generator.rates, config.steps_for(examples)
    tokens = steps * config.batch_size * config.max_seq_len
    need = rates.train_s(tokens, generator.size)
    if need > rates.max_s:
        fit = max(1, int(steps * (rates.max_s - rates.start_s - rates.model_load_s)
                         / max(need - rates.start_s - rates.model_load_s, 1e-6)))
        raise InvalidInputError(f"{steps} training steps would need about {need:.0f} s of GPU; one ZeroGPU call "
                                f"may last {rates.max_s:.0f} s (RAGFT_ZERO_GPU_MAX_S): ask for at most {fit} steps, "
                                "or a shorter sequence length")
    return steps, tokens
