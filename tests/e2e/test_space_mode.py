"""The app as a Space starts it: a fresh virtual environment with only `pip install -r requirements.txt` (and the
`spaces` package, which a Gradio Space's image adds), a copy of the repository, the variables a Space sets, the
base model by its hub id, private workspaces. No setup script, no `--no-deps` extras: what the Space would lack,
this test lacks. The hub cannot be reached here, so the hub cache is seeded with the embedded GGUF exported to
safetensors, and ``HF_HUB_OFFLINE=1``. A visitor in a real browser uploads, asks, trains a small adapter and gets an
experiment estimate.

The environment is built once per requirements.txt (about 5 minutes) in ``.space-venv/`` and reused."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ragft.models import FALLBACK_BASE_MODEL, resolve_base_model
from ragft.serving.server import export_model

from ..conftest import MEMO_QA
from .apps import ROOT, start_app
from .test_browser import browser, page, start_training, wait_for_text  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

VENV = ROOT / ".space-venv"
PLATFORM = ["spaces==0.51.3"]  # what a Gradio Space's image installs beside requirements.txt (spaces' no-op mode)
SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"  # any commit hash names the cache's one snapshot


@pytest.fixture(scope="session")
def space_python() -> str:
    """A venv with requirements.txt only (and the platform's packages), made once per version of that file."""
    stamp = hashlib.sha256((ROOT / "requirements.txt").read_bytes() + " ".join(PLATFORM).encode()).hexdigest()
    marker = VENV / "requirements.sha256"
    python = VENV / "bin" / "python"
    if not (marker.is_file() and marker.read_text() == stamp and python.exists()):
        shutil.rmtree(VENV, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        for packages in (["-r", str(ROOT / "requirements.txt")], PLATFORM):
            done = subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], capture_output=True,
                                  text=True, timeout=1800)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        marker.write_text(stamp)
    return str(python)


@pytest.fixture(scope="session")
def hub_home(tmp_path_factory) -> Path:
    """HF_HOME with the base model's hub id in its cache, as the hub would have put it there."""
    home = tmp_path_factory.mktemp("hf-home")
    repo = home / "hub" / f"models--{FALLBACK_BASE_MODEL.replace('/', '--')}"
    export_model(resolve_base_model(), repo / "snapshots" / SNAPSHOT)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(SNAPSHOT)
    return home


def repository_copy(target: Path) -> Path:
    """The repository's files as a push to the Space would carry them (tracked, and new files not ignored)."""
    names = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, capture_output=True,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, names):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture
def space_url(space_python, hub_home, tmp_path):
    repo = repository_copy(tmp_path / "space")
    keep = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "TMPDIR") if k in os.environ}
    env = {**keep, "SYSTEM": "spaces", "SPACE_ID": "ragft-test/ragft", "SPACE_AUTHOR_NAME": "ragft-test",
           "SPACE_REPO_NAME": "ragft", "SPACE_HOST": "ragft-test-ragft.hf.space", "HF_HOME": str(hub_home),
           "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    with open(tmp_path / "space.log", "w+") as log:
        proc, url = start_app(env, log, timeout_s=300, python=space_python, cwd=repo)
        try:
            yield url, log
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_a_visitor_uses_the_app_as_a_space_runs_it(space_url, page, tmp_path):  # noqa: F811
    url, log = space_url
    log.seek(0)
    started = log.read()
    assert f"base model: hub model {FALLBACK_BASE_MODEL}" in started  # by its hub id, as on a Space
    qa = tmp_path / "vault-qa.jsonl"
    qa.write_text("\n".join(json.dumps(r) for r in MEMO_QA))

    page.goto(url)
    line = wait_for_text(page.locator("#workspace-line"), r"private to this browser", 60)
    assert "a restart of the Space deletes them" in line  # an anonymous visitor is told their work is temporary
    facts = sorted((ROOT / "tests" / "fixtures" / "facts").glob("*.md"))  # enough facts for an experiment
    page.locator("#upload-files input[type=file]").set_input_files([str(f) for f in facts])
    wait_for_text(page.locator("#upload-files"), r"zorblax\s*\.md", 60)
    page.click("#add-docs")
    wait_for_text(page.locator("#ingest-log"), r"zorblax\.md: added \d+ chunks", 180)

    page.get_by_role("tab", name="Chat").click()
    page.fill("#question textarea", "Who invented the glimmerphone?")
    page.click("#send")
    wait_for_text(page.locator("#pane-rag"), r"Source: glimmer\.md", 180)

    page.get_by_role("tab", name="Fine-tune").click()
    page.get_by_text("Question/answer file (JSONL)").click()
    start_training(page, qa, "vault", 3)
    wait_for_text(page.locator("#train-status"), r"vault-v1 — done · step 3/3", 300)

    page.get_by_role("tab", name="Experiment").click()
    page.click("#exp-estimate")
    plan = wait_for_text(page.locator("#exp-plan"), r"Estimated time on this machine: about", 300)
    assert re.search(r"test questions", plan)
    log.seek(0)
    text = log.read()
    # Python's own noise when an event loop is collected ("Exception ignored in ... __del__") is not an error
    assert text.count("Traceback") == text.count("Exception ignored in") and "ERROR" not in text, text[-3000:]
