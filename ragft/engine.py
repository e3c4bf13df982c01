"""Process-wide state: one base model, one embedder, one store — loaded once, on first use, shared by all users."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from .chat import MODE_VARIANTS, ChatResult, ChatState, build_messages, stream_answers
from .config import Settings
from .documents import DocumentError, load_document
from .evaluate import EvalConfig, EvalProgress, run_evaluation, training_overlap
from .finetune import TrainingRunner, delete_adapter, read_run
from .generation import DecodeSettings, generate_batch
from .models import BASE, Generator, NoAdapterError, list_adapters, load_embedder, load_generator
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
from .store import AddResult, Store, make_client

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestReport:
    """What happened to one file of an upload; ``ok`` False means it was refused and nothing changed."""

    name: str
    ok: bool
    status: str
    chunks: int
    message: str


class Engine:
    """The shared pieces behind the UI, the CLI and the tests."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.from_env()
        self._lock = threading.Lock()
        self._generator: Generator | None = None
        self._embedder = None
        self._store: Store | None = None
        self.runner = TrainingRunner(lambda: self.generator, lambda: self.store, self.settings.adapters_dir)

    @property
    def generator(self) -> Generator:
        with self._lock:
            if self._generator is None:
                self._generator = load_generator(self.settings.base_model)
            return self._generator

    @property
    def embedder(self):
        with self._lock:
            if self._embedder is None:
                self._embedder = load_embedder(self.settings.embed_model)
            return self._embedder

    @property
    def store(self) -> Store:
        embedder = self.embedder
        with self._lock:
            if self._store is None:
                s = self.settings
                self._store = Store(make_client(s.chroma_dir, s.chroma_host, s.chroma_port), embedder, s.collection)
            return self._store

    # --- documents -------------------------------------------------------------------------------------------
    def ingest(
        self, files: list[tuple[Path, str]], progress: Callable[[float, str], None] | None = None
    ) -> list[IngestReport]:
        """Add ``(path, display name)`` files. Each file succeeds or fails alone; failures change nothing."""
        s = self.settings
        reports: list[IngestReport] = []
        for n, (path, name) in enumerate(files):
            name = Path(name).name
            if progress:
                progress(n / max(len(files), 1), f"reading {name}")
            try:
                doc = load_document(path, name, s.chunk_words, s.chunk_overlap_words, s.max_upload_mb * 1_000_000)

                def on_batch(done: int, total: int, n=n, name=name) -> None:
                    if progress:
                        progress((n + done / total) / len(files), f"embedding {name}: {done}/{total} chunks")

                result: AddResult = self.store.add(doc, on_batch)
            except DocumentError as exc:
                reports.append(IngestReport(name, False, "refused", 0, str(exc)))
                continue
            message = {
                "added": f"{name}: added {result.chunks} chunks",
                "replaced": f"{name}: changed, replaced with {result.chunks} chunks",
                "unchanged": f"{name}: unchanged, already stored ({result.chunks} chunks)",
                "duplicate": f"{name}: skipped, {result.detail}",
            }[result.status]
            reports.append(IngestReport(name, result.status != "duplicate", result.status, result.chunks, message))
        if progress:
            progress(1.0, "done")
        return reports

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
        self.generator.ensure_adapter(name, self.settings.adapters_dir / name)

    def delete_adapter(self, name: str) -> None:
        if self.runner.state.active and self.runner.state.name == name:
            raise ValueError(f"{name} is being trained: cancel the run first")
        if self._generator is not None:
            self._generator.unload_adapter(name)
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
            raise ValueError(f"unknown mode {mode!r}; use one of {', '.join(MODE_VARIANTS)}")
        if adapter:
            self.use_adapter(adapter)
        s = self.settings
        decode = decode or DecodeSettings(s.max_new_tokens, s.temperature)
        return stream_answers(
            self.generator,
            self.store.search,
            question,
            MODE_VARIANTS[mode],
            adapter or None,
            decode,
            top_k or s.top_k,
            state,
        )

    # --- question sets and evaluation ------------------------------------------------------------------------
    def question_sets(self) -> list[str]:
        return list_sets(self.settings.questions_dir)

    def load_question_set(self, name: str) -> list[QAItem]:
        path = set_path(self.settings.questions_dir, check_set_name(name))
        if not path.is_file():
            raise QuestionSetError(
                f"no question set named {name!r}; saved sets: {', '.join(self.question_sets()) or 'none yet'}"
            )
        return load_set(path)

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
            raise QuestionSetError("the document store is empty: add documents in the Documents tab first")
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
        conversations = [build_messages(p) for p in prompts]
        return generate_batch(self.generator, conversations, [BASE] * len(prompts), DecodeSettings(80))

    def training_overlap(self, items: list[QAItem], adapter: str | None) -> tuple[list[str], str]:
        """Which questions ``adapter`` was trained on (see ``evaluate.training_overlap``), and a note."""
        if not adapter or not items:
            return [""] * len(items), ""
        return training_overlap(items, read_run(self.settings.adapters_dir / adapter))

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
        run = read_run(self.settings.adapters_dir / adapter) if adapter else {}
        for progress in run_evaluation(
            self.generator, self.store.search, items, adapter or None, config, cancel, set_name, run
        ):
            if progress.finished:
                out = self.settings.evals_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{set_name or 'questions'}"
                progress.result.files = progress.result.write(out)
            yield progress


_engine: Engine | None = None


def get_engine() -> Engine:
    """The process's engine, built from the environment on first call."""
    global _engine
    if _engine is None:
        _engine = Engine()
    return _engine
