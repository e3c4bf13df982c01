"""The vLLM client and remote generation with a fake server (httpx MockTransport): no vLLM needed, fast tier.
The real server is exercised in test_vllm.py."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from ragft.backend import BASE, NoAdapterError
from ragft.serving.client import VLLMClient
from ragft.serving.errors import ServingError
from ragft.serving.remote import RemoteGenerator


def sse(*events) -> bytes:
    return b"".join(f"data: {json.dumps(e) if not isinstance(e, str) else e}\n\n".encode() for e in events)


class FakeServer:
    """Answers /v1/completions by streaming ``pieces`` per model; records every request body."""

    def __init__(self, pieces: dict[str, list[str]]):
        self.pieces = pieces
        self.bodies: list[dict] = []
        self.adapters: dict[str, str] = {}

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content or b"{}")
        self.bodies.append({"path": request.url.path, **body})
        if request.url.path == "/health":
            return httpx.Response(200)
        if request.url.path == "/v1/models":
            return httpx.Response(200, json={"data": [{"id": m} for m in ["base", *self.adapters]]})
        if request.url.path == "/v1/load_lora_adapter":
            if body["lora_name"] in self.adapters:
                return httpx.Response(400, json={"message": f"The lora adapter '{body['lora_name']}' has already "
                                                            "been loaded."})
            self.adapters[body["lora_name"]] = body["lora_path"]
            return httpx.Response(200, text="ok")
        if request.url.path == "/v1/unload_lora_adapter":
            self.adapters.pop(body["lora_name"], None)
            return httpx.Response(200, text="ok")
        if body.get("prompt_logprobs") is not None:
            ids = body["prompt"]
            entries = [None] + [{str(t): {"logprob": -0.5, "rank": 1}} for t in ids[1:]]
            return httpx.Response(200, json={"choices": [{"text": "x", "prompt_logprobs": entries}]})
        if body["model"] not in self.pieces:
            return httpx.Response(404, json={"error": {"message": f"The model `{body['model']}` does not exist."}})
        events = [{"choices": [{"text": p}]} for p in self.pieces[body["model"]]]
        return httpx.Response(200, content=sse(*events, "[DONE]"), headers={"content-type": "text/event-stream"})


def client(server: FakeServer) -> VLLMClient:
    return VLLMClient("http://vllm.test", transport=httpx.MockTransport(server))


def test_stream_yields_the_pieces_and_sends_token_ids_and_stop_tokens():
    server = FakeServer({"base": ["The", " code", " is 7."]})
    pieces = list(client(server).stream([1, 2, 3], "base", 16, [2], seed=4))
    assert pieces == ["The", " code", " is 7."]
    body = server.bodies[-1]
    assert (body["prompt"], body["max_tokens"], body["stop_token_ids"], body["stream"], body["seed"]) == (
        [1, 2, 3], 16, [2], True, 4)
    assert body["temperature"] == 0.0 and "top_p" not in body  # greedy: the fair comparison


def test_a_refused_request_names_the_model_and_the_servers_reason():
    with pytest.raises(ServingError, match=r"refused the request for 'nope' \(HTTP 404\): The model `nope` does not"):
        list(client(FakeServer({})).stream([1], "nope", 4, [2]))


def test_prompt_logprobs_are_read_per_token():
    assert client(FakeServer({})).prompt_logprobs([5, 6, 7], "base") == [None, -0.5, -0.5]


class Tok:
    """Words as tokens: enough for the repetition rule and the prompt rendering."""

    eos_token_id = 2
    unk_token_id = 1
    pad_token = "<pad>"
    words: dict[int, str] = {}
    vocab: dict[str, int] = {}  # each word its own id (a hash modulo 1000 made two words share one now and then)

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [self.vocab.setdefault(w, len(self.vocab) + 10) for w in text.split()]}

    def decode(self, ids, skip_special_tokens=True):
        return " ".join(self.words[i] for i in ids)

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True):
        return " ".join(m["content"] for m in messages)

    def convert_tokens_to_ids(self, token):
        return 0


def remote(server: FakeServer) -> RemoteGenerator:
    return RemoteGenerator(client(server), Tok(), source=None, load_local=lambda: pytest.fail("no local model"))


def test_rows_stream_side_by_side_and_adapters_register_once(tmp_path):
    from ragft.generation import DecodeSettings, generate_batch

    adapter = tmp_path / "memo"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text("{}")
    server = FakeServer({"base": ["plain", " answer"], "memo": ["tuned", " answer"]})
    gen = remote(server)
    gen.ensure_adapter("memo", adapter)
    gen.ensure_adapter("memo", adapter)  # already there: nothing sent
    assert [b["path"] for b in server.bodies].count("/v1/load_lora_adapter") == 1
    convs = [[{"role": "user", "content": "q?"}]] * 2
    assert generate_batch(gen, convs, [BASE, "memo"], DecodeSettings(8)) == ["plain answer", "tuned answer"]
    assert {b["model"] for b in server.bodies if b["path"] == "/v1/completions"} == {"base", "memo"}
    gen.unload_adapter("memo")
    assert server.adapters == {}
    with pytest.raises(NoAdapterError, match="not found"):
        gen.ensure_adapter("ghost", tmp_path / "ghost")
    with pytest.raises(NoAdapterError, match="not registered with the vLLM server"):
        generate_batch(gen, convs[:1], ["ghost"], DecodeSettings(8))


def test_a_row_that_repeats_itself_is_cut_like_in_process():
    from ragft.generation import DecodeSettings, generate_batch

    loop = ["a b c d"] + [" e f g h"] * 6
    server = FakeServer({"base": loop})
    gen = remote(server)
    words = {}
    tok = gen.tokenizer
    for w in "a b c d e f g h".split():
        words[tok(w)["input_ids"][0]] = w
    tok.words = words
    [text] = generate_batch(gen, [[{"role": "user", "content": "q?"}]], [BASE], DecodeSettings(64, stop_repeats=4))
    assert text == "a b c d e f g h"  # stopped at the first repeat of a 4-token span, the repeat dropped


def test_a_server_that_is_down_fails_fast_with_what_to_do():
    def refuse(request):
        raise httpx.ConnectError("Connection refused")

    c = VLLMClient("http://127.0.0.1:9", transport=httpx.MockTransport(refuse))
    assert not c.healthy()
    with pytest.raises(ServingError, match="is not reachable .*unset RAGFT_ENGINE to generate in-process"):
        c.models()
    with pytest.raises(ServingError, match="is not reachable"):
        list(c.stream([1], "base", 4, [2]))


def test_settings_choose_the_engine():
    from ragft.config import ConfigError, Settings

    s = Settings.from_env({"RAGFT_ENGINE": "VLLM", "RAGFT_VLLM_URL": "http://h:8001 "})
    assert (s.engine, s.vllm_url, s.vllm_max_lora_rank) == ("vllm", "http://h:8001", 16)
    assert s.vllm_dir == Path("data") / "vllm"
    with pytest.raises(ConfigError, match=r"RAGFT_ENGINE='tgi': use one of local, vllm"):
        Settings.from_env({"RAGFT_ENGINE": "tgi"})
    with pytest.raises(ConfigError, match=r"RAGFT_VLLM_MAX_LORA_RANK='48': use one of 8, 16, 32, 64, 128, 256"):
        Settings.from_env({"RAGFT_VLLM_MAX_LORA_RANK": "48"})


class SlowClient:
    """A client whose rows stream a few pieces with pauses, recording when each request starts and first answers."""

    base_name = "base"

    def __init__(self, fail: str = ""):
        self.events: list[tuple[str, int]] = []
        self.fail = fail

    def stream(self, prompt, model, *args):
        import time

        self.events.append(("start", len(prompt)))
        if model == self.fail:
            raise ServingError("refused")
        for piece in ("one", " two", " three"):
            time.sleep(0.01)
            self.events.append(("piece", len(prompt)))
            yield piece


def test_rows_start_in_turn_base_and_short_prompts_first_each_once_the_one_before_answers():
    from ragft.serving.remote import start_order

    prompts = [[1] * 30, [1] * 31, [1] * 3, [1] * 4]  # RAG + adapter, RAG, adapter, plain
    models = ["memo", "base", "memo", "base"]
    assert start_order(prompts, models, "base") == [3, 1, 2, 0]
    gen = RemoteGenerator(SlowClient(), Tok(), source=None, load_local=lambda: pytest.fail("no local model"))
    gen._adapter_paths["memo"] = Path("memo")
    last = list(gen.stream(prompts, ["memo", BASE, "memo", BASE], 8, [2], 0.0, 0, lambda i, t: None))[-1]
    assert last == ["one two three"] * 4
    events = gen.client.events
    starts = [n for kind, n in events if kind == "start"]
    assert starts == [4, 31, 3, 30]
    for before, after in zip(starts, starts[1:]):  # each request went out after the one before had answered
        assert events.index(("piece", before)) < events.index(("start", after))


def test_a_refused_row_does_not_hold_back_the_rows_after_it():
    gen = RemoteGenerator(SlowClient(fail="base"), Tok(), source=None, load_local=lambda: pytest.fail("no model"))
    gen._adapter_paths["memo"] = Path("memo")
    with pytest.raises(ServingError, match="refused"):
        list(gen.stream([[1] * 3, [1] * 5], [BASE, "memo"], 8, [2], 0.0, 0, lambda i, t: None))
    assert [e for e in gen.client.events if e[0] == "start"] == [("start", 3), ("start", 5)]


def test_rows_of_one_model_go_out_together():
    import threading

    class TogetherClient(SlowClient):
        arrived = threading.Barrier(3, timeout=10)  # broken (an error) unless all three requests are out at once

        def stream(self, prompt, model, *args):
            self.arrived.wait()
            yield from super().stream(prompt, model, *args)

    gen = RemoteGenerator(TogetherClient(), Tok(), source=None, load_local=lambda: pytest.fail("no local model"))
    last = list(gen.stream([[1] * 5, [1] * 3, [1] * 4], [BASE] * 3, 8, [2], 0.0, 0, lambda i, t: None))[-1]
    assert last == ["one two three"] * 3


def test_the_server_runs_without_ragfts_openmp_settings(tmp_path, monkeypatch):
    """ragft sets libgomp's waiting for its own threads; the vLLM server (Intel OpenMP) gets the user's values only."""
    import ragft
    from ragft.serving.server import LocalServer

    monkeypatch.setattr(ragft, "OPENMP_SET_HERE", {"OMP_WAIT_POLICY": "ACTIVE"})
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.setenv("GOMP_SPINCOUNT", "5")  # as if the user had set it
    env = LocalServer(tmp_path / "python", tmp_path).environment()
    assert "OMP_WAIT_POLICY" not in env and env["GOMP_SPINCOUNT"] == "5"
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
