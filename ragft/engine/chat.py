"""The chat verb: the four variants' answers to one question, streamed."""

from __future__ import annotations

from collections.abc import Iterator

from ..chat import ChatResult, ChatState, check_question, stream_answers
from ..errors import InvalidInputError
from ..generation import DecodeSettings
from ..variants import MODE_VARIANTS
from .adapters import AdapterVerbs


class ChatVerbs(AdapterVerbs):
    """Asking the four variants; it uses the adapters' verbs (`use_adapter`)."""

    def ask(
        self,
        question: str,
        mode: str = "all",
        adapter: str | None = None,
        decode: DecodeSettings | None = None,
        top_k: int | None = None,
        state: ChatState | None = None,
    ) -> Iterator[ChatResult]:
        """Stream the answers of ``mode``'s variants (``plain``, ``rag``, ``ft``, ``rag+ft`` or ``all``)."""
        if mode not in MODE_VARIANTS:
            raise InvalidInputError(f"unknown mode {mode!r}; use one of {', '.join(MODE_VARIANTS)}")
        question = check_question(question)
        if adapter:
            self.use_adapter(adapter)
        s = self.settings
        decode = decode or DecodeSettings(s.max_new_tokens, s.temperature)
        return stream_answers(
            self.generator,
            self.store.search,
            question,
            MODE_VARIANTS[mode],
            self.adapter_key(adapter) if adapter else None,
            decode,
            top_k or s.top_k,
            state,
            self.grounding_model,
        )
