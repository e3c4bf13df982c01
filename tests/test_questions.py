"""Question sets: files, the cloze generator, phrasings, splits and LLM-written questions (no models needed)."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from ragft.metrics import normalize
from ragft.questions import (
    TEST_FORM,
    QAItem,
    QuestionSetError,
    check_set_name,
    generate_cloze,
    list_sets,
    llm_questions,
    load_set,
    phrasings,
    save_set,
    set_path,
    split_set,
)
from ragft.store import Hit


def hit(source: str, chunk: int, text: str) -> Hit:
    return Hit(source=source, chunk=chunk, score=1.0, text=text)


# Three small fictional documents, two chunks each except the last: years, other numbers and names.
CORPUS = [
    hit("vault.txt", 0, "The Zorblax vault was built in 1887 by Marta Vell. Its door weighs 4,200 kilograms and is "
                        "bright teal. Nobody knows why the door is teal."),
    hit("vault.txt", 1, "The secret code of the Zorblax vault is 7-4-1-9. A robot named Pim has guarded the vault "
                        "since 1903.\nThe guard robot never sleeps and has walked 9,000 miles."),
    hit("moon.txt", 0, "The moon of Zorblax is named Quib by the locals. Quib orbits the planet every 12 days. "
                       "It is small."),
    hit("moon.txt", 1, "Explorers from Ostrel Harbor first landed on Quib in 1952. About 40% of its surface is "
                       "covered in ice."),
    hit("phone.txt", 0, "The glimmerphone was invented by Ada Trent in 1931. It could reach 300 listeners at once."),
]
TEXT = {(h.source, h.chunk): h.text for h in CORPUS}


def words_in(needle: str, haystack: str) -> bool:
    return f" {normalize(needle)} " in f" {normalize(haystack)} "


# --- cloze generator --------------------------------------------------------------------------------------------
def test_generated_answers_are_grounded_and_blanked():
    items = generate_cloze(CORPUS, 50)
    assert len(items) == 10
    for item in items:
        assert words_in(item.answer, item.context)
        assert words_in(item.answer, TEXT[item.source, item.chunk])
        assert item.context == TEXT[item.source, item.chunk]
        assert "____" in item.question and not words_in(item.answer, item.question)
        assert item.question == f"Fill in the blank: {item.cloze}"
        assert item.cloze.replace("____", item.answer) in " ".join(item.context.split())
    assert len({normalize(i.question) for i in items}) == len({i.fact for i in items}) == 10


@pytest.mark.parametrize(
    "sentence, answer, cloze, kind",
    [
        ("The glimmerphone was invented by Ada Trent in 1931.", "1931",
         "The glimmerphone was invented by Ada Trent in ____.", "year"),
        ("Ada Trent founded the Bank of Ostrel with 12,000 coins.", "12,000",
         "Ada Trent founded the Bank of Ostrel with ____ coins.", "number"),
        ("The secret code of the Zorblax vault is 7-4-1-9.", "7-4-1-9",
         "The secret code of the Zorblax vault is ____.", "number"),
        ("About 42% of all visitors came by boat.", "42%", "About ____ of all visitors came by boat.", "number"),
        # A count's unit joins its answer, as people write it.
        ("The river flows for 3.5 miles to the sea.", "3.5 miles", "The river flows for ____ to the sea.", "number"),
        ("The bridge opened in 2150 to great fanfare.", "2150", "The bridge opened in ____ to great fanfare.",
         "number"),
        # Names: the longest run wins (the first of equals); a lone sentence-opening word is no name; "The" is
        # dropped from the front; "of" joins capitalised words.
        ("Marta Vell moved to New Harbor in the spring.", "Marta Vell",
         "____ moved to New Harbor in the spring.", "name"),
        ("The moon of Zorblax is named Quib by the locals.", "Zorblax",
         "The moon of ____ is named Quib by the locals.", "name"),
        ("Later she joined the Bank of Ostrel as a clerk.", "Bank of Ostrel",
         "Later she joined the ____ as a clerk.", "name"),
        # A number that occurs twice would give itself away: the name is asked instead.
        ("In 1931 and again in 1931 Pim repaired the old tower.", "Pim",
         "In 1931 and again in 1931 ____ repaired the old tower.", "name"),
    ],
)
def test_one_sentence_gives_this_item_first(sentence, answer, cloze, kind):
    item = generate_cloze([hit("a.txt", 3, sentence)], 5)[0]
    assert (item.question, item.answer, item.cloze, item.kind) == (f"Fill in the blank: {cloze}", answer, cloze, kind)
    assert (item.source, item.chunk, item.context, item.choices) == ("a.txt", 3, sentence, ())
    assert len(item.fact) == 12


def test_a_sentence_with_a_number_and_a_name_gives_both():
    sentence = "In 1996 the family sold a majority stake to the Swedish group Norrsken Kapital."
    items = generate_cloze([hit("a.txt", 0, sentence)], 5)
    assert [(i.answer, i.kind) for i in items] == [("1996", "year"), ("Norrsken Kapital", "name")]
    assert len({i.fact for i in items}) == 2


@pytest.mark.parametrize(
    "sentence",
    [
        "The visitor centre opens from Wednesday to Sunday all year.",  # weekdays and months are no names to ask
        "The Aquila AX-40 pump is made in Kassel by 12 workers on the 14 March holiday.",  # day of month
        "The ferry leaves Norwich at 10 am sharp every morning.",  # a clock time
    ],
)
def test_calendar_and_clock_blanks_are_not_asked(sentence):
    asked = {i.answer for i in generate_cloze([hit("a.txt", 0, sentence)], 5)}
    assert not asked & {"Wednesday", "Sunday", "14", "10", "Aquila AX"}


@pytest.mark.parametrize(
    "text",
    [
        "Her brother and she went to the market on foot.",  # no number, no name
        "Nobody knows why.",  # too short
        "Pim ate.",  # too short, and a lone sentence opener
        "It happened in 2020/05/01 at 10:30 in the 1990s style.",  # pieces of dates and times are no answers
        " ".join(["word"] * 44 + ["in", "1931."]),  # 46 words: too long
        "Quib saw Quib and then Quib again today.",  # the only name occurs three times
    ],
)
def test_sentences_without_usable_blanks_give_nothing(text):
    assert generate_cloze([hit("a.txt", 0, text)], 5) == []


def test_questions_spread_round_robin_over_documents():
    items = generate_cloze(CORPUS, 6)
    assert [(i.source, i.chunk, i.answer) for i in items] == [
        ("vault.txt", 0, "1887"), ("moon.txt", 1, "1952"), ("phone.txt", 0, "1931"),  # a number from each …
        ("vault.txt", 0, "Marta Vell"), ("moon.txt", 0, "Zorblax"), ("phone.txt", 0, "Ada Trent"),  # … then a name
    ]
    assert generate_cloze(CORPUS, 3)[0].answer == "1887"
    assert [i.kind for i in generate_cloze(CORPUS, 50) if i.source == "moon.txt"] == ["year", "name", "number", "name"]


@pytest.mark.parametrize("per_chunk, total", [(1, 5), (2, 10), (3, 14)])
def test_per_chunk_caps_facts_from_one_chunk(per_chunk, total):
    items = generate_cloze(CORPUS, 50, per_chunk=per_chunk)
    assert len(items) == total
    per = {}
    for item in items:
        per[item.source, item.chunk] = per.get((item.source, item.chunk), 0) + 1
    assert max(per.values()) == per_chunk


def test_generation_is_deterministic_and_returns_all_when_asked_for_more():
    assert generate_cloze(CORPUS, 7, choices=4, seed=3) == generate_cloze(list(CORPUS), 7, choices=4, seed=3)
    assert len(generate_cloze(CORPUS, 1000)) == 10
    assert generate_cloze(CORPUS, 0) == []
    assert generate_cloze([], 5) == []


def test_repeated_sentences_give_one_question():
    text = "The glimmerphone was invented by Ada Trent in 1931."
    items = generate_cloze([hit("a.txt", 0, text), hit("b.txt", 0, text)], 5)
    assert [(i.source, i.answer) for i in items] == [("a.txt", "1931"), ("a.txt", "Ada Trent")]


def test_multiple_choice_holds_the_answer_once_among_distinct_options():
    items = generate_cloze(CORPUS, 50, choices=4)
    for item in items:
        assert len(item.choices) == 4
        assert item.choices.count(item.answer) == 1
        assert len({normalize(c) for c in item.choices}) == 4
    answers = {i.answer for i in items}
    assert all(set(i.choices) <= answers for i in items)  # wrong options are other facts' answers
    assert len({i.choices.index(i.answer) for i in items}) > 1  # the answer is not always in the same place


def test_distractors_prefer_the_same_kind():
    years = {"1887", "1952", "1931"}  # the three years asked; the fourth option is another number
    for item in generate_cloze(CORPUS, 50, choices=4):
        if item.kind == "year":
            assert years <= set(item.choices)
        if item.kind == "number":
            assert {"7-4-1-9", "12 days"} <= set(item.choices)  # the other numbers first, then other kinds
    assert generate_cloze(CORPUS, 50, choices=2) != generate_cloze(CORPUS, 50, choices=2, seed=1)


def test_a_lone_fact_gets_no_choices():
    [item] = generate_cloze([hit("a.txt", 0, "The glimmerphone was invented in 1931 by a tinker.")], 5, choices=4)
    assert item.choices == ()


# --- files --------------------------------------------------------------------------------------------------------
def write(tmp_path, text: str, name: str = "set.jsonl"):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_save_and_load_round_trip(tmp_path):
    items = generate_cloze(CORPUS, 50, choices=3) + [QAItem("Who built it?", "Marta Vell", chunk=0)]
    path = save_set(items, tmp_path / "sets" / "mine.jsonl")
    assert path == tmp_path / "sets" / "mine.jsonl"
    assert load_set(path) == items
    assert json.loads(path.read_text().splitlines()[-1]) == {"question": "Who built it?", "answer": "Marta Vell",
                                                             "chunk": 0}
    assert [p.name for p in (tmp_path / "sets").iterdir()] == ["mine.jsonl"]  # no temp file left behind


def test_load_reads_messages_numbers_bom_and_ignores_unknown_keys(tmp_path):
    lines = [
        {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": " Q1? "},
                      {"role": "assistant", "content": "A1."}], "source": "a.txt"},
        {"question": "When?", "answer": 1931, "chunk": 2, "colour": "teal"},
        {"question": "Which?", "answer": "the TEAL one", "choices": ["Red", "Teal one", "Blue"], "chunk": None},
    ]
    p = tmp_path / "set.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + "\n\n".join(json.dumps(x) for x in lines).encode())
    assert load_set(p) == [
        QAItem("Q1?", "A1.", source="a.txt"),
        QAItem("When?", "1931", chunk=2),
        QAItem("Which?", "Teal one", choices=("Red", "Teal one", "Blue")),
    ]


@pytest.mark.parametrize(
    "lines, message",
    [
        ("", "set.jsonl: no questions"),
        ("\n  \n", "set.jsonl: no questions"),
        ('{"question": "q", "answer": "a"}\nnot json', "set.jsonl line 2: not valid JSON"),
        ('["q", "a"]', "set.jsonl line 1: expected a JSON object, got list"),
        ('{"question": "q"}', "set.jsonl line 1: missing or empty 'answer'"),
        ('{"question": "  ", "answer": "a"}', "set.jsonl line 1: missing or empty 'question'"),
        ('{"text": "q"}', "set.jsonl line 1: missing or empty 'question' and 'answer'"),
        ('{"question": "q", "answer": true}', "set.jsonl line 1: missing or empty 'answer'"),
        ('{"question": "q", "answer": "a", "choices": ["b", "c"]}',
         "set.jsonl line 1: the answer 'a' is not one of the 'choices'"),
        ('{"question": "q", "answer": "a", "choices": ["a"]}', "set.jsonl line 1: 'choices' needs at least 2"),
        ('{"question": "q", "answer": "a", "choices": ["a", "The A"]}', "set.jsonl line 1: 'choices' needs at least 2"),
        ('{"question": "q", "answer": "a", "choices": "a"}', "set.jsonl line 1: 'choices' must be a list"),
        ('{"question": "q", "answer": "a", "chunk": -1}',
         "set.jsonl line 1: 'chunk' must be a whole number >= 0, got -1"),
        ('{"question": "q", "answer": "a", "chunk": "2"}', "set.jsonl line 1: 'chunk' must be a whole number >= 0"),
        ('{"question": "q", "answer": "a", "chunk": true}', "set.jsonl line 1: 'chunk' must be a whole number >= 0"),
        ('{"question": "q", "answer": "a", "source": 3}', "set.jsonl line 1: 'source' must be a string, got int"),
        ('{"question": "q", "answer": "a", "kind": "colour"}',
         "set.jsonl line 1: 'kind' must be one of number, year, name, got 'colour'"),
        ('{"messages": "hi"}', "set.jsonl line 1: 'messages' must be a list of {role, content} objects"),
        ('{"messages": [{"role": "user", "content": "q"}]}', "set.jsonl line 1: 'messages' must have a user turn"),
        ('{"question": "Who?", "answer": "a"}\n\n{"question": "who", "answer": "b"}',
         "set.jsonl line 3: the same question as line 1"),
    ],
)
def test_bad_sets_are_rejected_naming_line_and_problem(tmp_path, lines, message):
    with pytest.raises(QuestionSetError) as err:
        load_set(write(tmp_path, lines))
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("data", [b"\xff\xfe\x00\x81", b'{"question": "q", "answer": "a"}\x00\x00'])
def test_binary_files_are_rejected(tmp_path, data):
    p = tmp_path / "set.jsonl"
    p.write_bytes(data)
    with pytest.raises(QuestionSetError, match="^set.jsonl: not a UTF-8 text file"):
        load_set(p)


def test_too_many_questions_are_rejected(tmp_path):
    p = write(tmp_path, "".join(json.dumps({"question": f"q{i}", "answer": "a"}) + "\n" for i in range(4)))
    assert len(load_set(p, max_items=4)) == 4
    with pytest.raises(QuestionSetError, match="^set.jsonl has 4 questions; the limit is 3$"):
        load_set(p, max_items=3)


def test_missing_file_and_empty_save_are_errors(tmp_path):
    with pytest.raises(QuestionSetError, match="^nope.jsonl: cannot read the file"):
        load_set(tmp_path / "nope.jsonl")
    with pytest.raises(QuestionSetError, match="no questions to save"):
        save_set([], tmp_path / "empty.jsonl")


@pytest.mark.parametrize(
    "name, stored",
    [("facts", "facts"), (" v1.2_test-A ", "v1.2_test-A"), ("facts.jsonl", "facts"), ("9" * 64, "9" * 64)],
)
def test_set_names_that_are_allowed(tmp_path, name, stored):
    assert check_set_name(name) == stored
    assert set_path(tmp_path, name) == tmp_path / f"{stored}.jsonl"


@pytest.mark.parametrize("name", ["", "../evil", ".hidden", "-x", "a b", "a/b", "x" * 65, "été"])
def test_set_names_that_are_refused(name):
    with pytest.raises(QuestionSetError, match="use letters, digits, '-', '_' or '.'"):
        check_set_name(name)


def test_list_sets(tmp_path):
    assert list_sets(tmp_path / "missing") == []
    for name in ("beta.jsonl", "Alpha.jsonl", "alpha2.jsonl", "notes.txt", ".hidden.jsonl"):
        (tmp_path / name).write_text("{}")
    (tmp_path / "dir.jsonl").mkdir()
    assert list_sets(tmp_path) == ["Alpha", "alpha2", "beta"]


# --- phrasings and splits -----------------------------------------------------------------------------------------
YEAR = generate_cloze([hit("a.txt", 0, "The glimmerphone was invented by Ada Trent in 1931.")], 1)[0]
NAME = generate_cloze([hit("a.txt", 0, "Marta Vell moved to New Harbor in the spring!")], 1)[0]
NUMBER = generate_cloze([hit("a.txt", 0, "Quib orbits the planet every 12 days")], 1)[0]


def test_phrasings_of_a_cloze_item():
    assert phrasings(YEAR) == [
        "Fill in the blank: The glimmerphone was invented by Ada Trent in ____.",
        "The glimmerphone was invented by Ada Trent in what year?",  # TEST_FORM: what a paraphrase split asks
        "When was the glimmerphone invented by Ada Trent?",
        "In which year was the glimmerphone invented by Ada Trent?",
        "What year was the glimmerphone invented by Ada Trent?",
    ]
    assert phrasings(NAME)[1:3] == ["Who moved to New Harbor in the spring?",
                                    "Which person or organisation moved to New Harbor in the spring?"]
    assert phrasings(NUMBER)[1:] == ["Quib orbits the planet every how many days?",
                                     "How many days does Quib orbit the planet?"]
    assert phrasings(QAItem("q", "318", cloze="The Quillon river is ____ kilometres long and flows into the bay.",
                            kind="number"))[1:3] == [
        "The Quillon river is how many kilometres long and flows into the bay?",
        "How many kilometres long is the Quillon river?",
    ]
    # The unit is in the answer: the questions ask for it.
    assert phrasings(QAItem("q", "24 kilograms", cloze="The pump weighs ____ when dry.", kind="number"))[1:] == [
        "The pump weighs how many kilograms when dry?", "How many kilograms does the pump weigh when dry?"]
    assert phrasings(QAItem("q", "Pim", cloze="The vault is guarded by ____.", kind="name"))[1:] == [
        "The vault is guarded by what?", "Who is the vault guarded by?", "What is the vault guarded by?"]
    # A cleft sentence has no question-word-first form; hand-written items have one phrasing.
    cleft = "It was there that she met Lev, whom she married in ____."
    assert phrasings(QAItem("q", "1946", cloze=cleft, kind="year")) == [
        f"Fill in the blank: {cleft}", "It was there that she met Lev, whom she married in what year?"]
    assert phrasings(QAItem("Who built it?", "Marta Vell")) == ["Who built it?"]


def test_heldout_split_keeps_facts_apart():
    items = generate_cloze(CORPUS, 50)
    items += [replace(items[0], question="Who knows the year the vault was built?")]  # a second phrasing
    train, test = split_set(items, "heldout", test_share=0.3, seed=1)
    assert (train, test) == split_set(items, "heldout", test_share=0.3, seed=1)
    assert not {i.fact for i in train} & {i.fact for i in test}
    assert len(train) + len(test) == 11
    assert len({i.fact for i in test}) == 3  # 30% of 10 facts
    assert split_set(items, "heldout", seed=2) != split_set(items, "heldout", seed=1)


@pytest.mark.parametrize("share", [0.01, 0.99])
def test_heldout_split_keeps_a_fact_on_each_side(share):
    train, test = split_set(generate_cloze(CORPUS, 50), "heldout", test_share=share)
    assert train and test


def test_heldout_split_of_hand_written_questions_uses_the_question():
    items = [QAItem(f"Question {i}?", "a") for i in range(10)]
    train, test = split_set(items, "heldout")
    assert len(train) == len(test) == 5
    assert sorted(train + test, key=items.index) == items


def test_paraphrase_split_asks_each_fact_differently_on_each_side():
    items = generate_cloze(CORPUS, 50, choices=3)
    train, test = split_set(items, "paraphrase")
    assert len(test) == 10 and len(train) == sum(len(phrasings(i)) - 1 for i in items) >= 20
    assert {i.fact for i in train} == {i.fact for i in test}
    assert not {normalize(i.question) for i in train} & {normalize(i.question) for i in test}
    assert [i.question for i in test] == [phrasings(i)[TEST_FORM] for i in items]
    assert [(i.answer, i.choices) for i in test] == [(i.answer, i.choices) for i in items]


def test_split_errors():
    with pytest.raises(QuestionSetError, match="the paraphrase split needs generated fill-in-the-blank questions; "
                                               "1 of 2 questions"):
        split_set([YEAR, QAItem("Who built it?", "Marta Vell")], "paraphrase")
    with pytest.raises(QuestionSetError, match="unknown split 'random'; choose one of: heldout, paraphrase"):
        split_set([YEAR], "random")
    with pytest.raises(QuestionSetError, match="test share must be between 0 and 1"):
        split_set([YEAR], "heldout", test_share=1.0)


# --- LLM-written questions ----------------------------------------------------------------------------------------
class FakeModel:
    """Answers each prompt with the reply listed for the passage it shows; records the batch sizes."""

    def __init__(self, replies: dict[str, str]):
        self.replies, self.batches = replies, []

    def __call__(self, prompts: list[str]) -> list[str]:
        self.batches.append(len(prompts))
        return [next(r for key, r in self.replies.items() if key in p) for p in prompts]


LLM_CHUNKS = [
    hit("vault.txt", 0, "The Zorblax vault was built in 1887 by Marta Vell."),
    hit("vault.txt", 1, "Its door is bright teal."),
    hit("moon.txt", 0, "The moon of Zorblax is named Quib."),
    hit("moon.txt", 1, "Quib orbits every 12 days."),
    hit("phone.txt", 0, "The glimmerphone was invented by Ada Trent."),
]
REPLIES = {
    "built in 1887": "Question: When was the Zorblax vault built?\nAnswer: 1887",  # good
    "bright teal": "Sure!\n**Question:** What colour is the door?\n**Answer**: Bright teal.",  # good, lenient format
    "named Quib": "Question: What is the moon of Zorblax called?\nAnswer: Luna",  # not in the passage
    "every 12 days": "I think the moon orbits often.",  # malformed
    "glimmerphone": "Question: Who invented the glimmerphone, Ada Trent?\nAnswer: Ada Trent",  # gives it away
}


def test_llm_questions_keep_only_grounded_pairs():
    model = FakeModel(REPLIES)
    items, dropped = llm_questions(LLM_CHUNKS, model, n=10)
    assert [(i.question, i.answer, i.source, i.chunk) for i in items] == [
        ("When was the Zorblax vault built?", "1887", "vault.txt", 0),
        ("What colour is the door?", "Bright teal.", "vault.txt", 1),
    ]
    assert dropped == 3
    assert items[0].context == LLM_CHUNKS[0].text and len(items[0].fact) == 12 and not items[0].cloze
    assert model.batches == [5]


def test_llm_questions_are_asked_in_batches_of_eight_until_enough():
    chunks = [hit("many.txt", i, f"Passage {i}: the vault was built in 1887.") for i in range(20)]
    model = FakeModel({f"Passage {i}:": f"Question: When was vault number {i} built?\nAnswer: 1887"
                       for i in reversed(range(20))})  # reversed: "Passage 1:" must not match "Passage 12:"
    items, dropped = llm_questions(chunks, model, n=10)
    assert (len(items), dropped, model.batches) == (10, 0, [8, 8])
    assert [i.chunk for i in items] == list(range(10))
    items, dropped = llm_questions(chunks, FakeModel(model.replies), n=100)
    assert (len(items), dropped) == (20, 0)


def test_llm_questions_per_chunk_show_different_parts():
    chunk = hit("a.txt", 0, "The vault was built in 1887. Its door is teal. Pim guards it.")
    model = FakeModel({"1887": "Q: When was the vault built?\nA: 1887",
                       "teal": "Q: What colour is the door?\nA: teal",
                       "Pim": "Q: What colour is the door?\nA: teal"})  # a repeat is dropped
    items, dropped = llm_questions([chunk], model, n=5, per_chunk=3)
    assert ([i.answer for i in items], dropped, model.batches) == (["1887", "teal"], 1, [3])
    assert {i.context for i in items} == {chunk.text}


def test_llm_questions_skip_empty_chunks_and_ask_nothing_when_none_are_left():
    model = FakeModel(REPLIES)
    assert llm_questions([hit("a.txt", 0, "  \n ")], model, n=5, per_chunk=2) == ([], 0)
    assert model.batches == []


def test_llm_question_without_answer_gets_an_extractive_follow_up():
    # The 135M model writes "Question: …\nAnswer:" and stops; a second prompt asks for the answer alone.
    chunks = [hit("vault.txt", 0, "The Zorblax vault was built in 1887 by Marta Vell."),
              hit("moon.txt", 0, "The moon of Zorblax is named Quib.")]
    model = FakeModel({
        "Question: When was": "1887",  # the follow-up shows the question: checked first
        "Question: What is the moon": "Answer: Luna",  # follow-up answer not in the passage: dropped
        "built in 1887": "Question: When was the Zorblax vault built?\nAnswer:",
        "named Quib": "Question: What is the moon of Zorblax called?\n",
    })
    items, dropped = llm_questions(chunks, model, n=5)
    assert [(i.question, i.answer) for i in items] == [("When was the Zorblax vault built?", "1887")]
    assert dropped == 1
    assert model.batches == [2, 2]  # one batch of questions, one of follow-ups


def test_headings_and_titles_make_no_questions():
    text = ("# Aquila AX-40 Portable Water Pump — Operating Manual, Section 3\n"
            "Mirela Vostrikova (1921–1998): The Chemist Who Listened to Crystals\n"
            "The pump weighs 24 kilograms when dry.\nQuib orbits the planet every 12 days\n")
    items = generate_cloze([hit("a.md", 0, text)], 10)
    assert [i.answer for i in items] == ["24 kilograms", "12 days"]


def test_questions_typed_one_a_line():
    from ragft.questions import parse_typed

    items = parse_typed("When was the light built? | 1871\n\n  Who keeps it?|Ola Berg  \n")
    assert [(i.question, i.answer) for i in items] == [("When was the light built?", "1871"),
                                                       ("Who keeps it?", "Ola Berg")]
    assert parse_typed("") == []
    for text, message in (("When was it built?", "line 1: one question a line, then ' | '"),
                          ("Q? | 1\n | 2", "line 2: one question a line"), ("Q? | ", "line 1"),
                          ("Q? | 1\nq? | 2", "line 2: the same question twice"),
                          ("x" * 600 + " | 1", "line 1: a question or answer of over 500 characters"),
                          ("\n".join(f"Q{i}? | {i}" for i in range(51)), "51 questions typed; at most 50"),
                          (["Q? | 1"], "your questions must be text")):
        with pytest.raises(QuestionSetError, match=re.escape(message)):
            parse_typed(text)


def test_a_name_the_documents_use_everywhere_is_not_asked():
    """A licence's defined terms ("the Licensor") are its vocabulary, guessed by any model: a name in more than 3
    chunks is skipped for the sentence's next name; one in a chunk or two is a fact."""
    chunks = [Hit("lic.txt", i, 1.0, f"The Licensor grants clause {i} to Ada Brook.") for i in range(5)]
    chunks.append(Hit("lic.txt", 5, 1.0, "The Licensor may appoint Pell Hadley as its steward."))
    answers = {it.answer for it in generate_cloze(chunks, 50, per_chunk=50)}
    assert "Licensor" not in answers and "Ada Brook" not in answers  # both in 5 chunks
    assert "Pell Hadley" in answers
