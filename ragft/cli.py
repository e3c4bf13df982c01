"""Command line over the same engine as the UI.

    python -m ragft ingest notes.md paper.pdf
    python -m ragft docs
    python -m ragft search "when was the glimmerphone invented?"
    python -m ragft ask "when was the glimmerphone invented?" --mode all --sources
    python -m ragft eval --generate 20 --out results.json
    python -m ragft serve            # the web UI at http://127.0.0.1:7860

Every command takes ``--json``. Errors print one line on stderr and exit non-zero.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from dataclasses import asdict
from pathlib import Path

from .chat import LABELS, MODE_VARIANTS
from .errors import RagftError
from .experiment import PRESETS
from .questions import SPLIT_MODES


class CLIError(Exception):
    """A user mistake, printed as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not usage + traceback-looking text
        raise CLIError(f"{message} (see: python -m {self.prog} --help)")


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    p = _Parser(prog="ragft", description="RAG vs fine-tuning on your own documents.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    s = sub.add_parser("ingest", parents=[common], help="add files to the document store")
    s.add_argument("files", nargs="+", type=Path)
    sub.add_parser("docs", parents=[common], help="list stored documents")
    s = sub.add_parser("delete", parents=[common], help="delete a stored document and its chunks")
    s.add_argument("name")
    s = sub.add_parser("search", parents=[common], help="top-k chunks for a query")
    s.add_argument("query")
    s.add_argument("-k", "--top-k", type=int, default=None)
    s = sub.add_parser("ask", parents=[common], help="answer with plain, RAG, fine-tuned and/or combined")
    s.add_argument("question")
    s.add_argument("--mode", choices=list(MODE_VARIANTS), default="all")
    s.add_argument("--adapter", default=None, help="adapter name (see the adapters folder); default: newest")
    s.add_argument("--sources", action="store_true", help="also print the retrieved chunks")
    s.add_argument("-k", "--top-k", type=int, default=None)
    s.add_argument("--max-new-tokens", type=int, default=None)
    s.add_argument("--temperature", type=float, default=None)
    sub.add_parser("adapters", parents=[common], help="list saved adapters")
    s = sub.add_parser("train", parents=[common], help="train a LoRA adapter")
    s.add_argument("--data", required=True, help="'docs' (the stored documents) or a question/answer .jsonl file")
    s.add_argument("--raft", action="store_true", help="train QA with retrieved context (gold + distractor chunks)")
    s.add_argument("--max-steps", type=int, default=0, help="optimiser steps (default: from --epochs)")
    s.add_argument("--epochs", type=float, default=None)
    s.add_argument("--lr", type=float, default=None, help="learning rate")
    s.add_argument("--rank", type=int, default=None, help="LoRA rank")
    s.add_argument("--batch-size", type=int, default=None)
    s.add_argument("--name", default="adapter", help="adapter name; a version suffix -vN is added")
    s = sub.add_parser("eval", parents=[common], help="score plain, RAG, fine-tuned and combined on a question set")
    g = s.add_mutually_exclusive_group(required=True)
    g.add_argument("--questions", help="a question set: a .jsonl file, or the name of a set saved in the UI")
    g.add_argument("--generate", type=int, metavar="N", help="make N fill-in-the-blank questions from the documents")
    s.add_argument("--choices", type=int, default=0,
                   help="with --generate: multiple choice with this many options, scored by log-likelihood")
    s.add_argument("--save-set", metavar="NAME", help="with --generate: also save the questions as a named set")
    s.add_argument("--adapter", default=None, help="adapter for the fine-tuned variants (default: newest; 'none')")
    s.add_argument("--variants", default="all", help="comma-separated: plain,rag,ft,rag+ft (default: all)")
    s.add_argument("-k", "--top-k", type=int, default=None)
    s.add_argument("--max-new-tokens", type=int, default=None)
    s.add_argument("--batch-size", type=int, default=None)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", type=Path, help="write the results: .json (everything) or .csv (one row per answer)")
    s = sub.add_parser("experiment", parents=[common],
                       help="RAG, fine-tuning, or both? questions -> split -> train -> evaluate -> verdict")
    g = s.add_mutually_exclusive_group()
    g.add_argument("--questions", type=int, metavar="N", help="generate N fill-in-the-blank facts (default: preset's)")
    g.add_argument("--set", metavar="NAME|FILE", help="a saved question set, or a .jsonl file")
    s.add_argument("--split", choices=list(SPLIT_MODES), help="default: paraphrase (heldout for hand-written sets)")
    s.add_argument("--method", choices=["cloze", "llm"],
                   help="how to make questions (default: llm with a configured RAGFT_BASE_MODEL, else cloze)")
    s.add_argument("--train", help="adapters to train, comma-separated: qa,raft,docs (default: qa,raft)")
    s.add_argument("--preset", choices=list(PRESETS), default="quick", help="quick (~5 min on 2 cores) or thorough")
    s.add_argument("--steps", type=int, default=0, help="optimiser steps per adapter (default: the preset's epochs)")
    s.add_argument("--documents", help="comma-separated document names to ask about (default: all stored)")
    s.add_argument("--name", default="experiment", help="prefix of the adapters and the report folder")
    s.add_argument("--out", type=Path, help="also copy the report (JSON, CSV, HTML) into this folder")
    s.add_argument("--estimate", action="store_true", help="print the plan and its time estimate, then stop")
    s = sub.add_parser("serve", help="start the web UI")
    s.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    s.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    return p


def _print(args, data, text: str) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False) if args.json else text)


def _check_range(name: str, value, lo, hi) -> None:
    if value is not None and not lo <= value <= hi:
        raise CLIError(f"{name} must be between {lo} and {hi}, got {value}")


def run(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "serve":
        from .ui import launch

        launch(host=args.host, port=args.port)
        return 0

    from .engine import Engine
    from .generation import DecodeSettings

    engine = Engine()
    if args.command == "ingest":
        for f in args.files:
            if not f.exists():
                raise CLIError(f"{f}: no such file")
        reports = engine.ingest([(f, f.name) for f in args.files])
        if args.json or any(r.ok for r in reports):
            _print(args, [asdict(r) for r in reports], "\n".join("ok    " + r.message for r in reports if r.ok))
        # Refused files are errors: one line each on stderr, like every other error, while the rest still land.
        for r in reports:
            if not r.ok:
                print(f"ragft: error: {r.message}", file=sys.stderr)
        return 0 if all(r.ok for r in reports) else 1
    if args.command == "docs":
        docs = engine.documents()
        lines = [f"{d.name}\t{d.chunks} chunks\t{d.chars} chars\t{d.added}" for d in docs]
        _print(args, [asdict(d) for d in docs], "\n".join(lines) or "no documents yet: python -m ragft ingest FILE")
        return 0
    if args.command == "delete":
        n = engine.store.delete(args.name)
        if not n:
            raise CLIError(f"no document named {args.name!r}; see: python -m ragft docs")
        _print(args, {"deleted": args.name, "chunks": n}, f"deleted {args.name} ({n} chunks)")
        return 0
    if args.command == "adapters":
        names = engine.adapters()
        _print(args, names, "\n".join(names) or "no adapters yet")
        return 0
    if args.command == "search":
        _check_range("--top-k", args.top_k, 1, 50)
        hits = engine.search(args.query, args.top_k)
        text = "\n\n".join(f"{h.score:.3f}  {h.source} #{h.chunk}\n{h.text}" for h in hits) or "no documents stored"
        _print(args, [asdict(h) for h in hits], text)
        return 0

    if args.command == "train":
        return _train(args, engine)
    if args.command == "eval":
        return _eval(args, engine)
    if args.command == "experiment":
        return _experiment(args, engine)

    # ask
    _check_range("--top-k", args.top_k, 1, 50)
    _check_range("--max-new-tokens", args.max_new_tokens, 1, 2048)
    _check_range("--temperature", args.temperature, 0.0, 5.0)
    s = engine.settings
    adapter = args.adapter
    if adapter is None and args.mode in ("ft", "rag+ft", "all"):
        adapter = next(iter(engine.adapters()), None)
        if adapter is None and args.mode != "all":
            raise CLIError("no adapter yet: train one first, or use --mode plain|rag")
    decode = DecodeSettings(
        args.max_new_tokens or s.max_new_tokens, s.temperature if args.temperature is None else args.temperature
    )
    result = None
    for result in engine.ask(args.question, args.mode, adapter, decode, args.top_k):
        pass
    variants = MODE_VARIANTS[args.mode]
    answers = {v: result.notices.get(v, result.answers.get(v, "")) for v in variants}
    if args.json:
        data = {"question": args.question, "adapter": adapter, "answers": answers}
        if args.sources:
            data["sources"] = {v: [asdict(h) for h in hs] for v, hs in result.sources.items()}
        print(json.dumps(data, indent=2, ensure_ascii=False))
        return 0
    blocks = []
    for v in variants:
        head = f"== {LABELS[v]} ==\n" if len(variants) > 1 else ""
        body = answers[v]
        if args.sources and v in result.sources:
            body += "\n" + "\n".join(f"  [{h.source} #{h.chunk} {h.score:.3f}] {h.text}" for h in result.sources[v])
        blocks.append(head + body)
    print("\n\n".join(blocks))
    return 0


def _bar(state) -> str:
    done = int(30 * state.step / max(state.total, 1))
    eta = f" ETA {state.eta_s:.0f}s" if state.eta_s is not None else ""
    return f"[{'#' * done}{'.' * (30 - done)}]{eta}"


def _follow_job(engine, args, line, cancelling: str):
    """Show the running job's ``line(state)`` on stderr until it ends (Ctrl-C cancels it); its final state."""
    state = engine.jobs.state
    try:
        while engine.jobs.wait(0.5).active:
            if not args.json and state.total:
                print(f"\r{line(state)}"[:110].ljust(110), end="", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        engine.jobs.cancel()
        print(f"\n{cancelling}", file=sys.stderr)
    # The job reports its end just before its thread ends; exiting while that thread still frees the model's
    # tensors aborts the interpreter ("terminate called without an active exception"), so join it first.
    engine.jobs.wait()
    if not args.json:
        print(file=sys.stderr)
    if state.status == "failed":
        raise CLIError(state.message)
    return state


def _train(args, engine) -> int:
    import dataclasses

    from .adapters import read_run
    from .finetune import DataSpec, TrainConfig

    if args.data == "docs":
        if args.raft:
            raise CLIError("--raft needs a question/answer file: --data qa.jsonl --raft")
        spec = DataSpec("docs")
    else:
        path = Path(args.data)
        if not path.is_file():
            raise CLIError(f"{args.data}: no such file (use 'docs' or a .jsonl file)")
        spec = DataSpec("raft" if args.raft else "qa", path)
    overrides = {"max_steps": args.max_steps, "epochs": args.epochs, "learning_rate": args.lr, "rank": args.rank,
                 "batch_size": args.batch_size}
    config = dataclasses.replace(TrainConfig(), **{k: v for k, v in overrides.items() if v is not None})
    if args.rank is not None:
        config = dataclasses.replace(config, alpha=2 * args.rank)
    name = engine.start_training(spec, config, args.name)

    def line(state) -> str:
        loss = f" loss {state.losses[-1][1]:.4f}" if state.losses else ""
        return f"{name} {_bar(state)} {state.step}/{state.total}{loss}"

    state = _follow_job(engine, args, line, "cancelling: saving what was learned…")
    run = read_run(engine.settings.adapters_dir / name)
    _print(args, run, f"{state.message} -> {engine.settings.adapters_dir / name}")
    return 0


def _eval(args, engine) -> int:
    import dataclasses

    from .chat import VARIANTS
    from .evaluate import EvalConfig, format_table

    variants = VARIANTS if args.variants == "all" else tuple(v.strip() for v in args.variants.split(",") if v.strip())
    config = dataclasses.replace(
        EvalConfig(top_k=engine.settings.top_k), variants=variants, seed=args.seed,
        **{k: v for k, v in {"top_k": args.top_k, "max_new_tokens": args.max_new_tokens,
                             "batch_size": args.batch_size}.items() if v is not None},
    ).validate()
    if args.out and args.out.suffix.lower() not in (".json", ".csv"):
        raise CLIError(f"--out {args.out}: use a .json or .csv file name")
    if args.generate is not None:
        _check_range("--choices", args.choices, 0, 8)
        items, note = engine.generate_questions(args.generate, choices=args.choices)
        set_name = args.save_set or "generated"
        if args.save_set:
            engine.save_question_set(args.save_set, items)
        print(f"ragft: {note}", file=sys.stderr)
    else:
        if args.save_set or args.choices:
            raise CLIError("--save-set and --choices go with --generate")
        path = Path(args.questions)
        if path.suffix.lower() == ".jsonl" or path.exists():
            if not path.is_file():
                raise CLIError(f"{args.questions}: no such file")
            from .questions import load_set

            items, set_name = load_set(path), path.stem
        else:
            items, set_name = engine.load_question_set(args.questions), args.questions
    adapter = args.adapter
    if adapter is None and {"ft", "rag+ft"} & set(variants):
        adapter = next(iter(engine.adapters()), None)
    adapter = None if adapter in (None, "none") else adapter
    progress = None
    for progress in engine.evaluate(items, adapter, config, set_name):
        if not args.json:
            print(f"\r[{progress.done}/{progress.total}] {progress.message}".ljust(78), end="", file=sys.stderr,
                  flush=True)
    if not args.json:
        print(file=sys.stderr)
    result = progress.result
    if result.overlap_note:
        print(f"ragft: note: {result.overlap_note}", file=sys.stderr)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        (result.write_answers_csv if args.out.suffix.lower() == ".csv" else result.write_json)(args.out)
    head = f"{len(items)} questions from {set_name}; adapter: {adapter or 'none'}\n"
    _print(args, result.to_json(), head + format_table(result.summary()))
    return 0


def _experiment(args, engine) -> int:
    import shutil

    from .experiment import ExperimentConfig
    from .experiment_report import format_text

    names = lambda text: tuple(x.strip() for x in (text or "").split(",") if x.strip())  # noqa: E731
    config = ExperimentConfig(
        name=args.name, preset=args.preset, questions=args.questions or 0, split=args.split or "",
        train=names(args.train), steps=args.steps, documents=names(args.documents), top_k=engine.settings.top_k,
        method=args.method or engine.question_method,
    ).validate()
    items = engine.read_questions(args.set) if args.set else None
    plan = engine.plan_experiment(config, items)
    if args.estimate:
        _print(args, {"plan": plan.describe(), "seconds": round(plan.seconds)}, plan.describe())
        return 0
    print(f"ragft: {plan.describe()}", file=sys.stderr)
    engine.start_experiment(plan)
    state = _follow_job(engine, args, lambda st: f"{_bar(st)} {st.message}",
                        "cancelling: reporting what was scored so far…")
    report = state.result
    files = sorted(report.folder.iterdir())
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        files = [Path(shutil.copy2(f, args.out / f.name)) for f in files]
    data = {**report.to_json(), "adapters": [a["adapter"] for a in report.adapters], "files": [str(f) for f in files]}
    _print(args, data, format_text(data) + f"\n\nreport: {files[-1].parent / 'report.html'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", category=FutureWarning)  # library deprecation notes are not for CLI users
    # peft looks for a config.json beside the base model to check the vocabulary; a GGUF file has none.
    warnings.filterwarnings("ignore", message="Could not find a config file")
    # stderr is for errors: no "Loading weights" bars (read by huggingface_hub when transformers is first imported).
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")  # transformers' GGUF de-quantizing bar is a bare tqdm
    try:
        return run(argv)
    except (CLIError, RagftError) as exc:  # a mistake to fix; anything else is a bug and keeps its traceback
        print(f"ragft: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
