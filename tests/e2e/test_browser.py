"""The app as a user meets it: a real server process, real models, real Chroma, Debian's Chromium via Playwright.

Saves screenshots under test-artifacts/ (the README's Chat screenshot comes from here).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time

import pytest

from ..conftest import MEMO_QA, MEMO_QUESTION, install_adapter
from .apps import ROOT, start_app

ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]


@pytest.fixture
def app_env(request) -> dict:
    """More environment for the app (a test sets it with ``parametrize("app_env", [...], indirect=True)``)."""
    return getattr(request, "param", {})


@pytest.fixture
def app_url(settings, tmp_path, app_env):
    """Start `python app.py` as a user would, on a free port, on this test's data dir."""
    env = {**os.environ, "RAGFT_DATA_DIR": str(settings.data_dir), **app_env}
    log = open(tmp_path / "app.log", "w+")
    proc, url = start_app(env, log)
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    assert shutil.which(CHROMIUM), "Debian's chromium is missing: `apt-get install -y chromium` (make test does it)"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    return browser.new_page(viewport={"width": 1600, "height": 1000})


def set_slider(page, elem_id: str, value: int, timeout_s: float = 15) -> None:
    """Type ``value`` into a slider's number box until the slider itself shows it (its range input follows the
    component's value): a click on a button right after typing could otherwise send the old value."""
    box, bar = page.locator(f"{elem_id} input[type=number]"), page.locator(f"{elem_id} input[type=range]")
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        box.fill(str(value))
        box.press("Tab")
        time.sleep(0.5)
        if bar.input_value() == str(value) and box.input_value() == str(value):
            return
    raise AssertionError(f"{elem_id} never took the value {value}; it shows {bar.input_value()}")


def wait_for_text(locator, pattern: str, timeout_s: float = 180) -> str:
    deadline = time.time() + timeout_s
    text = ""
    while time.time() < deadline:
        text = locator.inner_text()
        if re.search(pattern, text):
            return text
        time.sleep(0.5)
    raise AssertionError(f"{pattern!r} never appeared; last text:\n{text}")


def start_training(page, qa_file, name: str, steps: int) -> None:
    """On the Fine-tune tab with its question/answer file source open: train ``name`` for ``steps`` on ``qa_file``."""
    page.locator("#qa-file input[type=file]").set_input_files(str(qa_file))
    wait_for_text(page.locator("#qa-file"), re.escape(qa_file.stem) + r"\s*\." + qa_file.suffix[1:], 60)
    page.locator("#train-name").locator("input, textarea").fill(name)
    page.fill("#train-steps input", str(steps))
    page.click("#train")
    wait_for_text(page.locator("#train-summary"), rf"Training {name}-v1 started", 60)


def test_upload_ask_and_see_four_answers_with_sources(app_url, page, tmp_path, settings, memorized_adapter):
    ARTIFACTS.mkdir(exist_ok=True)
    install_adapter(settings, memorized_adapter)  # saved while the app runs: found without a restart
    good = tmp_path / "glimmerphone.md"
    good.write_text("# Inventions\n\nThe glimmerphone was invented by Ada Trent in 1931 in the town of Wexbridge.\n")
    bad = tmp_path / "photo.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n")

    page.goto(app_url)
    page.locator("#upload-files input[type=file]").set_input_files([str(good), str(bad)])
    wait_for_text(page.locator("#upload-files"), r"photo\s*\.png", 60)  # both files uploaded
    page.click("#add-docs")
    log = wait_for_text(page.locator("#ingest-log"), r"glimmerphone\.md: added \d+ chunks", 120)
    assert "photo.png: unsupported file type .png" in log  # a clear per-file message; the good file still went in
    wait_for_text(page.locator("#docs-table"), r"glimmerphone\.md")
    page.screenshot(path=str(ARTIFACTS / "documents.png"))

    page.get_by_role("tab", name="Chat").click()
    assert page.locator("#adapter-picked input").input_value() == "memo"  # the saved adapter is picked up
    page.fill("#question textarea", "Who invented the glimmerphone?")
    page.click("#send")

    # Streaming: the panes grow token by token; the sources come with the finished answers.
    rag = page.locator("#pane-rag")
    seen: set[str] = set()
    deadline = time.time() + 180
    while "Source: glimmerphone.md" not in rag.inner_text() and time.time() < deadline:
        seen.add(page.locator("#pane-plain").inner_text())
        time.sleep(0.1)
    assert len(seen) >= 3, f"the plain pane did not stream: {seen}"
    wait_for_text(rag, r"Source: glimmerphone\.md · chunk 0 · score 0\.\d\d", 5)
    for pane in ("plain", "rag", "ft", "rag-ft"):
        text = page.locator(f"#pane-{pane}").inner_text()
        answer = text.split("Who invented the glimmerphone?", 1)[1].strip()
        assert answer and "No adapter picked" not in answer, (pane, text)
    assert "Ada Trent" in rag.inner_text()
    wait_for_text(page.locator("#pane-rag-ft"), r"Source: glimmerphone\.md")
    page.screenshot(path=str(ARTIFACTS / "chat.png"))  # the README's screenshot

    # Grounding: the pane says how many sentences the sources support; expanded, each sentence has its mark.
    wait_for_text(rag, r"Grounding: \d+ of \d+ sentences supported by the sources", 5)
    rag.get_by_text("Grounding:").first.click()
    marks = wait_for_text(rag, r"(✅|⚠️) .*Ada Trent")
    assert "glimmerphone.md, chunk 0" in marks or "not in the sources" in marks
    assert "judged by numbers, names and words in common" in marks  # what judged them (no grounding model set)

    # The sources expand to the chunk text.
    rag.get_by_text("Source: glimmerphone.md").first.click()
    chunk = wait_for_text(rag, r"invented by Ada Trent in 1931 in the town of Wexbridge")
    assert "# Inventions" in chunk  # shown as the text it is, not rendered as a heading

    # The adapter's trained answer shows in the fine-tuned pane.
    page.fill("#question textarea", MEMO_QUESTION)
    page.click("#send")
    wait_for_text(page.locator("#pane-ft"), r"7-4-1-9")
    wait_for_text(page.locator("#pane-rag-ft"), r"(?s)Source: .*Source: ", 120)  # the second answer is complete
    page.screenshot(path=str(ARTIFACTS / "chat-adapter.png"))


@pytest.mark.train_processes  # as the app trains by default: in accelerate launch's process
def test_train_from_the_ui_watch_the_loss_then_chat_with_the_new_adapter(app_url, page, tmp_path):
    ARTIFACTS.mkdir(exist_ok=True)
    qa = tmp_path / "vault-qa.jsonl"
    qa.write_text("\n".join(json.dumps(r) for r in MEMO_QA))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "no answer here"}')

    page.goto(app_url)
    page.get_by_role("tab", name="Fine-tune").click()
    page.get_by_text("Question/answer file (JSONL)").click()

    # A bad file is refused with a message naming the line and the problem.
    page.locator("#qa-file input[type=file]").set_input_files(str(bad))
    wait_for_text(page.locator("#qa-file"), r"bad\s*\.jsonl", 60)
    page.click("#train")
    wait_for_text(page.locator("#train-summary"), r"bad\.jsonl line 1: missing or empty 'answer'", 60)

    page.locator("#qa-file button[aria-label='Clear']").click()
    start_training(page, qa, "vault", 12)

    # The progress and the loss plot keep updating while it trains.
    status = page.locator("#train-status")
    plots = set()
    steps = set()
    deadline = time.time() + 300
    while "done" not in status.inner_text() and time.time() < deadline:
        m = re.search(r"step (\d+)/12", status.inner_text())
        if m:
            steps.add(int(m.group(1)))
        plots.add(page.locator("#loss-plot").inner_html())
        time.sleep(0.5)
    assert "vault-v1 — done · step 12/12" in status.inner_text()
    assert len(steps) >= 3 and len(plots) >= 3, (steps, len(plots))
    page.screenshot(path=str(ARTIFACTS / "finetune.png"), full_page=True)

    # The Chat tab picks the new adapter up without a restart and the fine-tuned pane answers what it learned.
    page.get_by_role("tab", name="Chat").click()
    picked = page.locator("#adapter-picked input")
    deadline = time.time() + 30
    while picked.input_value() != "vault-v1" and time.time() < deadline:
        time.sleep(0.3)
    assert picked.input_value() == "vault-v1"
    page.fill("#question textarea", MEMO_QA[1]["question"])
    page.click("#send")
    ft = wait_for_text(page.locator("#pane-ft"), r"robot named Pim", 180)
    assert "No adapter picked" not in ft
    wait_for_text(page.locator("#pane-rag-ft"), r"robot named Pim|\?\s*\S+", 120)


def test_evaluate_generated_questions_and_read_table_chart_and_answers(app_url, page, tmp_path, settings,
                                                                       memorized_adapter):
    ARTIFACTS.mkdir(exist_ok=True)
    install_adapter(settings, memorized_adapter)
    facts = sorted((ROOT / "tests" / "fixtures" / "facts").glob("*.md"))
    memo = tmp_path / "memo-questions.jsonl"
    memo.write_text("\n".join(json.dumps(r) for r in MEMO_QA))
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"question": "Where?", "answer": "Here."}\nnot json\n')

    page.goto(app_url)
    page.locator("#upload-files input[type=file]").set_input_files([str(f) for f in facts])
    wait_for_text(page.locator("#upload-files"), r"zorblax\s*\.md", 60)
    page.click("#add-docs")
    wait_for_text(page.locator("#ingest-log"), r"(?s)(added \d+ chunks.*){3}", 120)

    page.get_by_role("tab", name="Evaluate").click()
    # A broken upload is refused with the line and the problem; nothing is loaded.
    page.locator("#eval-upload input[type=file]").set_input_files(str(bad))
    wait_for_text(page.locator("#eval-set-status"), r"broken\.jsonl line 2: not valid JSON", 60)

    page.fill("#eval-count input", "6")
    page.click("#eval-generate")
    wait_for_text(page.locator("#eval-set-status"), r"6 fill-in-the-blank questions from 3 chunks", 60)
    # Numbers and names in turn: the sixth question asks for the vault's engineer.
    wait_for_text(page.locator("#eval-set"), r"Fill in the blank: The Zorblax vault was built in 1873 by the engineer "
                                             r"____\.")
    page.locator("#eval-set-name").locator("input, textarea").fill("facts")
    page.click("#eval-save")
    wait_for_text(page.locator("#eval-set-status"), r"Saved facts \(6 questions\)")

    chart = page.locator("#eval-chart")
    empty_chart = chart.inner_html()
    def pick_memo():
        page.locator("#eval-adapter input").click()
        page.get_by_role("option", name="memo").click()

    pick_memo()
    page.get_by_text("Decoding and retrieval").click()
    set_slider(page, "#eval-batch", 2)  # 13 short steps: time to reload the page mid-run
    page.click("#eval-run")
    progress = page.locator("#eval-progress")
    wait_for_text(progress, r"facts — running · (Plain|RAG|Fine-tuned).*questions 1–2 of 6", 120)

    # A reload while it runs loses nothing: the run is the app's job, and the tab picks it up again.
    page.reload()
    page.get_by_role("tab", name="Evaluate").click()
    running = wait_for_text(progress, r"facts — running · .*questions \d–\d of 6", 60)
    assert int(re.search(r"(\d+)/13", running).group(1)) < 13
    done = wait_for_text(progress, r"facts — done · done: 6 questions × 4 variants", 300)
    assert "13/13" in done  # it went on to the end, watched from the reloaded page

    table = wait_for_text(page.locator("#eval-table"), r"RAG \+ Fine-tuned")
    for variant in ("Plain", "RAG", "Fine-tuned"):
        assert variant in table
    assert "recall@3 %" in table and "100" in table  # every source chunk was retrieved
    wait_for_text(chart, r"RAG \+ Fine-tuned · recall@k", 30)
    assert chart.locator("canvas, svg").count() > 0 and chart.inner_html() != empty_chart  # redrawn with scores
    wait_for_text(page.locator("#eval-questions"), r"[✓✗]")
    detail = wait_for_text(page.locator("#eval-detail"), r"Question 1")
    assert "Expected:" in detail and "RAG + Fine-tuned" in detail
    page.fill("#eval-qnum input", "6")
    page.locator("#eval-qnum input").press("Enter")
    wait_for_text(page.locator("#eval-detail"), r"(?s)Question 6.*built in 1873 by the engineer", 30)
    wait_for_text(page.locator("#eval-files"), r"(?s)results\s*\.json.*summary\s*\.csv.*answers\s*\.csv", 30)
    page.screenshot(path=str(ARTIFACTS / "evaluate.png"), full_page=True)

    # Questions the adapter was trained on are flagged before anything runs.
    pick_memo()  # the reloaded page starts from "(none)"
    page.locator("#eval-upload input[type=file]").set_input_files(str(memo))
    wait_for_text(page.locator("#eval-set-status"), r"Read 3 questions from the upload", 60)
    wait_for_text(page.locator("#eval-overlap"), r"3 of 3 questions are in memo's training data", 30)

    # The same evaluation is an API endpoint for gradio_client.
    from gradio_client import Client

    result = Client(app_url, verbose=False).predict("facts", "", "plain,rag", api_name="/evaluate")
    assert [row["variant"] for row in result["summary"]] == ["Plain", "RAG"]
    assert result["summary"][1]["recall@3"] == 1.0 and len(result["questions"]) == 6


@pytest.mark.parametrize("app_env", [{"RAGFT_WORKSPACES": "private"}], indirect=True)
def test_private_workspaces_two_browsers_see_only_their_own_documents(app_url, browser, tmp_path, settings):
    """Two people (two browser profiles) on an app with private workspaces: each sees only what they uploaded, a
    reload keeps one's workspace, and the data dir holds one workspace each."""
    ARTIFACTS.mkdir(exist_ok=True)
    pages = {}
    for who, text in (("ada", "Ada's notebook: the Zorblax vault code is 7-4-1-9."),
                      ("ben", "Ben's notebook: the greenhouse holds eleven blue tulips.")):
        doc = tmp_path / f"{who}.txt"
        doc.write_text(text)
        page = pages[who] = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
        page.goto(app_url)
        wait_for_text(page.locator("#workspace-line"), r"private to this browser, and deleted after 24 h unused")
        page.locator("#upload-files input[type=file]").set_input_files(str(doc))
        wait_for_text(page.locator("#upload-files"), rf"{who}\s*\.txt", 60)
        page.click("#add-docs")
        wait_for_text(page.locator("#ingest-log"), rf"{who}\.txt: added 1 chunks", 120)

    for who, other in (("ada", "ben"), ("ben", "ada")):
        page = pages[who]
        page.reload()  # the workspace is the browser's, not the page's
        table = wait_for_text(page.locator("#docs-table"), rf"{who}\.txt", 60)
        assert f"{other}.txt" not in table
        query = page.locator("#search-query").locator("input, textarea")
        query.fill("What is the vault code?")
        query.press("Enter")
        hits = wait_for_text(page.locator("#search-hits"), rf"{who}\.txt", 60)
        assert f"{other}.txt" not in hits and ("7-4-1-9" in hits) == (who == "ada")
    pages["ada"].screenshot(path=str(ARTIFACTS / "workspaces.png"), full_page=True)
    spaces = sorted(p.name for p in (settings.data_dir / "workspaces").iterdir()
                    if p.is_dir() and not p.name.startswith("."))  # .blank: what visitors read before they write
    assert len(spaces) == 2 and all(s.startswith("anon-") for s in spaces)
