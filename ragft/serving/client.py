"""A small client for vLLM's OpenAI-compatible server: the calls ragft needs, with clear errors and no hangs.

Prompts go as token ids, rendered with the same chat template and tokenizer as the in-process path, so both
backends see exactly the same prompt tokens; the server only decodes.

    >>> client = VLLMClient("http://127.0.0.1:8001", "base")              # doctest: +SKIP
    >>> for text in client.stream(ids, "base", max_tokens=48, stop_ids=[2]):  # doctest: +SKIP
    ...     print(text)            # the growing answer
"""

from __future__ import annotations

import json
from collections.abc import Generator
from pathlib import Path

import httpx

from .errors import ServingError


class VLLMClient:
    """Talks to one server at ``url`` whose base model is served as ``base_name``.

    Timeouts: connecting fails after ``connect_s``; a request that sends nothing for ``read_s`` fails — a stopped
    or stuck server gives a `ServingError`, never a hang.
    """

    def __init__(self, url: str, base_name: str = "base", connect_s: float = 5.0, read_s: float = 120.0,
                 transport: httpx.BaseTransport | None = None):
        self.url = url.rstrip("/")
        self.base_name = base_name
        self._http = httpx.Client(base_url=self.url, timeout=httpx.Timeout(read_s, connect=connect_s),
                                  transport=transport)

    # --- health and models -------------------------------------------------------------------------------------
    def healthy(self) -> bool:
        try:
            return self._http.get("/health", timeout=3.0).status_code == 200
        except httpx.HTTPError:
            return False

    def models(self) -> list[str]:
        """Names the server answers to: the base model and every adapter it has loaded."""
        return [m["id"] for m in self._call("GET", "/v1/models").get("data", [])]

    # --- adapters ----------------------------------------------------------------------------------------------
    def load_adapter(self, name: str, path: Path) -> None:
        """Register the adapter folder ``path`` as model ``name`` (vLLM's runtime LoRA loading, no restart).
        The path is read by the server, so a remote server must see the same file system."""
        self._call("POST", "/v1/load_lora_adapter", {"lora_name": name, "lora_path": str(Path(path).resolve())})

    def unload_adapter(self, name: str) -> None:
        self._call("POST", "/v1/unload_lora_adapter", {"lora_name": name})

    # --- generation ----------------------------------------------------------------------------------------------
    def stream(
        self, prompt_ids: list[int], model: str, max_tokens: int, stop_ids: list[int], temperature: float = 0.0,
        seed: int = 0,
    ) -> Generator[str, None, None]:
        """The answer's text pieces as the server produces them (closing the iterator aborts the request)."""
        body = {
            "model": model, "prompt": prompt_ids, "max_tokens": max_tokens, "temperature": temperature,
            "seed": seed, "stream": True, "stop_token_ids": stop_ids, "skip_special_tokens": True,
        }
        if temperature > 0:
            body["top_p"] = 0.95
        try:
            with self._http.stream("POST", "/v1/completions", json=body) as response:
                if response.status_code != 200:
                    response.read()
                    raise ServingError(self._refusal(response, model))
                for line in response.iter_lines():
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        return
                    event = json.loads(data)
                    if "error" in event:
                        raise ServingError(f"the vLLM server stopped the answer: {event['error']}")
                    for choice in event.get("choices", []):
                        if choice.get("text"):
                            yield choice["text"]
        except httpx.HTTPError as exc:
            raise ServingError(self._unreachable(exc)) from None

    def prompt_logprobs(self, ids: list[int], model: str) -> list[float | None]:
        """Log-probability of every token of ``ids`` given the ones before it (None for the first)."""
        body = {"model": model, "prompt": ids, "max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0}
        choice = self._call("POST", "/v1/completions", body)["choices"][0]
        out: list[float | None] = []
        for token, entry in zip(ids, choice.get("prompt_logprobs") or []):
            if entry is None:
                out.append(None)
                continue
            hit = entry.get(str(token)) or entry.get(token)
            if hit is None:
                raise ServingError(f"the vLLM server gave no log-probability for prompt token {token}")
            out.append(float(hit["logprob"] if isinstance(hit, dict) else hit))
        if len(out) != len(ids):
            raise ServingError(f"the vLLM server returned {len(out)} prompt log-probabilities for {len(ids)} tokens")
        return out

    # --- plumbing --------------------------------------------------------------------------------------------------
    def _call(self, method: str, path: str, body: dict | None = None) -> dict:
        try:
            response = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ServingError(self._unreachable(exc)) from None
        if response.status_code != 200:
            raise ServingError(self._refusal(response, (body or {}).get("model") or (body or {}).get("lora_name")))
        try:
            return response.json() if response.content else {}
        except ValueError:
            return {}

    def _unreachable(self, exc: Exception) -> str:
        kind = "timed out" if isinstance(exc, httpx.TimeoutException) else "is not reachable"
        return (f"the vLLM server at {self.url} {kind} ({type(exc).__name__}: {exc}); check that it runs, or unset "
                "RAGFT_ENGINE to generate in-process")

    def _refusal(self, response: httpx.Response, what: str | None) -> str:
        try:
            detail = response.json()
            detail = detail.get("message") or detail.get("error", {}).get("message") or detail
        except ValueError:
            detail = response.text[:300]
        return f"the vLLM server refused the request{f' for {what!r}' if what else ''} (HTTP {response.status_code}): {detail}"

    def close(self) -> None:
        self._http.close()
