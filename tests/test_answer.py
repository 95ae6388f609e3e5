"""The answer step on passages made by hand: the sentence, its context, the answer marked in
it, the sources listed, and the decision to answer, hedge or say "not covered".

The model here is hand-set (tests/conftest.py: a sentence is chosen by its share of the
question's terms, and answers when it holds half of them), so that these tests check the
answer step's mechanics, not what a model learned; tests/test_trust.py checks the shipped
model on real embeddings.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from index.answer.answer_model import BUNDLED_MODEL, AnswerModel
from index.answer.extractive import Extraction, ExtractiveAnswerer
from index.answer.features import QUESTION_WORDS
from index.answer.types import HEDGE, NOT_COVERED, Answer
from index.errors import NewsbotError
from index.search.retrieval import Hit
from index.store.terms import Tokenizer
from tests.conftest import SIMPLE_ANSWER, SIMPLE_SENTENCE
from tests.passages import make_hit

SIMPLE = AnswerModel(SIMPLE_SENTENCE, SIMPLE_ANSWER, 0.5, 0.5, passages=5)


def hits(*passages: str, dense: float = 0.7) -> list[Hit]:
    """One hit per passage text, in rank order, each from its own article."""
    return [make_hit(n, text, 1.0 / (n + 1), dense=dense) for n, text in enumerate(passages)]


def composer(**weights: float) -> ExtractiveAnswerer:
    return ExtractiveAnswerer(Extraction(**weights), SIMPLE)  # type: ignore[arg-type]


def marked(answer: Answer) -> str:
    assert answer.answer_span is not None, answer
    start, end = answer.answer_span
    return answer.answer[start:end]


def test_the_answer_is_the_sentence_holding_the_question_and_marks_the_name() -> None:
    found = hits(
        "The darts world championship final at Alexandra Palace was watched by millions. "
        "Luke Humphries won the darts world championship final against Luke Littler.",
        "Fans queued for hours at Alexandra Palace.",
    )
    answer = composer().compose("Who won the darts world championship final?", found)

    assert answer.found
    assert answer.answer == (
        "Luke Humphries won the darts world championship final against Luke Littler. [1]"
    )
    assert marked(answer) == "Luke Humphries"


def test_how_much_marks_the_amount_of_money() -> None:
    found = hits(
        "The United States sent up to 12,000 troops to the region in 2022. "
        "The United States has provided over $56.2 billion in military aid to Ukraine."
    )
    answer = composer().compose("How much military aid has the United States sent?", found)

    assert answer.found
    assert marked(answer) == "$56.2 billion"


def test_a_sentence_leaning_on_the_one_before_is_quoted_with_it() -> None:
    passage = (
        "Germany announced a new air defence package for Ukraine on Monday. "
        "It includes three Patriot systems and 40 launchers, the ministry said."
    )
    answer = composer().compose("How many Patriot systems does the package include?", hits(passage))

    assert answer.answer == (
        "Germany announced a new air defence package for Ukraine on Monday. "
        "It includes three Patriot systems and 40 launchers, the ministry said. [1]"
    )
    start, end = answer.citations[0].highlight or (0, 0)
    assert passage[start:end] == answer.answer.removesuffix(" [1]")


def test_a_sentence_standing_on_its_own_is_quoted_alone() -> None:
    passage = (
        "Germany announced a new air defence package for Ukraine on Monday. "
        "The package includes three Patriot systems, the ministry said."
    )
    answer = composer().compose("How many Patriot systems does the package include?", hits(passage))

    assert answer.answer == "The package includes three Patriot systems, the ministry said. [1]"
    assert marked(answer) == "three"


def test_only_passages_naming_the_same_answer_are_listed_as_further_reading() -> None:
    found = hits(
        "Luke Humphries won the darts world championship final on Wednesday.",
        "Organisers said the crowd at the darts final was the largest yet.",
        "Luke Humphries thanked his family after the darts final.",
        "Luke Humphries, the new world champion, will play in Bahrain next.",
    )
    answer = composer().compose("Who won the darts world championship final?", found, limit=3)

    assert [(c.n, c.article_id, c.role) for c in answer.citations] == [
        (1, "a0.md", "support"),
        (2, "a2.md", "further reading"),
        (3, "a3.md", "further reading"),
    ]
    assert all(
        "Luke Humphries" in c.passage[slice(*c.highlight or (0, 0))] for c in answer.citations
    )
    # Every passage is still ranked (for the eval and the bot's More sources), cited first.
    assert [c.article_id for c in answer.ranked] == ["a0.md", "a2.md", "a3.md"]
    alone = composer(further_reading=0).compose(
        "Who won the darts world championship final?", found
    )
    assert [c.article_id for c in alone.citations] == ["a0.md"]


def test_unsure_answers_hedge_and_cite_the_passage_as_closest_not_as_support() -> None:
    found = hits("Luke Humphries won the darts world championship final on Wednesday.")
    question = "Who won the darts world championship final?"

    sure = composer(answer_above=0.0, hedge_above=0.0).compose(question, found)
    unsure = composer(answer_above=1.01, hedge_above=0.0).compose(question, found)
    nothing = composer(answer_above=1.01, hedge_above=1.01).compose(question, found)

    assert sure.found and sure.citations[0].role == "support"
    assert not unsure.found and unsure.hedged and unsure.answer_span is None
    assert unsure.answer.startswith(HEDGE) and "Luke Humphries won" in unsure.answer
    assert [c.role for c in unsure.citations] == ["closest"]
    assert (nothing.found, nothing.hedged, nothing.answer, nothing.citations) == (
        False,
        False,
        NOT_COVERED,
        [],
    )
    assert nothing.confidence == sure.confidence


def test_an_unsure_answer_quotes_the_two_closest_passages() -> None:
    found = hits(
        "Luke Humphries won the darts world championship final on Wednesday.",
        "Fans at the darts world championship final cheered Luke Littler.",
        "Tickets for the final sold out in an hour.",
    )
    question = "Who won the darts world championship final?"

    unsure = composer(answer_above=1.01, hedge_above=0.0).compose(question, found)
    alone = composer(answer_above=1.01, hedge_above=0.0).compose(question, found, limit=1)

    assert unsure.answer == (
        f"{HEDGE}“Luke Humphries won the darts world championship final on Wednesday.” [1]; "
        "“Fans at the darts world championship final cheered Luke Littler.” [2]"
    )
    assert [(c.article_id, c.role) for c in unsure.citations] == [
        ("a0.md", "closest"),
        ("a1.md", "closest"),
    ]
    assert [c.n for c in alone.citations] == [1]  # --k 1: one quote


def test_a_sentence_holding_few_of_the_question_terms_is_no_answer() -> None:
    question = "Who won the darts world championship final?"
    answer = composer().compose(question, hits("Fans queued for hours at Alexandra Palace."))

    assert (answer.found, answer.answer, answer.citations) == (False, NOT_COVERED, [])


def test_no_passages_is_not_covered() -> None:
    assert composer().compose("Who won?", []).answer == NOT_COVERED


def test_every_question_word_is_dropped_from_the_question_and_none_is_a_dead_entry() -> None:
    plain, question = Tokenizer(), Tokenizer(extra_stopwords=QUESTION_WORDS)
    words = sorted(QUESTION_WORDS)
    # A stop word already dropped from every text would be a dead entry here.
    dead = [word for word, terms in zip(words, plain(words), strict=True) if not terms]
    assert dead == []
    assert question(words) == [[] for _ in words]
    assert question(["Who has sent tanks?"]) == [["sent", "tank"]]


def test_the_shipped_model_loads_and_says_how_it_was_made() -> None:
    model = AnswerModel.load()

    assert {"command", "date", "commit", "train", "calibrate", "choose"} <= set(model.made)
    assert model.made["command"].startswith("python -m index.learn")
    assert 0.0 < model.hedge_above <= model.answer_above < 1.0


def test_the_shipped_model_is_installed_with_the_package() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    package_data = pyproject["tool"]["setuptools"]["package-data"]["index.answer"]

    assert BUNDLED_MODEL.name in package_data
    assert BUNDLED_MODEL.parent.parts[-2:] == ("index", "answer")


def test_a_model_file_that_is_not_one_is_one_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    with pytest.raises(NewsbotError, match="cannot read answer model"):
        AnswerModel.load(missing)
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"format": 1, "features": {}}))
    with pytest.raises(NewsbotError, match=r"not an answer model of this version.*index\.learn"):
        AnswerModel.load(old)
    other = tmp_path / "other.json"
    data = SIMPLE.to_dict()
    data["sentence"]["features"].pop("coverage")
    other.write_text(json.dumps(data))
    with pytest.raises(NewsbotError, match="other features"):
        AnswerModel.load(other)
