"""What ragft asks of the base model, wherever it runs: the `Backend` contract.

Three backends implement it: `models.Generator` (the model in this process), `spaces.ZeroGpuGenerator` (the model
in ZeroGPU's GPU calls) and `serving.remote.RemoteGenerator` (a vLLM server). The rest of ragft (chat, evaluation,
training, experiments) calls these methods and never asks which backend it holds.

- adapters by name: `Backend.ensure_adapter` loads a folder once (again when it changed), `unload_adapter`;
- `stream_rows`: token-id prompts in, every row's text out, yielded each time one grows; a row names its adapter
  or ``BASE``;
- `score_rows`: the log-probability of each continuation after its prompt;
- `check_training` / `start_training` / `trained`: a training run (`train_process`) refused before it starts when
  this backend cannot run it, started (``accelerate launch`` in a child process by default, or a `ThreadRun` in
  this process), and its speed told.
"""

from __future__ import annotations

import contextvars
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, Self, TypeVar

from .errors import RagftError

if TYPE_CHECKING:
    from transformers.tokenization_utils_base import PreTrainedTokenizerBase

    from .finetune import TrainConfig
    from .generation import DecodeSettings
    from .models import Generator, ModelSource

T = TypeVar("T")
BASE = "__base__"  # peft's name for "no adapter" in a mixed batch


class NoAdapterError(RagftError, LookupError):
    """The fine-tuned variants were asked for, but no adapter is picked or the named one does not exist."""


def adapter_folder(name: str, path: Path | str) -> Path:
    """``path`` as a Path when it holds an adapter (its ``adapter_config.json``); else `NoAdapterError`."""
    path = Path(path)
    if not (path / "adapter_config.json").is_file():
        raise NoAdapterError(f"adapter {name!r} not found (looked in {path})")
    return path


class TrainingRun(Protocol):
    """A started training run, as ``subprocess.Popen`` shows it: ``poll()`` is None while it runs."""

    returncode: int | None

    def poll(self) -> int | None: ...


class ThreadRun:
    """A training run on a thread of this process, looking like the ``subprocess.Popen`` of ``accelerate launch``
    to `train_process.launch_training`: ``poll()``, ``returncode``, ``stop()``. An exception ends it with
    ``returncode`` 1; it is kept as ``error`` and written as the last line of ``folder/train.log``, as a process's
    would be. The starting thread's context goes with it (on ZeroGPU, the visitor whose quota pays)."""

    def __init__(self, folder: Path, work: Callable[[], object]) -> None:
        self.folder = folder
        self.returncode: int | None = None
        self.error: Exception | None = None
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._run, work), name="ragft-train", daemon=True)
        self._thread.start()

    def _run(self, work: Callable[[], object]) -> None:
        try:
            work()
            self.returncode = 0
        except Exception as exc:  # noqa: BLE001 - reported by launch_training, from the log, as a process's
            self.error = exc
            with open(self.folder / "train.log", "a") as log:
                log.write(f"{type(exc).__name__}: {exc}\n")
            self.returncode = 1

    def poll(self) -> int | None:
        return None if self._thread.is_alive() else self.returncode

    def stop(self) -> None:
        """Ask the run to stop at its next step (a thread cannot be killed) and wait for it."""
        (self.folder / "cancel").touch()
        self._thread.join(timeout=60)


class Backend:
    """The base model wherever it runs (see the module's docstring). A subclass sets ``tokenizer``, ``source``,
    ``cpu_bf16``, ``lock`` (an RLock) and ``_adapter_paths`` ({} at first), and says how an adapter is put on
    (`_load`) and taken off (`_unload`) its model, and how rows are generated and scored."""

    tokenizer: PreTrainedTokenizerBase
    source: ModelSource
    lock: threading.RLock
    cpu_bf16: bool
    _adapter_paths: dict[str, Path]

    @property
    def loaded_adapters(self) -> list[str]:
        return list(self._adapter_paths)

    def ensure_adapter(self, name: str, path: Path) -> None:
        """Load the adapter folder ``path`` under ``name`` unless it is already loaded."""
        path = adapter_folder(name, path)
        with self.lock:
            if self._adapter_paths.get(name) != path:
                self._load(name, path)
                self._adapter_paths[name] = path

    def unload_adapter(self, name: str) -> None:
        with self.lock:
            if self._adapter_paths.pop(name, None) is not None:
                self._unload(name)

    def _load(self, name: str, path: Path) -> None:
        raise NotImplementedError

    def _unload(self, name: str) -> None:
        raise NotImplementedError

    def stream_rows(self, prompt_ids: list[list[int]], adapter_names: list[str], decode: DecodeSettings
                    ) -> Iterator[list[str]]:
        """One answer per prompt (token ids, chat template applied), all rows at once; yields every row's text
        each time any of them grows. ``adapter_names[i]``: a loaded adapter's name or ``BASE``."""
        raise NotImplementedError

    def score_rows(self, rows: list[tuple[list[int], list[int]]], adapter_names: list[str]) -> list[float]:
        """The total log-probability of each (prompt ids, continuation ids) row's continuation."""
        raise NotImplementedError

    def check_training(self, config: TrainConfig, examples: int) -> None:
        """Refuse, before anything starts, a training run this backend cannot run (a `RagftError` saying what to
        change). Every run can run by default."""

    def start_training(self, folder: Path, config: TrainConfig, examples: int,
                       command: list[str] | Callable[[], object], env: dict) -> TrainingRun:
        """Start the training run whose job is in ``folder``. ``command``: ``accelerate launch``'s command line, run
        in a child process of its own session with its output in ``folder/train.log``; or (``RAGFT_TRAIN_PROCESSES=0``)
        the function that trains here, run on a `ThreadRun`."""
        if callable(command):
            return ThreadRun(folder, command)
        with open(folder / "train.log", "wb") as log:
            return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def trained(self, tokens_per_s: float) -> None:
        """What a finished run measured (ZeroGPU sizes its later calls by it)."""

    def close(self) -> None:
        """Stop what this backend started (a local vLLM server); nothing by default."""

    def local_model(self) -> Generator | None:
        """The model in this process that a training run here copies (``RAGFT_TRAIN_PROCESSES=0``); None where there
        is none (a vLLM server's): such a run loads its own."""
        return None

    def measure(self, probe: Callable[[Self], T]) -> T:
        """``probe(backend)`` where the model runs (`experiment.measure_speed`: the throughput an estimate uses)."""
        return probe(self)
