"""The extractive answer step: the sentence of the retrieved passages that holds the answer.

A learned model (`index.answer.answer_model`) scores every sentence of the best passages by
the probability that it holds the answer, from what `index.answer.features` describes (the
question's terms it holds, whether it holds a name, number or date of the kind asked, how
many other passages repeat that candidate, its passage's search scores and place...) and,
for the shipped model, from the reader's score (`index.models.reader`: it reads the question
with each sentence in its context). The reader reads only the sentences the model's screen,
over the features alone, rates best. The best sentence is the answer if the model is
confident enough; a little less, and newsbot says it is unsure and quotes the closest
passages (only those it finds relevant); less, and the answer is "not covered". The answer
itself is underlined only when the question asks for a name, number or date.

With `NEWSBOT_READER=shipped` (an ablation), the reader alone decides: it reads every
sentence, and its own calibrated chance that the best one is right decides; a hedge quotes
only passages it finds relevant, further sources only those naming the same answer in a
relevant sentence, and the answer is underlined only when it is sure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from index.answer.answer_model import AnswerModel, answer_rows
from index.answer.features import (
    Described,
    Describer,
    Sentence,
    screened,
    with_reader,
)
from index.answer.types import (
    CLOSEST,
    FURTHER_READING,
    HEDGE,
    NOT_COVERED,
    SUPPORT,
    Answer,
    Citation,
)
from index.models.reader import Reader, calibration_row, reader_text
from index.records import Hit
from index.settings import Settings


@dataclass(frozen=True)
class Extraction:
    """What the answer step takes besides its model; `None` means the model's own value."""

    further_reading: int = 2
    """At most this many other passages are listed as further reading: those that hold the
    answer's name, number or date too, when the question asks for one."""
    answer_above: float | None = None
    """At this confidence (the answer model's chance that the quote is right) and over, the
    quote is the answer."""
    hedge_above: float | None = None
    """From this confidence to `answer_above`, a hedge ("The closest they come: ..."); below
    it, "not covered"."""
    passages: int | None = None
    """The sentences of the best this many passages may be the answer."""
    rerank: bool = True
    """The passages described are cited in the order of their best sentence's score (not
    the search's)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> Extraction:
        """The defaults: none of these is a setting (the model is, `NEWSBOT_ANSWER_MODEL`)."""
        return cls()


@dataclass(frozen=True)
class Choice:
    """The answer step's evidence for one question: the sentences and their scores, the best
    one, the answer model's row for it and its verdict."""

    described: Described
    logits: np.ndarray
    sentence: Sentence
    row: np.ndarray
    confidence: float


class ExtractiveAnswerer:
    """Quotes the sentence most likely to hold the answer, with the sources bearing on it."""

    def __init__(
        self,
        weights: Extraction | None = None,
        model: AnswerModel | None = None,
        reader: Reader | None = None,
    ) -> None:
        """The answer step of `model` (default: the shipped one, unless `reader` is given
        alone), reading with `reader` when the model reads with one; or, with `reader` and no
        model, the reader alone deciding by its own calibration (an ablation)."""
        self.weights = weights or Extraction()
        w = self.weights
        self.model: AnswerModel | None = None
        if reader is not None and model is None:  # the ablation: the reader alone
            c = reader.calibration
            answer_above, hedge_above, passages = c.answer_above, c.hedge_above, c.passages
            self.relevant_above, self.sure_above = c.relevant_above, c.sure_above
        else:
            self.model = model or AnswerModel.load()
            reader = reader or self.model.load_reader()
            answer_above, hedge_above = self.model.answer_above, self.model.hedge_above
            passages = self.model.passages
            relevant = self.model.relevant_above
            self.relevant_above = -np.inf if relevant is None else relevant
            self.sure_above = 0.0
        self.reader = reader if self.model is None or self.model.reader else None
        self.answer_above = answer_above if w.answer_above is None else w.answer_above
        self.hedge_above = hedge_above if w.hedge_above is None else w.hedge_above
        self.describer = Describer(passages=w.passages or passages)

    def warm_up(self) -> None:
        """Load the reader now, if there is one (the answer model is loaded already)."""
        if self.reader is not None:
            self.reader.warm_up()

    def compose(
        self,
        question: str,
        hits: Sequence[Hit],
        *,
        limit: int | None = None,
        asked_on: str | None = None,
    ) -> Answer:
        """An `Answer` to `question` from `hits` (best first), citing at most `limit` of them.

        The supporting passage is source [1]; a hedged answer cites the two closest passages,
        "not covered" none. `Answer.ranked` lists the passages in the model's order (for
        the eval's hit@k), the cited ones first.
        """
        limit = limit or len(hits)
        choice = self.choose(question, hits)
        if choice is None:
            return Answer(question, False, NOT_COVERED, ranked=_citations(hits, [], limit))
        described, chosen, confidence = choice.described, choice.sentence, choice.confidence
        order = (
            _passage_order(described, choice.logits, len(hits))
            if self.weights.rerank
            else list(range(len(hits)))
        )
        if confidence < self.hedge_above:
            ranked = _citations(hits, order, limit)
            return Answer(question, False, NOT_COVERED, ranked=ranked, confidence=confidence)
        hedged = confidence < self.answer_above
        quoted = [chosen]
        runner_up = _runner_up(described, choice.logits, chosen, self.relevant_above)
        if hedged and runner_up is not None and limit > 1:
            quoted.append(runner_up)  # unsure: the two closest passages' best sentences
        further = [] if hedged else self._further(choice, order, limit)
        cited = [s.hit_index for s in quoted] + further
        quotes = [_with_context(described.sentences, s) for s in quoted]
        highlights = [(start, s.end) for (start, _), s in zip(quotes, quoted, strict=True)]
        highlights += [self._said(described, i, chosen) for i in further]
        roles = [CLOSEST] * len(quoted) if hedged else [SUPPORT]
        roles += [FURTHER_READING] * len(further)
        citations = [
            replace(c, role=role, highlight=highlight)
            for c, role, highlight in zip(
                _citations(hits, cited, len(cited)), roles, highlights, strict=True
            )
        ]
        rest = _citations(hits, [i for i in order if i not in cited], limit)
        ranked = [replace(c, n=n) for n, c in enumerate([*citations, *rest][:limit], start=1)]
        if hedged:
            text = HEDGE + "; ".join(f"“{q}” [{n}]" for n, (_, q) in enumerate(quotes, start=1))
            return Answer(question, False, text, citations, ranked=ranked, confidence=confidence)
        quote = quotes[0][1]
        span = None
        sure = confidence >= self.sure_above and described.kind != "any"
        if chosen.answer is not None and sure:
            offset = len(quote) - len(chosen.text) - chosen.start
            span = (chosen.answer[0] + offset, chosen.answer[1] + offset)
        return Answer(
            question,
            True,
            f"{quote} [1]",
            citations[:limit],
            answer_span=span,
            ranked=ranked,
            confidence=confidence,
        )

    def choose(self, question: str, hits: Sequence[Hit]) -> Choice | None:
        """The sentence likeliest to hold the answer, and how likely it is to be right."""
        described = self.describer.describe(question, hits)
        if not described.sentences:
            return None
        if self.model is None:  # the reader alone: it reads every sentence
            assert self.reader is not None
            texts = [_read_as(described.sentences, s, hits) for s in described.sentences]
            alone = self.reader.scores(question, texts)
            row = np.array(calibration_row(alone))
            confidence = self.reader.calibration.probability(row)
            best = described.sentences[int(np.argmax(alone))]
            return Choice(described, alone, best, row, confidence)
        model, features = self.model, described.features
        scores: np.ndarray | None = None
        if self.reader is None:
            logits = model.sentence.logits(features)
        else:  # the reader reads the sentences the screen rates best; the rest rank last
            assert model.screen is not None
            first = model.screen.logits(features)
            read = screened(first, model.read)
            texts = [_read_as(described.sentences, described.sentences[i], hits) for i in read]
            scores = self.reader.scores(question, texts)
            logits = np.full(len(first), -np.inf)  # never quoted, never found relevant
            logits[read] = model.sentence.logits(with_reader(features[read], scores))
        dense_top = max((h.dense or 0.0 for h in hits[: self.describer.passages]), default=0.0)
        top = int(np.argmax(logits))
        row = answer_rows(logits, dense_top, scores, chosen=features[top], question=question)
        confidence = float(model.answer.probabilities(row)[0])
        return Choice(described, logits, described.sentences[top], row[0], confidence)

    def _further(self, choice: Choice, order: list[int], limit: int) -> list[int]:
        """Other passages, best first, that hold the answer's name, number or date too (when
        the question asks for one: any name or number is no answer to "what happened?") in
        a sentence the reader finds relevant."""
        described, chosen = choice.described, choice.sentence
        if chosen.candidate is None or described.kind == "any":
            return []
        saying = {
            s.hit_index
            for s, score in zip(described.sentences, choice.logits, strict=True)
            if chosen.candidate in s.candidates
            and s.hit_index != chosen.hit_index
            and score >= self.relevant_above
        }
        room = max(min(self.weights.further_reading, limit - 1), 0)
        return [i for i in order if i in saying][:room]

    @staticmethod
    def _said(described: Described, hit_index: int, chosen: Sentence) -> tuple[int, int]:
        """The span of the first sentence of passage `hit_index` holding the answer."""
        for s in described.sentences:
            if s.hit_index == hit_index and chosen.candidate in s.candidates:
                return s.start, s.end
        raise ValueError(f"passage {hit_index} does not hold {chosen.candidate!r}")


def _with_context(sentences: list[Sentence], chosen: Sentence) -> tuple[int, str]:
    """Where the quote of `chosen` starts in its passage, and its text: with the sentence
    before when `chosen` leans on it ("They have sent...", "However, ...") and it is in the
    same passage."""
    if chosen.leans:
        for sentence in sentences:
            if sentence.hit_index == chosen.hit_index and sentence.order == chosen.order - 1:
                return sentence.start, f"{sentence.text} {chosen.text}"
    return chosen.start, chosen.text


def _read_as(sentences: list[Sentence], sentence: Sentence, hits: Sequence[Hit]) -> str:
    """What the reader reads of `sentence`: it, its article's title, the sentence before."""
    before = next(
        (
            s.text
            for s in sentences
            if s.hit_index == sentence.hit_index and s.order == sentence.order - 1
        ),
        "",
    )
    return reader_text(sentence.text, hits[sentence.hit_index].passage.article.title, before)


def _runner_up(
    described: Described, logits: np.ndarray, chosen: Sentence, relevant_above: float
) -> Sentence | None:
    """The best sentence of another passage than the chosen one's, if it scores at least
    `relevant_above`."""
    others = [
        (float(logit), n)
        for n, (s, logit) in enumerate(zip(described.sentences, logits, strict=True))
        if s.hit_index != chosen.hit_index and logit >= relevant_above
    ]
    return described.sentences[max(others)[1]] if others else None


def _passage_order(described: Described, chances: np.ndarray, count: int) -> list[int]:
    """Passage indexes by their best sentence's score, then those not described, in order."""
    best: dict[int, float] = {}
    for sentence, chance in zip(described.sentences, chances, strict=True):
        best[sentence.hit_index] = max(best.get(sentence.hit_index, -np.inf), float(chance))
    scored = sorted(best, key=lambda i: -best[i])
    return [*scored, *(i for i in range(count) if i not in best)]


def _citations(hits: Sequence[Hit], order: Sequence[int], limit: int) -> list[Citation]:
    """Citations of `hits` in `order` (default: their own), numbered from 1."""
    indexes = list(order) or list(range(len(hits)))
    return [Citation.of(hits[i], n) for n, i in enumerate(indexes[:limit], start=1)]
