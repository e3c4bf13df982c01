"""The verbs of one workspace; the base model, embedder and Chroma client are loaded once, on first use, and shared."""

from __future__ import annotations

import logging
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from . import config
from .adapters import (
    RunRecord,
    delete_adapter,
    list_adapters,
    read_run,
    stale_note,
    staleness,
    zip_adapter,
)
from .chat import (
    MODE_VARIANTS,
    ChatResult,
    ChatState,
    build_messages,
    check_question,
    stream_answers,
)
from .config import Settings, check_data_dir, free_mb
from .documents import DocumentError, display_name, load_document
from .errors import InvalidInputError, RagftError
from .evaluate import (
    EvalConfig,
    EvalProgress,
    run_evaluation,
    training_overlap,
)
from .experiment import (
    ExperimentConfig,
    Plan,
    Speed,
    measure_speed,
    plan_experiment,
    run_experiment,
)
from .experiment.report import list_reports, load_report
from .finetune import (
    DataSpec,
    TrainConfig,
    TrainingDataError,
    plan_training,
    preview,
    remove_partial_adapters,
    run_training,
)
from .generation import DecodeSettings, generate_batch
from .jobs import JobRunner, JobState
from .models import (
    BASE,
    Generator,
    NoAdapterError,
    load_embedder,
    load_generator,
)
from .questions import (
    QAItem,
    QuestionSetError,
    check_set_name,
    generate_cloze,
    list_sets,
    llm_questions,
    load_set,
    save_set,
    set_path,
    split_set,
)
from .results import EvalResult
from .serving import ServingError
from .store import AddResult, DocInfo, Hit, Store, make_client

log = logging.getLogger(__name__)


class NoDocumentError(RagftError, LookupError):
    """No stored document has that name."""


class QuotaError(RagftError, ValueError):
    """An action would pass one of the workspace's quotas (RAGFT_MAX_*); the message gives the numbers."""


@dataclass(frozen=True)
class IngestReport:
    """What happened to one file of an upload; ``ok`` False means it was refused and nothing changed."""

    name: str
    ok: bool
    status: Literal["added", "replaced", "unchanged", "duplicate", "refused", "failed"]
    chunks: int
    message: str


class Engine:
    """The verbs behind the UI, the CLI and the tests, on one workspace's documents, adapters and question sets.

    The heavy pieces (base model, embedder, Chroma client) are loaded once, on first use, by the root engine; an
    engine built with ``parent`` (a workspace of `ragft.workspaces.Workspaces`) uses its parent's, and keeps its
    own collection (``settings.collection``) and folders (``settings.data_dir``).
    """

    def __init__(self, settings: Settings | None = None, parent: Engine | None = None, workspace: str = "", *,
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
        self._client = None
        self._store: Store | None = None
        self._speed: Speed | None = None
        self.chroma_wedged = False  # a write failed on a full disk: reopen the client before the next one
        # one background job at a time here, and RAGFT_MAX_JOBS at once across workspaces (the record names the
        # running one, so a restart after a crash can say it was interrupted); training leftovers of a killed
        # process go
        self.job_slots = parent.job_slots if parent else threading.BoundedSemaphore(self.settings.max_jobs)
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
                    self._generator = load_generator(self.settings.base_model)
            return self._generator

    @property
    def generator_loaded(self) -> Generator | None:
        """The base model if it was loaded already (nothing is loaded to answer)."""
        return self.parent.generator_loaded if self.parent else self._generator

    def _vllm_generator(self):
        """Generation on vLLM (``RAGFT_VLLM_URL``, or a server started here). When it cannot start, a clear
        warning and the in-process generator instead: the app stays usable."""
        from .serving.remote import connect

        try:
            return connect(self.settings, lambda: load_generator(self.settings.base_model))
        except ServingError as exc:
            self.engine_note = f"vLLM is not available, answers are generated in-process instead: {exc}"
            log.warning("%s", self.engine_note)
            return load_generator(self.settings.base_model)

    @property
    def engine_line(self) -> str:
        """Where answers are generated, in one line for the UI and CLI (does not load anything)."""
        if self.parent:
            return self.parent.engine_line
        if self.engine_note:
            return f"⚠️ {self.engine_note}"
        if self.settings.engine != "vllm":
            return "Answers are generated in-process (transformers + peft)."
        where = getattr(self._generator, "description", "") or (
            f"vLLM at {self.settings.vllm_url}" if self.settings.vllm_url else "vLLM (started on first use)")
        return f"Answers are generated by {where}: one request per pane, adapters registered at run time."

    def close(self) -> None:
        """Stop what this engine started (a local vLLM server)."""
        if hasattr(self._generator, "close"):
            self._generator.close()

    @property
    def embedder(self):
        if self.parent:
            return self.parent.embedder
        with self._lock:
            if self._embedder is None:
                self._embedder = load_embedder(self.settings.embed_model)
            return self._embedder

    @property
    def chroma(self):
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
        embedder, client = self.embedder, self.chroma
        with self._lock:
            if self._store is None or self._store.client is not client:  # first use, or the client was reopened
                if self.parent and not self.settings.chroma_host:
                    check_data_dir(self.settings.data_dir, config.MIN_FREE_MB)
                self._store = Store(client, embedder, self.settings.collection)
            return self._store

    def adapter_key(self, name: str) -> str:
        """The name adapter ``name`` of this workspace has on the shared base model: workspaces may use the same
        adapter names, the model must not mix them up."""
        return f"{self.workspace}/{name}" if self.workspace else name

    # --- documents -------------------------------------------------------------------------------------------
    def ingest(
        self, files: list[tuple[Path, str]], progress: Callable[[float, str], None] | None = None
    ) -> list[IngestReport]:
        """Add ``(path, display name)`` files. Each file succeeds or fails alone; failures change nothing."""
        s = self.settings
        # a data dir that cannot be written is one error for the whole upload, raised here
        stored = {d.name: d.size_bytes for d in self.store.documents()}  # for the quotas, kept up to date below
        reports: list[IngestReport] = []
        for n, (path, name) in enumerate(files):
            name = display_name(name)
            if progress:
                progress(n / max(len(files), 1), f"reading {name}")
            try:
                doc = load_document(path, name, s.chunk_words, s.chunk_overlap_words, s.max_upload_mb * 1_000_000)
                if over := self._over_quota(stored, doc.name, doc.size_bytes) or self._low_on_space():
                    reports.append(IngestReport(name, False, "refused", 0, f"{name}: {over}"))
                    continue

                def on_batch(done: int, total: int, n=n, name=name) -> None:
                    if progress:
                        progress((n + done / total) / len(files), f"embedding {name}: {done}/{total} chunks")

                result: AddResult = self.store.add(doc, on_batch)
            except DocumentError as exc:
                reports.append(IngestReport(name, False, "refused", 0, str(exc)))
                continue
            except Exception as exc:  # noqa: BLE001 - a full disk, a Chroma error: `Store.add` kept nothing of it
                reports.append(IngestReport(name, False, "failed", 0, f"{name}: could not be stored ({exc}); "
                                            "nothing of it was kept"))
                (self.parent or self).chroma_wedged = True  # `store` reopens the client once there is room
                continue
            message = {
                "added": f"{name}: added {result.chunks} chunks",
                "replaced": f"{name}: changed, replaced with {result.chunks} chunks",
                "unchanged": f"{name}: unchanged, already stored ({result.chunks} chunks)",
                "duplicate": f"{name}: skipped, {result.detail}",
            }[result.status]
            reports.append(IngestReport(name, result.status != "duplicate", result.status, result.chunks, message))
            if result.status in ("added", "replaced"):
                stored[doc.name] = doc.size_bytes
        if progress:
            progress(1.0, "done")
        return reports

    def documents(self) -> list[DocInfo]:
        return self.store.documents()

    def document_chunks(self, name: str) -> list[Hit]:
        """Every chunk of stored document ``name``, in order; `NoDocumentError` when there is none."""
        chunks = self.store.chunks(name)
        if not chunks:
            raise NoDocumentError(f"no document named {name!r}")
        return chunks

    def delete_document(self, name: str) -> int:
        """Delete stored document ``name``; returns its chunk count; `NoDocumentError` when there is none."""
        removed = self.store.delete(name)
        if not removed:
            raise NoDocumentError(f"no document named {name!r}")
        return removed

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
        from chromadb.api.client import SharedSystemClient

        with self._lock:
            if self._client is not None:  # chromadb keeps one system per path: forget this one (only)
                SharedSystemClient._identifier_to_system.pop(self._client._identifier, None)
                SharedSystemClient._identifier_to_refcount.pop(self._client._identifier, None)
            self._client, self._store = None, None

    def _over_quota(self, stored: dict[str, int], name: str, size: int) -> str:
        """Why adding ``name`` (``size`` bytes) would pass the store's quotas, or ""; a replacement counts once."""
        s = self.settings
        if name not in stored and len(stored) >= s.max_documents:
            return f"the store holds {len(stored):,} documents, the limit (RAGFT_MAX_DOCUMENTS); delete some first"
        total = sum(stored.values()) - stored.get(name, 0) + size
        if total > s.max_store_mb * 1_000_000:
            return (f"the store would hold {total / 1e6:,.1f} MB of files, over its {s.max_store_mb:,} MB limit "
                    "(RAGFT_MAX_STORE_MB); delete some documents first")
        return ""

    def check_adapter_room(self, needed: int = 1) -> None:
        """`QuotaError` when ``needed`` more adapters would pass RAGFT_MAX_ADAPTERS (before any training starts)."""
        have = len(self.adapters())
        if have + needed > self.settings.max_adapters:
            raise QuotaError(f"{have} adapters are saved and this run would add {needed}; the limit is "
                             f"{self.settings.max_adapters} (RAGFT_MAX_ADAPTERS): delete some first", fix="adapters")

    def search(self, query: str, k: int | None = None):
        return self.store.search(query, k or self.settings.top_k)

    # --- adapters and chat -------------------------------------------------------------------------------------
    def adapters(self) -> list[str]:
        return list_adapters(self.settings.adapters_dir)

    def use_adapter(self, name: str) -> None:
        """Make sure adapter ``name`` (a folder under the adapters dir) is loaded on the base model."""
        if name not in self.adapters():
            raise NoAdapterError(
                f"no adapter named {name!r}; available: {', '.join(self.adapters()) or 'none yet (train one first)'}"
            )
        self.generator.ensure_adapter(self.adapter_key(name), self.settings.adapters_dir / name)

    def adapter_run(self, name: str | None) -> RunRecord | None:
        """The run record of this workspace's adapter ``name`` (None when there is none or the name is not one of
        its adapters: a crafted name never reads outside the adapters folder)."""
        if not name or name not in self.adapters():
            return None
        return read_run(self.settings.adapters_dir / name)

    def zip_adapter(self, name: str) -> Path:
        """A zip of adapter ``name``'s folder in a fresh temporary folder, for download."""
        if name not in self.adapters():
            raise NoAdapterError(f"no adapter named {name!r}")
        return zip_adapter(self.settings.adapters_dir, name, Path(tempfile.mkdtemp(prefix="ragft-zip-")))

    def delete_adapter(self, name: str) -> None:
        job = self.jobs.state
        if job.active and job.kind == "train" and job.name == name:
            raise InvalidInputError(f"{name} is being trained: cancel the run first")
        if self.generator_loaded is not None:
            self.generator_loaded.unload_adapter(self.adapter_key(name))
        delete_adapter(self.settings.adapters_dir, name)

    def ask(
        self,
        question: str,
        mode: str = "all",
        adapter: str | None = None,
        decode: DecodeSettings | None = None,
        top_k: int | None = None,
        state: ChatState | None = None,
    ) -> Iterator[ChatResult]:
        """Stream the answers of ``mode``'s variants (``plain``, ``rag``, ``ft``, ``rag+ft`` or ``all``)."""
        if mode not in MODE_VARIANTS:
            raise InvalidInputError(f"unknown mode {mode!r}; use one of {', '.join(MODE_VARIANTS)}")
        question = check_question(question)
        if adapter:
            self.use_adapter(adapter)
        s = self.settings
        decode = decode or DecodeSettings(s.max_new_tokens, s.temperature)
        return stream_answers(
            self.generator,
            self.store.search,
            question,
            MODE_VARIANTS[mode],
            self.adapter_key(adapter) if adapter else None,
            decode,
            top_k or s.top_k,
            state,
        )

    # --- training --------------------------------------------------------------------------------------------
    def data_spec(self, source: str, qa_file: str | Path | None = None, qa_set: str | None = None) -> DataSpec:
        """What to train on: the stored documents ("docs"), or for "qa" and "raft" an uploaded JSONL file or a
        saved question set (by name)."""
        if source not in ("docs", "qa", "raft"):
            raise TrainingDataError(f"unknown data source {source!r}; use docs, qa or raft")
        if source == "docs":
            return DataSpec("docs")
        if not qa_file and not qa_set:
            raise TrainingDataError("give a question/answer JSONL file or a saved question set for this data source")
        return DataSpec(source, Path(qa_file) if qa_file else self.question_set_path(qa_set))

    def preview_training(self, spec: DataSpec, config: TrainConfig) -> tuple[list[dict], dict]:
        """The first examples as the model will see them, and counts (examples, tokens, tokens with loss)."""
        return preview(spec.examples(self.store, config), self.generator.tokenizer, config.max_seq_len)

    def start_training(self, spec: DataSpec, config: TrainConfig, name: str = "adapter") -> str:
        """Check the data, then train an adapter as the background job; returns its versioned name.

        Bad data or settings raise here (`TrainingDataError`, `InvalidInputError`), a running job `JobBusyError`; progress,
        loss and the outcome are on ``self.jobs.state``.
        """
        self.jobs.check_idle()  # before building examples (RAFT retrieves for every question)
        self.check_adapter_room()
        plan = plan_training(spec, config, self.store, self.settings.adapters_dir, name)
        self.jobs.start("train", plan.name, lambda state, cancel: run_training(self.generator, plan, state, cancel,
                                                                                 self.settings.train_processes),
                        "starting the training processes")
        return plan.name

    # --- question sets and evaluation ------------------------------------------------------------------------
    def question_sets(self) -> list[str]:
        return list_sets(self.settings.questions_dir)

    def question_set_path(self, name: str) -> Path:
        """The file of saved question set ``name`` (a name, never a path: `QuestionSetError` if there is none)."""
        path = set_path(self.settings.questions_dir, check_set_name(name))
        if not path.is_file():
            raise QuestionSetError(
                f"no question set named {name!r}; saved sets: {', '.join(self.question_sets()) or 'none yet'}"
            )
        return path

    def load_question_set(self, name: str) -> list[QAItem]:
        return load_set(self.question_set_path(name))

    def save_question_set(self, name: str, items: list[QAItem], split: str = "") -> list[str]:
        """Save ``items`` as set ``name``; with ``split`` ("heldout" or "paraphrase") as ``name-train`` (for the
        Fine-tune tab) and ``name-test`` (for Evaluate). Returns the names saved."""
        name = check_set_name(name)
        if not items:
            raise QuestionSetError("nothing to save: the set has no questions")
        d = self.settings.questions_dir
        parts = dict(zip(("train", "test"), split_set(items, split))) if split else {"": items}
        names = [f"{name}-{part}" if part else name for part in parts]
        for full, part_items in zip(names, parts.values()):
            save_set(part_items, set_path(d, full))
        return names

    def generate_questions(self, n: int, method: str = "cloze", choices: int = 0) -> tuple[list[QAItem], str]:
        """Up to ``n`` questions grounded in the stored chunks, and a line saying what was made.

        ``cloze`` needs no model (fill-in-the-blank on names, numbers and years); ``llm`` asks the base model to
        write questions and keeps only those whose answer is found in their chunk.
        """
        if not 1 <= n <= 2000:
            raise QuestionSetError("the number of questions must be 1..2000")
        chunks = self.store.all_chunks()
        if not chunks:
            raise QuestionSetError("the document store is empty: add documents first", fix="documents")
        if method == "cloze":
            items = generate_cloze(chunks, n, choices=choices)
            note = f"{len(items)} fill-in-the-blank questions from {len(chunks)} chunks"
        elif method == "llm":
            items, dropped = llm_questions(chunks, self._complete, n)
            note = (f"{len(items)} questions written by {self.generator.source.description}; {dropped} replies "
                    "dropped (answer not found in the chunk, or not in Question/Answer form)")
        else:
            raise QuestionSetError(f"unknown method {method!r}; use cloze or llm")
        if not items:
            raise QuestionSetError(f"no questions could be made from the stored documents ({note})")
        return items, note

    def _complete(self, prompts: list[str]) -> list[str]:
        conversations = [build_messages(p, instruct=False) for p in prompts]  # the prompt carries its own
        return generate_batch(self.generator, conversations, [BASE] * len(prompts), DecodeSettings(80))

    def training_overlap(self, items: list[QAItem], adapter: str | None) -> tuple[list[str], str]:
        """Which questions ``adapter`` was trained on (see ``evaluate.training_overlap``), and a note."""
        if not adapter or not items:
            return [""] * len(items), ""
        return training_overlap(items, self.adapter_run(adapter))

    def evaluate(
        self,
        items: list[QAItem],
        adapter: str | None = None,
        config: EvalConfig | None = None,
        set_name: str = "",
        cancel: threading.Event | None = None,
    ) -> Iterator[EvalProgress]:
        """Run ``run_evaluation`` on the shared model and store; the finished result is written under
        ``<data>/evals/<time>-<set>/`` (``result.files``)."""
        config = config or EvalConfig(top_k=self.settings.top_k)
        if adapter:
            self.use_adapter(adapter)
        run = self.adapter_run(adapter)
        for progress in run_evaluation(
            self.generator, self.store.search, items, self.adapter_key(adapter) if adapter else None, config, cancel,
            set_name, run
        ):
            progress.result.adapter = adapter or None  # its name here, not on the shared model
            if progress.finished:
                out = self.settings.evals_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{set_name or 'questions'}"
                progress.result.files = progress.result.write(out)
            yield progress

    def start_evaluation(
        self, items: list[QAItem], adapter: str | None = None, config: EvalConfig | None = None, set_name: str = ""
    ) -> JobState:
        """Run `evaluate` as the background job; its state carries the progress and, in ``result``, the
        `EvalResult` so far (final once the job ends). Cancelling keeps the scores so far.

        Bad input raises here: an empty set or bad config `ValueError`, an unknown adapter `NoAdapterError`, a
        running job `JobBusyError`.
        """
        config = (config or EvalConfig(top_k=self.settings.top_k)).validate()
        if not items:
            raise InvalidInputError("the question set is empty")
        if adapter and adapter not in self.adapters():
            available = ", ".join(self.adapters()) or "none yet (train one first)"
            raise NoAdapterError(f"no adapter named {adapter!r}; available: {available}")

        def work(state: JobState, cancel: threading.Event) -> EvalResult | None:
            result = None
            for p in self.evaluate(items, adapter, config, set_name, cancel):
                if state.status == "preparing":
                    state.status = "running"
                elapsed = time.time() - state.started
                state.eta_s = elapsed / p.done * (p.total - p.done) if p.done else None
                # The scoring thread keeps adding answers; pollers read a copy, the final result as it is.
                state.result = p.result if p.finished else _snapshot(p.result)
                state.step, state.total, state.stage, state.message = p.done, p.total, p.message, p.message
                result = p.result
            return result

        note = f"loading adapter {adapter}" if adapter else "starting"
        return self.jobs.start("evaluate", set_name or "questions", work, note)


    # --- experiments ---------------------------------------------------------------------------------------------
    def speed(self) -> Speed:
        """This machine's throughput on the base model, measured once per process (a few seconds)."""
        if self.parent:
            return self.parent.speed()
        if self._speed is None:
            self._speed = measure_speed(self.generator)
        return self._speed

    def read_questions(self, name_or_file: str) -> list[QAItem]:
        """A saved question set by name, or a JSONL file by path."""
        path = Path(name_or_file)
        if path.suffix.lower() == ".jsonl" or path.is_file():
            if not path.is_file():
                raise QuestionSetError(f"{name_or_file}: no such file")
            return load_set(path)
        return self.load_question_set(name_or_file)

    def plan_experiment(self, config: ExperimentConfig, items: list[QAItem] | None = None) -> Plan:
        """Questions, split, training settings and a time estimate measured on this machine; nothing runs yet."""
        return plan_experiment(self.generator, self.store, config, items, self.speed(), self._complete)

    @property
    def question_method(self) -> str:
        """How an experiment makes questions by default: the model writes them when one was configured
        (``RAGFT_BASE_MODEL``, presumably more capable than the embedded 135M one), else fill-in-the-blank."""
        return "llm" if self.settings.base_model else "cloze"

    def start_experiment(self, plan: Plan) -> JobState:
        """Run a planned experiment as the background job; ``state.result`` is the `ExperimentReport` at the end,
        also written under ``<data>/experiments/<time>-<name>/``."""
        self.jobs.check_idle()
        self.check_adapter_room(len(plan.train_configs))

        def work(state: JobState, cancel: threading.Event):
            report = run_experiment(self.generator, self.store, self.settings.adapters_dir, plan, state, cancel,
                                    self.adapter_key, self.settings.train_processes)
            folder = self.settings.experiments_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{plan.config.name}"
            report.write(folder)
            state.message = report.headline
            return report

        return self.jobs.start("experiment", plan.config.name, work, "planning")

    def experiments(self) -> list[dict]:
        return list_reports(self.settings.experiments_dir)

    def experiment_report(self, folder: str) -> dict:
        return load_report(self.settings.experiments_dir, folder)

    def retrain_adapter(self, name: str) -> str:
        """Train a new version of adapter ``name`` with its recorded recipe and settings on the current documents
        (its question/answer pairs, if any, come from its run record). Returns the new version's name."""
        run = self.adapter_run(name)
        source = run.source if run else ""
        if source not in ("docs", "qa", "raft"):
            raise NoAdapterError(f"adapter {name!r} has no ragft run record to retrain from: train it again",
                                 fix="adapters")
        config = TrainConfig(**{**run.config, "target_modules": tuple(run.config["target_modules"])})
        spec = DataSpec("docs")
        if source != "docs":
            if not run.pairs:
                raise NoAdapterError(f"adapter {name!r} was trained by an older ragft that kept no question/answer "
                                     "pairs: train it again from its question file")
            path = self.settings.questions_dir / ".retrain" / f"{name}.jsonl"
            save_set([QAItem(p["question"], p["answer"], p.get("source", ""), fact=p.get("fact", ""))
                      for p in run.pairs], path)
            spec = DataSpec(source, path)
        return self.start_training(spec, config, re.sub(r"-v\d+$", "", name))

    def adapter_staleness(self, name: str | None) -> str:
        """"Adapter X is stale: ..." when a document it was trained on changed or was deleted since; else ""."""
        if not name:
            return ""
        run = self.adapter_run(name)
        return stale_note(name, staleness(run, self.store.documents())) if run else ""


def _snapshot(result: EvalResult) -> EvalResult:
    """A copy of a result in progress that later scoring does not change (answers and timings copied)."""
    return replace(
        result,
        questions=[replace(q, answers=dict(q.answers)) for q in result.questions],
        timings={v: replace(t) for v, t in result.timings.items()},
    )


_engine: Engine | None = None


def get_engine() -> Engine:
    """The process's engine, built from the environment on first call."""
    global _engine
    if _engine is None:
        _engine = Engine()
    return _engine
