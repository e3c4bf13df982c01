"""Ways to ask one fact: the fill-in-the-blank sentence rephrased as people ask, by rule, no model.

    >>> phrasings(item)                                                   # doctest: +SKIP
    ['Fill in the blank: The family sold a majority stake to ____ in 1998.',
     'The family sold a majority stake to who in 1998?',
     'Who did the family sell a majority stake to in 1998?', ...]

The question-word-first rewrites (`natural_forms`) cut the clause that holds the blank, drop the blank's phrase
("in ____", "____ kilograms", "the physicist ____"), put a question word in front and invert the clause: "When did
the family sell ...?", "How many kilograms does the pump weigh when dry?", "Which Swedish investment group did the
family sell a majority stake to?". English only; a sentence they cannot read gets none.
"""

from __future__ import annotations

import re

from ..metrics import normalize
from .cloze import usable
from .english import (
    AUX,
    DETS,
    HAVE,
    PREPS_YEAR,
    STARTERS,
    is_past,
    is_present_s,
    lemma,
    lower_first,
)
from .sets import BLANK, QAItem

CLAUSE_CUT = re.compile(r",\s+(?:and|but|which|while|where|so|who|whom|most|one|many|making|although)\b|;|"
                        r",?\s+(?:and|but|so)\s+(?=[a-z])")
_BROKEN = re.compile(r"\b(?:from|to|in|at|of|by|with|for|on) (?:from|to|in|at|of|by|with|for|on)\b|\b(\w+) \1\b")


def _counted(item: QAItem) -> tuple[str, str]:
    """(cloze, kind) with a count's unit back in the sentence ("The pump weighs ____ kilograms when dry."): the
    shape the rewrites read."""
    number, _, unit = item.answer.partition(" ")
    if item.kind != "number" or not unit or not re.fullmatch(r"[\d.,%-]+", number):
        return item.cloze, item.kind
    return item.cloze.replace(BLANK, f"{BLANK} {unit}", 1), item.kind


_AUX = AUX | set(HAVE)  # with "has", "have", "had"


def _echo(cloze: str, kind: str) -> str:
    """The sentence asked as a question in place: "It plays music with how many glass bells?"."""
    before, _, after = cloze.rstrip(" .!?").partition(BLANK)
    if kind == "year":
        what = "what year"
    elif kind == "number" and re.match(r"\s+[a-z]", after):
        what = "how many"  # a count of something: "with ____ glass bells"
    elif not before.strip():
        what = "who" if kind == "name" else "what"  # the blank is the subject: mostly a person
    else:
        what = "what"
    question = f"{before}{what}{after}?"
    return question[0].upper() + question[1:]


def _fronted(cloze: str, kind: str) -> str | None:
    """The question word first, as people ask: "When was the glimmerphone invented by Ada Trent?" (a year after
    "in", with an auxiliary to invert) or "How many metres tall is the largest one?" (a count right after an
    auxiliary). None when the sentence has no such shape."""
    before, _, after = cloze.rstrip(" .!?").partition(BLANK)
    words = before.split()
    if re.match(r"(?:It|There)\s+(?:was|is|were|are)\b", before):
        return None  # a cleft sentence ("It was there that ...") inverts into nonsense

    def subject(ws: list[str]) -> str:
        text = " ".join(ws)
        return text[0].lower() + text[1:] if ws and ws[0] in STARTERS else text

    if kind == "year" and words[-1:] == ["in"]:
        aux = next((i for i, w in enumerate(words[:-1]) if i > 0 and w.lower() in _AUX), None)
        if aux is not None:
            verb = " ".join(words[aux + 1 : -1])
            return " ".join(f"When {words[aux].lower()} {subject(words[:aux])} {verb}{after}?".split())
    if kind == "number" and len(words) >= 2 and words[-1].lower() in _AUX and re.match(r"\s+[a-z]", after):
        after = re.split(r",|;| (?:and|but|which|while|where) ", after)[0]  # the count's own clause only
        return " ".join(f"How many{after} {words[-1].lower()} {subject(words[:-1])}?".split())
    return None


def _invert(clause: str) -> tuple[str, str] | None:
    """('did the family sell', 'a majority stake to ...') for 'The family sold a majority stake to ...':
    (the auxiliary + subject + verb, the rest). None when no verb is found."""
    words = clause.split()
    lead = []  # a leading adverb ("Today") moves to the end
    if words and words[0] in ("Today", "Now", "Later", "Then"):
        lead, words = [words[0].lower()], words[1:]
    elif len(words) > 3 and words[0] in ("In", "By", "On", "At", "During", "After", "Before", "Since") and (
            words[2].lower() in DETS | PRONOUNS or words[2][0].isupper()):
        lead, words = [words[0].lower(), words[1].rstrip(",")], words[2:]
    for i, w in enumerate(words):
        if i == 0:
            continue
        lw = w.lower().strip(",")
        if w != lw and w[0].isupper():
            continue  # a name is no verb
        if lw in AUX:
            subj = lower_first(" ".join(words[:i]))
            rest = words[i + 1 :]
            return f"{lw} {subj}", " ".join(rest + lead)
        if lw in HAVE:
            subj = lower_first(" ".join(words[:i]))
            do = "did" if lw == "had" else ("does" if lw == "has" else "do")
            return f"{do} {subj} have", " ".join(words[i + 1 :] + lead)
        if is_past(lw):
            subj = lower_first(" ".join(words[:i]))
            return f"did {subj} {lemma(lw)}", " ".join(words[i + 1 :] + lead)
        if is_present_s(lw) and i <= 4:
            subj = lower_first(" ".join(words[:i]))
            return f"does {subj} {lemma(lw)}", " ".join(words[i + 1 :] + lead)
    return None


def _clause(cloze: str) -> str:
    """The part of the sentence that holds the blank: after a colon before it, before a new clause after it."""
    text = cloze.strip().rstrip(".!?")
    before, _, after = text.partition(BLANK)
    if ":" in before:
        before = before.rsplit(":", 1)[1].strip()
        before = before[0].upper() + before[1:] if before else before
    at_start = not before.strip() or before.split()[-1].lower() in PREPS_YEAR and len(before.split()) == 1
    cut = CLAUSE_CUT if at_start else re.compile(r",|;|\s+and\s+(?=[a-z])|\s+but\s+")
    m = cut.search(after)
    if m:
        after = after[: m.start()]
    return f"{before}{BLANK}{after}".strip()


def _q(text: str) -> str:
    text = " ".join(text.replace(" ,", ",").split()).rstrip(" ,")
    return text[0].upper() + text[1:] + "?"


PARTICIPLES = {"born", "built", "founded", "made", "held", "sold", "given", "won", "written", "begun", "known",
               "opened", "introduced", "revived", "discovered", "published", "completed", "designed", "granted",
               "elected", "named", "launched", "established", "invented", "closed", "awarded", "created", "released"}
PRONOUNS = {"she", "he", "they", "we", "it", "i", "you", "whom", "who"}
HEDGES = ("about", "roughly", "nearly", "some", "around", "almost", "over", "up", "to", "least", "at", "only")
UNIT_ADJ = {"cubic", "square", "more", "extra", "full", "different", "new", "old", "main", "glass", "small", "large"}


def _last_np(text: str) -> str:
    """The last noun phrase of ``text``: its last comma segment, from its last determiner on."""
    seg = text.rstrip(" ,").split(",")
    last = seg[-1].strip()
    if len(seg) >= 2 and last and last[0].isupper() and len(last.split()) <= 3:
        return last  # an apposition: "one son, Pavel"
    words = last.split()
    for i in range(len(words) - 1, -1, -1):
        if words[i].lower() in DETS:
            return lower_first(" ".join(words[i:]))
    return lower_first(last)


def _participle_clause(before_words: list[str], after: str) -> tuple[str, str] | None:
    """'When was Pavel born?' for "... one son, Pavel, born in ____": the verb right before the preposition is a
    participle of a reduced clause (after a comma, or with no finite verb before it)."""
    if not before_words:
        return None
    part = before_words[-1].lower().strip(",")
    if part not in PARTICIPLES and not (part.endswith("ed") and len(part) > 4):
        return None
    head = " ".join(before_words[:-1])
    if not head:
        return None
    if head.endswith(","):
        np = _last_np(head[:-1])
    else:
        words = head.split()
        if any(w.lower() in AUX or w.lower() in HAVE or w.lower() in PRONOUNS for w in words):
            return None  # "she was elected", "whom she married": a finite clause, left to _invert
        if any(is_past(w) or is_present_s(w) for w in words[1:] if not w[0].isupper()):
            return None
        np = lower_first(head)
    return f"was {np} {part}", after


def natural_forms(cloze: str, kind: str) -> list[str]:
    """Up to three questions with the question word first, as people ask: "When did the family sell a majority
    stake to ...?", "How many kilograms does the pump weigh when dry?", "Which Swedish investment group did the
    family sell a majority stake to?". Rule-based: cut the clause holding the blank, drop the blank's phrase, put
    a question word in front and invert subject and verb. [] when the sentence has no such shape."""
    if not cloze or not usable(cloze, kind):
        return []
    clause = _clause(cloze)
    before, _, after = clause.partition(BLANK)
    before, after = before.strip(), after.strip().strip(",").strip()
    if re.match(r"(?:It|There)\s+(?:was|is|were|are)\b", before):
        return []  # cleft sentences ("It was there that ...") invert into nonsense
    sub = list(re.finditer(r"\b(?:until|when|after|because|although|whom|where|which|that)\s+(?=\w)", before))
    if sub and kind != "name":
        inner = before[sub[-1].end():]
        if len(inner.split()) >= 2:
            before = inner[0].upper() + inner[1:]
    out: list[str] = []
    words = before.split()
    if kind == "year":
        if words and words[-1].lower() in PREPS_YEAR:
            prep = words[-1].lower()
            rest_words = words[:-1]
            if not rest_words:  # "In ____ the family sold ..."
                main = after
                inv = _invert(main[0].upper() + main[1:]) if main else None
            else:
                inv = _participle_clause(rest_words, after)
                if inv is None:
                    main = f"{' '.join(rest_words)} {after}".strip(" ,")
                    inv = _invert(main)
            if inv:
                head, rest = inv
                wh = {"in": "When", "by": "By what year", "since": "Since when", "from": "From what year",
                      "until": "Until what year"}.get(prep, "When")
                out.append(_q(f"{wh} {head} {rest}"))
                if prep == "in":
                    out.append(_q(f"In which year {head} {rest}"))
                    out.append(_q(f"What year {head} {rest}"))
    elif kind == "number":
        aw = after.split()
        unit, tail = "", ""
        if aw and re.fullmatch(r"[a-z][\w-]*", aw[0]) and aw[0] not in ("of", "in", "at", "to", "on", "for", "and",
                                                                        "or", "by", "with", "per", "from"):
            n = 2 if aw[0] in UNIT_ADJ and len(aw) > 1 else 1
            unit, tail = " ".join(aw[:n]), " ".join(aw[n:])
        bw = words[:]
        while bw and bw[-1].lower() in HEDGES:
            bw.pop()
        b = " ".join(bw)
        of = re.search(r"(?:^|\s)(?:a|an|the|its|his|her)\s+([a-z][\w-]*(?:\s+[a-z][\w-]*)?)\s+of$", b)
        if unit and of:
            # "... has a range of ____ kilometres" -> "How many kilometres is the range of <subject>?"
            noun = of.group(1)
            front = b[: of.start()].split()
            subj = ""
            for i, w in enumerate(front):
                lw = w.lower().strip(",")
                if i and not w[0].isupper() and (lw in AUX or lw in HAVE or is_past(lw) or is_present_s(lw)):
                    subj = lower_first(" ".join(front[:i]).rstrip(","))
                    break
            keep = tail if re.match(r"(?:on|in|per|a|when|at)\b", tail) else ""
            of_subj = f" of {subj}" if subj else ""
            out.append(_q(f"How many {unit} is the {noun}{of_subj} {keep}"))
            out.append(_q(f"What is the {noun}{of_subj}, in {unit}"))
        elif unit:
            while bw and bw[-1].lower() in ("the", "first", "every", "within", "of", "at", "after", "a"):
                bw.pop()
            main = " ".join(bw)
            inv = _invert(main) if main else None
            if inv:
                head, rest = inv
                out.append(_q(f"How many {unit} {head} {rest} {tail}"))
            elif not main:
                out.append(_q(f"How many {unit} {tail}"))
    else:  # name
        ap = re.search(r"(?:^|\s)(?:the|a|an)\s+((?:[a-zA-Z][\w-]*\s+){0,3}[a-z][\w-]*)$", before)
        if ap and re.search(r"\b(?:of|from|to|in|at|on|by|with|for|walk)\b", ap.group(1)):
            ap = None
        if re.match(r"[-\d]", after) or re.search(r"\bnamed\s*$", before):
            return []
        if not before:
            after = after.split(", ")[0]
            out.append(_q(f"Which person or organisation {after}"))
            out.append(_q(f"What is the name of the one that {after}"))
        elif ap:
            # "... sold a majority stake to the Swedish investment group ____" -> "Which Swedish investment group
            # did the family sell a majority stake to?"
            descr = ap.group(1)
            main = before[: ap.start()].strip()
            inv = _invert(main) if main else None
            if inv:
                head, rest = inv
                out.append(_q(f"Which {descr} {head} {rest} {after}"))
                out.append(_q(f"Who is the {descr} that {lower_first(main)} {after}"))
        else:
            ws = words[:]
            if ws and ws[-1].lower() == "the":
                ws.pop()
            prep = ""
            if ws and ws[-1].lower() in ("to", "by", "with", "from", "for", "in", "at", "on", "of", "as"):
                prep = ws.pop().lower()
            main = " ".join(ws)
            inv = _invert(main) if main else None
            if inv:
                head, rest = inv
                if prep in ("in", "at"):
                    out.append(_q(f"Where {head} {rest} {after}"))
                else:
                    out.append(_q(f"Who {head} {rest} {prep} {after}"))
                    out.append(_q(f"What {head} {rest} {prep} {after}"))
    seen, uniq = set(), []
    for q in out:
        k = q.lower()
        if k not in seen and BLANK not in q and len(q.split()) >= 4 and not _BROKEN.search(q):
            seen.add(k)
            uniq.append(q)
    return uniq[:3]


TEST_FORM = 1  # the phrasing a paraphrase split asks; it trains on the others


def phrasings(item: QAItem) -> list[str]:
    """Ways to ask the same fact: [fill in the blank, the sentence as a question in place, then up to four with
    the question word first (when the sentence allows)]; one for hand-written items. The second (`TEST_FORM`) is
    the one a paraphrase split tests on; the others are trained on.

    Trained on fill-in and question-word-first wordings, a small model answers people's own questions about the
    fact (bench/recipe: 45-55% correct against 20% for fill-in and sentence-completion wordings alone).
    """
    if not item.cloze:
        return [item.question]
    cloze, kind = _counted(item)
    forms = [f"Fill in the blank: {item.cloze}", _echo(cloze, kind)]
    fronted = _fronted(cloze, kind)
    seen = {normalize(f) for f in forms}
    for q in ([fronted] if fronted else []) + natural_forms(cloze, kind):
        if normalize(q) not in seen:
            seen.add(normalize(q))
            forms.append(q)
    return forms[:6]
