"""`python app.py` started as a user (or a Space) starts it, on a free port, for the end-to-end tests."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from ragft.serving.server import free_port

ROOT = Path(__file__).resolve().parents[2]


def answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/config", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def start_app(env: dict, log, timeout_s: float = 240, python: str = sys.executable, cwd: Path = ROOT
              ) -> tuple[subprocess.Popen, str]:
    """Start ``cwd``'s app.py with ``python`` and ``env`` (its port is chosen here), its output to the open file
    ``log``; returns the process and its address once it printed it (the models are loaded by then) and answers."""
    port = free_port()
    proc = subprocess.Popen([python, "app.py"], cwd=cwd, env={**env, "GRADIO_SERVER_PORT": str(port)},
                            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        log.seek(0)
        if f"open {url}" in log.read() and answers(url):
            return proc, url
        if proc.poll() is not None:
            log.seek(0)
            pytest.fail(f"app exited early:\n{log.read()[-3000:]}")
        time.sleep(0.5)
    proc.kill()
    pytest.fail("app did not print its address in time")
