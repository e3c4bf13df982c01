"""``python -m ragft`` as a user runs it: a real subprocess on this test's data dir (RAGFT_DATA_DIR, set by conftest).

Most cases fail or finish before any model loads; ``ask`` and ``train`` load the real generator once each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ragft.documents import SUPPORTED_SUFFIXES

REPO = Path(__file__).resolve().parents[1]


def ragft(*args: str, **env: str) -> subprocess.CompletedProcess:
    """Run ``python -m ragft ARGS`` in the repo root with the test's environment plus ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "ragft", *args],
        cwd=REPO,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )


def assert_one_error_line(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [f"ragft: error: {message}"]


@pytest.fixture
def two_files(tmp_path) -> tuple[Path, Path]:
    moon = tmp_path / "zorblax.txt"
    moon.write_text("The moon of Zorblax is named Quib. Quib is small and grey.", encoding="utf-8")
    cheese = tmp_path / "cheese.md"
    cheese.write_text("# Snorvel\n\nSnorvel cheese is aged for nine years in volcanic caves.", encoding="utf-8")
    return moon, cheese


def test_ingest_docs_search_delete(two_files, data_dir):
    moon, cheese = two_files

    r = ragft("ingest", str(moon), str(cheese))
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.splitlines() == ["ok    zorblax.txt: added 1 chunks", "ok    cheese.md: added 1 chunks"]
    assert (data_dir / "chroma" / "chroma.sqlite3").is_file()  # it went to this test's data dir

    r = ragft("docs", "--json")
    assert (r.returncode, r.stderr) == (0, "")
    docs = json.loads(r.stdout)
    assert [(d["name"], d["chunks"]) for d in docs] == [("cheese.md", 1), ("zorblax.txt", 1)]
    assert [d["size_bytes"] for d in docs] == [cheese.stat().st_size, moon.stat().st_size]
    assert set(docs[0]) == {"name", "chunks", "chars", "size_bytes", "content_hash", "added"}

    r = ragft("search", "What is the name of the moon of Zorblax?", "--json", "-k", "2")
    assert (r.returncode, r.stderr) == (0, "")
    hits = json.loads(r.stdout)
    assert [h["source"] for h in hits] == ["zorblax.txt", "cheese.md"]
    assert hits[0]["text"] == "The moon of Zorblax is named Quib. Quib is small and grey."
    assert hits[0]["chunk"] == 0
    assert hits[0]["score"] > hits[1]["score"]

    r = ragft("search", "How long is snorvel cheese aged?", "--json", "-k", "1")
    assert [h["source"] for h in json.loads(r.stdout)] == ["cheese.md"]

    # The same files again change nothing.
    r = ragft("ingest", str(moon), "--json")
    assert (r.returncode, r.stderr) == (0, "")
    assert json.loads(r.stdout) == [
        {
            "name": "zorblax.txt",
            "ok": True,
            "status": "unchanged",
            "chunks": 1,
            "message": "zorblax.txt: unchanged, already stored (1 chunks)",
        }
    ]

    r = ragft("delete", "zorblax.txt", "--json")
    assert (r.returncode, r.stderr) == (0, "")
    assert json.loads(r.stdout) == {"deleted": "zorblax.txt", "chunks": 1}

    r = ragft("docs")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout.startswith("cheese.md\t1 chunks\t")
    assert len(r.stdout.splitlines()) == 1


def test_docs_on_an_empty_store():
    r = ragft("docs")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == "no documents yet: python -m ragft ingest FILE\n"


def test_ingest_with_one_bad_file_adds_the_good_one(two_files, tmp_path):
    moon, _ = two_files
    bad = tmp_path / "notes.xyz"
    bad.write_text("text in an unknown format", encoding="utf-8")
    r = ragft("ingest", str(moon), str(bad))
    assert r.returncode == 1
    assert r.stdout.splitlines() == ["ok    zorblax.txt: added 1 chunks"]
    assert_one_error_line(r, f"notes.xyz: unsupported file type .xyz; use one of {', '.join(SUPPORTED_SUFFIXES)}")
    r = ragft("docs", "--json")
    assert [d["name"] for d in json.loads(r.stdout)] == ["zorblax.txt"]


@pytest.mark.parametrize(
    "args, message",
    [
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
        (["ask", "why?", "-k", "0"], "--top-k must be between 1 and 50, got 0"),
        (["ask", "why?", "--temperature", "9"], "--temperature must be between 0.0 and 5.0, got 9.0"),
        (["ask", "why?", "--max-new-tokens", "0"], "--max-new-tokens must be between 1 and 2048, got 0"),
        (["search", "moons", "-k", "0"], "--top-k must be between 1 and 50, got 0"),
        (["search", "moons", "-k", "many"], "argument -k/--top-k: invalid int value: 'many' (see: python -m ragft search --help)"),
        (["search"], "the following arguments are required: query (see: python -m ragft search --help)"),
        (["ingest"], "the following arguments are required: files (see: python -m ragft ingest --help)"),
        (["ingest", "missing.txt"], "missing.txt: no such file"),
        (["docs", "--bogus"], "unrecognized arguments: --bogus (see: python -m ragft --help)"),
        (["eval"], "one of the arguments --questions --generate is required (see: python -m ragft eval --help)"),
        (["eval", "--questions", "missing.jsonl"], "missing.jsonl: no such file"),
        (["eval", "--questions", "no-such-set"], "no question set named 'no-such-set'; saved sets: none yet"),
        (["eval", "--generate", "3", "--out", "r.txt"], "--out r.txt: use a .json or .csv file name"),
        (["eval", "--generate", "3", "--variants", "plain,psychic"], "variants must be some of plain, rag, ft, rag+ft"),
        (["eval", "--questions", "x.jsonl", "--choices", "4"], "--save-set and --choices go with --generate"),
    ],
)
def test_argument_errors_are_one_line(args, message):
    r = ragft(*args)
    assert r.returncode == 2
    assert r.stdout == ""
    assert_one_error_line(r, message)


def test_ingest_unsupported_file_is_one_error_line(tmp_path):
    f = tmp_path / "file.xyz"
    f.write_text("hello", encoding="utf-8")
    r = ragft("ingest", str(f))
    assert r.returncode == 1
    assert r.stdout == ""
    assert_one_error_line(r, f"file.xyz: unsupported file type .xyz; use one of {', '.join(SUPPORTED_SUFFIXES)}")


def test_ingest_empty_file_is_one_error_line(tmp_path):
    f = tmp_path / "empty.md"
    f.write_bytes(b"")
    r = ragft("ingest", str(f), "--json")
    assert r.returncode == 1
    assert json.loads(r.stdout)[0]["status"] == "refused"  # --json keeps stdout parseable
    assert_one_error_line(r, "empty.md: the file is empty")


def test_delete_unknown_document_is_one_error_line():
    r = ragft("delete", "nosuch")
    assert r.returncode == 2
    assert r.stdout == ""
    assert_one_error_line(r, "no document named 'nosuch'; see: python -m ragft docs")


def test_bad_environment_is_one_error_line():
    r = ragft("docs", RAGFT_TOP_K="lots")
    assert r.returncode == 2
    assert_one_error_line(r, "RAGFT_TOP_K='lots' is not a whole number")


def test_ask_prints_answers_and_sources_as_json(two_files):
    moon, _ = two_files
    assert ragft("ingest", str(moon)).returncode == 0
    r = ragft("ask", "What is the moon of Zorblax named?", "--mode", "rag", "--sources", "--json",
              "--max-new-tokens", "16")
    assert (r.returncode, r.stderr) == (0, "")
    out = json.loads(r.stdout)
    assert list(out["answers"]) == ["rag"] and "Quib" in out["answers"]["rag"]
    assert out["sources"]["rag"][0]["source"] == "zorblax.txt" and "Quib" in out["sources"]["rag"][0]["text"]
    plain = ragft("ask", "Say hi.", "--mode", "plain", "--max-new-tokens", "4")
    assert plain.returncode == 0 and plain.stdout.strip() and "==" not in plain.stdout  # the answer only


def test_train_then_ask_with_the_adapter(tmp_path):
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"question": "What is the vault code?", "answer": "The vault code is 7-4-1-9."}))
    r = ragft("train", "--data", str(qa), "--max-steps", "3", "--name", "vault", "--json")
    assert r.returncode == 0, r.stderr
    run = json.loads(r.stdout)
    assert (run["name"], run["status"], run["steps"]) == ("vault-v1", "done", 3)
    assert ragft("adapters").stdout.split() == ["vault-v1"]
    r = ragft("ask", "What is the vault code?", "--mode", "ft", "--max-new-tokens", "4")
    assert r.returncode == 0 and r.stdout.strip()


def test_ask_fine_tuned_without_adapter_says_so():
    assert_one_error_line(ragft("ask", "hi", "--mode", "ft"), "no adapter yet: train one first, or use --mode plain|rag")


def test_eval_bad_question_file_is_one_error_line(tmp_path):
    bad = tmp_path / "set.jsonl"
    bad.write_text('{"question": "Why?", "answer": "Because."}\n{"question": "How?"}\n')
    r = ragft("eval", "--questions", str(bad))
    assert_one_error_line(r, "set.jsonl line 2: missing or empty 'answer'; each line needs "
                             '{"question": "...", "answer": "..."} (non-empty text) or {"messages": [...]}')


def test_eval_generate_on_an_empty_store_says_what_to_do():
    assert_one_error_line(ragft("eval", "--generate", "3"),
                          "the document store is empty: add documents in the Documents tab first")


def test_eval_generates_questions_prints_the_table_and_writes_results(tmp_path):
    facts = sorted((REPO / "tests" / "fixtures" / "facts").glob("*.md"))
    assert ragft("ingest", *map(str, facts)).returncode == 0
    out = tmp_path / "answers.csv"
    r = ragft("eval", "--generate", "4", "--variants", "plain,rag", "--save-set", "facts", "--out", str(out))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "4 questions from facts; adapter: none"
    assert lines[1].split() == ["variant", "answered", "accuracy", "exact_match", "token_f1", "contains", "recall@3",
                                "answer_in_chunks", "s_per_answer", "tokens_per_s"]
    assert [line.split()[0] for line in lines[2:]] == ["Plain", "RAG"]
    assert lines[3].split()[7] == "100%"  # RAG's recall@3 (accuracy is two words: "67% [33–100]")
    assert "4 fill-in-the-blank questions from 3 chunks" in r.stderr
    with out.open() as f:
        assert len(f.readlines()) == 1 + 4 * 2  # header + one row per answer
    # The saved set runs again by name, now as JSON.
    r = ragft("eval", "--questions", "facts", "--variants", "rag", "--max-new-tokens", "8", "--json")
    data = json.loads(r.stdout)
    assert (data["set"], len(data["questions"]), data["summary"][0]["variant"]) == ("facts", 4, "RAG")


def test_experiment_on_an_empty_store_says_what_to_do():
    assert_one_error_line(ragft("experiment", "--estimate"), "no documents to experiment on: add documents first")


def test_experiment_bad_recipe_is_one_error_line():
    assert_one_error_line(ragft("experiment", "--train", "qa,magic"),
                          "training recipes must be some of qa, raft, docs")


def test_experiment_estimate_then_run_prints_the_verdict_and_writes_the_report(tmp_path):
    facts = sorted((REPO / "tests" / "fixtures" / "facts").glob("*.md"))
    assert ragft("ingest", *map(str, facts)).returncode == 0
    r = ragft("experiment", "--estimate", "--train", "qa", "--steps", "2")
    assert r.returncode == 0, r.stderr
    assert "Adapters: qa (2 steps)." in r.stdout and "Estimated time on this machine: about" in r.stdout

    out = tmp_path / "report"
    r = subprocess.run([sys.executable, "-m", "ragft", "experiment", "--train", "qa", "--steps", "2", "--questions",
                        "4", "--name", "cli", "--json", "--out", str(out)], cwd=REPO, capture_output=True, text=True,
                       timeout=900)
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["adapters"] == ["cli-qa-v1"] and data["test_questions"] == 4
    assert [row["variant"] for row in data["summary"]] == ["Plain", "RAG", "Fine-tuned", "RAG + Fine-tuned"]
    assert all("[" in row["accuracy_ci"] for row in data["summary"]) and len(data["comparisons"]) == 3
    assert data["headline"] and set(data["causes"]) == {row["variant"] for row in data["summary"]}
    assert sorted(p.name for p in out.iterdir()) == ["answers.csv", "report.html", "report.json", "summary.csv"]
