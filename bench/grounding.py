"""The grounding marks' accuracy (`ragft.grounding`) on a labelled set built from real documents.

Each sentence of a document that states a fact (a number or a name), 6 to 40 words, gives cases judged against
its own chunk and two others of the same document, as the top 3 retrieved chunks would be:

- supported: the sentence as written, and its clause that holds the fact (when a comma splits off one);
- unsupported: the sentence with a number changed, with a name swapped for another of the document that none of
  the three chunks holds, with its negation flipped ("was" / "was not"), and a sentence of another document with
  no number or name (which only the content-word threshold can catch).

Balanced accuracy (the mean of the supported and the unsupported cases' accuracies) and each case's accuracy, on
bench/recipe/docs, where ``grounding.THRESHOLD`` is chosen (the sweep is printed), and on bench/recipe/check2/docs,
which nothing was tuned on.

A third set is written by a person (bench/recipe/check2/grounding.jsonl, never tuned on): 26 sentences of the
check2 documents said in other words (supported, as a model words its answers) and each with a relation changed
while its numbers and names stay ("Fredrik sponsored Google's work"; unsupported). Each is judged against the
chunk holding its source passage and two other chunks of that document.

With ``RAGFT_GROUNDING_MODEL`` set (an NLI cross-encoder; needs the hub or a folder), the model's marks are
measured on the same sets beside the default's.

    .venv/bin/python -m bench grounding [--smoke]
"""

from __future__ import annotations

import json
import os
import random
import re
from pathlib import Path

from .report import Figure, report, size

ROOT = Path(__file__).resolve().parent
SETS = {"recipe": ROOT / "recipe" / "docs", "check2": ROOT / "recipe" / "check2" / "docs"}
WRITTEN = ROOT / "recipe" / "check2" / "grounding.jsonl"
AUX = re.compile(r"\b(is|was|are|were|has|have|had|can|will|does|did|may|must|should)\b")
NUMBER = re.compile(r"\b\d+\b")


def _changed_number(sentence: str, rng: random.Random) -> str | None:
    numbers = NUMBER.findall(sentence)
    if not numbers:
        return None
    n = rng.choice(numbers)
    return re.sub(rf"\b{n}\b", str(int(n) + rng.choice((1, 2, 10))), sentence, count=1)


def _changed_name(sentence: str, names: list[str], given: list[str], rng: random.Random) -> str | None:
    """A name of ``sentence`` swapped for another of the document that none of the ``given`` chunks holds."""
    from ragft.grounding import facts

    own = [w for w in re.findall(r"\b[A-Z][a-z]{2,}\b", sentence)[1:] if w.lower() in facts(sentence)]
    others = [n for n in names if not any(re.search(rf"\b{n}\b", c, re.IGNORECASE) for c in given)]
    if not own or not others:
        return None
    return sentence.replace(rng.choice(own), rng.choice(others), 1)


def _flipped(sentence: str) -> str | None:
    if re.search(r"\bnot\b", sentence):
        return re.sub(r"\bnot\s+", "", sentence, count=1)
    if re.search(r"n't\b", sentence):
        return re.sub(r"n't\b", "", sentence, count=1)
    if AUX.search(sentence):
        return AUX.sub(lambda m: f"{m.group(1)} not", sentence, count=1)
    return None


def _clause(sentence: str) -> str | None:
    from ragft.grounding import facts

    parts = [p.strip() for p in re.split(r",\s+|;\s+", sentence)]
    with_fact = [p for p in parts if facts(p) and len(p.split()) >= 5]
    return with_fact[0].rstrip(".") + "." if len(parts) > 1 and with_fact else None


def cases(folder: Path, other: Path, limit: int | None = None, seed: int = 0) -> list[tuple[str, str, list[str]]]:
    """(case, sentence, chunks) for the documents in ``folder``; ``other``'s documents give unrelated sentences."""
    from ragft.config import Settings
    from ragft.documents import load_document, split_sentences
    from ragft.grounding import facts

    s, rng, out = Settings(), random.Random(seed), []
    foreign = [x for f in sorted(other.iterdir()) for x in split_sentences(f.read_text(), lines=True)
               if 6 <= len(x.split()) <= 40 and not facts(x)]
    for f in sorted(folder.iterdir()):
        chunks = load_document(f, f.name, s.chunk_words, s.chunk_overlap_words, 50_000_000).chunks
        names = sorted({w for c in chunks for w in re.findall(r"(?<=[a-z,] )[A-Z][a-z]{2,}\b", c)})
        for i, chunk in enumerate(chunks):
            others = [c for j, c in enumerate(chunks) if j != i]
            given = [chunk, *rng.sample(others, min(2, len(others)))]
            for sentence in split_sentences(chunk, lines=True):
                if not 6 <= len(sentence.split()) <= 40 or not facts(sentence):
                    continue
                made = {"supported": sentence, "supported clause": _clause(sentence),
                        "number changed": _changed_number(sentence, rng),
                        "name changed": _changed_name(sentence, names, given, rng),
                        "negation flipped": _flipped(sentence),
                        "other document": rng.choice(foreign) if foreign else None}
                out += [(case, text, given) for case, text in made.items() if text]
    return out[:limit]


def written(path: Path = WRITTEN, folder: Path = SETS["check2"], seed: int = 0) -> list[tuple[str, str, list[str]]]:
    """The person-written cases: "supported paraphrase" or "relation changed", each with the chunk that holds its
    ``anchor`` (whitespace aside) and two other chunks of its document."""
    from ragft.config import Settings
    from ragft.documents import load_document

    s, rng, out = Settings(), random.Random(seed), []
    squash = lambda text: " ".join(text.split())  # noqa: E731
    chunks = {f.name: load_document(f, f.name, s.chunk_words, s.chunk_overlap_words, 50_000_000).chunks
              for f in sorted(folder.iterdir())}
    for line in path.read_text().splitlines():
        case = json.loads(line)
        doc = chunks[case["doc"]]
        gold = next(i for i, c in enumerate(doc) if squash(case["anchor"]) in squash(c))
        others = [c for j, c in enumerate(doc) if j != gold]
        label = "supported paraphrase" if case["case"] == "paraphrase" else case["case"]
        out.append((label, case["sentence"], [doc[gold], *rng.sample(others, min(2, len(others)))]))
    return out


def accuracy(labelled: list[tuple[str, str, list[str]]], threshold: float, model=None) -> dict[str, float]:
    from ragft.grounding import mark_sentence

    right: dict[str, list[bool]] = {}
    for case, sentence, chunks in labelled:
        m = model.mark([sentence], chunks)[0] if model is not None else mark_sentence(sentence, chunks, threshold)
        right.setdefault(case, []).append((m.supported is True) == case.startswith("supported"))
    scores = {case: sum(r) / len(r) for case, r in right.items()}
    pos = [x for case, r in right.items() if case.startswith("supported") for x in r]
    neg = [x for case, r in right.items() if not case.startswith("supported") for x in r]
    scores["balanced"] = (sum(pos) / max(len(pos), 1) + sum(neg) / max(len(neg), 1)) / 2
    scores["n"] = len(labelled)
    return scores


def main(flags: list[str]) -> list[Figure]:
    from ragft.grounding import THRESHOLD
    from ragft.models import load_grounding_model

    limit = 60 if size(flags) == "smoke" else None
    dev = cases(SETS["recipe"], SETS["check2"], limit)
    sweep = {t: accuracy(dev, t)["balanced"] for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)}
    print("threshold sweep on recipe (balanced accuracy): "
          + ", ".join(f"{t:.1f}: {b:.3f}" for t, b in sweep.items()))
    details, figures = {"sweep": sweep, "threshold": THRESHOLD}, []
    labelled = {"recipe": dev, "check2": cases(SETS["check2"], SETS["recipe"], limit), "written": written()}
    scorers = {"": None}
    if os.environ.get("RAGFT_GROUNDING_MODEL"):
        scorers["model"] = load_grounding_model(os.environ["RAGFT_GROUNDING_MODEL"])
        details["model"] = scorers["model"].name
    for scorer, model in scorers.items():
        for name, labels in labelled.items():
            scores = accuracy(labels, THRESHOLD, model)
            tag = f"{name} ({scorer})" if scorer else name
            details[tag] = scores
            print(f"{tag}: {scores['n']} cases: "
                  + ", ".join(f"{k} {v:.3f}" for k, v in scores.items() if k != "n"))
            figures.append(Figure(f"{tag}: balanced accuracy", scores["balanced"], 0.5, "", "", "chance"))
    report("grounding", figures, details)
    return figures
