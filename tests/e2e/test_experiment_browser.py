"""The Experiment tab as a user meets it: upload documents, see the estimate, run, reload the page mid-run, watch it
go on, read the verdict and open the report — a real app process, real models, Debian's Chromium."""

from __future__ import annotations

import re
import time
import urllib.request

from .test_browser import (  # noqa: F401
    ARTIFACTS,
    ROOT,
    app_env,
    app_url,
    browser,
    page,
    wait_for_text,
)


def test_experiment_survives_a_reload_and_shows_the_verdict(app_url, page):  # noqa: F811
    ARTIFACTS.mkdir(exist_ok=True)
    facts = [ROOT / "tests" / "fixtures" / "facts" / name for name in ("quill.md", "zorblax.md")]  # a short run
    page.goto(app_url)
    page.locator("#upload-files input[type=file]").set_input_files([str(f) for f in facts])
    wait_for_text(page.locator("#upload-files"), r"zorblax\s*\.md", 60)
    page.click("#add-docs")
    wait_for_text(page.locator("#ingest-log"), r"zorblax\.md: added \d+ chunks", 120)

    page.get_by_role("tab", name="Experiment").click()
    before = page.locator("#exp-table").inner_text()  # the empty tables name their columns, not "1 2 3"
    assert "correct [95% CI]" in before and not re.search(r"^\s*1\s+2\s+3", before)
    page.get_by_text("Questions, split and training").click()
    page.locator("#exp-recipes").get_by_text("raft").click()  # qa only: a short run for the test
    steps = page.locator("#exp-steps input")
    steps.wait_for(state="visible")
    plan = ""
    for attempt in range(3):  # the accordion mounts its widgets as it opens: a number typed at once can be lost
        steps.fill("3")
        steps.press("Tab")  # the number reaches the server on change (blur)
        time.sleep(1)
        page.click("#exp-estimate")
        plan = wait_for_text(page.locator("#exp-plan"), r"Estimated time on this machine: about" if attempt == 0
                             else r"Adapters: qa \(3 steps\)", 300)
        if "Adapters: qa (3 steps)" in plan:
            break
    assert "Adapters: qa (3 steps)" in plan and "test questions" in plan

    page.click("#exp-run")
    wait_for_text(page.locator("#exp-progress"), r"experiment — (preparing|running)", 180)
    wait_for_text(page.locator("#exp-progress"), r"training experiment-qa-v1", 180)

    # A reload mid-run: the tab finds the running job again and follows it to the end.
    page.reload()
    page.get_by_role("tab", name="Experiment").click()
    progress = wait_for_text(page.locator("#exp-progress"), r"experiment — (running|done)", 60)
    assert "No experiment yet" not in progress
    seen = set()
    deadline = time.time() + 600
    while "experiment — done" not in page.locator("#exp-progress").inner_text() and time.time() < deadline:
        seen.add(page.locator("#exp-progress").inner_text())
        time.sleep(1)
    assert "experiment — done" in page.locator("#exp-progress").inner_text(), seen

    verdict = wait_for_text(page.locator("#exp-verdict"), r"\d+% \[\d+–\d+\]", 60)
    assert re.search(r"Best: |too few questions|the same on every question", verdict)
    table = page.locator("#exp-table").inner_text()
    for label in ("Plain", "RAG", "Fine-tuned", "RAG + Fine-tuned"):
        assert label in table
    assert re.search(r"\d+% \[\d+–\d+\]", table)  # intervals in the table
    assert "<svg" in page.locator("#exp-chart").inner_html()
    wait_for_text(page.locator("#exp-questions-table"), r"✓|✗")
    page.screenshot(path=str(ARTIFACTS / "experiment.png"), full_page=True)

    # The report link: a self-contained HTML page served by the app.
    # Gradio shows "report" and ".html" apart; the size is the download link.
    link = page.locator("#exp-files tr", has_text=re.compile(r"report\s*\.html")).locator("a").first
    href = link.get_attribute("href")
    assert href
    with urllib.request.urlopen(href if href.startswith("http") else app_url + href) as r:
        body = r.read().decode()
    assert "RAG, fine-tuning, or both?" in body and "<svg" in body

    # Reopening it from the list of saved experiments shows the same verdict.
    page.reload()
    page.get_by_role("tab", name="Experiment").click()
    page.locator("#exp-past input").click()
    page.get_by_role("option", name=re.compile(r"-experiment — ")).first.click()
    # The old text stays under a "processing" overlay while it loads: wait for the first line itself.
    wait_for_text(page.locator("#exp-verdict"), "^" + re.escape(verdict.splitlines()[0]), 60)
