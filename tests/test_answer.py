"""Choosing the answer sentence, and deciding that nothing answers, from retrieved passages."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from index.answer import NOT_COVERED
from index.extractive import QUESTION_WORDS, Extraction, ExtractiveAnswerer
from index.retrieval import Hit
from index.terms import Tokenizer
from tests.passages import make_hit

MIN_SUPPORT = 0.35


def hits(*passages: str, dense: float = 0.7) -> list[Hit]:
    """One hit per passage text, in rank order, each from its own article."""
    return [make_hit(n, text, 1.0 / (n + 1), dense=dense) for n, text in enumerate(passages)]


@pytest.fixture(scope="module")
def composer() -> ExtractiveAnswerer:
    return ExtractiveAnswerer(Extraction(min_support=MIN_SUPPORT))


def answer_of(composer: ExtractiveAnswerer, question: str, found: Sequence[Hit]) -> str:
    return composer.compose(question, found).answer


def test_the_answer_names_someone_the_question_does_not(composer: ExtractiveAnswerer) -> None:
    found = hits(
        "The darts world championship final at Alexandra Palace was watched by millions. "
        "Luke Humphries won the darts world championship final against Luke Littler.",
        "Humphries, the new champion, thanked the crowd.",
        "Fans queued for hours at Alexandra Palace.",
    )
    answer = answer_of(composer, "Who won the darts world championship final?", found)
    assert answer.startswith("Luke Humphries won")
    assert answer.endswith("[1]")


def test_a_sentence_repeated_by_other_passages_wins_the_tie(composer: ExtractiveAnswerer) -> None:
    found = hits(
        "The mayor of Springfield was elected on Tuesday. Officials said turnout was high.",
        "Jane Doe became mayor of Springfield after the vote.",
        "Jane Doe thanked voters in Springfield.",
    )
    # Both the first passage's first sentence and the second passage's sentence hold
    # "mayor" and "Springfield"; the name the other passages repeat decides.
    answer = answer_of(composer, "Who is the new mayor of Springfield?", found)
    assert answer == "Jane Doe became mayor of Springfield after the vote. [2]"


def test_how_much_asks_for_an_amount_of_money(composer: ExtractiveAnswerer) -> None:
    found = hits(
        "They have sent up to 12,000 troops to Ukraine. "
        "The United States has provided over $56.2 billion in military aid to Ukraine."
    )
    answer = answer_of(composer, "How much aid has the US sent to Ukraine?", found)
    assert "$56.2 billion" in answer


def test_passages_far_from_the_question_are_not_an_answer(composer: ExtractiveAnswerer) -> None:
    found = hits("Argentina beat France on penalties in Qatar.", dense=0.1)
    answer = composer.compose("Who won the 2022 World Cup?", found)
    assert (answer.found, answer.answer, answer.citations) == (False, NOT_COVERED, [])

    close = composer.compose("Who won the 2022 World Cup?", hits(found[0].passage.chunk.text))
    assert close.found
    assert close.answer.startswith("Argentina")


def test_no_passages_is_not_covered(composer: ExtractiveAnswerer) -> None:
    assert composer.compose("Who won?", []).answer == NOT_COVERED


def test_every_question_word_is_dropped_from_the_question_and_none_is_a_dead_entry() -> None:
    plain, question = Tokenizer(), Tokenizer(extra_stopwords=QUESTION_WORDS)
    words = sorted(QUESTION_WORDS)
    # A stop word already dropped from every text would be a dead entry here.
    dead = [word for word, terms in zip(words, plain(words), strict=True) if not terms]
    assert dead == []
    assert question(words) == [[] for _ in words]
    assert question(["Who has sent tanks?"]) == [["sent", "tank"]]


def test_the_weights_are_parameters(composer: ExtractiveAnswerer) -> None:
    question = "How much aid has the US sent to Ukraine?"
    found = hits("The US has sent $56.2 billion in aid to Ukraine since 2022.")
    assert composer.compose(question, found).found
    strict = ExtractiveAnswerer(Extraction(min_support=0.99))
    assert not strict.compose(question, found).found


def test_a_sentence_echoing_only_question_words_is_no_answer(composer: ExtractiveAnswerer) -> None:
    question = "How much would the new bridge cost?"
    echo = hits("How much would you pay? Who could have known what would happen?", dense=0.5)
    assert not composer.compose(question, echo).found
    assert composer.compose(question, hits("The new bridge will cost $2 billion.", dense=0.5)).found
