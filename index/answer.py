"""The answer: the retrieved sentence(s) that best answer the question, with numbered citations."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from index.chunks import sentence_spans
from index.embeddings import Embedder
from index.retrieval import Hit

NOT_COVERED = "The indexed articles don't cover this question."
# Passages whose sentences are weighed as the answer (the rest are further reading).
ANSWER_PASSAGES = 3
DENSE_WEIGHT = 0.55
LEXICAL_WEIGHT = 0.45
ANSWER_TYPE_BONUS = 0.08
RANK_BONUS = 0.04
# Words that shape a question but are never its subject.
QUESTION_WORDS = frozenset(
    "how much mani mean what who whom whose which when where whi did doe do is are was were "
    "has have had will would can could should the a an of to in on for".split()
)

_QUANTITY_Q = re.compile(
    r"\bhow (?:much|many|long|far|old|big|large|high|often)\b|"
    r"\bwhat (?:percentage|percent|share|number|amount|proportion|price|cost)\b",
    re.I,
)
_PERSON_Q = re.compile(r"^\s*(?:who|whom|whose)\b", re.I)
_TIME_Q = re.compile(r"^\s*when\b|\bwhat (?:year|date|day|month|time)\b", re.I)
_PLACE_Q = re.compile(r"^\s*where\b|\bwhich (?:country|city|state|nation|region)\b", re.I)
_NUMBER = re.compile(
    r"[$£€]\s?\d|\d[\d,.]*\s?(?:%|percent|million|billion|trillion)|\b\d[\d,.]*\b|"
    r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|dozens?|hundreds?|thousands?|"
    r"millions?|billions?)\b",
    re.I,
)
_TIME = re.compile(
    r"\b(?:1[89]|20)\d{2}\b|\b(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+\d|"
    r"\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|yesterday|today)\b",
    re.I,
)
_NAME = re.compile(r"(?<!^)(?<![.!?]\s)\b[A-Z][a-z]+(?:\s+[A-Z][a-z]+)*")


@dataclass(frozen=True)
class Citation:
    """A numbered source: the article and the quoted passage; `highlight` marks the support."""

    n: int
    article_id: str
    title: str
    source: str | None
    url: str | None
    published: str | None
    passage: str
    highlight: tuple[int, int] | None = None


@dataclass(frozen=True)
class Answer:
    """What newsbot says to a question."""

    question: str
    found: bool
    answer: str
    citations: list[Citation] = field(default_factory=list)
    latency_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The `ask --json` object."""
        data = asdict(self)
        for citation in data["citations"]:
            highlight = citation.pop("highlight")
            citation["highlight"] = list(highlight) if highlight else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        """The inverse of `to_dict`."""
        citations = [
            Citation(**{**c, "highlight": tuple(c["highlight"]) if c.get("highlight") else None})
            for c in data.get("citations", [])
        ]
        return cls(
            data["question"],
            data["found"],
            data["answer"],
            citations,
            data.get("latency_ms", 0.0),
        )


@dataclass(frozen=True)
class _Sentence:
    hit_index: int
    start: int
    end: int
    text: str


class Composer:
    """Chooses the answer sentence and decides whether the passages support an answer at all."""

    def __init__(
        self, embedder: Embedder, terms: Callable[[str], list[str]], *, min_support: float
    ) -> None:
        self.embedder = embedder
        self.terms = terms
        self.min_support = min_support

    def compose(self, question: str, query_vector: np.ndarray, hits: Sequence[Hit]) -> Answer:
        """An `Answer` citing `hits` in order, or the not-covered answer with no citation."""
        sentences = [
            _Sentence(i, s, e, hit.passage.chunk.text[s:e])
            for i, hit in enumerate(hits[:ANSWER_PASSAGES])
            for s, e in sentence_spans(hit.passage.chunk.text)
        ]
        if not sentences:
            return Answer(question, False, NOT_COVERED)
        support, scores = self._score(question, query_vector, sentences)
        best = int(np.argmax(scores))
        if support[best] < self.min_support:
            return Answer(question, False, NOT_COVERED)
        highlights: dict[int, tuple[int, int]] = {}
        for i in np.argsort(-scores):
            sentence = sentences[int(i)]
            highlights.setdefault(sentence.hit_index, (sentence.start, sentence.end))
        chosen = sentences[best]
        citations = [
            Citation(
                n=i + 1,
                article_id=hit.passage.article.id,
                title=hit.passage.article.title,
                source=hit.passage.article.source,
                url=hit.passage.article.url,
                published=hit.passage.article.published,
                passage=hit.passage.chunk.text,
                highlight=highlights.get(i),
            )
            for i, hit in enumerate(hits)
        ]
        text = f"{chosen.text} [{chosen.hit_index + 1}]"
        return Answer(question, True, text, citations)

    def _score(
        self, question: str, query_vector: np.ndarray, sentences: list[_Sentence]
    ) -> tuple[np.ndarray, np.ndarray]:
        """(support, ranking score) per sentence; support decides 'not covered'."""
        vectors = self.embedder.embed([s.text for s in sentences])
        dense = vectors @ query_vector
        q_terms = {t for t in self.terms(question) if t not in QUESTION_WORDS}
        lexical = np.array(
            [
                len(q_terms & set(self.terms(s.text))) / len(q_terms) if q_terms else 0.0
                for s in sentences
            ]
        )
        support = DENSE_WEIGHT * dense + LEXICAL_WEIGHT * lexical
        wants = _answer_type(question)
        bonus = np.array(
            [
                (ANSWER_TYPE_BONUS if wants and wants.search(s.text) else 0.0)
                + RANK_BONUS / (s.hit_index + 1)
                for s in sentences
            ]
        )
        return support, support + bonus


def _answer_type(question: str) -> re.Pattern[str] | None:
    """The pattern an answer to `question` should contain (a number, a time, a name)."""
    if _QUANTITY_Q.search(question):
        return _NUMBER
    if _TIME_Q.search(question):
        return _TIME
    if _PERSON_Q.search(question) or _PLACE_Q.search(question):
        return _NAME
    return None
