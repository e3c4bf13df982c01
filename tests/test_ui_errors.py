"""The UI edge (`ragft.ui.errors.refuses`): a RagftError becomes a warning and the fallback; a bug is not hidden."""

import pytest

from ragft.errors import InvalidInputError, RagftError
from ragft.ui import errors as ui_errors


@pytest.fixture
def warnings(monkeypatch):
    shown = []
    monkeypatch.setattr(ui_errors.gr, "Warning", shown.append)
    return shown


def test_a_user_error_becomes_a_warning_and_the_fallback(warnings):
    @ui_errors.refuses(lambda text, name: (text, name))
    def handler(name):
        raise InvalidInputError(f"bad {name}")

    assert handler("x") == ("❌ bad x", "x")
    assert warnings == ["bad x"]


def test_the_fix_names_the_tab(warnings):
    @ui_errors.refuses(lambda text: text)
    def handler():
        raise RagftError("the document store is empty: add documents first", fix="documents")

    assert handler() == "❌ the document store is empty: add documents first (Documents tab)"


def test_a_streaming_handler_yields_the_fallback_after_what_it_streamed(warnings):
    @ui_errors.refuses(lambda text, n: [text])
    def stream(n):
        yield ["first"]
        raise RagftError("stopped")

    assert list(stream(1)) == [["first"], ["❌ stopped"]]
    assert warnings == ["stopped"]


def test_a_bug_keeps_its_traceback(warnings):
    @ui_errors.refuses(lambda text: text)
    def handler():
        raise ValueError("a bug, not a user error")

    with pytest.raises(ValueError, match="a bug"):
        handler()
    assert warnings == []
