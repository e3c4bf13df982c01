"""Settings fields declared once (`ragft.knobs`): the range a config checks is the one the CLI and sliders read."""

from dataclasses import dataclass

import pytest

from ragft.config import Settings
from ragft.errors import InvalidInputError, RagftError
from ragft.evaluate import EvalConfig
from ragft.experiment import ExperimentConfig, ExperimentError
from ragft.finetune import TrainConfig
from ragft.knobs import bounds, check, choices, default, knob, valid_name


@dataclass(frozen=True)
class Demo:
    count: int = knob(3, 1, 9, "how many")
    share: float = knob(0.5, 0.0, 1.0, "a share", open_hi=True)
    steps: int = knob(0, 0, 100, note="0 = auto")
    mode: str = knob("fast", choices=("fast", "slow"))
    picks: tuple[str, ...] = knob(("a",), choices=("a", "b"), some=True)

    def __post_init__(self):
        check(self)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"count": 0}, "count must be 1..9"),
    ({"count": 10}, "count must be 1..9"),
    ({"share": 1.0}, "share must be in [0, 1)"),
    ({"share": float("nan")}, "share must be in [0, 1)"),
    ({"steps": -1}, "steps must be 0..100 (0 = auto)"),
    ({"mode": "medium"}, "mode must be one of fast, slow"),
    ({"picks": ()}, "picks must be some of a, b"),
    ({"picks": ("a", "c")}, "picks must be some of a, b"),
    ({"count": True}, "count must be 1..9"),
])
def test_a_value_out_of_its_declared_range_is_refused_on_construction(kwargs, message):
    with pytest.raises(InvalidInputError) as caught:
        Demo(**kwargs)
    assert str(caught.value) == message
    assert isinstance(caught.value, RagftError) and isinstance(caught.value, ValueError)


def test_the_declaration_is_readable():
    assert bounds(Demo, "count") == (1, 9)
    assert choices(Demo, "mode") == ("fast", "slow")
    assert default(Demo, "picks") == ("a",)
    assert Demo(count=9, share=0.0, picks=("b", "a")).count == 9


def test_the_configs_share_one_top_k_range():
    # One declaration per config; the Chat slider, the CLI and validation all read these.
    assert bounds(Settings, "top_k") == bounds(EvalConfig, "top_k") == bounds(ExperimentConfig, "top_k") == (1, 20)
    with pytest.raises(InvalidInputError, match=r"^top k must be 1\.\.20$"):
        EvalConfig(top_k=21)
    with pytest.raises(ExperimentError, match=r"^top k must be 1\.\.20$"):
        ExperimentConfig(top_k=0)


def test_train_config_epochs_count_only_without_a_step_count():
    with pytest.raises(InvalidInputError, match=r"^epochs must be in \(0, 100\]$"):
        TrainConfig(epochs=0)
    assert TrainConfig(epochs=0, max_steps=5).max_steps == 5
    with pytest.raises(InvalidInputError, match="^pick at least one target module$"):
        TrainConfig(target_modules=())


@pytest.mark.parametrize(("name", "ok"), [
    ("notes", True), ("a.b-c_d", True), ("x" * 64, True), ("x" * 65, False), ("-lead", False), ("../up", False),
    ("name\n", False), ("", False), ("sp ace", False),
])
def test_one_name_rule(name, ok):
    assert valid_name(name) is ok
