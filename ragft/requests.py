"""What a user asks for, checked once for the UI, the CLI and the API: a request's raw values become one of these
(`knobs.from_request`: kinds checked, ranges from the knobs) and then the configs the engine takes.

    ask = from_request(AskRequest, question="Who keeps the light?", mode="rag", top_k=25)
    # InvalidInputError: top k must be 0..20 (0 = the app's setting)

Training, evaluation and experiments have their own configs with knobs (`TrainConfig`, `EvalConfig`,
`ExperimentConfig`), built the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Settings
from .generation import DecodeSettings
from .knobs import bounds, check, knob
from .variants import MODE_VARIANTS

_TOKENS = bounds(Settings, "max_new_tokens")
_TOP_K = bounds(Settings, "top_k")
_TEMPERATURE = bounds(Settings, "temperature")


@dataclass(frozen=True)
class AskRequest:
    """One question to the variants of ``mode``; 0 for a number (and -1 for the temperature) means the app's
    setting."""

    question: str = ""
    mode: str = knob("all", choices=tuple(MODE_VARIANTS), help="which variants answer")
    adapter: str = ""
    max_new_tokens: int = knob(0, 0, _TOKENS[1], "answer length limit in tokens", label="max new tokens",
                               note="0 = the app's setting")
    top_k: int = knob(0, 0, _TOP_K[1], "chunks retrieved for the RAG answers", label="top k",
                      note="0 = the app's setting")
    temperature: float = knob(-1.0, -1.0, _TEMPERATURE[1], "sampling temperature; 0 = greedy",
                              note="-1 = the app's setting")

    def __post_init__(self):
        check(self)

    def decode(self, settings: Settings) -> DecodeSettings:
        return DecodeSettings(self.max_new_tokens or settings.max_new_tokens,
                              settings.temperature if self.temperature < 0 else self.temperature)


@dataclass(frozen=True)
class SearchRequest:
    """The ``k`` stored chunks closest to ``query``."""

    query: str = ""
    k: int = knob(3, *_TOP_K, "chunks to return")

    def __post_init__(self):
        check(self)
