"""Generation on a vLLM server: one base model, the app's LoRA adapters registered at run time, every row its own
request (continuous batching instead of one padded batch).

    client.py  the OpenAI-compatible HTTP API: streamed completions, prompt log-probabilities, runtime LoRA loading
    server.py  starts and stops a local server in its own environment (.vllm-venv); exports the embedded GGUF model
               to a safetensors folder first, since vLLM reads model folders
    remote.py  `RemoteGenerator`: the `Generator` the engine hands out when RAGFT_ENGINE=vllm; generation goes to
               the server, training still runs in-process on the local copy of the base model

Nothing here imports torch, transformers or vllm at module level.
"""

from .errors import ServingError

__all__ = ["ServingError"]
