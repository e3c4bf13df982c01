"""Command line over the same engine as the UI: one function per command, ``cmd_<name>(engine, args)``.

    python -m ragft ingest notes.md paper.pdf
    python -m ragft docs
    python -m ragft search "when was the glimmerphone invented?"
    python -m ragft ask "when was the glimmerphone invented?" --mode all --sources
    python -m ragft train --data qa.jsonl --raft --max-steps 60
    python -m ragft eval --generate 20 --out results.json
    python -m ragft serve            # the web UI at http://127.0.0.1:7860

Results go to stdout (``--json``: machine-readable). A mistake to fix is one line on stderr, ``ragft: error: ...``,
and exit code 2. Progress of the long commands goes to stderr through tqdm: a bar on a terminal, a line per quarter
of the work in a log.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Self

from .config import Settings
from .errors import RagftError
from .evaluate import EvalConfig
from .experiment import PRESETS, ExperimentConfig
from .finetune import TrainConfig
from .grounding import as_dict, summary
from .knobs import bounds, default, help_of, range_of
from .questions import MAX_CHOICES, SPLIT_MODES
from .variants import LABELS, MODE_VARIANTS, VARIANTS

POLL_S = 0.5  # how often a background job's progress is read

# What the CLI adds to an error whose fix lies in another command (`RagftError.fix`).
FIX_HINTS = {
    "documents": " (python -m ragft ingest FILE)",
    "adapters": " (python -m ragft adapters lists them, adapters --delete NAME deletes one; train trains one)",
}


class CLIError(Exception):
    """A user mistake, printed as one line."""


class _Exit(Exception):
    """argparse is done (``--help``): `main` returns ``status`` instead of the process exiting."""

    def __init__(self, status: int):
        super().__init__(status)
        self.status = status


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + traceback-looking text
        raise CLIError(f"{message} (see: python -m {self.prog} --help)")

    def exit(self, status: int = 0, message: str | None = None):
        if message:
            self._print_message(message, sys.stderr)
        raise _Exit(status)


# --- flags read from the config fields -----------------------------------------------------------------------------
def _in_range(lo: float, hi: float, kind: type = int) -> Callable[[str], int | float]:
    """An argparse type: a number within ``lo..hi``, else argparse's usage error (exit 2). For flags that no config
    checks on the way (they go straight to the engine)."""

    def parse(text: str):
        value = kind(text)  # a ValueError: argparse says "invalid int value: 'many'"
        if not lo <= value <= hi:  # also refuses nan
            raise argparse.ArgumentTypeError(f"must be between {lo:g} and {hi:g}, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def _help(cls, field: str, what: str = "", default_text: str = "") -> str:
    """A flag's help from its config field: what it is, its range and its default."""
    text = f"{what or help_of(cls, field)} ({range_of(cls, field)}; default: {default_text or default(cls, field)})"
    return text.replace("%", "%%")  # argparse formats help with %


def _setting(parser, field: str, *flags: str, kind: type = int, what: str = "") -> None:
    """A flag overriding `Settings` field ``field`` (default: its RAGFT_ variable), checked by argparse."""
    from_env = f"RAGFT_{field.upper()} or {default(Settings, field)}"
    parser.add_argument(*flags, dest=field, type=_in_range(*bounds(Settings, field), kind), default=None,
                        metavar=_metavar(flags), help=_help(Settings, field, what, from_env))


def _knob(parser, cls, field: str, *flags: str, kind: type = int, default_text: str = "") -> None:
    """A flag for ``cls.field``; the config checks the value when it is built."""
    parser.add_argument(*flags, dest=field, type=kind, default=None, metavar=_metavar(flags),
                        help=_help(cls, field, "", default_text))


def _metavar(flags: tuple[str, ...]) -> str:
    return flags[-1].lstrip("-").replace("-", "_").upper()  # --lr LR, not --lr LEARNING_RATE


def _given(args, *fields: str) -> dict:
    """The flags among ``fields`` that were given, as config keyword arguments."""
    return {f: getattr(args, f) for f in fields if getattr(args, f) is not None}


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output (and no progress)")
    p = _Parser(prog="ragft", description="RAG vs fine-tuning on your own documents.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def command(name: str, func, help: str, parents=(common,)) -> argparse.ArgumentParser:
        s = sub.add_parser(name, parents=list(parents), help=help, description=help)
        s.set_defaults(func=func)
        return s

    s = command("ingest", cmd_ingest, "add files to the document store")
    s.add_argument("files", nargs="+", type=Path)
    command("docs", cmd_docs, "list stored documents")
    s = command("delete", cmd_delete, "delete a stored document and its chunks")
    s.add_argument("name")
    s = command("search", cmd_search, "top-k chunks for a query")
    s.add_argument("query")
    _setting(s, "top_k", "-k", "--top-k", what="chunks to show")
    s = command("ask", cmd_ask, "answer with plain, RAG, fine-tuned and/or combined")
    s.add_argument("question")
    s.add_argument("--mode", choices=list(MODE_VARIANTS), default="all")
    s.add_argument("--adapter", default=None, help="adapter name (see: python -m ragft adapters); default: newest")
    s.add_argument("--sources", action="store_true", help="also print the retrieved chunks")
    _setting(s, "top_k", "-k", "--top-k")
    _setting(s, "max_new_tokens", "--max-new-tokens")
    _setting(s, "temperature", "--temperature", kind=float, what="sampling temperature, 0 = greedy")
    s = command("adapters", cmd_adapters, "list saved adapters, newest first (or delete one)")
    s.add_argument("--delete", metavar="NAME", help="delete adapter NAME (its folder, weights and run record)")

    s = command("train", cmd_train, "train a LoRA adapter")
    s.add_argument("--data", required=True,
                   help="'docs' (the stored documents), a question/answer .jsonl file or a saved question set")
    s.add_argument("--raft", action="store_true", help="train QA with retrieved context (gold + distractor chunks)")
    _knob(s, TrainConfig, "max_steps", "--max-steps")
    _knob(s, TrainConfig, "epochs", "--epochs", kind=float)
    _knob(s, TrainConfig, "learning_rate", "--lr", kind=float)
    _knob(s, TrainConfig, "rank", "--rank")
    _knob(s, TrainConfig, "alpha", "--alpha")
    _knob(s, TrainConfig, "batch_size", "--batch-size")
    s.add_argument("--name", default="adapter", help="adapter name; a version suffix -vN is added")

    s = command("eval", cmd_eval, "score plain, RAG, fine-tuned and combined on a question set")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--questions", help="a question set: a .jsonl file, or the name of a saved set")
    g.add_argument("--generate", type=int, metavar="N", help="make N fill-in-the-blank questions from the documents")
    s.add_argument("--choices", type=int, default=0,
                   help=f"with --generate: multiple choice with this many options (2..{MAX_CHOICES}; 0: open "
                        "questions), scored by log-likelihood")
    s.add_argument("--save-set", metavar="NAME", help="with --generate: also save the questions as a named set")
    s.add_argument("--adapter", default=None, help="adapter for the fine-tuned variants (default: newest; 'none')")
    s.add_argument("--variants", default="all", help="comma-separated: plain,rag,ft,rag+ft (default: all)")
    _knob(s, EvalConfig, "top_k", "-k", "--top-k", default_text=f"RAGFT_TOP_K or {default(Settings, 'top_k')}")
    _knob(s, EvalConfig, "max_new_tokens", "--max-new-tokens")
    _knob(s, EvalConfig, "batch_size", "--batch-size")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", type=Path, help="write the results: .json (everything) or .csv (one row per answer)")

    s = command("experiment", cmd_experiment,
                "RAG, fine-tuning, or both? questions -> split -> train -> evaluate -> verdict")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--questions", type=int, metavar="N", help=_help(ExperimentConfig, "questions"))
    g.add_argument("--set", metavar="NAME|FILE", help="a saved question set, or a .jsonl file")
    s.add_argument("--split", choices=list(SPLIT_MODES), help="default: paraphrase (heldout for hand-written sets)")
    s.add_argument("--method", choices=["cloze", "llm"],
                   help="how to make questions (default: llm with a configured RAGFT_BASE_MODEL, else cloze)")
    s.add_argument("--train", help="adapters to train, comma-separated: qa,raft,docs (default: qa,raft)")
    s.add_argument("--preset", choices=list(PRESETS), default="quick", help="quick (~5 min on 2 cores) or thorough")
    _knob(s, ExperimentConfig, "steps", "--steps")
    s.add_argument("--documents", help="comma-separated document names to ask about (default: all stored)")
    s.add_argument("--name", default="experiment", help="prefix of the adapters and the report folder")
    s.add_argument("--my-questions", type=Path, metavar="FILE",
                   help="your own questions, never trained on; the verdict speaks for them first: a .jsonl set, or "
                        "a text file with one 'question | expected answer' a line")
    s.add_argument("--out", type=Path, help="also copy the report (JSON, CSV, HTML) into this folder")
    s.add_argument("--estimate", action="store_true", help="print the plan and its time estimate, then stop")

    s = command("serve", cmd_serve, "start the web UI", parents=())
    s.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    s.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    return p


# --- output --------------------------------------------------------------------------------------------------------
def _print(args, data, text: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text)


def format_table(rows: list[dict]) -> str:
    """`EvalResult.summary` rows as aligned text: rates as percentages, n/a where a metric does not apply."""
    def cell(key: str, value) -> str:
        if value is None:
            return "n/a"
        if key in ("accuracy", "exact_match", "token_f1", "contains", "answer_in_chunks") or key.startswith("recall@"):
            return f"{100 * value:.0f}%"
        if key == "s_per_answer":
            return f"{value:.2f}"
        if key == "tokens_per_s":
            return f"{value:.1f}"
        return str(value)

    keys = [k for k in rows[0] if k not in ("note", "accuracy_ci")]
    table = [keys] + [[r["accuracy_ci"] if k == "accuracy" and r["answered"] else cell(k, r[k]) for k in keys]
                      for r in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(keys))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in table]
    return "\n".join(lines + [f"{r['variant']}: {r['note']}" for r in rows if r["note"]])


class ProgressBar:
    """A long command's progress on stderr, drawn by tqdm.

    On a terminal: a bar redrawn in place. In a log (stderr not a terminal) each redraw would be kept — one per
    update, ~1100 for a 60-step training run — so there it writes one line as each quarter of the work is done, at
    most four per run (``in_logs=False``: none). With ``--json``: nothing.
    """

    def __init__(self, args, desc: str, unit: str = "", in_logs: bool = True):
        self.tty = getattr(sys.stderr, "isatty", lambda: False)()
        self.on = not args.json and (self.tty or in_logs)
        self.desc, self.unit = desc, unit
        self.format = ("{desc}: {percentage:3.0f}%" + ("|{bar}|" if self.tty else "")
                       + (" {n_fmt}/{total_fmt} {unit}" if unit else "") + " [{elapsed}<{remaining}]{postfix}")
        self.bar = None  # the terminal's tqdm bar, opened on the first update (not before an early error)
        self.started = time.monotonic()
        self.n, self.total, self.note = 0, 0, ""
        self.quarter, self.logged = 0, None

    def show(self, n: float, total: float, note: str = "") -> None:
        """``n`` of ``total`` done (a total of 0: not known yet, nothing shown)."""
        if not self.on or not total:
            return
        self.n, self.total, self.note = n, total, note
        if self.tty:
            if self.bar is None:
                from tqdm import tqdm

                # disable=False: main sets TQDM_DISABLE for the libraries' own bars, not this one
                self.bar = tqdm(total=total, desc=self.desc, unit=self.unit, bar_format=self.format, file=sys.stderr,
                                disable=False, dynamic_ncols=True, leave=True)
            self.bar.total = total
            self.bar.set_postfix_str(note, refresh=False)
            self.bar.update(n - self.bar.n)
        elif (quarter := int(4 * n / total)) > self.quarter:
            self.quarter = quarter
            self._log()

    def _log(self) -> None:
        from tqdm import tqdm

        print(tqdm.format_meter(self.n, self.total, time.monotonic() - self.started, prefix=self.desc,
                                unit=self.unit, bar_format=self.format, postfix=self.note), file=sys.stderr, flush=True)
        self.logged = self.n

    def write(self, text: str) -> None:
        """A line on stderr that does not break the bar."""
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            print(text, file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.on and not self.tty and self.total and self.logged != self.n:  # stopped inside a quarter
            self._log()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _follow_job(engine, bar: ProgressBar, note: Callable, cancelling: str):
    """Show the running job's progress until it ends (Ctrl-C cancels it, keeping what it did); its final state."""
    state = engine.jobs.state
    with bar:
        try:
            while engine.jobs.wait(POLL_S).active:
                bar.show(state.step, state.total, note(state))
        except KeyboardInterrupt:
            engine.jobs.cancel()
            bar.write(cancelling)
        # The job reports its end just before its thread ends; exiting while that thread still frees the model's
        # tensors aborts the interpreter ("terminate called without an active exception"), so join it first.
        engine.jobs.wait()
        bar.show(state.step, state.total, note(state))
    if state.status == "failed":
        raise CLIError(state.message)
    return state


def _names_file(text: str) -> bool:
    """Whether ``--questions``/``--data`` names a file (else a saved question set): the same rule as
    `Engine.read_questions`."""
    path = Path(text)
    return path.suffix.lower() == ".jsonl" or path.exists()


# --- the commands --------------------------------------------------------------------------------------------------
def cmd_ingest(engine, args) -> int:
    """Add files; each is added or refused alone. Exit 1 when any was refused (one error line each)."""
    for f in args.files:
        if not f.exists():
            raise CLIError(f"{f}: no such file")
    # Ingest is short and its result lines say what happened: a bar on a terminal only, no lines in a log.
    with ProgressBar(args, "ingest", in_logs=False) as bar:
        reports = engine.ingest([(f, f.name) for f in args.files], lambda done, note: bar.show(done, 1.0, note))
    if args.json or any(r.ok for r in reports):
        _print(args, [asdict(r) for r in reports], "\n".join("ok    " + r.message for r in reports if r.ok))
    # Refused files are errors: one line each on stderr, like every other error, while the rest still land.
    for r in reports:
        if not r.ok:
            print(f"ragft: error: {r.message}", file=sys.stderr)
    return 0 if all(r.ok for r in reports) else 1


def cmd_docs(engine, args) -> int:
    docs = engine.documents()
    lines = [f"{d.name}\t{d.chunks} chunks\t{d.chars} chars\t{d.added}" for d in docs]
    _print(args, [asdict(d) for d in docs], "\n".join(lines) or "no documents yet: python -m ragft ingest FILE")
    return 0


def cmd_delete(engine, args) -> int:
    from .engine import NoDocumentError

    try:
        n = engine.delete_document(args.name)
    except NoDocumentError as exc:
        raise CLIError(f"{exc}; see: python -m ragft docs") from None
    _print(args, {"deleted": args.name, "chunks": n}, f"deleted {args.name} ({n} chunks)")
    return 0


def cmd_search(engine, args) -> int:
    from .knobs import from_request
    from .requests import SearchRequest

    request = from_request(SearchRequest, query=args.query, k=args.top_k or engine.settings.top_k)
    hits = engine.search(request.query, request.k)
    text = "\n\n".join(f"{h.score:.3f}  {h.source} #{h.chunk}\n{h.text}" for h in hits) or "no documents stored"
    _print(args, [asdict(h) for h in hits], text)
    return 0


def cmd_adapters(engine, args) -> int:
    if args.delete:
        engine.delete_adapter(args.delete)
        _print(args, {"deleted": args.delete}, f"deleted adapter {args.delete}")
        return 0
    names = engine.adapters()
    _print(args, names, "\n".join(names) or "no adapters yet")
    return 0


def cmd_ask(engine, args) -> int:
    from .knobs import from_request
    from .requests import AskRequest

    s = engine.settings
    adapter = args.adapter
    if adapter is None and args.mode in ("ft", "rag+ft", "all"):
        adapter = next(iter(engine.adapters()), None)
        if adapter is None and args.mode != "all":
            raise CLIError("no adapter yet: train one first, or use --mode plain|rag")
    ask = from_request(AskRequest, question=args.question, mode=args.mode, adapter=adapter or "",
                       max_new_tokens=args.max_new_tokens or 0, top_k=args.top_k or 0,
                       temperature=-1.0 if args.temperature is None else args.temperature)
    result = None
    for result in engine.ask(ask.question, ask.mode, ask.adapter or None, ask.decode(s), ask.top_k or None):
        pass
    variants = MODE_VARIANTS[args.mode]
    answers = {v: result.notices.get(v, result.answers.get(v, "")) for v in variants}
    if args.json:
        data = {"question": args.question, "adapter": adapter, "answers": answers}
        if args.sources:
            data["sources"] = {v: [asdict(h) for h in hs] for v, hs in result.sources.items()}
        data["grounding"] = {v: [as_dict(m) for m in marks] for v, marks in result.grounding.items()}
        data["grounded_by"] = result.grounded_by or "words"  # or the grounding model's name (RAGFT_GROUNDING_MODEL)
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    blocks = []
    for v in variants:
        head = f"== {LABELS[v]} ==\n" if len(variants) > 1 else ""
        body = answers[v]
        if v in result.grounding:
            by = f"; judged by {result.grounded_by}" if result.grounded_by else ""
            body += f"\n  ({summary(result.grounding[v])}{by})"
        if args.sources and v in result.sources:
            body += "\n" + "\n".join(f"  [{h.source} #{h.chunk} {h.score:.3f}] {h.text}" for h in result.sources[v])
        blocks.append(head + body)
    print("\n\n".join(blocks))
    return 0


def cmd_train(engine, args) -> int:
    """Train an adapter as the engine's background job, following its progress; prints its run record."""
    if args.data == "docs":
        if args.raft:
            raise CLIError("--raft needs question/answer pairs: --data qa.jsonl --raft")
        spec = engine.data_spec("docs")
    elif _names_file(args.data):
        if not Path(args.data).is_file():
            raise CLIError(f"{args.data}: no such file (use 'docs', a .jsonl file or a saved question set)")
        spec = engine.data_spec("raft" if args.raft else "qa", qa_file=args.data)
    else:
        spec = engine.data_spec("raft" if args.raft else "qa", qa_set=args.data)
    config = TrainConfig(**_given(args, "max_steps", "epochs", "learning_rate", "rank", "alpha", "batch_size"))
    name = engine.start_training(spec, config, args.name)
    state = _follow_job(engine, ProgressBar(args, name, "steps"),
                    lambda st: f"loss {st.losses[-1][1]:.4f}" if st.losses else "",
                    "cancelling: saving what was learned…")
    run = engine.adapter_run(name)  # None when nothing was saved (a run cancelled before its first step)
    _print(args, run.to_json() if run else {}, f"{state.message} -> {engine.settings.adapters_dir / name}")
    return 0


def cmd_eval(engine, args) -> int:
    """Score the variants on a question set (a file, a saved set, or generated now); prints the table."""
    variants = VARIANTS if args.variants == "all" else tuple(v.strip() for v in args.variants.split(",") if v.strip())
    config = EvalConfig(**{"top_k": engine.settings.top_k, "variants": variants, "seed": args.seed,
                           **_given(args, "top_k", "max_new_tokens", "batch_size")})
    if args.out and args.out.suffix.lower() not in (".json", ".csv"):
        raise CLIError(f"--out {args.out}: use a .json or .csv file name")
    if args.generate is not None:
        items, note = engine.generate_questions(args.generate, choices=args.choices)
        set_name = args.save_set or "generated"
        if args.save_set:
            engine.save_question_set(args.save_set, items)
        print(f"ragft: {note}", file=sys.stderr)
    else:
        if args.save_set or args.choices:
            raise CLIError("--save-set and --choices go with --generate")
        items = engine.read_questions(args.questions)
        set_name = Path(args.questions).stem if _names_file(args.questions) else args.questions
    adapter = args.adapter
    if adapter is None and {"ft", "rag+ft"} & set(variants):
        adapter = next(iter(engine.adapters()), None)
    adapter = None if adapter in (None, "none") else adapter
    progress = None
    with ProgressBar(args, set_name, "steps") as bar:
        for progress in engine.evaluate(items, adapter, config, set_name):
            bar.show(progress.done, progress.total, progress.message)
    result = progress.result
    if result.overlap_note:
        print(f"ragft: note: {result.overlap_note}", file=sys.stderr)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        (result.write_answers_csv if args.out.suffix.lower() == ".csv" else result.write_json)(args.out)
    head = f"{len(items)} questions from {set_name}; adapter: {adapter or 'none'}\n"
    _print(args, result.to_json(), head + format_table(result.summary()))
    return 0


def _my_questions(path: Path | None) -> list:
    from .questions import load_set, parse_typed

    if path is None:
        return []
    if path.suffix.lower() == ".jsonl":
        return load_set(path)
    try:
        return parse_typed(path.read_text())
    except OSError as exc:
        raise CLIError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def cmd_experiment(engine, args) -> int:
    """Plan (``--estimate``: only that) and run an experiment; prints the verdict and where the report is."""
    import shutil

    from .experiment.pages import format_text

    names = lambda text: tuple(x.strip() for x in (text or "").split(",") if x.strip())
    config = ExperimentConfig(
        name=args.name, preset=args.preset, questions=args.questions or 0, split=args.split or "",
        train=names(args.train), documents=names(args.documents), top_k=engine.settings.top_k,
        method=args.method or engine.question_method, **_given(args, "steps"),
    )
    items = engine.read_questions(args.set) if args.set else None
    plan = engine.plan_experiment(config, items, _my_questions(args.my_questions))
    if args.estimate:
        _print(args, {"plan": plan.describe(), "seconds": round(plan.seconds)}, plan.describe())
        return 0
    print(f"ragft: {plan.describe()}", file=sys.stderr)
    engine.start_experiment(plan)
    state = _follow_job(engine, ProgressBar(args, config.name), lambda st: st.message,
                    "cancelling: reporting what was scored so far…")
    report = state.result
    files = sorted(report.folder.iterdir())
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        files = [Path(shutil.copy2(f, args.out / f.name)) for f in files]
    data = {**report.to_json(), "adapters": [a["adapter"] for a in report.adapters], "files": [str(f) for f in files]}
    _print(args, data, format_text(data) + f"\n\nreport: {files[-1].parent / 'report.html'}")
    return 0


def cmd_serve(engine, args) -> int:
    """The web UI; it builds its own engines (one per workspace), so ``engine`` is None here."""
    from .ui import launch

    launch(host=args.host, port=args.port)
    return 0


# --- the entry point -----------------------------------------------------------------------------------------------
@contextmanager
def _quiet_libraries() -> Iterator[None]:
    """Library chatter off for a CLI user; restored afterwards, so an in-process caller keeps its own settings."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    quiet = {
        # stderr is for errors and our progress: no "Loading weights" bars (read by huggingface_hub on import)
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TQDM_DISABLE": "1",  # transformers' GGUF de-quantizing bar is a bare tqdm
    }
    saved = {k: os.environ.get(k) for k in quiet}
    for k, v in quiet.items():
        os.environ.setdefault(k, v)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation notes are not for users
            # peft looks for a config.json beside the base model to check the vocabulary; a GGUF file has none.
            warnings.filterwarnings("ignore", message="Could not find a config file")
            yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def main(argv: list[str] | None = None, engine=None) -> int:
    """``python -m ragft ARGV``, callable in-process; returns the exit code: 0 done, 1 some files were refused
    (ingest), 2 a mistake to fix (one line on stderr), 130 interrupted.

    ``engine``: an `Engine` to use (tests share their loaded models); by default one from the environment.
    """
    with _quiet_libraries():
        try:
            args = build_parser().parse_args(argv)
            if engine is None and args.func is not cmd_serve:
                from .engine import Engine

                engine = Engine()
            return args.func(engine, args)
        except _Exit as exc:  # --help
            return exc.status
        except (CLIError, RagftError) as exc:  # a mistake to fix; anything else is a bug and keeps its traceback
            print(f"ragft: error: {exc}{FIX_HINTS.get(getattr(exc, 'fix', ''), '')}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:
            return 130
