"""One `Newsbot` answering from several threads at once, as the bot's worker threads do."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from index.answer.types import Answer
from index.build.reindex import reindex
from index.newsbot import Newsbot
from index.settings import Settings
from tests.conftest import write_article
from tests.fakes import FakeEmbedder

THREADS = 8
ASKS = 240
REOPENS = 10
QUESTIONS = {
    "How much military aid has the United States sent to Ukraine?": ("aid.md", "$56.2 billion"),
    "Who won the Chicago Marathon in a world record time?": ("sport/marathon.md", "Chepngetich"),
    "Which comet was visible to the naked eye?": ("science/comet.txt", "comet"),
}
LATE_QUESTION = "Which volcano erupted near Grindavik in Iceland?"


def check(answer: Answer, article_id: str, words: str) -> None:
    assert answer.found, answer
    assert answer.citations[0].article_id == article_id
    assert words in answer.answer
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    assert all(c.passage for c in answer.citations)


def test_many_threads_ask_while_the_index_is_reopened(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    reindex(settings, fake_embedder)
    bot = Newsbot(settings, fake_embedder)
    questions = list(QUESTIONS)
    asking = threading.Event()
    asking.set()

    def ask(i: int) -> tuple[str, Answer]:
        question = questions[i % len(questions)]
        return question, bot.ask(question)

    def status() -> None:
        while asking.is_set():
            assert bot.status().articles >= 3

    with ThreadPoolExecutor(THREADS) as pool:
        watcher = pool.submit(status)
        asked = [pool.submit(ask, i) for i in range(ASKS)]
        # Each reindex is a new generation: the next question switches everything (catalog,
        # store client, BM25) while the other threads are mid-question.
        for n in range(REOPENS):
            write_article(corpus, f"notes/{n}.md", f"Harbour note {n}.", title=f"Note {n}")
            reindex(settings, fake_embedder)
            bot.status()
        write_article(
            corpus,
            "volcano.md",
            "A volcano erupted near Grindavik in Iceland on Monday.",
            title="Iceland volcano",
        )
        reindex(settings, fake_embedder)
        late = [pool.submit(bot.ask, LATE_QUESTION) for _ in range(THREADS)]
        results = [f.result() for f in asked]
        late_answers = [f.result() for f in late]
        asking.clear()
        watcher.result()

    for question, answer in results:
        check(answer, *QUESTIONS[question])
    for answer in late_answers:
        check(answer, "volcano.md", "Grindavik")
    assert bot.status().generation == REOPENS + 2
