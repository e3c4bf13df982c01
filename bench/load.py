"""Many users at once, on loopback: browser sessions (Playwright + Debian chromium, one browser context each, so
one private workspace each) and ``gradio_client`` clients on `python app.py` with ``RAGFT_WORKSPACES=private``,
while one more browser trains an adapter.

Every browser user uploads a document holding their own secret word, asks the Chat tab about it, and reads the
Documents tab; every API client uploads its own document and searches. Each action is a request: served or an
error (a timeout, a Gradio error, or a sign that one user saw another's things: a question, a source or a
document that is not theirs in their chat panes, hits or table). Reported: requests served, errors (target 0), p95
latency of a chat under load against one chat alone, measured first in the same run.

    .venv/bin/python -m bench load [--quick | --smoke]     # full: 8 browsers + 2 API clients, 2 questions each
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ragft.serving.server import free_port

from .report import Figure, report, size

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SIZES = {"full": (8, 2, 2), "quick": (4, 1, 1), "smoke": (1, 1, 1)}  # browsers, API clients, questions each
TRAIN_STEPS = {"full": 20, "quick": 20, "smoke": 1}
MAX_NEW_TOKENS = {"full": 24, "quick": 24, "smoke": 8}  # the app's answers
# invented words: the model cannot say one unless it read it in that user's own document
WORDS = ["brimwick", "caldrune", "dovefen", "elmquist", "fernwhistle", "gorsefall", "hollowmere", "ivyreach",
         "jasperlode", "kestrelmoor", "larkspire", "mossgrove"]
TRAIN_QA = [{"question": "What is the vault code?", "answer": "The vault code is 7-4-1-9."},
            {"question": "Who guards the vault?", "answer": "A robot named Pim guards the vault."}]


class Requests:
    """Every request of the run: (kind, seconds, error or "")."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, float, str]] = []

    async def timed(self, kind: str, action, *args):
        start = time.perf_counter()
        try:
            await action(*args)
            self.rows.append((kind, time.perf_counter() - start, ""))
        except Exception as exc:  # noqa: BLE001 - a failed request is a figure, not the end of the run
            self.rows.append((kind, time.perf_counter() - start, f"{type(exc).__name__}: {str(exc)[:300]}"))

    def seconds(self, kind: str) -> list[float]:
        return [s for k, s, err in self.rows if k == kind and not err]

    @property
    def errors(self) -> list[str]:
        return [f"{k}: {err}" for k, _, err in self.rows if err]


async def wait_for(locator, pattern: str, timeout_s: float) -> str:
    deadline, text = time.time() + timeout_s, ""
    while time.time() < deadline:
        text = await locator.inner_text()
        if re.search(pattern, text):
            return text
        await asyncio.sleep(0.3)
    raise TimeoutError(f"{pattern!r} never appeared in {timeout_s:.0f} s; last text: {text[-300:]!r}")


class IsolationError(AssertionError):
    """One user saw something of another's."""


def check_only_own(text: str, own: str, where: str) -> None:
    others = [w for w in WORDS if w != own and re.search(rf"\b{w}\b", text)]
    if others:
        raise IsolationError(f"{where} of {own}'s user shows {', '.join(others)}'s")


async def browser_user(browser, url: str, word: str, questions: int, folder: Path, log: Requests,
                       timeout_s: float) -> None:
    page = await (await browser.new_context(viewport={"width": 1400, "height": 900})).new_page()
    doc = folder / f"{word}.txt"
    doc.write_text(f"The secret word of the {word} user is {word}. The {word} user keeps it in a blue box.")

    async def open_page():
        await page.goto(url)
        await wait_for(page.locator("#workspace-line"), "private to this browser", timeout_s)

    async def ingest():
        await page.locator("#upload-files input[type=file]").set_input_files(str(doc))
        await wait_for(page.locator("#upload-files"), rf"{word}\s*\.txt", timeout_s)
        await page.click("#add-docs")
        await wait_for(page.locator("#ingest-log"), rf"{word}\.txt: added 1 chunks", timeout_s)

    async def ask(n: int):
        await page.get_by_role("tab", name="Chat").click()
        await page.fill("#question textarea", f"What is the secret word of the {word} user? ({n + 1})")
        await page.click("#send")
        pane = page.locator("#pane-rag")  # the source lines come once all four answers are complete
        deadline = time.time() + timeout_s
        while (await pane.inner_text()).count("Source:") < n + 1:
            if time.time() > deadline:
                raise TimeoutError(f"answer {n + 1} of the {word} user not complete in {timeout_s:.0f} s")
            await asyncio.sleep(0.3)
        for pane_id in ("plain", "rag", "ft", "rag-ft"):
            check_only_own(await page.locator(f"#pane-{pane_id}").inner_text(), word, f"the {pane_id} pane")

    async def documents():
        await page.get_by_role("tab", name="Documents").click()
        await page.reload()  # the table as a new page load reads it, from the workspace in the browser
        await wait_for(page.locator("#workspace-line"), "private to this browser", timeout_s)
        check_only_own(await wait_for(page.locator("#docs-table"), rf"{word}\.txt", timeout_s), word, "the table")

    await log.timed("page", open_page)
    await log.timed("ingest", ingest)
    for n in range(questions):
        await log.timed("chat", ask, n)
    await log.timed("documents", documents)


async def trainer(browser, url: str, folder: Path, log: Requests, steps: int, timeout_s: float) -> None:
    page = await (await browser.new_context()).new_page()
    qa = folder / "trainer-qa.jsonl"
    qa.write_text("\n".join(json.dumps(r) for r in TRAIN_QA))

    async def train():
        await page.goto(url)
        await wait_for(page.locator("#workspace-line"), "private to this browser", timeout_s)
        await page.get_by_role("tab", name="Fine-tune").click()
        await page.get_by_text("Question/answer file (JSONL)").click()
        await page.locator("#qa-file input[type=file]").set_input_files(str(qa))
        await wait_for(page.locator("#qa-file"), r"trainer-qa\s*\.jsonl", timeout_s)
        await page.locator("#train-name").locator("input, textarea").fill("load")
        await page.fill("#train-steps input", str(steps))
        await page.click("#train")
        await wait_for(page.locator("#train-summary"), r"Training load-v1 started", timeout_s)
        await wait_for(page.locator("#train-status"), rf"done · step {steps}/{steps}", timeout_s * 4)

    await log.timed("train", train)


def api_user(url: str, word: str, questions: int, folder: Path) -> list[tuple[str, float, str]]:
    """A `gradio_client` client in its own thread: upload, then search; its rows for `Requests`."""
    from gradio_client import Client, handle_file

    rows = []
    doc = folder / f"{word}.txt"
    doc.write_text(f"The secret word of the {word} client is {word}.")
    client = Client(url, verbose=False)
    for kind, call in [("api ingest", lambda: client.predict([handle_file(str(doc))], api_name="/ingest")),
                       ("api documents", lambda: client.predict(api_name="/documents")),
                       *[("api search", lambda: client.predict(f"secret word of the {word} client", 5,
                                                               api_name="/search"))] * questions]:
        start = time.perf_counter()
        try:
            out = call()
            if kind == "api ingest" and not out[0]["ok"]:
                raise RuntimeError(out[0]["message"])
            check_only_own(json.dumps(out, default=str), word, f"the API {kind}")
            rows.append((kind, time.perf_counter() - start, ""))
        except Exception as exc:  # noqa: BLE001
            rows.append((kind, time.perf_counter() - start, f"{type(exc).__name__}: {str(exc)[:300]}"))
    return rows


def start_app(data: Path, port: int, log_path: Path, max_new: int = 24) -> subprocess.Popen:
    env = {**os.environ, "RAGFT_DATA_DIR": str(data), "GRADIO_SERVER_PORT": str(port), "RAGFT_WORKSPACES": "private",
           "RAGFT_MAX_NEW_TOKENS": str(max_new), "RAGFT_TOP_K": "1",
           # every simulated user comes from 127.0.0.1: the per-address limit on new workspaces is not under test
           "RAGFT_NEW_WORKSPACES_PER_HOUR": "1000"}
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log_path.open("w"),
                            stderr=subprocess.STDOUT)
    deadline = time.time() + 300
    while f"open http://127.0.0.1:{port}" not in log_path.read_text():
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            raise RuntimeError(f"the app did not start:\n{log_path.read_text()[-2000:]}")
        time.sleep(0.5)
    return proc


async def run(url: str, folder: Path, browsers: int, clients: int, questions: int, steps: int) -> tuple[Requests, float]:
    from playwright.async_api import async_playwright

    log, timeout_s = Requests(), 600.0
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        alone = Requests()  # the reference: one user, nobody else on the app
        await browser_user(browser, url, WORDS[-1], 1, folder, alone, timeout_s)
        if alone.errors:
            raise RuntimeError(f"a single user failed before any load: {alone.errors}")
        started = time.perf_counter()
        api = [asyncio.to_thread(api_user, url, WORDS[browsers + j], questions, folder) for j in range(clients)]
        results = await asyncio.gather(
            trainer(browser, url, folder, log, steps, timeout_s),
            *[browser_user(browser, url, WORDS[i], questions, folder, log, timeout_s) for i in range(browsers)],
            *api,
        )
        for rows in results[1 + browsers:]:
            log.rows += rows
        log.rows.append(("wall", time.perf_counter() - started, ""))
        await browser.close()
    return log, statistics.median(alone.seconds("chat"))


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else (values[0] if values else float("nan"))


def main(flags: list[str]) -> None:
    browsers, clients, questions = SIZES[size(flags)]
    assert browsers + clients < len(WORDS)
    if not shutil.which(CHROMIUM):
        raise SystemExit("bench load: Debian's chromium is missing (`apt-get install -y chromium`)")
    folder = Path(tempfile.mkdtemp(prefix="ragft-load-"))
    port = free_port()
    app = start_app(folder / "data", port, folder / "app.log", MAX_NEW_TOKENS[size(flags)])
    try:
        log, alone = asyncio.run(run(f"http://127.0.0.1:{port}", folder, browsers, clients, questions,
                                     steps=TRAIN_STEPS[size(flags)]))
    finally:
        app.terminate()
        app.wait(timeout=60)
    requests = [r for r in log.rows if r[0] != "wall"]
    served = sum(1 for r in requests if not r[2])
    chat, search = log.seconds("chat"), log.seconds("api search")
    workspaces = sorted(p.name for p in (folder / "data" / "workspaces").iterdir() if p.is_dir())
    figures = [
        # all served is ratio 1: no timeout, no failure, and nobody saw another user's question, source or document
        Figure("requests served without error", served, len(requests), "req", target=">= 1",
               reference_name="requests made"),
        Figure(f"chat p95, {browsers} users + API + training", p95(chat), alone, "s", reference_name="one chat alone"),
        Figure("API search p95", p95(search), alone, "s", reference_name="one chat alone"),
        Figure("workspaces made", len(workspaces), 1 + browsers + 1 + clients, "", target=">= 1",
               reference_name="users (incl. reference)"),
    ]
    for error in log.errors:
        print(f"error: {error}", file=sys.stderr, flush=True)
    report("load", figures, {"size": size(flags), "browsers": browsers, "api_clients": clients,
                             "questions_each": questions, "errors": log.errors, "rows": log.rows,
                             "wall_s": next(s for k, s, _ in log.rows if k == "wall"), "workspaces": workspaces})
    shutil.rmtree(folder, ignore_errors=True)
