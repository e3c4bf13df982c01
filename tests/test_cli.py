"""``python -m ragft`` as a user runs it: `cli.main` in-process on this test's data dir, on conftest's engines (the
fake embedder without a language model in the fast tier; the session's real models in ``slow`` tests), and a few
real subprocesses (``slow``) for what only a fresh process shows.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from argparse import Namespace
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import pytest

from ragft import cli
from ragft.documents import SUPPORTED_SUFFIXES
from ragft.finetune import DataSpec, TrainConfig

from .helpers import fake_adapter

REPO = Path(__file__).resolve().parents[1]


class Run(NamedTuple):
    code: int
    out: str
    err: str


def _runner(engine, capsys) -> Callable[..., Run]:
    capsys.readouterr()  # nothing from the fixtures' set-up

    def run(*args: str) -> Run:
        code = cli.main(list(args), engine=engine)
        return Run(code, *capsys.readouterr())

    return run


@pytest.fixture
def ragft(fake_engine, capsys) -> Callable[..., Run]:
    """``ragft(*args)``: ``python -m ragft ARGS`` in this process; its exit code, stdout and stderr. On the fake
    embedder and without a language model (a command that reaches one fails the test): the fast tier."""
    return _runner(fake_engine, capsys)


@pytest.fixture
def ragft_real(engine, capsys) -> Callable[..., Run]:
    """`ragft` on the real models; mark the test ``slow``."""
    engine.generator  # loaded now, so its loading bars are not in the command's stderr
    return _runner(engine, capsys)


def assert_one_error_line(r: Run, message: str) -> None:
    assert r.err.splitlines() == [f"ragft: error: {message}"]


@pytest.fixture
def two_files(tmp_path) -> tuple[Path, Path]:
    moon = tmp_path / "zorblax.txt"
    moon.write_text("The moon of Zorblax is named Quib. Quib is small and grey.", encoding="utf-8")
    cheese = tmp_path / "cheese.md"
    cheese.write_text("# Snorvel\n\nSnorvel cheese is aged for nine years in volcanic caves.", encoding="utf-8")
    return moon, cheese


FACTS = sorted((REPO / "tests" / "fixtures" / "facts").glob("*.md"))


def test_ingest_docs_search_delete(ragft, two_files, data_dir):
    moon, cheese = two_files

    assert ragft("ingest", str(moon), str(cheese)) == (
        0, "ok    zorblax.txt: added 1 chunks\nok    cheese.md: added 1 chunks\n", "")
    assert (data_dir / "chroma" / "chroma.sqlite3").is_file()  # it went to this test's data dir

    r = ragft("docs", "--json")
    assert (r.code, r.err) == (0, "")
    docs = json.loads(r.out)
    assert [(d["name"], d["chunks"]) for d in docs] == [("cheese.md", 1), ("zorblax.txt", 1)]
    assert [d["size_bytes"] for d in docs] == [cheese.stat().st_size, moon.stat().st_size]
    assert set(docs[0]) == {"name", "chunks", "chars", "size_bytes", "content_hash", "added"}

    r = ragft("search", "What is the name of the moon of Zorblax?", "--json", "-k", "2")
    assert (r.code, r.err) == (0, "")
    hits = json.loads(r.out)
    assert [h["source"] for h in hits] == ["zorblax.txt", "cheese.md"]
    assert hits[0]["text"] == "The moon of Zorblax is named Quib. Quib is small and grey."
    assert hits[0]["chunk"] == 0
    assert hits[0]["score"] > hits[1]["score"]

    r = ragft("search", "How long is snorvel cheese aged?", "-k", "1")
    score, where = r.out.splitlines()[0].split("  ")
    assert (float(score) > 0, where) == (True, "cheese.md #0")
    assert r.out.splitlines()[1:] == ["# Snorvel", "Snorvel cheese is aged for nine years in volcanic caves."]

    # The same files again change nothing.
    r = ragft("ingest", str(moon), "--json")
    assert (r.code, r.err) == (0, "")
    assert json.loads(r.out) == [
        {
            "name": "zorblax.txt",
            "ok": True,
            "status": "unchanged",
            "chunks": 1,
            "message": "zorblax.txt: unchanged, already stored (1 chunks)",
        }
    ]

    assert ragft("delete", "zorblax.txt", "--json") == (0, json.dumps({"deleted": "zorblax.txt", "chunks": 1},
                                                                      indent=2) + "\n", "")
    assert ragft("delete", "cheese.md") == (0, "deleted cheese.md (1 chunks)\n", "")
    assert ragft("docs") == (0, "no documents yet: python -m ragft ingest FILE\n", "")


def test_docs_lists_name_chunks_chars_and_time(ragft, two_files):
    moon, _ = two_files
    ragft("ingest", str(moon))
    (line,) = ragft("docs").out.splitlines()
    name, chunks, chars, added = line.split("\t")
    assert (name, chunks, chars) == ("zorblax.txt", "1 chunks", "58 chars")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d)?.*", added)


def test_ingest_with_one_bad_file_adds_the_good_one(ragft, two_files, tmp_path):
    moon, _ = two_files
    bad = tmp_path / "notes.xyz"
    bad.write_text("text in an unknown format", encoding="utf-8")
    r = ragft("ingest", str(moon), str(bad))
    assert (r.code, r.out) == (1, "ok    zorblax.txt: added 1 chunks\n")
    assert_one_error_line(r, f"notes.xyz: unsupported file type .xyz; use one of {', '.join(SUPPORTED_SUFFIXES)}")
    assert [d["name"] for d in json.loads(ragft("docs", "--json").out)] == ["zorblax.txt"]


MISTAKES = [
        (
            ["frobnicate"],
            "argument command: invalid choice: 'frobnicate' (choose from 'ingest', 'docs', 'delete', 'search', "
            "'ask', 'adapters', 'train', 'eval', 'experiment', 'serve') (see: python -m ragft --help)",
        ),
        ([], "the following arguments are required: command (see: python -m ragft --help)"),
        (["ask"], "the following arguments are required: question (see: python -m ragft ask --help)"),
        (
            ["ask", "why?", "--mode", "psychic"],
            "argument --mode: invalid choice: 'psychic' (choose from 'plain', 'rag', 'ft', 'rag+ft', 'all') "
            "(see: python -m ragft ask --help)",
        ),
        # ask and search flags go to the engine unchecked: argparse checks them, within `Settings`' bounds
        (["ask", "why?", "-k", "0"], "argument -k/--top-k: must be between 1 and 20, got 0 (see: python -m ragft ask "
                                     "--help)"),
        (["ask", "why?", "-k", "21"], "argument -k/--top-k: must be between 1 and 20, got 21 (see: python -m ragft ask "
                                      "--help)"),
        (["ask", "why?", "--temperature", "9"], "argument --temperature: must be between 0 and 5, got 9 (see: python "
                                                "-m ragft ask --help)"),
        (["ask", "why?", "--temperature", "nan"], "argument --temperature: must be between 0 and 5, got nan (see: "
                                                  "python -m ragft ask --help)"),
        (["ask", "why?", "--max-new-tokens", "0"], "argument --max-new-tokens: must be between 1 and 2048, got 0 "
                                                   "(see: python -m ragft ask --help)"),
        (["search", "moons", "-k", "0"], "argument -k/--top-k: must be between 1 and 20, got 0 (see: python -m ragft "
                                         "search --help)"),
        (["search", "moons", "-k", "many"], "argument -k/--top-k: invalid int value: 'many' (see: python -m ragft "
                                            "search --help)"),
        (["search"], "the following arguments are required: query (see: python -m ragft search --help)"),
        (["ingest"], "the following arguments are required: files (see: python -m ragft ingest --help)"),
        (["ingest", "missing.txt"], "missing.txt: no such file"),
        (["delete", "nosuch"], "no document named 'nosuch'; see: python -m ragft docs"),
        (["docs", "--bogus"], "unrecognized arguments: --bogus (see: python -m ragft --help)"),
        (["eval"], "one of the arguments --questions --generate is required (see: python -m ragft eval --help)"),
        (["eval", "--questions", "missing.jsonl"], "missing.jsonl: no such file"),
        (["eval", "--questions", "no-such-set"], "no question set named 'no-such-set'; saved sets: none yet"),
        (["eval", "--generate", "3", "--out", "r.txt"], "--out r.txt: use a .json or .csv file name"),
        (["eval", "--generate", "3", "--variants", "plain,psychic"], "variants must be some of plain, rag, ft, rag+ft"),
        (["eval", "--questions", "x.jsonl", "--choices", "4"], "--save-set and --choices go with --generate"),
        (["eval", "--generate", "3", "--choices", "9"], "multiple choice takes 2..8 options (0: open questions)"),
        # the other numbers go into a config, which checks itself
        (["eval", "--generate", "3", "-k", "0"], "top k must be 1..20"),
        (["eval", "--generate", "3", "--batch-size", "65"], "batch size must be 1..64"),
        (["eval", "--generate", "3"], "the document store is empty: add documents first (python -m ragft ingest FILE)"),
        (["train"], "the following arguments are required: --data (see: python -m ragft train --help)"),
        (["search", "  "], "the query is empty"),
        (["train", "--data", "docs", "--rank", "0"], "rank must be 1..256"),
        (["train", "--data", "docs", "--alpha", "2000"], "alpha must be 1..1024"),
        (["train", "--data", "docs", "--lr", "0"], "learning rate must be in (0, 1]"),
        (["train", "--data", "docs", "--max-steps", "-1"], "max steps must be 0..100000 (0 = use epochs)"),
        (["train", "--data", "docs", "--raft"], "--raft needs question/answer pairs: --data qa.jsonl --raft"),
        (["train", "--data", "missing.jsonl"], "missing.jsonl: no such file (use 'docs', a .jsonl file or a saved "
                                               "question set)"),
        (["train", "--data", "no-such-set"], "no question set named 'no-such-set'; saved sets: none yet"),
        (["train", "--data", "docs"], "the document store is empty: add documents first (python -m ragft ingest FILE)"),
        (["train", "--data", "docs", "--name", "a b"], "adapter name 'a b': use letters, digits, '-', '_' or '.', "
                                                       "up to 64 characters"),
        (["experiment", "--train", "qa,magic"], "training recipes must be some of qa, raft, docs"),
        (["experiment", "--steps", "-1"], "steps must be 0..10000 (0 = the preset's epochs)"),
        (["experiment", "--estimate"], "no documents to experiment on: add documents first (python -m ragft ingest "
                                       "FILE)"),
        (["experiment", "--questions", "501"], "questions must be 0..500 (0 = every fact found, up to the preset's "
                                               "cap)"),
        (["experiment", "--name", "../x"], "experiment name: use letters, digits, '-', '_' or '.', up to 64 "
                                           "characters"),
]


# ids without "train": conftest marks a test slow by that word in its name
@pytest.mark.parametrize("args, message", MISTAKES,
                         ids=[" ".join(args).replace("train", "fine-tune") or "no-command" for args, _ in MISTAKES])
def test_mistakes_are_one_error_line_and_exit_2(ragft, args, message):
    r = ragft(*args)
    assert (r.code, r.out) == (2, "")
    assert_one_error_line(r, message)


def test_unsupported_and_empty_files_are_one_error_line_each(ragft, tmp_path):
    f = tmp_path / "file.xyz"
    f.write_text("hello", encoding="utf-8")
    r = ragft("ingest", str(f))
    assert (r.code, r.out) == (1, "")
    assert_one_error_line(r, f"file.xyz: unsupported file type .xyz; use one of {', '.join(SUPPORTED_SUFFIXES)}")

    f = tmp_path / "empty.md"
    f.write_bytes(b"")
    r = ragft("ingest", str(f), "--json")
    assert r.code == 1
    assert json.loads(r.out)[0]["status"] == "refused"  # --json keeps stdout parseable
    assert_one_error_line(r, "empty.md: the file is empty")


def test_a_bad_environment_is_one_error_line(monkeypatch, capsys):
    monkeypatch.setenv("RAGFT_TOP_K", "lots")
    assert cli.main(["docs"]) == 2  # the engine is built from the environment
    assert capsys.readouterr() == ("", "ragft: error: RAGFT_TOP_K='lots' is not a whole number\n")


def test_an_adapter_quota_error_says_where_adapters_are(fake_engine, ragft):
    fake_adapter(fake_engine.settings.adapters_dir / "a-v1")  # one saved adapter, the limit
    fake_engine.settings = replace(fake_engine.settings, max_adapters=1)
    assert_one_error_line(ragft("train", "--data", "docs"),
                          "1 adapters are saved and this run would add 1; the limit is 1 (RAGFT_MAX_ADAPTERS): delete "
                          "some first (python -m ragft adapters lists them, adapters --delete NAME deletes one; train "
                          "trains one)")
    r = ragft("adapters", "--delete", "a-v1")
    assert (r.code, r.out, r.err) == (0, "deleted adapter a-v1\n", "")
    assert fake_engine.adapters() == []
    assert_one_error_line(ragft("adapters", "--delete", "a-v1"), "no adapter named 'a-v1'")


def test_help_is_printed_and_main_returns(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # argparse wraps help to the terminal
    assert cli.main(["--help"]) == 0
    out, err = capsys.readouterr()
    assert (out.splitlines()[0], err) == ("usage: ragft [-h] {ingest,docs,delete,search,ask,adapters,train,eval,"
                                          "experiment,serve} ...", "")
    assert cli.main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    # help, range and default come from `TrainConfig`'s fields
    assert "--rank RANK LoRA rank r (1..256; default: 16)" in text
    assert ("--alpha ALPHA LoRA alpha (the update is scaled by alpha/r; 2 x rank is usual) (1..1024; default: 32)"
            in text)
    assert "--lr LR AdamW peak learning rate (in (0, 1]; default: 0.001)" in text
    assert cli.main(["ask", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "-k TOP_K, --top-k TOP_K chunks retrieved for the RAG answers (1..20; default: RAGFT_TOP_K or 3)" in text


def test_fine_tune_flags_make_the_config_with_its_alpha_unless_given(fake_engine, ragft, tmp_path, monkeypatch):
    engine = fake_engine
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"question": "What is the vault code?", "answer": "The vault code is 7-4-1-9."}))
    started = []
    monkeypatch.setattr(engine, "start_training",
                        lambda spec, config, name: started.append((spec, config, name)) or f"{name}-v1")
    assert ragft("train", "--data", str(qa), "--rank", "8", "--json") == (0, "{}\n", "")
    assert ragft("train", "--data", str(qa), "--raft", "--rank", "8", "--alpha", "16", "--lr", "0.01", "--epochs",
                 "2", "--batch-size", "2", "--name", "v") == (0, f" -> {engine.settings.adapters_dir / 'v-v1'}\n", "")
    assert started == [
        (DataSpec("qa", qa), TrainConfig(rank=8), "adapter"),  # alpha stays TrainConfig's 32, as in the UI
        (DataSpec("raft", qa), TrainConfig(rank=8, alpha=16, learning_rate=0.01, epochs=2.0, batch_size=2), "v"),
    ]
    engine.save_question_set("facts", engine.read_questions(str(qa)))
    assert ragft("train", "--data", "facts", "--max-steps", "5", "--json").code == 0  # a saved set, by name
    assert started[-1][:2] == (DataSpec("qa", engine.settings.questions_dir / "facts.jsonl"), TrainConfig(max_steps=5))


@pytest.mark.slow
def test_ask_prints_answers_and_sources_as_json(ragft_real, two_files):
    ragft = ragft_real
    moon, _ = two_files
    assert ragft("ingest", str(moon)).code == 0
    r = ragft("ask", "What is the moon of Zorblax named?", "--mode", "rag", "--sources", "--json",
              "--max-new-tokens", "16")
    assert (r.code, r.err) == (0, "")
    out = json.loads(r.out)
    assert (out["question"], out["adapter"], list(out["answers"])) == ("What is the moon of Zorblax named?", None,
                                                                        ["rag"])
    assert "Quib" in out["answers"]["rag"]
    assert out["sources"]["rag"][0]["source"] == "zorblax.txt" and "Quib" in out["sources"]["rag"][0]["text"]
    quib = [m for m in out["grounding"]["rag"] if "Quib" in m["sentence"]]
    assert quib and quib[0]["supported"] is True and quib[0]["chunk"] == 0  # the sentence naming Quib is grounded
    assert out["grounded_by"] == "words"  # no RAGFT_GROUNDING_MODEL
    plain = ragft("ask", "Say hi.", "--mode", "plain", "--max-new-tokens", "4")
    assert (plain.code, plain.err) == (0, "")
    assert plain.out.strip() and "==" not in plain.out  # the answer only


def test_ask_fine_tuned_without_adapter_says_so(ragft):
    r = ragft("ask", "hi", "--mode", "ft")
    assert r.code == 2
    assert_one_error_line(r, "no adapter yet: train one first, or use --mode plain|rag")


def test_eval_bad_question_file_is_one_error_line(ragft, tmp_path):
    bad = tmp_path / "set.jsonl"
    bad.write_text('{"question": "Why?", "answer": "Because."}\n{"question": "How?"}\n')
    assert_one_error_line(ragft("eval", "--questions", str(bad)),
                          "set.jsonl line 2: missing or empty 'answer'; each line needs "
                          '{"question": "...", "answer": "..."} (non-empty text) or {"messages": [...]}')


@pytest.mark.slow
def test_eval_generates_questions_prints_the_table_and_writes_results(ragft_real, tmp_path):
    ragft = ragft_real
    assert ragft("ingest", *map(str, FACTS)).code == 0
    out = tmp_path / "answers.csv"
    r = ragft("eval", "--generate", "4", "--variants", "plain,rag", "--save-set", "facts", "--out", str(out))
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == "4 questions from facts; adapter: none"
    assert lines[1].split() == ["variant", "answered", "accuracy", "exact_match", "token_f1", "contains", "recall@3",
                                "answer_in_chunks", "unsupported_sentences", "s_per_answer", "tokens_per_s"]
    assert [line.split()[0] for line in lines[2:]] == ["Plain", "RAG"]
    assert lines[3].split()[7] == "100%"  # RAG's recall@3 (accuracy is two words: "67% [33–100]")
    # the note, then a progress line per quarter passed of the 3 steps (retrieval, then a batch for each variant)
    err = _undated(r.err)
    assert err == [
        "ragft: 4 fill-in-the-blank questions from 3 chunks",
        "facts:  33% 1/3 steps, Plain: questions 1–4 of 4",
        "facts:  67% 2/3 steps, RAG: questions 1–4 of 4",
        "facts: 100% 3/3 steps, done: 4 questions × 2 variants in " + err[-1].split(" in ")[-1],
    ]
    with out.open() as f:
        assert len(f.readlines()) == 1 + 4 * 2  # header + one row per answer
    # The saved set runs again by name, now as JSON (and no progress).
    r = ragft("eval", "--questions", "facts", "--variants", "rag", "--max-new-tokens", "8", "--json")
    assert (r.code, r.err) == (0, "")
    data = json.loads(r.out)
    assert (data["set"], len(data["questions"]), data["summary"][0]["variant"]) == ("facts", 4, "RAG")


def test_format_table_aligns_rates_as_percentages():
    rows = [
        {"variant": "Plain", "answered": 2, "accuracy": 0.5, "accuracy_ci": "50% [0–100]", "exact_match": 0.5,
         "recall@1": None, "s_per_answer": 0.5, "tokens_per_s": 2.0, "note": ""},
        {"variant": "Fine-tuned", "answered": 0, "accuracy": None, "accuracy_ci": "n/a", "exact_match": None,
         "recall@1": None, "s_per_answer": None, "tokens_per_s": None, "note": "no adapter picked"},
    ]
    assert cli.format_table(rows).splitlines() == [
        "variant     answered  accuracy     exact_match  recall@1  s_per_answer  tokens_per_s",
        "Plain       2         50% [0–100]  50%          n/a       0.50          2.0",
        "Fine-tuned  0         n/a          n/a          n/a       n/a           n/a",
        "Fine-tuned: no adapter picked",
    ]


# --- progress ------------------------------------------------------------------------------------------------------
def _undated(text: str) -> list[str]:
    return [re.sub(r" \[\d\d:\d\d<[^]]*\]", "", line) for line in text.splitlines()]


def test_progress_in_a_log_is_a_line_per_quarter(capsys):
    with cli.ProgressBar(Namespace(json=False), "memo-v1", "steps") as bar:
        for step in range(61):
            bar.show(step, 60, f"loss {1 / (step + 1):.2f}")
    assert _undated(capsys.readouterr().err) == [
        "memo-v1:  25% 15/60 steps, loss 0.06",
        "memo-v1:  50% 30/60 steps, loss 0.03",
        "memo-v1:  75% 45/60 steps, loss 0.02",
        "memo-v1: 100% 60/60 steps, loss 0.02",
    ]


def test_progress_in_a_log_ends_with_where_a_stopped_run_got(capsys):
    with cli.ProgressBar(Namespace(json=False), "memo-v1", "steps") as bar:
        bar.show(0, 0)  # the total is not known yet: nothing
        for step in range(23):
            bar.show(step, 60)
    assert _undated(capsys.readouterr().err) == ["memo-v1:  25% 15/60 steps", "memo-v1:  37% 22/60 steps"]


def test_progress_is_off_with_json_and_for_ingest_in_a_log(capsys):
    for bar in (cli.ProgressBar(Namespace(json=True), "memo-v1", "steps"), cli.ProgressBar(Namespace(json=False), "ingest",
                                                                                        in_logs=False)):
        with bar:
            bar.show(1, 2)
            bar.show(2, 2)
    assert capsys.readouterr() == ("", "")


def test_progress_on_a_terminal_is_a_tqdm_bar_redrawn_in_place(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    with cli.ProgressBar(Namespace(json=False), "memo-v1", "steps") as bar:
        for step in range(61):
            bar.show(step, 60)
    text = sys.stderr.getvalue()
    assert text.startswith("\rmemo-v1:   0%|") and text.endswith("\n")
    assert re.search(r"\rmemo-v1: 100%\|[#█]+\| 60/60 steps \[\d\d:\d\d<00:00\] *\n$", text)


@pytest.mark.slow
def test_train_then_ask_with_the_adapter_writes_a_few_progress_lines_to_a_log(engine, ragft_real, tmp_path):
    ragft = ragft_real
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"question": "What is the vault code?", "answer": "The vault code is 7-4-1-9."}))
    r = ragft("train", "--data", str(qa), "--max-steps", "4", "--batch-size", "1", "--name", "vault")
    assert (r.code, r.out) == (0, f"saved vault-v1 after 4 of 4 steps -> {engine.settings.adapters_dir / 'vault-v1'}\n")
    # stderr is captured, not a terminal: one line per quarter at most (a step can finish between two looks), never
    # the bar's redraws (the hand-drawn bar wrote ~1100 for a 60-step run)
    lines = _undated(r.err)
    assert "\r" not in r.err and 1 <= len(lines) <= 4
    # (the first step's loss may not be reported yet when its line is written)
    assert all(re.fullmatch(r"vault-v1: +(25|50|75|100)% [1-4]/4 steps(, loss \d+\.\d{4})?", line) for line in lines), (
        lines)
    assert lines[-1].startswith("vault-v1: 100% 4/4 steps")
    run = engine.adapter_run("vault-v1")
    assert (run.name, run.status, run.steps, run.config["alpha"]) == ("vault-v1", "done", 4, 32)
    assert ragft("adapters", "--json") == (0, '[\n  "vault-v1"\n]\n', "")
    r = ragft("ask", "What is the vault code?", "--mode", "ft", "--max-new-tokens", "4")
    assert (r.code, r.err) == (0, "")
    assert r.out.strip()


@pytest.mark.slow
def test_experiment_estimate_then_run_prints_the_verdict_and_writes_the_report(ragft_real, tmp_path):
    ragft = ragft_real
    assert ragft("ingest", *map(str, FACTS)).code == 0
    r = ragft("experiment", "--estimate", "--train", "qa", "--steps", "2")
    assert r.code == 0, r.err
    assert "Adapters: qa (2 steps)." in r.out and "Estimated time on this machine: about" in r.out

    out = tmp_path / "report"
    r = ragft("experiment", "--train", "qa", "--steps", "2", "--questions", "4", "--documents", "zorblax.md",
              "--name", "cli", "--json", "--out", str(out))  # one document: a short run
    assert r.code == 0, r.err
    data = json.loads(r.out)
    cover = data["coverage"]  # 4 facts trained and tested in another wording; the others found held out
    assert data["adapters"] == ["cli-qa-v1"] and cover["questions_on_trained_facts"] == cover["facts_trained"] == 4
    assert data["test_questions"] == 4 + cover["questions_on_heldout_facts"] and cover["facts_in_documents"] > 4
    assert [row["variant"] for row in data["summary"]] == ["Plain", "RAG", "Fine-tuned", "RAG + Fine-tuned"]
    assert all("[" in row["accuracy_ci"] for row in data["summary"]) and len(data["comparisons"]) == 3
    assert data["headline"] and set(data["causes"]) == {row["variant"] for row in data["summary"]}
    assert sorted(p.name for p in out.iterdir()) == ["answers.csv", "report.html", "report.json", "summary.csv"]


# --- a fresh process: what in-process calls cannot show --------------------------------------------------------------
def python_m_ragft(*args: str) -> subprocess.CompletedProcess:
    """``python -m ragft ARGS`` in the repo root, on this test's data dir (RAGFT_DATA_DIR, set by conftest)."""
    return subprocess.run([sys.executable, "-m", "ragft", *args], cwd=REPO, env=dict(os.environ),
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_python_m_ragft_help_exits_0():
    r = python_m_ragft("--help")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.startswith("usage: ragft [-h]")


@pytest.mark.slow
def test_python_m_ragft_ingest_then_search(two_files):
    moon, cheese = two_files
    r = python_m_ragft("ingest", str(moon), str(cheese))
    assert (r.returncode, r.stdout, r.stderr) == (0, "ok    zorblax.txt: added 1 chunks\nok    cheese.md: added 1 "
                                                     "chunks\n", "")
    r = python_m_ragft("search", "How long is snorvel cheese aged?", "-k", "1", "--json")
    assert (r.returncode, r.stderr) == (0, "")  # no library bars or warnings on stderr
    assert [h["source"] for h in json.loads(r.stdout)] == ["cheese.md"]


@pytest.mark.slow
def test_python_m_ragft_mistake_exits_2_with_one_line():
    r = python_m_ragft("ask", "why?", "-k", "0")
    assert (r.returncode, r.stdout, r.stderr) == (2, "", "ragft: error: argument -k/--top-k: must be between 1 and "
                                                         "20, got 0 (see: python -m ragft ask --help)\n")
