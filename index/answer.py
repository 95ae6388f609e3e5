"""The answer: the retrieved sentence(s) that best answer the question, with numbered citations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from index.candidates import AnswerShape, agreement
from index.chunks import sentence_spans
from index.retrieval import Hit

NOT_COVERED = "The indexed articles don't cover this question."
# Passages whose sentences may be the answer (the rest are further reading).
ANSWER_PASSAGES = 3
# Passages that vote for candidate answers (names, numbers) found in their sentences.
VOTING_PASSAGES = 5
# Support (does anything answer?): the answer passages' similarity to the question (the
# model's) and the share of the question's terms in the chosen sentence.
DENSE_WEIGHT = 0.55
LEXICAL_WEIGHT = 0.45
# Sentence ranking: the share of the question's terms, then the best-supported candidate
# answer it holds (a name or number that several passages repeat), then the passage's rank.
VOTE_WEIGHT = 0.4
RANK_BONUS = 0.04
# Words that shape a question but are never its subject.
QUESTION_WORDS = frozenset(
    "how much mani mean what who whom whose which when where whi did doe do is are was were "
    "has have had will would can could should the a an of to in on for".split()
)


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
    """Chooses the answer sentence and decides whether the passages support an answer at all.

    It runs no model (the question's embedding was the only one needed): the sentence is
    chosen by the question's terms it contains, by the candidate answers (names, numbers,
    amounts, dates, as the question asks) it shares with the other top passages, and by its
    passage's rank. Whether the passages answer at all is judged from their similarity to
    the question and the chosen sentence's share of its terms.
    """

    def __init__(
        self, tokenize: Callable[[Sequence[str]], list[list[str]]], *, min_support: float
    ) -> None:
        self.tokenize = tokenize
        self.min_support = min_support

    def compose(self, question: str, hits: Sequence[Hit]) -> Answer:
        """An `Answer` citing `hits` in order, or the not-covered answer with no citation."""
        sentences = [
            _Sentence(i, s, e, hit.passage.chunk.text[s:e])
            for i, hit in enumerate(hits[:VOTING_PASSAGES])
            for s, e in sentence_spans(hit.passage.chunk.text)
        ]
        if not sentences:
            return Answer(question, False, NOT_COVERED)
        coverage = self._coverage(question, sentences)
        scores = self._rank(question, sentences, coverage)
        ranked = [int(i) for i in np.argsort(-scores, kind="stable")]
        chosen = sentences[ranked[0]]
        if self._support(hits, coverage[ranked[0]]) < self.min_support:
            return Answer(question, False, NOT_COVERED)
        highlights: dict[int, tuple[int, int]] = {}
        for i in ranked:
            sentence = sentences[i]
            highlights.setdefault(sentence.hit_index, (sentence.start, sentence.end))
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

    @staticmethod
    def _support(hits: Sequence[Hit], coverage: float) -> float:
        """How well the passages answer at all: the model's similarity of the question to the
        closest answer passage, and the share of its terms in the chosen sentence."""
        similarity = max((h.dense or 0.0 for h in hits[:ANSWER_PASSAGES]), default=0.0)
        return DENSE_WEIGHT * similarity + LEXICAL_WEIGHT * coverage

    def _coverage(self, question: str, sentences: list[_Sentence]) -> np.ndarray:
        """The share of the question's terms each sentence contains."""
        question_terms, *sentence_terms = self.tokenize([question, *(s.text for s in sentences)])
        wanted = {t for t in question_terms if t not in QUESTION_WORDS}
        if not wanted:
            return np.zeros(len(sentences))
        return np.array([len(wanted & set(terms)) / len(wanted) for terms in sentence_terms])

    def _rank(self, question: str, sentences: list[_Sentence], coverage: np.ndarray) -> np.ndarray:
        """Ranking scores; sentences beyond the answer passages score -inf (they only vote)."""
        base = coverage + np.array([RANK_BONUS / (s.hit_index + 1) for s in sentences])
        shape = AnswerShape(question)
        support = agreement([shape.candidates(s.text) for s in sentences], base.tolist())
        scores = base + VOTE_WEIGHT * np.array(support)
        scores[[s.hit_index >= ANSWER_PASSAGES for s in sentences]] = -np.inf
        return scores
