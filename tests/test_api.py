"""The API a program sees: exactly the user actions of `ragft.ui.api`, named, with named parameters; each one called
through `gradio_client` against the real app (real models, real Chroma), launched in-process."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from ragft.ui.api import ENDPOINTS

from .conftest import MEMO_QA
from .test_workspaces import launched

ROOT = Path(__file__).resolve().parents[1]

FACTS = ("The Skarvik lighthouse was built in 1871 by the engineer Ola Berg. Its lamp is lit every evening at "
         "dusk. The Skarvik ferry sails at 7 each morning and returns at 5 in the evening.")


@pytest.fixture
def client(engine):
    from gradio_client import Client

    from ragft.ui import create_ui

    demo = create_ui(engine)
    url = launched(demo)
    yield Client(url, verbose=False)
    demo.close()


def test_the_api_page_lists_exactly_the_user_actions(settings):
    from ragft.engine import Engine
    from ragft.ui import create_ui

    info = create_ui(Engine(settings)).get_api_info()  # building the page loads no model
    assert list(info["named_endpoints"]) == [f"/{name}" for name in ENDPOINTS]
    assert not info.get("unnamed_endpoints")
    params = {name: [p["parameter_name"] for p in e["parameters"]] for name, e in info["named_endpoints"].items()}
    assert params["/search"] == ["query", "k"] and params["/ingest"] == ["files"]
    assert params["/ask"] == ["question", "mode", "adapter", "max_new_tokens", "top_k"]
    assert all(not p.startswith("param_") for ps in params.values() for p in ps)
    # ranges and defaults as the knobs declare them, not written twice
    from ragft.finetune import TrainConfig
    from ragft.knobs import bounds
    from ragft.requests import AskRequest, SearchRequest

    lo, hi = bounds(SearchRequest, "k")
    assert f"``k`` ({lo}..{hi})" in info["named_endpoints"]["/search"]["description"]
    assert "max_new_tokens {}..{}".format(*bounds(AskRequest, "max_new_tokens")) in \
        info["named_endpoints"]["/ask"]["description"]
    train = {p["parameter_name"]: p["parameter_default"] for p in info["named_endpoints"]["/train"]["parameters"]}
    assert (train["rank"], train["learning_rate"], train["batch_size"]) == \
        (TrainConfig.rank, TrainConfig.learning_rate, TrainConfig.batch_size)


@pytest.mark.slow
def test_every_endpoint_through_gradio_client(client, engine, tmp_path):
    from gradio_client import handle_file

    doc = tmp_path / "skarvik.md"
    doc.write_text(FACTS)
    [report] = client.predict([handle_file(str(doc))], api_name="/ingest")
    assert (report["name"], report["ok"], report["status"]) == ("skarvik.md", True, "added")
    [listed] = client.predict(api_name="/documents")
    assert (listed["name"], listed["chunks"]) == ("skarvik.md", 1)
    [hit] = client.predict(query="When does the ferry sail?", k=1, api_name="/search")
    assert hit["source"] == "skarvik.md" and "7 each morning" in hit["text"]

    answers = client.predict("Who built the Skarvik lighthouse?", "all", "", 16, 1, api_name="/ask")
    assert list(answers) == ["Plain", "RAG", "Fine-tuned", "RAG + Fine-tuned"]
    assert answers["RAG"]["answer"] and answers["RAG"]["sources"][0]["source"] == "skarvik.md"
    marks = answers["RAG"]["grounding"]  # each sentence of the answer, supported by a source or not
    assert marks and all(set(m) == {"sentence", "supported", "chunk", "score", "missing"} for m in marks)
    assert answers["RAG"]["grounded_by"] == "words" and "grounding" not in answers["Plain"]
    assert "No adapter picked" in answers["Fine-tuned"]["notice"]

    engine.save_question_set("vault", [_item(qa) for qa in MEMO_QA])
    name = client.predict("qa", "vault", "api", 2, 8, 1e-3, 2, api_name="/train")
    assert name == "api-v1"
    status = _until_done(client)
    assert (status["kind"], status["name"], status["status"], status["step"]) == ("train", "api-v1", "done", 2)
    assert len(status["losses"]) == 2 and client.predict(api_name="/adapters") == ["api-v1"]

    name = client.predict("qa", "vault", "long", 500, 8, 1e-3, 1, api_name="/train")
    while client.predict(api_name="/job_status")["step"] < 1:
        time.sleep(0.5)
    assert client.predict(api_name="/cancel") is True
    assert _until_done(client)["status"] == "cancelled" and client.predict(api_name="/cancel") is False
    assert name in client.predict(api_name="/adapters")  # a cancelled run keeps what it learned

    result = client.predict("vault", "api-v1", "plain,ft", api_name="/evaluate")
    assert [row["variant"] for row in result["summary"]] == ["Plain", "Fine-tuned"]
    assert len(result["questions"]) == 3 and result["adapter"] == "api-v1"

    assert client.predict("skarvik.md", api_name="/delete_document") == 1
    assert client.predict(api_name="/documents") == []
    with pytest.raises(Exception, match="no document named 'skarvik.md'"):
        client.predict("skarvik.md", api_name="/delete_document")


@pytest.mark.slow
def test_experiment_endpoint_runs_one_to_its_verdict(client, engine):
    engine.ingest([(ROOT / "tests" / "fixtures" / "facts" / name, name) for name in ("quill.md", "zorblax.md")])
    report = client.predict(preset="quick", questions=4, split="heldout", train="qa", steps=2, name="api",
                            api_name="/experiment")
    assert report["adapters"] == ["api-qa-v1"] and report["headline"]
    assert {row["variant"] for row in report["summary"]} >= {"Plain", "RAG"}


def _item(qa: dict):
    from ragft.questions import QAItem

    return QAItem(qa["question"], qa["answer"])


def _until_done(client, timeout_s: float = 600) -> dict:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        status = client.predict(api_name="/job_status")
        if status["status"] in ("done", "cancelled", "failed"):
            return status
        time.sleep(0.5)
    raise AssertionError(f"the job did not end: {status}")

