"""What every engine holds: its settings and workspace, the models and the Chroma client (loaded once, on first use,
by the root engine and shared by the workspaces), its store and its job runner."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from .. import config
from ..config import Settings, check_data_dir, free_mb
from ..experiment import (
    Speed,
)
from ..finetune import (
    remove_partial_adapters,
)
from ..jobs import JobRunner
from ..models import (
    Generator,
    load_embedder,
    load_grounding_model,
    load_reranker,
    use_cpu_bf16,
)
from ..serving import ServingError
from ..spaces import load_generator
from ..store import Store, make_client

if TYPE_CHECKING:
    from chromadb.api import ClientAPI

log = logging.getLogger(__name__)


class EngineBase:
    """The state the verbs (the other modules of this package) work on."""

    def __init__(self, settings: Settings | None = None, parent: EngineBase | None = None, workspace: str = "", *,
                 generator: Generator | Callable[[], Generator] | None = None, embedder=None):
        """``generator`` / ``embedder``: models already loaded (tests share one per session), or for the generator
        a function that loads it on first use; else ragft loads them on first use."""
        self.settings = settings or Settings.from_env()
        self.parent = parent
        self.workspace = workspace  # "" for the root engine; else the workspace id, which also prefixes adapters
        self._lock = threading.Lock()
        self._generator: Generator | None = None if callable(generator) else generator
        self._load_generator = generator if callable(generator) else None
        self._embedder = embedder
        self._reranker = None
        self._grounding_model = None
        self._client: ClientAPI | None = None
        self._store: Store | None = None
        self._speed: Speed | None = None
        self.chroma_wedged = False  # a write failed on a full disk: reopen the client before the next one
        # one background job at a time here, and RAGFT_MAX_JOBS at once across workspaces (the record names the
        # running one, so a restart after a crash can say it was interrupted); training leftovers of a killed
        # process go
        self.job_slots: threading.BoundedSemaphore = (
            parent.job_slots if parent else threading.BoundedSemaphore(self.settings.max_jobs))
        self.jobs = JobRunner(self.settings.data_dir / "jobs" / "running.json", self.job_slots)
        if self.jobs.state.status == "interrupted":
            remove_partial_adapters(self.settings.adapters_dir)
        self.engine_note = ""  # why the configured generation engine is not in use, if it is not

    @property
    def generator(self) -> Generator:
        if self.parent:
            return self.parent.generator
        with self._lock:
            if self._generator is None:
                if self._load_generator:
                    self._generator = self._load_generator()
                elif self.settings.engine == "vllm":
                    self._generator = self._vllm_generator()
                else:
                    self._generator = self._local_generator()
            return self._generator

    @property
    def generator_loaded(self) -> Generator | None:
        """The base model if it was loaded already (nothing is loaded to answer)."""
        return self.parent.generator_loaded if self.parent else self._generator

    def _local_generator(self) -> Generator:
        return load_generator(self.settings.base_model, cpu_precision=self.settings.cpu_precision)

    def _vllm_generator(self):
        """Generation on vLLM (``RAGFT_VLLM_URL``, or a server started here). When it cannot start, a clear
        warning and the in-process generator instead: the app stays usable."""
        from ..serving.remote import connect

        try:
            return connect(self.settings, self._local_generator)
        except ServingError as exc:
            self.engine_note = f"vLLM is not available, answers are generated in-process instead: {exc}"
            log.warning("%s", self.engine_note)
            return self._local_generator()

    @property
    def engine_line(self) -> str:
        """Where answers are generated, in one line for the UI and CLI (does not load anything)."""
        if self.parent:
            return self.parent.engine_line
        if self.engine_note:
            return f"⚠️ {self.engine_note}"
        if self.settings.engine != "vllm":
            bf16 = ("; prompts read and adapters trained with bfloat16 products: RAGFT_CPU_PRECISION=float32 for "
                    "float32") if use_cpu_bf16(self.settings.cpu_precision) else ""
            return f"Answers are generated in-process (transformers + peft{bf16})."
        where = getattr(self._generator, "description", "") or (
            f"vLLM at {self.settings.vllm_url}" if self.settings.vllm_url else "vLLM (started on first use)")
        return f"Answers are generated by {where}: one request per pane, adapters registered at run time."

    def close(self) -> None:
        """Stop what this engine started (a local vLLM server)."""
        if self._generator is not None:
            self._generator.close()

    @property
    def embedder(self):
        """The embedder named in ``RAGFT_EMBED_MODEL``, the embedded one when unset."""
        return self._shared_model("_embedder", self.settings.embed_model, load_embedder, optional=False)

    def _shared_model(self, attr: str, configured: str, load, optional: bool = True):
        """A model every workspace shares, ``load(configured)`` on first use by the root engine; None when it is
        ``optional`` and ``configured`` is empty."""
        if self.parent:
            return self.parent._shared_model(attr, configured, load, optional)
        with self._lock:
            if getattr(self, attr) is None and (configured or not optional):
                setattr(self, attr, load(configured))
            return getattr(self, attr)

    @property
    def reranker(self):
        """The cross-encoder named in ``RAGFT_RERANKER``; None when unset."""
        return self._shared_model("_reranker", self.settings.reranker, load_reranker)

    @property
    def grounding_model(self):
        """The `grounding.GroundingModel` named in ``RAGFT_GROUNDING_MODEL``; None when unset (the marks then need
        no model)."""
        return self._shared_model("_grounding_model", self.settings.grounding_model, load_grounding_model)

    @property
    def chroma(self) -> ClientAPI:
        """The Chroma client (on-disk under the root data dir, or a server), shared by all workspaces."""
        if self.parent:
            return self.parent.chroma
        with self._lock:
            if self._client is None:
                s = self.settings
                if not s.chroma_host:  # on a Chroma server the data lives there
                    check_data_dir(s.data_dir, config.MIN_FREE_MB)
                self._client = make_client(s.chroma_dir, s.chroma_host, s.chroma_port)
            return self._client

    @property
    def store(self) -> Store:
        root = self.parent or self
        if root.chroma_wedged and not self._low_on_space():  # room again after a failed write: a fresh client
            root.reopen_chroma()
        embedder, client, reranker = self.embedder, self.chroma, self.reranker
        with self._lock:
            if self._store is None or self._store.client is not client:  # first use, or the client was reopened
                if self.parent and not self.settings.chroma_host:
                    check_data_dir(self.settings.data_dir, config.MIN_FREE_MB)
                self._store = Store(client, embedder, self.settings.collection, self.settings.retrieval,
                                    reranker)
            return self._store

    def _low_on_space(self) -> str:
        """Why the data dir has too little room to add a document (a full disk wedges Chroma), or ""."""
        if self.settings.chroma_host:
            return ""
        free = free_mb(self.settings.data_dir)
        if free >= config.MIN_FREE_MB:
            return ""
        return (f"not added: the data dir has {free:.0f} MB free and ragft keeps at least {config.MIN_FREE_MB} MB "
                "free; free some space or delete documents first")

    def reopen_chroma(self) -> None:
        """A new Chroma client, and stores on it for every workspace: after a write failed on a full disk, the old
        one hangs on the next write even once there is room again (chromadb 1.5; reads still work on it, and the
        new client cannot open while the disk is full, hence ``chroma_wedged``: `store` reopens once there is room).
        """
        self.chroma_wedged = False
        from chromadb.api.client import Client, SharedSystemClient

        with self._lock:
            if isinstance(self._client, Client):  # chromadb keeps one system per path: forget this one (only)
                SharedSystemClient._identifier_to_system.pop(self._client._identifier, None)
                SharedSystemClient._identifier_to_refcount.pop(self._client._identifier, None)
            self._client, self._store = None, None

    def adapter_key(self, name: str) -> str:
        """The name adapter ``name`` of this workspace has on the shared base model: workspaces may use the same
        adapter names, the model must not mix them up."""
        return f"{self.workspace}/{name}" if self.workspace else name
