"""The one error of the serving package (no third-party imports, so the engine can name it cheaply)."""

from ..errors import RagftError


class ServingError(RagftError, RuntimeError):
    """The vLLM server cannot be reached, start, or refused a request; the message says which and what to do."""
