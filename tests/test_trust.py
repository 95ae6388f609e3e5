"""Answers a team can trust, on a few hand-written articles, with the real bundled model and
the shipped answer model (slow: loads the embedding model).

Each test is a behaviour the answer step lacked before the learned answer model: the
sentence that answers what is asked (who, how many), a sentence that leans on the one
before it quoted with it, the answer itself marked, one source when one source holds the
answer, and no answer from an article that is only about something near.
"""

from __future__ import annotations

import pytest

from index.answer.types import Answer
from index.build.reindex import reindex
from index.models.embeddings import load_embedder
from index.newsbot import Newsbot
from index.settings import Settings
from tests.conftest import write_article

pytestmark = pytest.mark.integration
ASKED_ON = "2024-07-12"

ARTICLES = {
    "union.md": (
        "Actors' union calls a strike",
        "2024-07-10",
        "The actors' union has 160,000 members across film and television. "
        "Fran Drescher leads the union and announced the strike on Thursday. "
        "Talks with the studios broke down after four weeks.",
    ),
    "aid.md": (
        "Congress weighs a new Ukraine package",
        "2024-07-09",
        "The United States has been Ukraine's largest backer since the invasion. "
        "It has sent $56.2 billion in military aid so far, officials said. "
        "Lawmakers are debating a further package this month.",
    ),
    "marathon.md": (
        "Chepngetich breaks the Chicago record",
        "2024-07-08",
        "Ruth Chepngetich won the Chicago Marathon on Sunday. "
        "She finished in two hours, nine minutes and 56 seconds, a world record.",
    ),
    "studios.md": (
        "Studios say talks will resume",
        "2024-07-11",
        "The studios said talks would resume next week. "
        "Netflix and Disney declined to comment on the negotiations.",
    ),
}


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Newsbot:
    root = tmp_path_factory.mktemp("trust")
    corpus = root / "corpus"
    corpus.mkdir()
    for name, (title, published, text) in ARTICLES.items():
        write_article(corpus, name, text, title=title, published=published, source="Example")
    settings = Settings(corpus_dir=corpus, index_dir=root / "index")
    reindex(settings, load_embedder(settings))
    return Newsbot(settings, load_embedder(settings, purpose="query"))


def ask(bot: Newsbot, question: str) -> Answer:
    return bot.ask(question, k=5, asked_on=ASKED_ON)


def quoted(answer: Answer) -> str:
    """What the answer quotes from its first source (an answer, or a hedge's closest)."""
    first = answer.citations[0]
    start, end = first.highlight or (0, 0)
    assert first.passage[start:end] in answer.answer
    return first.passage[start:end]


def marked(answer: Answer) -> str:
    assert answer.answer_span is not None, answer
    start, end = answer.answer_span
    return answer.answer[start:end]


def test_who_and_how_many_quote_different_sentences_of_one_passage(bot: Newsbot) -> None:
    who = ask(bot, "Who leads the actors' union?")
    how_many = ask(bot, "How many members does the actors' union have?")

    assert quoted(who).startswith("Fran Drescher leads the union")
    assert quoted(how_many).startswith("The actors' union has 160,000 members")
    assert how_many.found
    assert marked(how_many) == "160,000"
    assert how_many.to_dict()["answer_span"] == list(how_many.answer_span or ())


def test_a_sentence_leaning_on_the_one_before_is_quoted_with_it(bot: Newsbot) -> None:
    answer = ask(bot, "How much military aid has the United States sent to Ukraine?")

    assert quoted(answer) == (
        "The United States has been Ukraine's largest backer since the invasion. "
        "It has sent $56.2 billion in military aid so far, officials said."
    )


def test_one_supporting_source_is_shown_alone(bot: Newsbot) -> None:
    answer = ask(bot, "How many members does the actors' union have?")

    assert [(c.article_id, c.role) for c in answer.citations] == [("union.md", "support")]
    assert len(answer.ranked) > 1  # the others were retrieved, and not shown


def test_a_question_on_a_near_topic_gets_no_answer(bot: Newsbot) -> None:
    answer = ask(bot, "Who won the Boston Marathon?")

    assert not answer.found
    # Hedged or not covered: no passage is shown as support for an answer it lacks.
    assert all(c.role == "closest" for c in answer.citations)
