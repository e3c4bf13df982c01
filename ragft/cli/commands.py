"""The commands: ``cmd_<name>(engine, args)``, each over the same engine as the UI; the exit code returned."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from ..evaluate import EvalConfig
from ..experiment import ExperimentConfig
from ..finetune import TrainConfig
from ..grounding import as_dict, summary
from ..variants import LABELS, MODE_VARIANTS, VARIANTS
from .output import CLIError, ProgressBar, _follow_job, _print, format_table

if TYPE_CHECKING:
    from ..engine import Engine


def _given(args, *fields: str) -> dict:
    """The flags among ``fields`` that were given, as config keyword arguments."""
    return {f: getattr(args, f) for f in fields if getattr(args, f) is not None}


def _names_file(text: str) -> bool:
    """Whether ``--questions``/``--data`` names a file (else a saved question set): the same rule as
    `Engine.read_questions`."""
    path = Path(text)
    return path.suffix.lower() == ".jsonl" or path.exists()


def cmd_ingest(engine: Engine, args: argparse.Namespace) -> int:
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


def cmd_docs(engine: Engine, args: argparse.Namespace) -> int:
    docs = engine.documents()
    lines = [f"{d.name}\t{d.chunks} chunks\t{d.chars} chars\t{d.added}" for d in docs]
    _print(args, [asdict(d) for d in docs], "\n".join(lines) or "no documents yet: python -m ragft ingest FILE")
    return 0


def cmd_delete(engine: Engine, args: argparse.Namespace) -> int:
    from ..engine import NoDocumentError

    try:
        n = engine.delete_document(args.name)
    except NoDocumentError as exc:
        raise CLIError(f"{exc}; see: python -m ragft docs") from None
    _print(args, {"deleted": args.name, "chunks": n}, f"deleted {args.name} ({n} chunks)")
    return 0


def cmd_search(engine: Engine, args: argparse.Namespace) -> int:
    from ..knobs import from_request
    from ..requests import SearchRequest

    request = from_request(SearchRequest, query=args.query, k=args.top_k or engine.settings.top_k)
    if not request.query.strip():
        raise CLIError("the query is empty")  # as the search endpoint says; not "no documents stored"
    hits = engine.search(request.query, request.k)
    text = "\n\n".join(f"{h.score:.3f}  {h.source} #{h.chunk}\n{h.text}" for h in hits) or "no documents stored"
    _print(args, [asdict(h) for h in hits], text)
    return 0


def cmd_adapters(engine: Engine, args: argparse.Namespace) -> int:
    if args.delete:
        engine.delete_adapter(args.delete)
        _print(args, {"deleted": args.delete}, f"deleted adapter {args.delete}")
        return 0
    names = engine.adapters()
    _print(args, names, "\n".join(names) or "no adapters yet")
    return 0


def cmd_ask(engine: Engine, args: argparse.Namespace) -> int:
    from ..knobs import from_request
    from ..requests import AskRequest

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
    assert result is not None  # the stream always yields, at least the finished answers
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


def cmd_train(engine: Engine, args: argparse.Namespace) -> int:
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


def cmd_eval(engine: Engine, args: argparse.Namespace) -> int:
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
    assert progress is not None  # an evaluation yields at least its first step (an empty set raises)
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
    from ..questions import load_set, parse_typed

    if path is None:
        return []
    if path.suffix.lower() == ".jsonl":
        return load_set(path)
    try:
        return parse_typed(path.read_text())
    except OSError as exc:
        raise CLIError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def cmd_experiment(engine: Engine, args: argparse.Namespace) -> int:
    """Plan (``--estimate``: only that) and run an experiment; prints the verdict and where the report is."""
    import shutil

    from ..experiment.pages import format_text
    from ..experiment.report import ExperimentReport

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
    if not isinstance(report, ExperimentReport) or report.folder is None:  # a job that ended without its report
        raise CLIError(state.message)
    files = sorted(report.folder.iterdir())
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        files = [Path(shutil.copy2(f, args.out / f.name)) for f in files]
    data = {**report.to_json(), "adapters": [a["adapter"] for a in report.adapters], "files": [str(f) for f in files]}
    _print(args, data, format_text(data) + f"\n\nreport: {files[-1].parent / 'report.html'}")
    return 0


def cmd_serve(engine: Engine | None, args: argparse.Namespace) -> int:
    """The web UI; it builds its own engines (one per workspace), so ``engine`` is None here."""
    from ..ui import launch

    launch(host=args.host, port=args.port)
    return 0
