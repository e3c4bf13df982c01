"""The Evaluate tab's question table and the result views (`ui.views`), on hand-made data (no server, no models)."""

import pandas as pd

from ragft.questions import QAItem
from ragft.ui.evaluate import as_state, items_frame, items_from_frame
from ragft.ui.views import ALL_BARS, chart_frame, detail_html, questions_frame

from .test_evaluate import hand_made_result


def test_edited_table_rows_keep_the_fields_it_does_not_show():
    items = [QAItem("Q1?", "a", "d.md", 0, context="ctx", fact="f1"), QAItem("Q2?", "b", choices=("b", "c")),
             QAItem("Q3?", "c")]
    frame = items_frame(items)
    assert list(frame.columns) == ["keep", "question", "answer", "choices", "source", "chunk"]
    frame.loc[0, "answer"] = "A (edited)"
    frame.loc[2, "keep"] = False  # dropped
    frame.loc[len(frame)] = [True, "Added by hand?", "yes", "", "", ""]
    frame.loc[len(frame)] = [True, "   ", "no question", "", "", ""]  # incomplete rows are skipped
    got = items_from_frame(frame, as_state(items))
    assert got == [
        QAItem("Q1?", "A (edited)", "d.md", 0, context="ctx", fact="f1"),
        QAItem("Q2?", "b", choices=("b", "c")),
        QAItem("Added by hand?", "yes"),
    ]
    assert items_from_frame(None, []) == [] and items_from_frame(pd.DataFrame(), []) == []

    # Sorted rows still find their items; an edited question keeps its item's hidden fields.
    frame = items_frame(items).iloc[::-1].reset_index(drop=True)
    frame.loc[2, "question"] = "Q1 reworded?"
    got = items_from_frame(frame, as_state(items))
    assert got[0] == items[2] and got[1] == items[1]
    assert got[2] == QAItem("Q1 reworded?", "a", "d.md", 0, context="ctx", fact="f1")


def test_chart_has_one_bar_per_variant_and_metric_in_reading_order():
    rows = hand_made_result().summary()
    frame = chart_frame(rows)
    assert list(frame["bar"]) == ["Plain · accuracy", "Plain · token F1", "RAG · accuracy", "RAG · token F1",
                                  "RAG · recall@k"]  # no recall for plain; nothing for variants that did not run
    assert list(frame["score %"]) == [50.0, 50.0, 100.0, 100.0, 50.0]
    assert set(frame["bar"]) <= set(ALL_BARS)


def test_per_question_table_and_detail():
    data = hand_made_result().to_json()
    table = questions_frame(data)
    assert list(table.columns) == ["#", "question", "expected", "Plain", "RAG", "Fine-tuned", "RAG + Fine-tuned",
                                   "trained on it"]
    assert list(table["Plain"]) == ["✓ yes", "✗ maybe"]
    assert list(table["Fine-tuned"]) == ["", ""]
    detail = detail_html(data, 2)
    assert "Question 2" in detail and "<b>Expected:</b> no" in detail and "from a.md, chunk 1" in detail
    assert "✗ wrong" in detail and "✓ correct" in detail and "source chunk missed" in detail
    assert "Question 2" in detail_html(data, 99)  # clamped to the last question
    assert detail_html(None, 1) == ""
