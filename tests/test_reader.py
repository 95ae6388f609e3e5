"""The reader decides what is shown: which sentence, whether to answer, hedge or say "not
covered", what a hedge quotes, which sources are listed and whether the answer itself is
underlined.

Here the reader is a stand-in whose scores the test sets (a sentence scores by the words it
shares with a list), so that these check the answer step's use of a reader, not what the
shipped one learned; tests/test_reader_model.py runs the shipped one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

from index.answer.answer_model import READER_ANSWER_FEATURES, AnswerModel
from index.answer.extractive import Extraction, ExtractiveAnswerer
from index.answer.features import FEATURES, READER_FEATURES
from index.answer.types import CLOSEST, FURTHER_READING, HEDGE, NOT_COVERED, SUPPORT
from index.errors import NewsbotError
from index.models.reader import Calibration, Reader, calibration_row, reader_text
from index.records import Hit
from tests.conftest import hand_set
from tests.passages import make_hit

# p = sigmoid(10 * (best - 0.5)): a best score of 0.9 is p 0.98, 0.5 is p 0.5, 0.1 is 0.02.
CALIBRATION = Calibration(
    weights=(10.0, 0.0, 0.0),
    bias=-5.0,
    answer_above=0.6,
    hedge_above=0.2,
    relevant_above=0.3,
    sure_above=0.9,
    passages=5,
)


class StandIn:
    """Scores a sentence (the part of its `reader_text` before [SEP]) by `scores[word]` for
    the first of its words found there, else `rest`."""

    def __init__(self, scores: dict[str, float], rest: float = 0.05, **calibration: Any) -> None:
        self.table = scores
        self.rest = rest
        self.calibration = replace(CALIBRATION, **calibration)
        self.read: list[str] = []

    def scores(self, question: str, texts: Sequence[str]) -> np.ndarray:
        self.read += texts
        out = []
        for text in texts:
            sentence = text.split(" [SEP] ")[0].lower()
            out.append(next((v for w, v in self.table.items() if w in sentence), self.rest))
        return np.array(out)


def answerer(reader: StandIn, **weights: Any) -> ExtractiveAnswerer:
    return ExtractiveAnswerer(Extraction(**weights), reader=cast(Reader, reader))


def hits(*passages: str) -> list[Hit]:
    return [make_hit(n, text, 1.0 / (n + 1)) for n, text in enumerate(passages)]


GATES = hits(
    "The Marlow Bay barrier opened on Tuesday. Its nine steel gates close in 40 minutes.",
    "Fishermen opposed the design. They said it would block boats during closures.",
    "The barrier cost 412 million pounds. Work began in 2019.",
)


def test_the_reader_chooses_the_sentence_not_the_search_order() -> None:
    reader = StandIn({"412 million": 0.95, "gates": 0.4})

    answer = answerer(reader).compose("how much did it cost?", GATES)

    assert answer.found
    assert answer.answer == "The barrier cost 412 million pounds. [1]"
    assert answer.citations[0].article_id == "a2.md"  # the third passage retrieved
    assert answer.ranked[0].article_id == "a2.md"  # and ranked first (reranked)
    # every sentence was read, each with its title and the sentence before it
    assert reader_text(
        "Work began in 2019.", "Article 2", "The barrier cost 412 million pounds."
    ) in (reader.read)


def test_without_rerank_the_search_order_stands_behind_the_cited_passage() -> None:
    reader = StandIn({"412 million": 0.95, "fishermen": 0.5})

    answer = answerer(reader, rerank=False).compose("how much did it cost?", GATES)

    assert [c.article_id for c in answer.ranked] == ["a2.md", "a0.md", "a1.md"]
    reranked = answerer(reader).compose("how much did it cost?", GATES)
    assert [c.article_id for c in reranked.ranked] == ["a2.md", "a1.md", "a0.md"]


def test_below_the_answer_threshold_it_hedges_and_quotes_only_relevant_passages() -> None:
    # best 0.55 (p 0.62 < answer_above 0.7); "fishermen" 0.35 is relevant, "cost" 0.1 is not
    reader = StandIn({"gates": 0.55, "fishermen": 0.35, "cost": 0.1}, answer_above=0.7)

    answer = answerer(reader).compose("how many gates?", GATES)

    assert not answer.found and answer.hedged
    assert answer.answer.startswith(HEDGE)
    assert [c.article_id for c in answer.citations] == ["a0.md", "a1.md"]
    assert {c.role for c in answer.citations} == {CLOSEST}

    unsure = StandIn({"gates": 0.55, "cost": 0.1}, answer_above=0.7)
    alone = answerer(unsure).compose("how many gates?", GATES)
    assert alone.hedged
    assert [c.article_id for c in alone.citations] == ["a0.md"]  # no filler quoted


def test_the_same_scores_answer_when_the_threshold_allows() -> None:
    reader = StandIn({"gates": 0.55, "fishermen": 0.35}, answer_above=0.6)

    answer = answerer(reader).compose("how many gates?", GATES)

    assert answer.found
    assert "Its nine steel gates" in answer.answer


def test_below_the_hedge_threshold_it_is_not_covered() -> None:
    reader = StandIn({"gates": 0.3}, hedge_above=0.2)  # p = sigmoid(-2) = 0.12

    answer = answerer(reader).compose("who won the world cup?", GATES)

    assert not answer.found and not answer.hedged
    assert answer.answer == NOT_COVERED
    assert answer.citations == []
    assert answer.confidence == pytest.approx(1 / (1 + np.exp(2.0)))


def test_the_answer_is_underlined_only_when_the_reader_is_sure() -> None:
    sure = answerer(StandIn({"412 million": 0.95})).compose("how much did it cost?", GATES)
    assert sure.answer_span is not None
    start, end = sure.answer_span
    assert "412 million" in sure.answer[start:end]

    found_not_sure = answerer(StandIn({"412 million": 0.7})).compose("how much did it cost?", GATES)
    assert found_not_sure.found  # p 0.88: answered, under sure_above 0.9
    assert found_not_sure.answer_span is None


def test_a_why_question_never_underlines_a_name() -> None:
    reader = StandIn({"fishermen": 0.99})

    answer = answerer(reader).compose("why did the fishermen oppose the barrier?", GATES)

    assert answer.found
    assert answer.answer_span is None


def test_sources_are_the_supporting_passage_then_those_the_reader_finds_saying_it() -> None:
    passages = hits(
        "The council paid 412 million pounds for the barrier.",
        "Critics said 412 million pounds was too much, in a column on parking.",
        "A reader letter about 412 million pounds and the weather.",
    )
    reader = StandIn({"council": 0.95, "critics": 0.4, "letter": 0.1})

    answer = answerer(reader).compose("how much did the barrier cost?", passages)

    assert [c.article_id for c in answer.citations] == ["a0.md", "a1.md"]
    assert [c.role for c in answer.citations] == [SUPPORT, FURTHER_READING]


def test_the_calibration_reads_the_best_score_and_its_lead() -> None:
    assert calibration_row(np.array([0.2, 0.9, 0.5])) == pytest.approx([0.9, 0.4, 0.5 + 0.1 / 3])
    assert CALIBRATION.probability([0.5, 0.0, 0.0]) == pytest.approx(0.5)
    assert CALIBRATION.probability([0.9, 0.0, 0.0]) > 0.95


# An answer model reading with a reader: the reader reads the `read` sentences sharing most
# of the question's terms; a sentence's logit is 10 x the reader's score (plus `extra`
# weights); the answer's, that logit - 5; a sentence bears on the question from 3.
def reading_model(relevant_above: float = 3.0, read: int = 6, **extra: float) -> AnswerModel:
    sentence = hand_set((*FEATURES, *READER_FEATURES), 0.0, reader=10.0, **extra)
    answer = hand_set(READER_ANSWER_FEATURES, -5.0, sentence_logit=1.0)
    return AnswerModel(
        sentence,
        answer,
        0.6,
        0.2,
        passages=5,
        reader="stand-in",
        relevant_above=relevant_above,
        screen=hand_set(FEATURES, 0.0, coverage=1.0, passage_rank=0.1),
        read=read,
    )


def reading(
    reader: StandIn, model: AnswerModel, weights: Extraction | None = None
) -> ExtractiveAnswerer:
    return ExtractiveAnswerer(weights, model=model, reader=cast(Reader, reader))


def test_an_answer_model_reading_with_the_reader_chooses_by_the_readers_scores() -> None:
    reader = StandIn({"412 million": 0.95, "gates": 0.4})

    answer = reading(reader, reading_model()).compose("how much did it cost?", GATES)

    assert answer.found
    assert answer.answer == "The barrier cost 412 million pounds. [1]"
    assert answer.confidence == pytest.approx(1 / (1 + np.exp(-(9.5 - 5.0))))
    assert len(reader.read) == 6  # every sentence of the three passages


def test_the_reader_reads_only_the_sentences_the_features_rate_best() -> None:
    # "cost" is the question's one term; the screen rates its sentence first, then the
    # first passage's by rank. The reader would rate the gates best, but never reads them.
    reader = StandIn({"gates": 0.99, "412 million": 0.6})

    answer = reading(reader, reading_model(read=2)).compose("how much did it cost?", GATES)

    assert len(reader.read) == 2
    assert any("412 million" in text for text in reader.read)
    assert answer.answer.startswith("The barrier cost 412 million pounds.")


def test_the_reader_and_the_sentences_features_decide_together() -> None:
    # The reader prefers the gates (0.5 against 0.4); the money asked for tips it.
    reader = StandIn({"gates": 0.5, "412 million": 0.4})

    alone = reading(reader, reading_model()).compose("how much did it cost?", GATES)
    both = reading(reader, reading_model(has_candidate=3.0)).compose("how much did it cost?", GATES)

    assert "gates" in alone.answer
    assert "412 million" in both.answer


def test_a_reading_models_hedge_quotes_only_sentences_it_finds_relevant() -> None:
    reader = StandIn({"gates": 0.55, "fishermen": 0.35, "cost": 0.1})  # logits 5.5, 3.5, 1

    unsure = Extraction(answer_above=0.9)  # p = sigmoid(5.5 - 5) = 0.62: a hedge

    relevant = reading(reader, reading_model(3.0), unsure).compose("how many gates?", GATES)
    strict = reading(reader, reading_model(4.0), unsure).compose("how many gates?", GATES)

    assert relevant.hedged and strict.hedged
    assert [c.article_id for c in relevant.citations] == ["a0.md", "a1.md"]
    assert [c.article_id for c in strict.citations] == ["a0.md"]


def test_a_reading_model_is_saved_with_its_readers_name(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    reading_model().save(path)

    loaded = AnswerModel.load(path)

    assert loaded.reader == "stand-in"
    assert loaded.relevant_above == 3.0
    assert loaded.sentence.features == (*FEATURES, *READER_FEATURES)
    data = json.loads(path.read_text())
    data["reader"] = None  # its features then are not the model's
    path.write_text(json.dumps(data))
    with pytest.raises(NewsbotError, match="other features"):
        AnswerModel.load(path)


def test_a_sentence_the_reader_did_not_read_is_never_quoted_beside_a_hedge() -> None:
    # Only the cost sentence is read; every sentence read would be relevant.
    reader = StandIn({"412 million": 0.6})
    unsure = Extraction(answer_above=0.99)

    answer = reading(reader, reading_model(-100.0, read=1), unsure).compose(
        "how much did it cost?", GATES
    )

    assert answer.hedged
    assert [c.article_id for c in answer.citations] == ["a2.md"]
    assert answer.confidence == pytest.approx(1 / (1 + np.exp(-(6.0 - 5.0))))
