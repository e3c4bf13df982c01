"""The one base of the errors a user can fix: a bad file, a bad setting, a name that does not exist, a busy job.

The edges translate them: the UI shows the message as a warning, the CLI prints ``ragft: error: <message>`` and
exits 2. Anything else that escapes is a bug and keeps its traceback. Each error also keeps the built-in base it
had (``ValueError``, ``LookupError``, ``RuntimeError``), so code that caught those still does.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable


class RagftError(Exception):
    """A problem the user can fix, said in one line without tab names or Markdown (the UI adds those).

    ``fix`` names the kind of action that fixes it, when that is another part of the app: "documents" (add some),
    "adapters" (train or delete one). Each edge says where that is: the UI names its tab, the CLI its command.
    """

    def __init__(self, message: str = "", *, fix: str = ""):
        super().__init__(message)
        self.fix = fix


class InvalidInputError(RagftError, ValueError):
    """A parameter out of range or of the wrong kind (a question too long, an unknown mode, a batch that does not
    split over the training processes)."""


def instead_of_raising(fn: Callable, instead: Callable[[RagftError, tuple, dict], object]) -> Callable:
    """``fn`` (a plain or a generator function) returning, or yielding last, ``instead(error, args, kwargs)`` where it
    would raise a `RagftError`; anything else is raised as it is."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generate(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except RagftError as exc:
                yield instead(exc, args, kwargs)
        return generate

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except RagftError as exc:
            return instead(exc, args, kwargs)
    return call
