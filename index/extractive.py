"""The extractive answer step: the sentence of the retrieved passages that best answers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.answer import NOT_COVERED, Answer, Citation
from index.candidates import AnswerShape, agreement
from index.chunks import sentence_spans
from index.retrieval import Hit
from index.settings import Settings
from index.terms import Tokenizer

# Words that shape a question but are never its subject (English stop words, such as "is",
# "the" or "of", are dropped from every text anyway). Plain words: they are dropped before
# stemming.
QUESTION_WORDS = frozenset(
    "how much many mean means meaning what who whom whose which when where why "
    "do does did doing has have had were would can could should".split()
)


@dataclass(frozen=True)
class Extraction:
    """The weights the extractive answer step chooses a sentence and judges support by.

    Where each default came from, and what other values scored, is in docs/tuning.md:
    `voting_passages` and `vote_weight` came with the model-free answer step (0f9592f), the
    others are the first version's, their origin not recorded.
    """

    answer_passages: int = 3
    """Sentences of the best this many passages may be the answer (other counts of answer or
    voting passages scored 28-35 answers of 93, against 35)."""
    voting_passages: int = 5
    """Sentences of the best this many passages vote for the candidate answers they hold."""
    vote_weight: float = 0.4
    """A sentence ranks by its share of the question's terms plus this times the support of
    the best-voted candidate answer (name, number, date) it holds..."""
    rank_bonus: float = 0.04
    """...plus this / n for a sentence of the n-th passage (0-0.15: 32-36 answers of 93)."""
    dense_weight: float = 0.55
    """Support (does anything answer?) is this times the model's similarity of the question
    to the closest answer passage..."""
    lexical_weight: float = 0.45
    """...plus this times the share of the question's terms in the chosen sentence."""
    min_support: float = 0.35
    """Below this support the answer is "not covered" (NEWSBOT_MIN_SUPPORT)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Extraction:
        """The defaults, with the weights that are settings taken from `settings`."""
        return cls(min_support=settings.min_support)


@dataclass(frozen=True)
class _Sentence:
    hit_index: int
    start: int
    end: int
    text: str


class ExtractiveAnswerer:
    """Chooses the answer sentence and decides whether the passages support an answer at all.

    It runs no model (the question's embedding was the only one needed): the sentence is
    chosen by the question's terms it contains, by the candidate answers (names, numbers,
    amounts, dates, as the question asks) it shares with the other top passages, and by its
    passage's rank. Whether the passages answer at all is judged from their similarity to
    the question and the chosen sentence's share of its terms.
    """

    def __init__(self, weights: Extraction | None = None) -> None:
        self.weights = weights or Extraction()
        self._question_terms = Tokenizer(extra_stopwords=QUESTION_WORDS)
        self._sentence_terms = Tokenizer()

    def compose(self, question: str, hits: Sequence[Hit]) -> Answer:
        """An `Answer` citing `hits` in order, or the not-covered answer with no citation."""
        sentences = [
            _Sentence(i, s, e, hit.passage.chunk.text[s:e])
            for i, hit in enumerate(hits[: self.weights.voting_passages])
            for s, e in sentence_spans(hit.passage.chunk.text)
        ]
        if not sentences:
            return Answer(question, False, NOT_COVERED)
        coverage = self._coverage(question, sentences)
        scores = self._rank(question, sentences, coverage)
        ranked = [int(i) for i in np.argsort(-scores, kind="stable")]
        chosen = sentences[ranked[0]]
        if self._support(hits, coverage[ranked[0]]) < self.weights.min_support:
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

    def _support(self, hits: Sequence[Hit], coverage: float) -> float:
        """How well the passages answer at all: the model's similarity of the question to the
        closest answer passage, and the share of its terms in the chosen sentence."""
        answer_hits = hits[: self.weights.answer_passages]
        similarity = max((h.dense or 0.0 for h in answer_hits), default=0.0)
        return self.weights.dense_weight * similarity + self.weights.lexical_weight * coverage

    def _coverage(self, question: str, sentences: list[_Sentence]) -> np.ndarray:
        """The share of the question's terms each sentence contains."""
        wanted = set(self._question_terms([question])[0])
        if not wanted:
            return np.zeros(len(sentences))
        sentence_terms = self._sentence_terms([s.text for s in sentences])
        return np.array([len(wanted & set(terms)) / len(wanted) for terms in sentence_terms])

    def _rank(self, question: str, sentences: list[_Sentence], coverage: np.ndarray) -> np.ndarray:
        """Ranking scores; sentences beyond the answer passages score -inf (they only vote)."""
        w = self.weights
        base = coverage + np.array([w.rank_bonus / (s.hit_index + 1) for s in sentences])
        shape = AnswerShape(question)
        support = agreement([shape.candidates(s.text) for s in sentences], base.tolist())
        scores = base + w.vote_weight * np.array(support)
        scores[[s.hit_index >= w.answer_passages for s in sentences]] = -np.inf
        return scores
