"""What an answer to a question looks like: the names, numbers, amounts or dates it asks for.

Both the retriever (which passages agree on an answer) and the composer (which sentence
holds it) find candidate answers with these patterns.
"""

from __future__ import annotations

import re

_QUANTITY_Q = re.compile(
    r"\bhow (?:much|many|long|far|old|big|large|high|often)\b|"
    r"\bwhat (?:percentage|percent|share|number|amount|proportion|price|cost|score|age|rate)\b|"
    r"\b(?:which|what) (?:\w+ )?(?:birthday|anniversary|age|number|score)\b",
    re.I,
)
_MONEY_Q = re.compile(
    r"\bhow much (?!time|longer|older|bigger|more time)|\bwhat (?:price|cost|amount)\b", re.I
)
_TIME_Q = re.compile(r"^\s*when\b|\bwhat (?:year|date|day|month|time)\b", re.I)
# "Who...", "...whose...", "Which country...", "...named which company...": a name.
_NAME_Q = re.compile(
    r"\b(?:who|whom|whose|where)\b|"
    r"\b(?:which|what)\s+(?!(?:is|was|are|were|did|does|do|has|have|had|will|would|can|"
    r"could|should|kind|type|sort|of)\b)[a-z]",
    re.I,
)
_NUMBER = re.compile(
    r"[$£€]?\d[\d,.]*(?:\s?(?:%|percent|million|billion|trillion))?|"
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|"
    r"forty|fifty|hundred|thousand|million|billion)\b",
    re.I,
)
_MONEY = re.compile(
    r"[$£€]\s?\d[\d,.]*(?:\s?(?:million|billion|trillion|bn|m)\b)?|"
    r"\b\d[\d,.]*\s?(?:million|billion|trillion)?\s?(?:dollars|euros|pounds|yuan|yen|rupees)\b",
    re.I,
)
_TIME = re.compile(
    r"\b(?:1[89]|20)\d{2}\b|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d+|"
    r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|today)\b",
    re.I,
)
# A run of capitalised words, allowing "of", "de" and "the" inside ("Bank of England"); also
# what a model's claim names (`index.answer.claims`).
NAME = re.compile(r"\b[A-Z][\w'’.-]*(?:\s+(?:of\s+|de\s+|the\s+)?[A-Z][\w'’.-]*)*")
_WORD = re.compile(r"\w+")
_FILLER = frozenset({"the", "a", "an", "of", "de"})


class AnswerShape:
    """The kinds of answer `question` asks for, and where text holds one it does not say."""

    def __init__(self, question: str) -> None:
        self.kind, self.kinds = _answer_kinds(question)
        self.asked = {w.lower() for w in _WORD.findall(question)}

    def candidates(self, text: str) -> set[str]:
        """The candidate answers in `text`: matches of the kinds, less the question's words."""
        return {key for _, _, key in self.spans(text)}

    def spans(self, text: str) -> list[tuple[int, int, str]]:
        """Where `text` holds a candidate answer: (start, end, the candidate), in text order."""
        found = []
        for kind in self.kinds:
            for match in kind.finditer(text):
                words = [w.lower() for w in _WORD.findall(match.group(0))]
                new = [w for w in words if w not in self.asked and w not in _FILLER]
                if new:
                    found.append((match.start(), match.end(), " ".join(new)))
        return sorted(found)


KINDS = ("money", "number", "time", "name", "any")
"""What a question asks for, as `AnswerShape.kind` says it."""


def _answer_kinds(question: str) -> tuple[str, tuple[re.Pattern[str], ...]]:
    """What an answer to `question` looks like: an amount of money, a number, a date, a name
    (or, when the question does not say, a name or a number)."""
    if _MONEY_Q.search(question):
        return "money", (_MONEY,)
    if _QUANTITY_Q.search(question):
        return "number", (_NUMBER,)
    if _TIME_Q.search(question):
        return "time", (_TIME,)
    if _NAME_Q.search(question):
        return "name", (NAME,)
    return "any", (NAME, _NUMBER)


def agreement(candidates: list[set[str]], weights: list[float]) -> list[float]:
    """For each text's candidates, the best one's weighted share of all texts' votes (0..1).

    Each text votes once, with its weight, for every candidate answer it holds: an answer
    that several strong passages repeat is likely the answer.
    """
    votes = tally(candidates, weights)
    top = max(votes.values(), default=0.0) or 1.0
    return [max((votes[c] for c in found), default=0.0) / top for found in candidates]


def tally(candidates: list[set[str]], weights: list[float]) -> dict[str, float]:
    """Each candidate answer's votes: the summed weights of the texts holding it."""
    votes: dict[str, float] = {}
    for found, weight in zip(candidates, weights, strict=True):
        for candidate in found:
            votes[candidate] = votes.get(candidate, 0.0) + weight
    return votes
