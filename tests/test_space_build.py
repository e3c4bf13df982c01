"""The Space's build: the README's front matter and requirements.txt agree with each other and with the Python the
tests run on. A Space installs requirements.txt on the front matter's ``python_version`` (3.10 when it names none,
on which transformers 5 does not install), so pip's resolver checks the pins for that version, wheels only."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def front_matter() -> dict[str, str]:
    text = (REPO / "README.md").read_text()
    assert text.startswith("---\n"), "the README opens with the Space's front matter"
    block = text[4:text.index("\n---", 4)]
    return {k.strip(): v.strip().strip('"') for k, _, v in (line.partition(":") for line in block.splitlines())
            if k.strip() and not k.startswith("#")}


def pins() -> dict[str, str]:
    lines = (REPO / "requirements.txt").read_text().splitlines()
    return dict(line.split("==", 1) for line in (ln.split("#")[0].strip() for ln in lines) if "==" in line)


def test_the_front_matter_names_the_python_and_gradio_the_tests_run_on():
    meta = front_matter()
    assert meta["python_version"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == pins()["gradio"]
    assert int(meta["hf_oauth_expiration_minutes"]) == 43200  # the longest Spaces allows: 30 days signed in


@pytest.mark.slow
def test_requirements_resolve_for_the_space_s_python(tmp_path):
    """pip's resolver, wheels only, for the front matter's Python (needs the package index; about 30 s)."""
    version = front_matter()["python_version"]
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
           "--python-version", version, "--target", str(tmp_path / "target"), "-q", "-r",
           str(REPO / "requirements.txt")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, re.sub(r"(?m)^WARNING: Location .*\n", "", done.stderr)[-2000:]
    # and the default a Space falls back to without the key does not
    older = subprocess.run([*cmd[:8], "3.10", *cmd[9:]], capture_output=True, text=True, timeout=600)
    assert older.returncode != 0 and "No matching distribution found" in older.stderr


def test_threads_follow_the_container_s_cpu_quota(tmp_path):
    """A container reports the host's cores; its cgroup says how many it may use (CPU Basic: 2)."""
    import os

    from ragft import cpu_quota

    mine = len(os.sched_getaffinity(0))
    (tmp_path / "cpu.max").write_text("200000 100000\n")
    assert cpu_quota(str(tmp_path)) == min(2, mine)
    (tmp_path / "cpu.max").write_text("50000 100000\n")  # half a CPU still gets one thread
    assert cpu_quota(str(tmp_path)) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cpu_quota(str(tmp_path)) == mine
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cpu_quota(str(v1)) == 1
    assert cpu_quota(str(tmp_path / "none")) == mine
