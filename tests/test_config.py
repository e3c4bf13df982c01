"""Settings.from_env: defaults that work offline, parsing, and errors that name the variable and the valid range."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragft.config import ConfigError, Settings


def test_defaults_from_an_empty_environment():
    s = Settings.from_env({})
    assert s == Settings()
    assert s.data_dir == Path("data")
    assert (s.base_model, s.embed_model, s.chroma_host) == ("", "", "")
    assert (s.chroma_port, s.collection) == (8000, "documents")
    assert (s.chunk_words, s.chunk_overlap_words, s.top_k) == (120, 20, 3)
    assert (s.max_new_tokens, s.temperature, s.max_upload_mb) == (96, 0.0, 20)
    assert s.adapters_dir == Path("data/adapters")
    assert s.chroma_dir == Path("data/chroma")


def test_every_variable_is_read():
    s = Settings.from_env(
        {
            "RAGFT_DATA_DIR": "/srv/ragft",
            "RAGFT_BASE_MODEL": "  HuggingFaceTB/SmolLM2-135M-Instruct ",
            "RAGFT_EMBED_MODEL": "/models/minilm",
            "CHROMA_HOST": " chroma.internal ",
            "CHROMA_PORT": "9001",
            "RAGFT_COLLECTION": "papers",
            "RAGFT_CHUNK_WORDS": "200",
            "RAGFT_CHUNK_OVERLAP_WORDS": "40",
            "RAGFT_TOP_K": "5",
            "RAGFT_MAX_NEW_TOKENS": "256",
            "RAGFT_TEMPERATURE": "0.7",
            "RAGFT_MAX_UPLOAD_MB": "50",
            "RAGFT_MAX_DOCUMENTS": "10",
            "RAGFT_MAX_STORE_MB": "5",
            "RAGFT_MAX_ADAPTERS": "3",
        }
    )
    assert s == Settings(
        data_dir=Path("/srv/ragft"),
        base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
        embed_model="/models/minilm",
        chroma_host="chroma.internal",
        chroma_port=9001,
        collection="papers",
        chunk_words=200,
        chunk_overlap_words=40,
        top_k=5,
        max_new_tokens=256,
        temperature=0.7,
        max_upload_mb=50,
        max_documents=10,
        max_store_mb=5,
        max_adapters=3,
    )
    assert s.adapters_dir == Path("/srv/ragft/adapters")
    assert s.chroma_dir == Path("/srv/ragft/chroma")


@pytest.mark.parametrize(
    "env, field, value",
    [
        ({"RAGFT_DATA_DIR": ""}, "data_dir", Path("data")),
        ({"RAGFT_COLLECTION": "   "}, "collection", "documents"),
        ({"RAGFT_TOP_K": ""}, "top_k", 3),
        ({"RAGFT_TOP_K": " 7 "}, "top_k", 7),
        ({"RAGFT_TEMPERATURE": ""}, "temperature", 0.0),
        ({"RAGFT_TEMPERATURE": "5"}, "temperature", 5.0),
        ({"RAGFT_TEMPERATURE": "1e-1"}, "temperature", 0.1),
        ({"CHROMA_PORT": "1"}, "chroma_port", 1),
        ({"CHROMA_PORT": "65535"}, "chroma_port", 65535),
        ({"RAGFT_CHUNK_WORDS": "20", "RAGFT_CHUNK_OVERLAP_WORDS": "10"}, "chunk_overlap_words", 10),
        ({"RAGFT_CHUNK_WORDS": "2000"}, "chunk_words", 2000),
        ({"RAGFT_MAX_UPLOAD_MB": "1024"}, "max_upload_mb", 1024),
    ],
)
def test_blank_and_edge_values(env, field, value):
    assert getattr(Settings.from_env(env), field) == value


@pytest.mark.parametrize(
    "env, message",
    [
        ({"RAGFT_TOP_K": "three"}, "RAGFT_TOP_K='three' is not a whole number"),
        ({"RAGFT_TOP_K": "2.5"}, "RAGFT_TOP_K='2.5' is not a whole number"),
        ({"RAGFT_TOP_K": "0"}, "RAGFT_TOP_K=0 is out of range: use 1..20"),
        ({"RAGFT_TOP_K": "21"}, "RAGFT_TOP_K=21 is out of range: use 1..20"),
        ({"CHROMA_PORT": "http"}, "CHROMA_PORT='http' is not a whole number"),
        ({"CHROMA_PORT": "0"}, "CHROMA_PORT=0 is out of range: use 1..65535"),
        ({"CHROMA_PORT": "70000"}, "CHROMA_PORT=70000 is out of range: use 1..65535"),
        ({"RAGFT_CHUNK_WORDS": "10"}, "RAGFT_CHUNK_WORDS=10 is out of range: use 20..2000"),
        ({"RAGFT_CHUNK_WORDS": "-5"}, "RAGFT_CHUNK_WORDS=-5 is out of range: use 20..2000"),
        # The overlap's upper bound follows the chunk size: at most half a chunk.
        ({"RAGFT_CHUNK_OVERLAP_WORDS": "61"}, "RAGFT_CHUNK_OVERLAP_WORDS=61 is out of range: use 0..60"),
        (
            {"RAGFT_CHUNK_WORDS": "40", "RAGFT_CHUNK_OVERLAP_WORDS": "21"},
            "RAGFT_CHUNK_OVERLAP_WORDS=21 is out of range: use 0..20",
        ),
        ({"RAGFT_CHUNK_OVERLAP_WORDS": "-1"}, "RAGFT_CHUNK_OVERLAP_WORDS=-1 is out of range: use 0..60"),
        ({"RAGFT_MAX_NEW_TOKENS": "0"}, "RAGFT_MAX_NEW_TOKENS=0 is out of range: use 1..2048"),
        ({"RAGFT_MAX_NEW_TOKENS": "5000"}, "RAGFT_MAX_NEW_TOKENS=5000 is out of range: use 1..2048"),
        ({"RAGFT_MAX_UPLOAD_MB": "0"}, "RAGFT_MAX_UPLOAD_MB=0 is out of range: use 1..1024"),
        ({"RAGFT_TEMPERATURE": "warm"}, "RAGFT_TEMPERATURE='warm' is not a number"),
        ({"RAGFT_TEMPERATURE": "-0.5"}, "RAGFT_TEMPERATURE=-0.5 is out of range: use 0..5"),
        ({"RAGFT_TEMPERATURE": "9"}, "RAGFT_TEMPERATURE=9 is out of range: use 0..5"),
        ({"RAGFT_TEMPERATURE": "nan"}, "RAGFT_TEMPERATURE=nan is out of range: use 0..5"),
        ({"RAGFT_TEMPERATURE": "inf"}, "RAGFT_TEMPERATURE=inf is out of range: use 0..5"),
        ({"RAGFT_CPU_PRECISION": "fp16"}, "RAGFT_CPU_PRECISION='fp16': use one of auto, bfloat16, float32"),
    ],
)
def test_bad_values_raise_config_error_naming_the_variable(env, message):
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    assert str(err.value) == message
    assert isinstance(err.value, ValueError)  # the CLI and UI catch it as one


def test_cpu_precision_is_auto_unless_set(monkeypatch):
    from ragft.models import use_cpu_bf16

    assert Settings.from_env({}).cpu_precision == "auto"
    assert Settings.from_env({"RAGFT_CPU_PRECISION": "Float32"}).cpu_precision == "float32"
    assert not use_cpu_bf16("float32") and use_cpu_bf16("bfloat16")
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    assert not use_cpu_bf16("bfloat16")  # a GPU model is bfloat16 throughout: nothing to choose


def test_the_engine_line_says_when_prompts_and_training_use_bfloat16(tmp_path):
    from ragft.engine import Engine

    line = Engine(Settings.from_env({"RAGFT_DATA_DIR": str(tmp_path), "RAGFT_CPU_PRECISION": "bfloat16"})).engine_line
    assert "bfloat16 products" in line and "RAGFT_CPU_PRECISION=float32" in line
    line = Engine(Settings.from_env({"RAGFT_DATA_DIR": str(tmp_path), "RAGFT_CPU_PRECISION": "float32"})).engine_line
    assert line == "Answers are generated in-process (transformers + peft)."


def test_reads_os_environ_when_no_mapping_given(monkeypatch, data_dir):
    monkeypatch.setenv("RAGFT_TOP_K", "4")
    monkeypatch.setenv("CHROMA_HOST", "localhost")
    s = Settings.from_env()
    assert s.data_dir == data_dir  # conftest's autouse fixture points RAGFT_DATA_DIR at a temp folder
    assert (s.top_k, s.chroma_host) == (4, "localhost")


def test_settings_are_frozen():
    with pytest.raises(AttributeError):
        Settings().top_k = 9  # type: ignore[misc]


def test_describe_gives_every_field_as_text():
    d = Settings.from_env({"RAGFT_DATA_DIR": "/x", "RAGFT_TOP_K": "5"}).describe()
    assert d["data_dir"] == "/x"
    assert d["top_k"] == "5"
    assert d["temperature"] == "0.0"
    assert list(d) == [
        "data_dir",
        "base_model",
        "embed_model",
        "chroma_host",
        "chroma_port",
        "collection",
        "chunk_words",
        "chunk_overlap_words",
        "top_k",
        "max_new_tokens",
        "temperature",
        "max_upload_mb",
        "engine",
        "vllm_url",
        "vllm_python",
        "vllm_max_lora_rank",
        "vllm_args",
        "max_documents",
        "max_store_mb",
        "max_adapters",
        "workspaces",
        "workspace_idle_hours",
        "max_workspaces",
        "max_sessions",
        "new_workspaces_per_hour",
        "max_train_steps",
        "max_jobs",
        "train_processes",
        "cpu_precision",
        "persist_dir",
        "snapshot_seconds",
        "retrieval",
        "reranker",
        "grounding_model",
    ]
    assert d["engine"] == "local" and d["vllm_max_lora_rank"] == "16"
    assert (d["max_documents"], d["max_store_mb"], d["max_adapters"]) == ("1000", "1000", "50")
    assert (d["workspaces"], d["max_jobs"], d["train_processes"]) == ("shared", "2", "1")
    assert (d["max_workspaces"], d["new_workspaces_per_hour"], d["max_train_steps"]) == ("200", "10", "2000")


def test_persistent_storage_is_the_variable_or_a_spaces_writable_data_mount(tmp_path, monkeypatch):
    assert Settings.from_env({"RAGFT_PERSIST_DIR": str(tmp_path)}).persist_dir == tmp_path
    assert Settings.from_env({"RAGFT_PERSIST_DIR": "off", "SPACE_ID": "a/b"}).persist_dir is None
    assert Settings.from_env({}).persist_dir is None  # a private machine keeps its own disk
    import ragft.config as config

    mount = tmp_path / "data"
    monkeypatch.setattr(config, "Path", lambda p: mount if p == "/data" else Path(p))
    assert Settings.from_env({"SPACE_ID": "a/b"}).persist_dir is None  # no bucket mounted
    mount.mkdir()
    assert Settings.from_env({"SPACE_ID": "a/b"}).persist_dir == mount
    assert Settings.from_env({"SPACE_ID": "a/b", "RAGFT_SNAPSHOT_SECONDS": "5"}).snapshot_seconds == 5.0


def test_vllm_args_are_split_like_a_shell_and_unbalanced_quotes_are_refused():
    assert Settings.from_env({"RAGFT_VLLM_ARGS": " --no-enable-prefix-caching --max-num-seqs 8 "}).vllm_args == \
        "--no-enable-prefix-caching --max-num-seqs 8"
    with pytest.raises(ConfigError, match="RAGFT_VLLM_ARGS=.*shell"):
        Settings.from_env({"RAGFT_VLLM_ARGS": "--chat-template 'x"})
