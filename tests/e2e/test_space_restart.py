"""A Space restarts: the app (`python app.py`, as a Space with sign-in and a storage bucket starts it) is killed
with SIGKILL, its own disk wiped, the bucket kept; started again, a signed-in visitor's documents and adapter are
back, an anonymous visitor's are gone (the page said they were temporary). Raw HTTP, real models and Chroma.

The visitor is signed in the way Gradio's OAuth callback leaves a browser: a session cookie signed with the key
Gradio derives from the Space's ``OAUTH_CLIENT_SECRET``, holding the user's ``oauth_info``. Gradio hands that to
the page's load event as a `gr.OAuthProfile`, the only place the app reads a sign-in."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import tarfile
import time
from base64 import b64encode

import pytest
from itsdangerous import TimestampSigner

from ragft.snapshots import FOLDER
from ragft.ui import messages as M
from ragft.workspaces import user_id

from ..test_hostile_visitor import Visitor, filedata
from .apps import start_app

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SECRET = "test-oauth-secret"
NOTE = ("The Kestrel lighthouse was built in 1872 by the engineer Ada Fenwick. It stands 41 metres tall and its "
        "keeper in 1901 was Tobias Marr. Visitors may climb it from May to September.")


def signed_in_cookie(username: str) -> str:
    """The session cookie Gradio's OAuth callback sets for ``username`` (starlette's SessionMiddleware format)."""
    session = {"oauth_info": {"userinfo": {"preferred_username": username, "name": username.title(),
                                           "profile": f"https://huggingface.co/{username}", "picture": ""},
                              "access_token": "hf_test", "expires_at": int(time.time()) + 3600}}
    key = hashlib.sha256(f"{SECRET}-v4".encode()).hexdigest()
    return TimestampSigner(key).sign(b64encode(json.dumps(session).encode())).decode()


def space_env(local, mount, uploads) -> dict:
    return {**os.environ, "SYSTEM": "spaces", "SPACE_ID": "ragft-test/ragft", "SPACE_AUTHOR_NAME": "ragft-test",
            "SPACE_REPO_NAME": "ragft", "SPACE_HOST": "ragft-test-ragft.hf.space", "OAUTH_CLIENT_ID": "test-client",
            "OAUTH_CLIENT_SECRET": SECRET, "OAUTH_SCOPES": "openid profile",
            "OPENID_PROVIDER_URL": "https://huggingface.co", "RAGFT_DATA_DIR": str(local),
            "RAGFT_PERSIST_DIR": str(mount), "RAGFT_SNAPSHOT_SECONDS": "1", "GRADIO_TEMP_DIR": str(uploads),
            "GRADIO_SERVER_NAME": "127.0.0.1", "HF_HUB_OFFLINE": "1"}


def visitor(url: str, session: str, user: str = "") -> Visitor:
    v = Visitor(url, session)
    if user:
        v.http.cookies.set("session", signed_in_cookie(user))
    return v


def wait_job(v: Visitor, timeout_s: float = 600) -> dict:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        ok, status = v.call("job_status")
        assert ok, status
        if status["status"] not in ("preparing", "running", "cancelling"):
            return status
        time.sleep(2)
    raise AssertionError("the training did not end in time")


def has_adapter(folder, name: str) -> bool:
    """Whether the newest whole snapshot in ``folder`` holds adapter ``name`` (the manifest is written last)."""
    manifests = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not manifests:
        return False
    with tarfile.open(folder / json.loads(manifests[-1].read_text())["archive"]) as tar:
        return any(n.startswith(f"files/adapters/{name}/") for n in tar.getnames())


def test_a_signed_in_users_work_survives_a_killed_space_and_a_wiped_disk(tmp_path):
    local, mount, uploads = tmp_path / "disk", tmp_path / "bucket", tmp_path / "uploads"
    env = space_env(local, mount, uploads)
    with open(tmp_path / "app1.log", "w+") as log:
        proc, url = start_app(env, log)
        try:
            alice = visitor(url, "alice-page-00001", user="alice")
            line = alice.load_page("")["data"][1]
            assert "Signed in as **alice**" in line and M.WORKSPACE_KEPT.strip() in line
            ok, added = alice.call("ingest", [filedata(alice.upload("lighthouse.txt", NOTE.encode()))])
            assert ok and added[0]["status"] == "added", added
            ok, name = alice.call("train", "docs", "", "light", 2, 4, 1e-3, 2)
            assert ok, name
            assert wait_job(alice)["status"] == "done"

            stranger = visitor(url, "anon-page-000001")
            token, line = stranger.load_page("")["data"]
            assert M.WORKSPACE_RESTART.strip() in line
            ok, added = stranger.call("ingest", [filedata(stranger.upload("mine.txt", b"My own note, 1999."))])
            assert ok, added

            folder = mount / FOLDER / user_id("alice")
            deadline = time.time() + 60
            while not has_adapter(folder, name):  # the snapshot taken after the training ended
                if time.time() > deadline:
                    pytest.fail("no snapshot holds the adapter a minute after the training")
                time.sleep(0.5)
        finally:
            os.killpg(proc.pid, signal.SIGKILL)  # the Space is stopped, no goodbye
            proc.wait(timeout=30)
    assert sorted(p.name for p in (mount / FOLDER).iterdir()) == [user_id("alice")]  # the stranger's is not kept
    shutil.rmtree(local)  # a restarted Space has a fresh disk; only the bucket stays
    shutil.rmtree(uploads)

    with open(tmp_path / "app2.log", "w+") as log:
        proc, url = start_app(env, log)
        try:
            alice = visitor(url, "alice-page-00002", user="alice")
            alice.load_page("")
            ok, docs = alice.call("documents")
            assert ok and [d["name"] for d in docs] == ["lighthouse.txt"], docs
            ok, hits = alice.call("search", "Who was the keeper in 1901?", 1)
            assert ok and "Tobias Marr" in hits[0]["text"], hits
            ok, adapters = alice.call("adapters")
            assert ok and adapters == [name], adapters
            ok, answer = alice.call("ask", "Who was the keeper in 1901?", "ft", name, 8, 0)
            assert ok and answer["Fine-tuned"]["answer"].strip(), answer  # the adapter loads and answers

            stranger = visitor(url, "anon-page-000002")
            stranger.load_page(token)
            ok, docs = stranger.call("documents")
            assert ok and docs == [], docs
        finally:
            proc.terminate()
            proc.wait(timeout=30)
