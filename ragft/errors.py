"""The one base of the errors a user can fix: a bad file, a bad setting, a name that does not exist, a busy job.

The edges translate them: the UI shows the message as a warning, the CLI prints ``ragft: error: <message>`` and
exits 2. Anything else that escapes is a bug and keeps its traceback. Each error also keeps the built-in base it
had (``ValueError``, ``LookupError``, ``RuntimeError``), so code that caught those still does.
"""

from __future__ import annotations


class RagftError(Exception):
    """A problem the user can fix, said in one line without tab names or Markdown (the UI adds those)."""


class InvalidInputError(RagftError, ValueError):
    """A parameter out of range or of the wrong kind (a question too long, an unknown mode, a batch that does not
    split over the training processes)."""
