"""Settings read from ``RAGFT_*`` (and ``CHROMA_*``) environment variables, with defaults that work offline."""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TypeVar

from .errors import RagftError
from .knobs import bounds, knob
from .knobs import default as default_of


class ConfigError(RagftError, ValueError):
    """An environment variable holds a value ragft cannot use."""


N = TypeVar("N", int, float)


def _number(env: dict, key: str, default: N, lo: N, hi: N, parse: Callable[[str], N]) -> N:
    raw = env.get(key)
    if raw in (None, ""):
        return default
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(f"{key}={raw!r} is not {'a whole number' if parse is int else 'a number'}") from None
    if not lo <= value <= hi:  # also refuses nan
        shown = str if parse is int else "{:g}".format
        raise ConfigError(f"{key}={raw.strip()} is out of range: use {shown(lo)}..{shown(hi)}")
    return value


def _int(env: dict, key: str, default: int, lo: int, hi: int) -> int:
    return _number(env, key, default, lo, hi, int)


def _float(env: dict, key: str, default: float, lo: float, hi: float) -> float:
    return _number(env, key, default, lo, hi, float)


ENGINES = ("local", "vllm")
WORKSPACE_MODES = ("shared", "private")
CPU_PRECISION = ("auto", "bfloat16", "float32")
RETRIEVAL = ("hybrid", "vector")


def _shell_words(env: dict, key: str) -> str:
    raw = (env.get(key) or "").strip()
    try:
        shlex.split(raw)
    except ValueError as exc:
        raise ConfigError(f"{key}={raw!r}: {exc} (write the arguments as a shell would take them)") from None
    return raw


def _choice(env: dict, key: str, default, allowed: tuple):
    raw = (env.get(key) or "").strip()
    if not raw:
        return default
    value = type(default)(raw) if isinstance(default, int) and raw.isdigit() else raw.lower()
    if value not in allowed:
        raise ConfigError(f"{key}={raw!r}: use one of {', '.join(map(str, allowed))}")
    return value


class DataFolder:
    """A folder under `Settings.data_dir`, named by the attribute that holds it: ``adapters_dir`` is
    ``data_dir / "adapters"``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.folder = name.removesuffix("_dir")

    def __get__(self, settings: Settings, owner: type | None = None) -> Path:
        return settings.data_dir / self.folder


@dataclass(frozen=True)
class Settings:
    """Everything ragft can be configured with.

    Args:
        data_dir: where the Chroma store, adapters and uploads live (``RAGFT_DATA_DIR``, default ``./data``).
        base_model: hub id or local directory of the generator (``RAGFT_BASE_MODEL``); empty means the embedded
            SmolLM2-135M-Instruct GGUF, or its hub id when that package is not installed.
        embed_model: hub id or local directory of a sentence-transformers embedder (``RAGFT_EMBED_MODEL``); empty
            means the embedded all-MiniLM-L6-v2.
        chroma_host / chroma_port: use a Chroma server instead of the on-disk store (``CHROMA_HOST``/``CHROMA_PORT``).
        engine: where answers are generated (``RAGFT_ENGINE``): ``local`` (in-process, the default) or ``vllm``.
        vllm_url: a running vLLM server to use (``RAGFT_VLLM_URL``); empty with engine ``vllm`` means ragft starts
            one itself from ``vllm_python`` (``RAGFT_VLLM_PYTHON``, default ./.vllm-venv/bin/python).
        vllm_max_lora_rank: the largest adapter rank the started server accepts (``RAGFT_VLLM_MAX_LORA_RANK``).
        vllm_args: more arguments for the started server, as a shell would split them (``RAGFT_VLLM_ARGS``, e.g.
            ``--no-enable-prefix-caching``).
        max_documents / max_store_mb / max_adapters: quotas of the workspace (``RAGFT_MAX_DOCUMENTS``,
            ``RAGFT_MAX_STORE_MB`` of uploaded file sizes, ``RAGFT_MAX_ADAPTERS``); past them an action is refused with
            the numbers, before anything is written.
        workspaces: ``shared`` (one workspace: the data dir itself; the default on a private machine) or ``private``
            (one per user: per Hugging Face account on a Space with login, else per browser; the default on a Space)
            (``RAGFT_WORKSPACES``). See `ragft.workspaces`.
        workspace_idle_hours: anonymous workspaces unused this long are deleted (``RAGFT_WORKSPACE_IDLE_HOURS``).
        max_workspaces / new_workspaces_per_hour: private workspaces that may exist at once
            (``RAGFT_MAX_WORKSPACES``), and that one client address may make in an hour
            (``RAGFT_NEW_WORKSPACES_PER_HOUR``); past either, a first write is refused with "try again later".
        max_sessions: browser and API sessions whose page state Gradio keeps in memory (``RAGFT_MAX_SESSIONS``;
            ~0.4 MB each); past it the least recently used one's is dropped (its workspace stays; its chat history
            goes).
        max_train_steps: the most optimiser steps one training run (or one experiment's adapter) may take
            (``RAGFT_MAX_TRAIN_STEPS``); a longer run is refused before it starts, with the allowed range.
        max_jobs: trainings, evaluations and experiments running at once across all workspaces (``RAGFT_MAX_JOBS``);
            each workspace runs one at a time.
        train_processes: data-parallel processes a training run uses (``RAGFT_TRAIN_PROCESSES``; `train_process`);
            0 trains on a thread of the app's process (no process start-up; a crash in training is the app's).
        cpu_precision: on a CPU, the precision of the large matrix products of reading a prompt and of training
            (``RAGFT_CPU_PRECISION``): ``auto`` (bfloat16 where the CPU multiplies it natively, else float32),
            ``bfloat16`` or ``float32`` (answers exactly as a float32 model gives them; prompts and training ~1.6x
            slower). Decoding and the weights stay float32. See `decoding.FewRowsLinear`, `finetune.train_adapter`.
        persist_dir: persistent storage that signed-in users' workspaces are copied to and restored from at start-up
            (``RAGFT_PERSIST_DIR``; on a Space, ``/data`` when it is mounted and writable; ``off`` for none). See
            `ragft.snapshots`.
        snapshot_seconds: how often changed workspaces are copied there (``RAGFT_SNAPSHOT_SECONDS``).
        retrieval: how chunks are found for every RAG answer, evaluation, experiment and the Documents search
            (``RAGFT_RETRIEVAL``): ``hybrid`` (vector and keyword (BM25) rankings fused; `ragft.keywords`) or
            ``vector``. Hybrid found the answer in the top 3 chunks more often on person-written questions
            (`python -m bench retrieval_quality`).
        reranker: a sentence-transformers cross-encoder (hub id or folder, ``RAGFT_RERANKER``; unset: none) that
            reorders the best 20 candidates before the top k are taken, for example
            ``cross-encoder/ms-marco-MiniLM-L6-v2`` where the hub can be reached.
        grounding_model: an NLI cross-encoder (hub id or folder, ``RAGFT_GROUNDING_MODEL``; unset: none) that judges
            whether the retrieved chunks support each sentence of a RAG answer (`ragft.grounding`), for example
            ``cross-encoder/nli-deberta-v3-xsmall``; without one, facts and words in common judge.

    Example:
        >>> Settings.from_env({"RAGFT_DATA_DIR": "/tmp/x", "RAGFT_TOP_K": "5"}).top_k
        5
    """

    data_dir: Path = Path("data")
    base_model: str = ""
    embed_model: str = ""
    chroma_host: str = ""
    chroma_port: int = knob(8000, 1, 65535)
    collection: str = "documents"
    # ~160 MiniLM tokens: under its 256-token window, small enough to keep RAG prompts short
    chunk_words: int = knob(120, 20, 2000)
    chunk_overlap_words: int = 20  # carried-over sentences so a fact split across chunks is still found whole
    top_k: int = knob(3, 1, 20, "chunks retrieved for the RAG answers", label="top k")
    max_new_tokens: int = knob(96, 1, 2048, "answer length limit in tokens")
    temperature: float = knob(0.0, 0.0, 5.0, "sampling temperature; 0 = greedy")  # 0 = greedy, so the four variants are comparable
    max_upload_mb: int = knob(20, 1, 1024)
    engine: str = "local"
    vllm_url: str = ""
    vllm_python: str = ""
    vllm_max_lora_rank: int = 16
    vllm_args: str = ""
    max_documents: int = knob(1000, 1, 1_000_000)
    max_store_mb: int = knob(1000, 1, 1_000_000)
    max_adapters: int = knob(50, 1, 10_000)
    workspaces: str = "shared"
    workspace_idle_hours: float = knob(24.0, 0.01, 24 * 365)
    max_workspaces: int = knob(200, 1, 1_000_000)
    max_sessions: int = knob(500, 10, 1_000_000)
    new_workspaces_per_hour: int = knob(10, 1, 1_000_000)
    max_train_steps: int = knob(2000, 1, 100_000, "optimiser steps one training run may take on this app")
    max_jobs: int = knob(2, 1, 64)
    train_processes: int = knob(1, 0, 64, note="0 = in the app's own process")
    cpu_precision: str = "auto"
    persist_dir: Path | None = None
    snapshot_seconds: float = knob(30.0, 1.0, 86_400.0)
    retrieval: str = "hybrid"
    reranker: str = ""
    grounding_model: str = ""

    @classmethod
    def from_env(cls, env: dict | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        chunk_words = _int(env, "RAGFT_CHUNK_WORDS", *_spec("chunk_words"))
        return cls(
            data_dir=Path(env.get("RAGFT_DATA_DIR") or "data"),
            base_model=env.get("RAGFT_BASE_MODEL", "").strip(),
            embed_model=env.get("RAGFT_EMBED_MODEL", "").strip(),
            chroma_host=env.get("CHROMA_HOST", "").strip(),
            chroma_port=_int(env, "CHROMA_PORT", *_spec("chroma_port")),
            collection=env.get("RAGFT_COLLECTION", "").strip() or cls.collection,
            chunk_words=chunk_words,
            chunk_overlap_words=_int(env, "RAGFT_CHUNK_OVERLAP_WORDS", cls.chunk_overlap_words, 0, chunk_words // 2),
            top_k=_int(env, "RAGFT_TOP_K", *_spec("top_k")),
            max_new_tokens=_int(env, "RAGFT_MAX_NEW_TOKENS", *_spec("max_new_tokens")),
            temperature=_float(env, "RAGFT_TEMPERATURE", *_spec("temperature")),
            max_upload_mb=_int(env, "RAGFT_MAX_UPLOAD_MB", *_spec("max_upload_mb")),
            engine=_choice(env, "RAGFT_ENGINE", cls.engine, ENGINES),
            vllm_url=env.get("RAGFT_VLLM_URL", "").strip(),
            vllm_python=env.get("RAGFT_VLLM_PYTHON", "").strip(),
            vllm_max_lora_rank=_choice(env, "RAGFT_VLLM_MAX_LORA_RANK", cls.vllm_max_lora_rank, (8, 16, 32, 64, 128, 256)),
            vllm_args=_shell_words(env, "RAGFT_VLLM_ARGS"),
            max_documents=_int(env, "RAGFT_MAX_DOCUMENTS", *_spec("max_documents")),
            max_store_mb=_int(env, "RAGFT_MAX_STORE_MB", *_spec("max_store_mb")),
            max_adapters=_int(env, "RAGFT_MAX_ADAPTERS", *_spec("max_adapters")),
            workspaces=_choice(env, "RAGFT_WORKSPACES", "private" if env.get("SPACE_ID") else cls.workspaces,
                               WORKSPACE_MODES),
            workspace_idle_hours=_float(env, "RAGFT_WORKSPACE_IDLE_HOURS", *_spec("workspace_idle_hours")),
            max_workspaces=_int(env, "RAGFT_MAX_WORKSPACES", *_spec("max_workspaces")),
            max_sessions=_int(env, "RAGFT_MAX_SESSIONS", *_spec("max_sessions")),
            new_workspaces_per_hour=_int(env, "RAGFT_NEW_WORKSPACES_PER_HOUR", *_spec("new_workspaces_per_hour")),
            max_train_steps=_int(env, "RAGFT_MAX_TRAIN_STEPS", *_spec("max_train_steps")),
            max_jobs=_int(env, "RAGFT_MAX_JOBS", *_spec("max_jobs")),
            train_processes=_int(env, "RAGFT_TRAIN_PROCESSES", *_spec("train_processes")),
            cpu_precision=_choice(env, "RAGFT_CPU_PRECISION", cls.cpu_precision, CPU_PRECISION),
            persist_dir=_persist_dir(env),
            snapshot_seconds=_float(env, "RAGFT_SNAPSHOT_SECONDS", *_spec("snapshot_seconds")),
            retrieval=_choice(env, "RAGFT_RETRIEVAL", cls.retrieval, RETRIEVAL),
            reranker=env.get("RAGFT_RERANKER", "").strip(),
            grounding_model=env.get("RAGFT_GROUNDING_MODEL", "").strip(),
        )

    # the data dir's folders, each named by its attribute without "_dir"
    adapters_dir = DataFolder()
    chroma_dir = DataFolder()
    questions_dir = DataFolder()
    evals_dir = DataFolder()
    experiments_dir = DataFolder()
    vllm_dir = DataFolder()  # the started vLLM server's log and the exported model folder

    def describe(self) -> dict:
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}


def _persist_dir(env: dict) -> Path | None:
    """``RAGFT_PERSIST_DIR`` ("off": none); unset on a Space, the bucket Spaces mounts at ``/data`` when there is one."""
    value = env.get("RAGFT_PERSIST_DIR", "").strip()
    if value.lower() == "off":
        return None
    if value:
        return Path(value)
    mount = Path("/data")
    if env.get("SPACE_ID") and mount.is_dir() and os.access(mount, os.W_OK):
        return mount
    return None


def _spec(name: str) -> tuple:
    """(default, lo, hi) of a `Settings` knob, for reading its environment variable."""
    return (default_of(Settings, name), *bounds(Settings, name))


MIN_FREE_MB = 100  # below this the store, uploads and adapters soon fail half-way


def free_mb(folder: Path) -> float:
    """Megabytes free on the filesystem of ``folder`` (or of its nearest existing parent)."""
    import shutil

    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return shutil.disk_usage(folder).free / 1e6


def check_data_dir(data_dir: Path, min_free_mb: int = MIN_FREE_MB) -> None:
    """Make sure ``data_dir`` exists, can be written and has room; else `ConfigError` saying what to change. Called
    before the store opens, so a read-only or full disk is one clear message at start-up, not a traceback later."""
    import tempfile

    hint = "set RAGFT_DATA_DIR to a folder ragft may write"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".write-check-"):
            pass
        free = free_mb(data_dir)
    except OSError as exc:
        raise ConfigError(f"the data dir {data_dir} cannot be written ({exc.strerror or exc}); {hint}") from None
    if free < min_free_mb:
        raise ConfigError(f"the data dir {data_dir} has {free:.0f} MB free; ragft needs at least {min_free_mb} MB "
                          f"there: free some space or {hint}")
