"""The shipped answer step, really run (slow: loads torch and two models): the answer model
reading with the shipped reader, as newsbot answers by default, and the reader alone (an
ablation). Short questions as a team asks them, about a made-up article and about the
bundled seed article, answered with the figure or name, citing the article that says it.

The questions were written before the shipped reader and answer model were trained and were
not used to train, calibrate or choose them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from index.answer.answer_model import BUNDLED_MODEL
from index.answer.answerer import build_answerer, load_reader_for
from index.answer.types import Answer
from index.build.reindex import reindex
from index.models.embeddings import load_embedder
from index.models.reader import READER_DIR, SHIPPED
from index.newsbot import Newsbot
from index.settings import Settings
from tests.conftest import copy_seed, write_article

pytestmark = pytest.mark.integration

BARRIER = (
    "The Marlow Bay tidal barrier opened on Tuesday after six years of construction, the "
    "city's harbour authority said. The project cost £412 million, most of it paid by the "
    "national flood agency. The barrier's nine steel gates can be closed in under 40 minutes "
    "when a storm surge is forecast. Chief engineer Priya Nandakumar said the gates were "
    "tested against a surge of 4.2 metres. The barrier protects about 18,000 homes along "
    "the river Wend. Construction was led by the Dutch firm Van Oord Hydraulics, which also "
    "built barriers in Rotterdam. Local fishermen had opposed the design, saying it would "
    "block boats during closures. The authority agreed to pay them compensation of £2,000 "
    "for each day the gates stay shut. The next test closure is planned for March."
)

BARRIER_QUESTIONS = [
    ("how many gates does the barrier have?", "nine"),
    ("how much did the barrier cost?", "£412 million"),
    ("who's the chief engineer?", "Priya Nandakumar"),
    ("how many homes does it protect?", "18,000"),
    ("which company built it?", "Van Oord Hydraulics"),
    ("how fast can they shut the gates?", "40 minutes"),
    ("how big a surge was it tested for?", "4.2 metres"),
    ("what river is the barrier on?", "Wend"),
    ("how much do the fishermen get when it's closed?", "£2,000"),
    ("when's the next test closure?", "March"),
]

SEED_QUESTIONS = [
    ("How much aid has the US sent?", "$56.2 billion"),
    ("what are the missiles called?", "ATACMs"),
    ("how many troops has north korea sent?", "12,000"),
    ("who reported biden's decision?", "Associated Press"),
    ("when did russia invade?", "February 2022"),
    ("which region does russia want back?", "Kursk"),
    ("when does trump take office?", "January"),
    ("who is ukraine's strongest ally?", "United States"),
    ("who asked biden to allow strikes deeper in russia?", "Zelenskyy"),
    ("who is supplying russia with weapons?", "North Korea"),
]


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Newsbot:
    root = tmp_path_factory.mktemp("reader")
    corpus = copy_seed(root / "corpus")
    write_article(
        corpus,
        "marlow-barrier.md",
        BARRIER,
        title="Marlow Bay's tidal barrier opens",
        published="2026-11-03",
        source="Marlow Courier",
    )
    settings = Settings(corpus_dir=corpus, index_dir=root / "index")  # the default answer step
    reindex(settings, load_embedder(settings))
    return Newsbot(settings, load_embedder(settings, purpose="query"))


@pytest.fixture(scope="module")
def reader_bot(bot: Newsbot) -> Newsbot:
    """The same index answered by the shipped reader alone (`NEWSBOT_READER=shipped`)."""
    settings = bot.settings.model_copy(update={"reader": SHIPPED})
    return Newsbot(settings, load_embedder(settings, purpose="query"))


def ask(bot: Newsbot, question: str) -> Answer:
    return bot.ask(question, k=5, asked_on="2026-11-20")


def first_quote(answer: Answer) -> str:
    """What the reply quotes first: the answer, or a hedge's closest passage."""
    if answer.hedged:
        return answer.answer.split("” [1]")[0]
    return answer.answer


@pytest.fixture(scope="module")
def replies(bot: Newsbot) -> dict[str, Answer]:
    return {q: ask(bot, q) for q, _ in [*BARRIER_QUESTIONS, *SEED_QUESTIONS]}


@pytest.mark.xfail(
    strict=True,
    reason="issue 28, open: the shipped answer step answers 5 of these 20 outright (all "
    "right), hedges 5 (each quoting the answer) and says 'not covered' to 10: its confidence "
    "is low for short questions about a small corpus (docs/reader.md)",
)
def test_the_issue_bar_twenty_short_questions_answered_outright(
    replies: dict[str, Answer],
) -> None:
    right = [
        q
        for q, expected in [*BARRIER_QUESTIONS, *SEED_QUESTIONS]
        if replies[q].found and expected in replies[q].answer
    ]
    assert len(right) == 20


def test_the_answer_is_quoted_first_and_said_outright_only_when_right(
    replies: dict[str, Answer],
) -> None:
    pairs = [*BARRIER_QUESTIONS, *SEED_QUESTIONS]
    quoted = [q for q, expected in pairs if expected in first_quote(replies[q])]
    right = [q for q, expected in pairs if replies[q].found and expected in replies[q].answer]
    wrong = [q for q, expected in pairs if replies[q].found and expected not in replies[q].answer]

    assert len(quoted) >= 10, quoted  # 10 of 20 when the answer model shipped (the reader: 8)
    assert len(right) >= 5, right  # 5 (the reader: 2)
    assert wrong == []
    cited = [q for q, _ in BARRIER_QUESTIONS if replies[q].citations]
    assert len(cited) >= 3, cited  # 3 of 10 hedged or answered when it shipped (the reader: 5)
    for q in cited:  # and each of those cites the barrier's article first
        assert replies[q].citations[0].article_id == "marlow-barrier.md", q


def test_the_reader_alone_quotes_the_answer_first_less_often(reader_bot: Newsbot) -> None:
    pairs = [*BARRIER_QUESTIONS, *SEED_QUESTIONS]
    answers = {q: ask(reader_bot, q) for q, _ in pairs}
    quoted = [q for q, expected in pairs if expected in first_quote(answers[q])]
    wrong = [q for q, expected in pairs if answers[q].found and expected not in answers[q].answer]

    assert len(quoted) >= 8, quoted  # 8 of 20 when the reader shipped
    assert wrong == []


def with_thresholds(bot: Newsbot, path: Path, **changes: float) -> Newsbot:
    """The same index, answered by a copy of the shipped answer model with its thresholds
    (`answer_above`, `hedge_above`) changed."""
    data = json.loads(BUNDLED_MODEL.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))
    settings = bot.settings.model_copy(update={"answer_model": path})
    return Newsbot(settings, load_embedder(settings, purpose="query"))


def test_a_why_question_never_underlines_a_name(bot: Newsbot, tmp_path: Path) -> None:
    # A model sure of everything: a "why" still gets no name underlined.
    eager = with_thresholds(bot, tmp_path / "eager.json", answer_above=0.0, hedge_above=0.0)

    why = ask(eager, "why were the fishermen against it?")
    how_many = ask(eager, "how many homes does it protect?")

    assert why.found and why.citations[0].article_id == "marlow-barrier.md"
    assert why.answer_span is None
    assert how_many.found and how_many.answer_span is not None  # a number is underlined
    start, end = how_many.answer_span
    assert how_many.answer[start:end] == "18,000"


def test_a_question_neither_article_answers_is_not_answered(
    bot: Newsbot, reader_bot: Newsbot
) -> None:
    assert not ask(bot, "who won the world cup final?").found
    assert not ask(reader_bot, "who won the world cup final?").found


def test_the_default_answer_model_reads_with_the_shipped_reader() -> None:
    default = build_answerer(Settings())
    shipped = load_reader_for(Settings(reader=SHIPPED))

    assert load_reader_for(Settings()) is None  # no reader deciding alone
    assert default.model is not None and default.model.reader == SHIPPED  # type: ignore[attr-defined]
    assert default.reader is shipped  # type: ignore[attr-defined]
    assert shipped is not None and shipped.directory == READER_DIR
    alone = build_answerer(Settings(reader=SHIPPED))
    assert alone.reader is shipped and alone.model is None  # type: ignore[attr-defined]


def test_the_thresholds_decide_answer_hedge_and_not_covered(bot: Newsbot, tmp_path: Path) -> None:
    question = "how much did the barrier cost?"
    c = ask(bot, question).confidence
    assert c is not None and 0.02 < c < 0.98

    def asked(name: str, **changes: float) -> Answer:
        return ask(with_thresholds(bot, tmp_path / f"{name}.json", **changes), question)

    hedged = asked("hedge", hedge_above=c - 0.01, answer_above=c + 0.01)
    answered = asked("answer", hedge_above=c - 0.02, answer_above=c - 0.01)
    silent = asked("silent", hedge_above=c + 0.01, answer_above=c + 0.02)

    assert hedged.hedged and not hedged.found
    assert "£412 million" in first_quote(hedged)
    assert answered.found and "£412 million" in answered.answer
    assert hedged.confidence == answered.confidence == c
    assert not silent.found and not silent.hedged
    assert silent.citations == []


def test_warming_up_loads_the_reader_before_the_first_question(
    bot: Newsbot, tmp_path: Path
) -> None:
    # A reader of its own (a copy of the shipped one), not yet loaded.
    shutil.copytree(READER_DIR, tmp_path / "reader")
    settings = bot.settings.model_copy(update={"reader": str(tmp_path / "reader")})
    fresh = Newsbot(settings, load_embedder(settings, purpose="query"))
    reader = fresh.answerer.reader  # type: ignore[attr-defined]
    assert reader._model is None

    fresh.warm_up()

    assert reader._model is not None
