"""Asking: hybrid retrieval, filters, per-article cap, de-duplication, and the answer's shape."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from index.answer.types import Answer
from index.build.reindex import reindex
from index.errors import IndexMismatchError, IndexMissingError, NewsbotError
from index.newsbot import Newsbot
from index.search.ranking import Ranking
from index.search.retrieval import Filters, Hit
from index.settings import Settings
from tests.conftest import write_article
from tests.fakes import FakeEmbedder
from tests.passages import ANSWER_KEYS, CITATION_KEYS

# A question's embedding that takes this long makes the answer take at least as long.
EMBED_QUERY_SECONDS = 0.05


@pytest.fixture
def bot(settings: Settings, fake_embedder: FakeEmbedder) -> Newsbot:
    reindex(settings, fake_embedder)
    return Newsbot(settings, fake_embedder)


def test_answer_quotes_the_supporting_sentence_and_cites_it(bot: Newsbot) -> None:
    answer = bot.ask("How much military aid has the United States sent to Ukraine?")

    assert answer.found
    assert "$56.2 billion" in answer.answer
    assert answer.answer.endswith("[1]")
    first = answer.citations[0]
    assert (first.n, first.article_id, first.title) == (1, "aid.md", "US aid to Ukraine")
    assert (first.source, first.url) == ("Example News", "https://example.com/2024/11/17/aid")
    assert first.published == "2024-11-17"  # guessed from the URL
    assert first.highlight is not None
    start, end = first.highlight
    assert "$56.2 billion" in first.passage[start:end]
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))


def test_json_shape(bot: Newsbot) -> None:
    data = bot.ask("Who won the Chicago Marathon?").to_dict()

    assert set(data) == ANSWER_KEYS
    assert set(data["citations"][0]) == CITATION_KEYS
    start, end = data["answer_span"]
    assert data["answer"][start:end] == "Ruth Chepngetich"


def test_latency_is_the_time_the_answer_took(
    bot: Newsbot, fake_embedder: FakeEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    embed_query = fake_embedder.embed_query

    def slow_embed_query(text: str) -> np.ndarray:
        time.sleep(EMBED_QUERY_SECONDS)
        return embed_query(text)

    monkeypatch.setattr(fake_embedder, "embed_query", slow_embed_query)
    started = time.perf_counter()

    answer = bot.ask("Who won the Chicago Marathon?")

    took_ms = (time.perf_counter() - started) * 1000
    # latency_ms is rounded to a tenth of a millisecond.
    assert EMBED_QUERY_SECONDS * 1000 <= answer.latency_ms <= took_ms + 0.05
    assert answer.to_dict()["latency_ms"] == answer.latency_ms


def test_k_is_the_most_passages_cited_or_ranked(bot: Newsbot) -> None:
    question = "Who won the Chicago Marathon in record time?"
    unlimited = bot.ask(question, k=10)
    assert len(unlimited.ranked) == 3  # every article, without the limit

    limited = bot.ask(question, k=1)

    assert [c.article_id for c in limited.ranked] == [unlimited.ranked[0].article_id]
    assert [c.article_id for c in limited.citations] == ["sport/marathon.md"]


def test_filters_by_source_and_date(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    write_article(
        corpus,
        "sport/new-york.md",
        "Abdi Nageeye won the New York City Marathon in a record time on Sunday.",
        title="Nageeye wins in New York",
        source="Sports Daily",
        published="2024-11-03",
    )
    reindex(settings, fake_embedder)
    bot = Newsbot(settings, fake_embedder)
    question = "Who won the marathon in record time?"
    unfiltered = bot.ask(question).ranked
    assert {"Sports Daily", "Example News"} <= {c.source for c in unfiltered}
    assert "sport/marathon.md" in {c.article_id for c in unfiltered}  # published 2024-10-13

    by_source = bot.ask(question, filters=Filters(source="sports daily"))
    assert {c.source for c in by_source.ranked} == {"Sports Daily"}

    since = bot.ask(question, filters=Filters(since="2024-11-01"))
    assert since.found
    assert since.citations[0].article_id == "sport/new-york.md"
    assert all((c.published or "") >= "2024-11-01" for c in since.ranked)


def test_one_long_article_cannot_crowd_out_the_rest(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    paragraphs = [
        f"Harbour cranes report {i}: the harbour cranes moved {i} containers." for i in range(40)
    ]
    write_article(corpus, "harbour.md", "\n\n".join(p * 6 for p in paragraphs), title="Harbour")
    write_article(corpus, "harbour2.md", "The harbour cranes were idle on Sunday.", title="Idle")
    reindex(settings, fake_embedder)
    bot = Newsbot(settings.overridden(max_per_article=2), fake_embedder)

    answer = bot.ask("harbour cranes containers", k=5)

    ids = [c.article_id for c in answer.ranked]
    assert ids.count("harbour.md") == 2
    assert "harbour2.md" in ids


def test_near_duplicate_passages_are_collapsed(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    story = (
        "The city council approved a new tram line to the airport on Tuesday, "
        "with construction due to start next year and a budget of 400 million euros."
    )
    write_article(corpus, "tram-a.md", story, title="Tram line approved", source="Paper A")
    write_article(
        corpus,
        "tram-b.md",
        story + " Reporting by staff.",
        title="Tram line approved",
        source="Paper B",
    )
    reindex(settings, fake_embedder)
    bot = Newsbot(settings, fake_embedder)

    answer = bot.ask("What did the city council approve for the airport tram line?")

    assert answer.found
    tram = [c for c in answer.citations if c.article_id.startswith("tram")]
    assert len(tram) == 1


def test_a_completed_reindex_is_seen_without_reopening(
    bot: Newsbot, settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    before = bot.ask("Which volcano erupted in Iceland near Grindavik?")
    assert "volcano.md" not in {c.article_id for c in before.ranked}
    write_article(
        corpus,
        "volcano.md",
        "A volcano erupted in Iceland near the town of Grindavik.",
        title="Iceland volcano erupts",
    )

    reindex(settings, fake_embedder)

    answer = bot.ask("Which volcano erupted in Iceland near Grindavik?")
    assert "volcano.md" in {c.article_id for c in answer.ranked}


def test_empty_question_is_refused(bot: Newsbot) -> None:
    with pytest.raises(NewsbotError, match="empty"):
        bot.ask("   \n ")


def test_asking_before_indexing_names_the_fix(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    with pytest.raises(IndexMissingError, match="newsbot index"):
        Newsbot(settings, fake_embedder)


def test_asking_with_another_model_is_refused(bot: Newsbot, settings: Settings) -> None:
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        Newsbot(settings, FakeEmbedder(dimension=32, name="fake:32"))


def test_sentences_do_not_end_at_abbreviations_or_initials() -> None:
    from index.ingest.chunks import sentence_spans

    text = (
        "Robert F. Kennedy Jr. qualified in Utah. The U.S. sent aid. Gov. Abbott said no. "
        "It rose 5.5 percent. I met Dr. Smith.\nNew paragraph"
    )
    assert [text[a:b] for a, b in sentence_spans(text)] == [
        "Robert F. Kennedy Jr. qualified in Utah.",
        "The U.S. sent aid.",
        "Gov. Abbott said no.",
        "It rose 5.5 percent.",
        "I met Dr. Smith.",
        "New paragraph",
    ]


def _two_reports(corpus: Path) -> None:
    """Two reports of a vote count; the older one matches the question's words more often."""
    write_article(
        corpus,
        "old.md",
        "The harbour council vote count was 12 to 3. The harbour council vote count was final.",
        title="Harbour council vote count",
        published="2024-01-02",
    )
    write_article(
        corpus,
        "new.md",
        "The harbour council vote count was 9 to 6 in the second ballot.",
        title="Second ballot",
        published="2024-03-01",
    )


@pytest.mark.parametrize(("half_life", "first"), [(7.0, "new.md"), (0.0, "old.md")])
def test_recent_articles_rank_higher_when_the_setting_says_so(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path, half_life: float, first: str
) -> None:
    _two_reports(corpus)
    settings = settings.model_copy(update={"recency_half_life": half_life})
    reindex(settings, fake_embedder)
    bot = Newsbot(settings, fake_embedder)

    answer = bot.ask("What was the harbour council vote count?", asked_on="2024-03-02")

    assert answer.citations[0].article_id == first


def test_articles_published_after_the_question_are_left_out(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    _two_reports(corpus)
    reindex(settings, fake_embedder)
    bot = Newsbot(settings, fake_embedder)

    # Slashes as in the eval set's dates.
    answer = bot.ask("What was the harbour council vote count?", asked_on="2024/02/01")

    assert "old.md" in {c.article_id for c in answer.citations}
    assert "new.md" not in {c.article_id for c in answer.citations}


def test_a_question_date_that_is_not_a_date_is_refused(bot: Newsbot) -> None:
    with pytest.raises(NewsbotError, match="not a date"):
        bot.ask("Who won the Chicago Marathon?", asked_on="last Tuesday-ish")


class EchoAnswerer:
    """A second answer step: names the passages it was given, to show `Newsbot` uses it."""

    def __init__(self) -> None:
        self.seen: list[list[str]] = []

    def compose(
        self,
        question: str,
        hits: Sequence[Hit],
        *,
        limit: int | None = None,
        asked_on: str | None = None,
    ) -> Answer:
        self.seen.append([h.passage.article.id for h in hits])
        return Answer(question, True, f"{len(hits)} passages", [])


def test_newsbot_answers_with_the_answer_step_and_ranking_it_is_given(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    reindex(settings, fake_embedder)
    echo = EchoAnswerer()
    question = "comet marathon aid"

    every = Newsbot(settings, fake_embedder, answerer=echo).ask(question, k=5)
    # One candidate from each side (dense, BM25) instead of 50: at most two passages.
    narrow = Newsbot(settings, fake_embedder, answerer=echo, ranking=Ranking(candidates=1))

    assert every.answer == "3 passages"
    assert narrow.ask(question, k=5).answer in ("1 passages", "2 passages")
    assert len(echo.seen) == 2
