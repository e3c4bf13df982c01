"""English word forms the question rules need: a verb's dictionary form, past or present "-s" forms,
auxiliaries, determiners, and the words that are capitalised only because they open a sentence. By rule, no model;
English only."""

from __future__ import annotations

MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
WEEKDAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"

# Capitalised only because they open a sentence (or clause), so never the start of a name.
STARTERS = {
    "The", "A", "An", "In", "On", "At", "By", "For", "From", "To", "With", "As", "Of", "It", "Its", "This",
    "That", "These", "Those", "There", "Here", "He", "She", "They", "We", "You", "I", "His", "Her", "Their",
    "Our", "Your", "My", "When", "While", "After", "Before", "During", "Since", "Although", "However", "Then",
    "Today", "Each", "Every", "Some", "Many", "Most", "All", "Both", "Also", "But", "And", "Or", "So", "If",
    "Yes", "No", "Unlike", "Like", "Once"
}
AUX = {"is", "are", "was", "were", "will", "can", "could", "would", "should", "may", "might", "must"}
HAVE = {"has": "have", "have": "have", "had": "have"}
IRREGULAR = {
    "began": "begin", "built": "build", "sold": "sell", "came": "come", "became": "become", "made": "make",
    "met": "meet", "led": "lead", "grew": "grow", "wrote": "write", "bought": "buy", "took": "take", "gave": "give",
    "won": "win", "held": "hold", "left": "leave", "found": "find", "brought": "bring", "kept": "keep", "ran": "run",
    "saw": "see", "said": "say", "told": "tell", "went": "go", "got": "get", "stood": "stand", "paid": "pay",
    "taught": "teach", "thought": "think", "rode": "ride", "drove": "drive", "spent": "spend", "sent": "send",
    "fell": "fall", "flew": "fly", "knew": "know", "chose": "choose", "rose": "rise", "lost": "lose", "wore": "wear",
    "put": "put", "cost": "cost", "set": "set", "let": "let", "shut": "shut", "hit": "hit", "read": "read",
    "spoke": "speak", "broke": "break", "sang": "sing", "drew": "draw", "threw": "throw", "ate": "eat",
    "heard": "hear", "meant": "mean"
}
E_STEMS = ("v", "c", "z", "ur", "ir", "at", "et", "ut", "ot", "id", "ib", "os", "us", "iz", "ag", "rg", "dg", "rs",
           "ok", "ak", "ar", "ap", "ip", "op", "yp", "in", "ud")
DETS = {"the", "a", "an", "its", "his", "her", "their", "our", "this", "that", "these", "those"}
PREPS_YEAR = ("in", "by", "since", "from", "until", "of", "after", "before", "during")


def lemma(verb: str) -> str:
    """A verb's dictionary form: "sold" -> "sell", "stopped" -> "stop", "carries" -> "carry"."""
    v = verb.lower()
    if v in IRREGULAR:
        return IRREGULAR[v]
    if v in HAVE:
        return "have"
    if v.endswith("ied"):
        return v[:-3] + "y"
    if v.endswith("ed"):
        stem = v[:-2]
        if len(stem) >= 3 and stem[-1] == stem[-2] and stem[-1] not in "lsz":
            return stem[:-1]  # stopped -> stop
        if stem.endswith(E_STEMS) and not stem.endswith(("ss", "ck")):
            return stem + "e"
        return stem
    if v.endswith(("sses", "shes", "ches", "xes")):
        return v[:-2]
    if v.endswith("ies") and len(v) > 4:
        return v[:-3] + "y"
    if v.endswith("s") and not v.endswith("ss"):
        return v[:-1]
    return v


def is_past(w: str) -> bool:
    """Whether ``w`` reads as a past tense ("sold", "opened")."""
    lw = w.lower()
    return lw in IRREGULAR or (lw.endswith("ed") and len(lw) > 4)


def is_present_s(w: str) -> bool:
    """Whether ``w`` reads as a present tense with "-s" ("weighs"), not a plural or a determiner."""
    lw = w.lower()
    return lw.endswith("s") and not lw.endswith(("ss", "us", "is")) and len(lw) > 3 and lw not in DETS


def lower_first(text: str) -> str:
    """``text`` with its first word lower-cased when that word is capitalised only because it opens a sentence."""
    words = text.split(" ", 1)
    if words and words[0] in ("The", "A", "An", "It", "Its", "She", "He", "They", "Her", "His", "Their", "This",
                              "Today", "There", "In", "By", "On", "At"):
        words[0] = words[0].lower()
    return " ".join(words)
