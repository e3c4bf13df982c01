"""How a function becomes a ZeroGPU call (`ragft.spaces` declares the calls and what runs in them).

``@gpu(duration)`` declares an entry point: on ZeroGPU (`zero_gpu`) it is wrapped, at its first call, by
``spaces.GPU(duration=duration)``, which asks the Space's scheduler for a GPU for ``duration(*args)`` seconds and runs
the function in a forked worker; elsewhere it is the function itself. Around that wrapper:

- a `RagftError` raised in the worker comes back as itself (``spaces`` would replace it by "ZeroGPU worker error"
  and its class name), carried out as a value;
- a refusal of the scheduler (a ``gradio.Error``: quota spent, no GPU free) is raised as a `GpuRefusedError` in the
  scheduler's own words;
- `use_decorator` puts another wrapper in ``spaces.GPU``'s place (the tests' fork without a GPU).

    GPU_SECONDS["gpu_stream"](*args)  # the seconds a call with these arguments asks ZeroGPU for
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass

from .errors import RagftError, instead_of_raising

ENTRY_POINTS: dict[str, Callable] = {}  # name -> the entry point
GPU_SECONDS: dict[str, Callable[..., float]] = {}  # name -> the entry point's duration function
_decorator: Callable | None = None  # set by `use_decorator`; None: ``spaces.GPU`` on ZeroGPU, else none
_decorated: dict[str, Callable] = {}


def zero_gpu(env: dict | None = None) -> bool:
    """Whether this process runs on ZeroGPU: the Space sets ``SPACES_ZERO_GPU`` and Gradio's image has ``spaces``."""
    value = (os.environ if env is None else env).get("SPACES_ZERO_GPU", "")
    return value.lower() in ("1", "t", "true") and importlib.util.find_spec("spaces") is not None


class GpuRefusedError(RagftError, RuntimeError):
    """ZeroGPU's scheduler refused a GPU call (the visitor's quota is spent, or no GPU came free in time)."""


@dataclass
class _Failure:
    """A `RagftError` raised in a worker, sent back as a value: ``spaces`` would replace it by "ZeroGPU worker
    error" and its class name, and the user would lose what to fix."""

    error: RagftError


def _carried(fn: Callable) -> Callable:
    """``fn`` returning (or yielding, last) a `_Failure` instead of raising a `RagftError`."""
    return instead_of_raising(fn, lambda exc, args, kwargs: _Failure(exc))


def _raised(value):
    if isinstance(value, _Failure):
        raise value.error
    return value


def gpu(duration: Callable[..., float]) -> Callable[[Callable], Callable]:
    """Declare an entry point: ``spaces.GPU(duration=duration)`` on ZeroGPU (decided at its first call), the
    function itself elsewhere. ``duration`` is called with the call's arguments and gives seconds."""
    def wrap(fn: Callable) -> Callable:
        carried = _carried(fn)

        def run(*args, **kwargs):
            decorated = _decorated.get(fn.__name__)
            if decorated is None:
                decorated = _decorated[fn.__name__] = _decorate(carried, duration)
            return decorated(*args, **kwargs)

        if inspect.isgeneratorfunction(fn):
            @functools.wraps(fn)
            def call(*args, **kwargs):
                with _refusals():
                    for item in run(*args, **kwargs):
                        yield _raised(item)
        else:
            @functools.wraps(fn)
            def call(*args, **kwargs):
                with _refusals():
                    return _raised(run(*args, **kwargs))

        ENTRY_POINTS[fn.__name__], GPU_SECONDS[fn.__name__] = call, duration
        return call
    return wrap


def _decorate(fn: Callable, duration: Callable) -> Callable:
    if _decorator is not None:
        return _decorator(fn, duration)
    if zero_gpu():
        import spaces

        return spaces.GPU(fn, duration=duration)
    return fn


def use_decorator(decorator: Callable[[Callable, Callable], Callable] | None) -> None:
    """Wrap the entry points with ``decorator(fn, duration)`` instead (tests record the durations); None: back to
    ``spaces.GPU`` on ZeroGPU."""
    global _decorator
    _decorator = decorator
    _decorated.clear()


@contextlib.contextmanager
def _refusals():
    """The scheduler's refusals (a ``gradio.Error`` raised by ``spaces`` before the call runs) raised as our own
    error, with the scheduler's words; anything else as it is."""
    try:
        yield
    except Exception as exc:
        if type(exc).__module__.split(".")[0] in ("gradio", "spaces") and type(exc).__name__.endswith("Error"):
            title, message = getattr(exc, "title", None), str(getattr(exc, "message", "") or exc)
            raise GpuRefusedError(f"{title or 'ZeroGPU'}: {message} (signed-in visitors get a larger daily GPU "
                                  "quota)") from exc
        raise
