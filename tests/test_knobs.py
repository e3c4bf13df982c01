"""Settings fields declared once (`ragft.knobs`): the range a config checks is the one the CLI and sliders read."""

from dataclasses import dataclass

import pytest

from ragft.config import Settings
from ragft.errors import InvalidInputError, RagftError
from ragft.evaluate import EvalConfig
from ragft.experiment import ExperimentConfig, ExperimentError
from ragft.finetune import TrainConfig
from ragft.knobs import bounds, check, choices, default, from_request, knob, valid_name


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


@pytest.mark.parametrize(("values", "message"), [
    ({"top_k": 25}, "top k must be 0..20 (0 = the app's setting)"),
    ({"top_k": -5}, "top k must be 0..20"),
    ({"max_new_tokens": -1}, "max new tokens must be 0..2048"),
    ({"max_new_tokens": 2.5}, "max new tokens must be a whole number 0..2048"),
    ({"max_new_tokens": "64"}, "max new tokens must be a whole number 0..2048"),
    ({"top_k": True}, "top k must be a whole number"),
    ({"temperature": float("nan")}, "temperature must be a number"),
    ({"temperature": 9}, "temperature must be in [-1, 5]"),
    ({"mode": "everything"}, "mode must be one of plain, rag, ft, rag+ft, all"),
    ({"question": ["a"]}, "question must be text"),
    ({"adapter": {"path": "/etc"}}, "adapter must be text"),
])
def test_a_request_out_of_range_or_of_the_wrong_kind_names_what_is_allowed(values, message):
    from ragft.requests import AskRequest

    with pytest.raises(InvalidInputError) as caught:
        from_request(AskRequest, **{"question": "Who?", **values})
    assert str(caught.value).startswith(message)


def test_a_request_in_range_becomes_the_engine_s_settings():
    from ragft.config import Settings
    from ragft.requests import AskRequest, SearchRequest

    settings = Settings(max_new_tokens=96, temperature=0.0)
    ask = from_request(AskRequest, question="Who?", mode="rag", max_new_tokens=16.0, top_k=2)
    assert (ask.max_new_tokens, ask.top_k, ask.decode(settings).max_new_tokens) == (16, 2, 16)
    assert from_request(AskRequest, question="Who?").decode(settings).max_new_tokens == 96  # 0: the app's
    assert from_request(AskRequest, question="Who?", temperature=0).decode(settings).temperature == 0.0
    assert from_request(SearchRequest, query="q", k=20).k == 20
    with pytest.raises(InvalidInputError, match="k must be 1..20"):
        from_request(SearchRequest, query="q", k=0)


def test_a_training_run_longer_than_the_app_allows_is_refused_before_it_starts():
    with pytest.raises(InvalidInputError, match=r"max steps would take 5000 steps; this app allows 1..2000 per "
                                                r"adapter \(RAGFT_MAX_TRAIN_STEPS\)"):
        TrainConfig(max_steps=5000).check_steps(10, 2000)
    TrainConfig(epochs=3, batch_size=4).check_steps(40, 30)  # 10 batches x 3 = 30 steps: allowed
    with pytest.raises(InvalidInputError, match="3 epochs over 44 examples would take 33 steps"):
        TrainConfig(epochs=3, batch_size=4).check_steps(44, 30)
