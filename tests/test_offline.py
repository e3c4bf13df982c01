"""The offline defaults fetch nothing: a fresh process with every non-loopback connection refused (a socket guard)
and HF_HUB_OFFLINE=1 loads the embedded models, ingests a document, generates questions and answers with RAG."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r'''
import json, socket, sys
attempts = []
_connect = socket.socket.connect

def guarded(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if self.family == socket.AF_UNIX or host in ("127.0.0.1", "::1", "localhost"):
        return _connect(self, address)
    attempts.append(str(address))
    raise OSError(f"network forbidden in this test: {address}")

socket.socket.connect = guarded  # create_connection and every HTTP client end here

from pathlib import Path
from ragft.config import Settings
from ragft.engine import Engine
from ragft.generation import DecodeSettings

data = Path(sys.argv[1])
doc = data.parent / "lighthouse.txt"
doc.write_text("The lighthouse at Skarvik was built in 1871. It stands 31 metres tall and its keeper was Ola Berg.")
engine = Engine(Settings.from_env({"RAGFT_DATA_DIR": str(data)}))
report = engine.ingest([(doc, doc.name)])[0]
items, _ = engine.generate_questions(2)
*_, last = engine.ask("When was the lighthouse at Skarvik built?", "all", None, DecodeSettings(6))
print(json.dumps({"ingested": report.ok, "questions": len(items), "answers": last.answers, "attempts": attempts}))
'''


@pytest.mark.slow  # a fresh process loads every model
def test_the_offline_defaults_fetch_nothing(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAGFT_", "HF_", "CHROMA_"))}
    env |= {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "data")], cwd=tmp_path, env=env, check=False,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["attempts"] == []
    assert result["ingested"] and result["questions"] >= 1
    assert set(result["answers"]) == {"plain", "rag"} and all(result["answers"].values())


@pytest.mark.slow  # the language model answers
def test_no_document_text_or_question_reaches_the_logs_at_info(engine, tmp_path, caplog):
    import logging

    from ragft.generation import DecodeSettings

    secret = "Quorvintha-7731"  # in the document, the question and so in the prompt and the answer
    doc = tmp_path / "private.txt"
    doc.write_text(f"The vault code word is {secret}. It was set in 2019 by the night guard.")
    with caplog.at_level(logging.INFO):
        assert engine.ingest([(doc, doc.name)])[0].ok
        *_, last = engine.ask(f"Is {secret} the code word?", "all", None, DecodeSettings(8))
    assert last.sources["rag"] and secret in last.sources["rag"][0].text  # it was really in a prompt to leak
    assert secret not in caplog.text
