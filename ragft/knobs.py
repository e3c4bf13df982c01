"""Settings fields declared once, the peft way: a dataclass field carries its default, its range or choices and its
help, and everything else reads them — `check` in ``__post_init__``, the CLI's flags and help, the UI's sliders.

    @dataclass
    class TrainConfig:
        rank: int = knob(16, 1, 256, "LoRA rank r")

        def __post_init__(self):
            check(self)

    bounds(TrainConfig, "rank")  # (1, 256): the slider's and the CLI's limits
"""

from __future__ import annotations

import math
import re
from dataclasses import MISSING, field, fields
from typing import Any

from .errors import InvalidInputError


def knob(default: Any, lo: float | None = None, hi: float | None = None, help: str = "", *,
         label: str = "", choices: tuple = (), open_lo: bool = False, open_hi: bool = False, note: str = "",
         some: bool = False) -> Any:
    """A dataclass field with its limits. ``lo``/``hi`` bound a number (``open_lo``/``open_hi`` exclude the bound);
    ``choices`` lists the allowed values (``some``: a tuple of some of them, at least one); ``label`` names it in
    messages (default: the field name with spaces); ``note`` is added to the range message ("0 = use epochs")."""
    meta = {"lo": lo, "hi": hi, "help": help, "label": label, "choices": tuple(choices), "open_lo": open_lo,
            "open_hi": open_hi, "note": note, "some": some}
    if isinstance(default, (list, dict, set)):
        raise TypeError("knob defaults are immutable: use a tuple")
    return field(default=default, metadata={"knob": meta})


def _meta(cls_or_obj, name: str) -> dict:
    for f in fields(cls_or_obj):
        if f.name == name:
            return f.metadata.get("knob") or {}
    raise KeyError(name)


def bounds(cls_or_obj, name: str) -> tuple[float, float]:
    """``(lo, hi)`` of a numeric knob, as declared."""
    meta = _meta(cls_or_obj, name)
    return meta["lo"], meta["hi"]


def choices(cls_or_obj, name: str) -> tuple:
    return _meta(cls_or_obj, name)["choices"]


def help_of(cls_or_obj, name: str) -> str:
    return _meta(cls_or_obj, name)["help"]


def default(cls, name: str) -> Any:
    f = next(f for f in fields(cls) if f.name == name)
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    raise KeyError(f"{name} has no default")


def range_of(cls_or_obj, name: str) -> str:
    """The knob's range as messages say it: "1..256", "in (0, 1]" (with its note, if any)."""
    meta = _meta(cls_or_obj, name)
    return range_text(meta, isinstance(meta["lo"], int) and isinstance(meta["hi"], int))


def range_text(meta: dict, integer: bool) -> str:
    lo, hi = meta["lo"], meta["hi"]
    if integer and not meta["open_lo"] and not meta["open_hi"]:
        text = f"{lo}..{hi}"
    else:
        text = f"in {'(' if meta['open_lo'] else '['}{lo:g}, {hi:g}{')' if meta['open_hi'] else ']'}"
    return text + (f" ({meta['note']})" if meta["note"] else "")


def problem(meta: dict, name: str, value: Any) -> str | None:
    """What is wrong with ``value`` for the knob, in one line; None when it is fine."""
    label = meta["label"] or name.replace("_", " ")
    if meta["choices"]:
        allowed = ", ".join(map(str, meta["choices"]))
        if meta["some"]:
            if not value or not set(value) <= set(meta["choices"]):
                return f"{label} must be some of {allowed}"
        elif value not in meta["choices"]:
            return f"{label} must be one of {allowed}"
        return None
    lo, hi = meta["lo"], meta["hi"]
    if lo is None and hi is None:
        return None
    integer = isinstance(lo, int) and isinstance(hi, int)
    bad = not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value)
    bad = bad or (lo is not None and (value <= lo if meta["open_lo"] else value < lo))
    bad = bad or (hi is not None and (value >= hi if meta["open_hi"] else value > hi))
    return f"{label} must be {range_text(meta, integer)}" if bad else None


def from_request(cls, **values: Any):
    """``cls(**values)`` from a request's raw values (JSON over the API, a form, the CLI): a text field must be
    text, a whole-number field a whole number (3.0 is taken as 3), a number field a number; then the dataclass's
    own checks (`check`) name the allowed range of anything else. Wrong kinds raise `InvalidInputError`."""
    kinds = {f.name: f.type if isinstance(f.type, str) else f.type.__name__ for f in fields(cls)}
    out = {}
    for name, value in values.items():
        kind, meta = kinds[name], _meta(cls, name)
        label = meta.get("label") or name.replace("_", " ")
        if kind == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        if kind == "float" and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        wrong = {"str": not isinstance(value, str),
                 "int": not isinstance(value, int) or isinstance(value, bool),
                 "float": not isinstance(value, float) or math.isnan(value)}.get(kind, False)
        if wrong:
            what = {"str": "text", "int": "a whole number", "float": "a number"}[kind]
            limits = f" {range_text(meta, kind == 'int')}" if meta.get("lo") is not None else ""
            raise InvalidInputError(f"{label} must be {what}{limits}")
        out[name] = value
    return cls(**out)


def check(obj, error: type[Exception] = InvalidInputError, skip: tuple[str, ...] = ()) -> None:
    """Raise ``error`` with the first knob of ``obj`` whose value is out of its declared range or choices."""
    for f in fields(obj):
        meta = f.metadata.get("knob")
        if meta and f.name not in skip and (message := problem(meta, f.name, getattr(obj, f.name))):
            raise error(message)


# The one rule for the names of adapters, question sets and experiments: they become file and folder names.
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NAME_RULE = "use letters, digits, '-', '_' or '.', up to 64 characters"


def valid_name(name: str) -> bool:
    return isinstance(name, str) and NAME_RE.fullmatch(name) is not None
