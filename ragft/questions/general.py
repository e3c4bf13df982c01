"""General-knowledge questions a small base model answers before any training: the forgetting check. After an
adapter is trained on the user's documents, it is asked those of them the base model got right; any it now gets
wrong is knowledge the fine-tuning cost. Written by a person; answers as the correctness rule reads them (a name or a
word, no number words)."""

from __future__ import annotations

from dataclasses import replace

from .sets import parse_typed

_GENERAL = """\
What is the capital of France? | Paris
What is the capital of Japan? | Tokyo
What is the capital of Italy? | Rome
Which planet is known as the Red Planet? | Mars
What is the largest planet in our solar system? | Jupiter
Who wrote Romeo and Juliet? | Shakespeare
What is frozen water called? | ice
What colour is the sky on a clear day? | blue
Which ocean is the largest? | Pacific
What language is mainly spoken in Brazil? | Portuguese
Which animal is called the king of the jungle? | lion
What gas do plants take in from the air to make food? | carbon dioxide
What is the opposite of hot? | cold
Who painted the Mona Lisa? | Leonardo da Vinci
What is the chemical symbol for gold? | Au
Which country is home to the kangaroo? | Australia"""

GENERAL = [replace(it, fact=f"general-{i}") for i, it in enumerate(parse_typed(_GENERAL))]
