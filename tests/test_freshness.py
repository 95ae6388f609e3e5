"""A reader keeps answering while another process reindexes, then sees what it wrote."""

from __future__ import annotations

import itertools
import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from index.answer.types import Answer
from index.build.reindex import reindex
from index.ingest.chunks import chunk_id
from index.newsbot import Newsbot
from index.settings import Settings
from index.store.layout import IndexLayout
from index.store.writer_lock import writer_lock
from tests.conftest import live_catalog, write_article
from tests.fakes import DiesAfter, FakeEmbedder, Killed

ROOT = Path(__file__).resolve().parent.parent
WRITER = """
import sys
from pathlib import Path
from index.models.embeddings import register_embedder
from index.build.reindex import reindex
from index.settings import Settings
from tests.fakes import FakeEmbedder

embedder = FakeEmbedder()
register_embedder("fake", lambda arg, settings: embedder)
settings = Settings(corpus_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]),
                    embed_model=embedder.name)
print(reindex(settings, embedder).added)
"""

# A reindex that lasts a few seconds: a model that takes its time over a few hundred chunks.
ARTICLES = 60
PARAGRAPHS = 30  # about ten chunks per article; an edit keeps four of them
EMBED_SECONDS_PER_TEXT = 0.01
# Each article's own words, and words all articles share. Chroma's HNSW search is
# approximate: when every article was drawn from the same few words, the fake model gave all
# chunks nearly one vector and the search missed whole articles in some builds (Chroma
# builds its graph in parallel, so each build misses others), in one process as in two.
ARTICLE_WORDS = 6
FILLER_WORDS = 100
QUESTION = "How much did the council of {town} led by {mayor} approve?"
SLOW_WRITER = """
import sys, time
from pathlib import Path
from index.models.embeddings import register_embedder
from index.build.reindex import reindex
from index.settings import Settings
from tests.fakes import FakeEmbedder

class SlowEmbedder(FakeEmbedder):
    def embed(self, texts):
        time.sleep(float(sys.argv[3]) * len(texts))
        return super().embed(texts)

embedder = SlowEmbedder()
register_embedder("fake", lambda arg, settings: embedder)
settings = Settings(corpus_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]),
                    embed_model=embedder.name)
report = reindex(settings, embedder)
print(len(report.added), len(report.updated), len(report.removed))
"""
# Readers started while the reindex runs (a restarted bot, `newsbot ask`): each opens the
# index afresh, asks once and closes, until told to stop.
RESTARTING_READERS = """
import json, sys, time
from pathlib import Path
from index.newsbot import Newsbot
from index.settings import Settings
from tests.fakes import FakeEmbedder

embedder = FakeEmbedder()
settings = Settings(corpus_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]),
                    embed_model=embedder.name)
stop, question = Path(sys.argv[3]), sys.argv[4]
counts, errors = {"answered": 0}, []
deadline = time.monotonic() + 60
while not stop.exists() and time.monotonic() < deadline:
    try:
        bot = Newsbot(settings, embedder)
    except Exception as exc:
        errors.append(f"opening: {type(exc).__name__}: {exc}")
        continue
    try:
        answer = bot.ask(question)
        assert answer.found and all(c.passage for c in answer.citations), answer
        counts["answered"] += 1
    except Exception as exc:
        errors.append(f"{type(exc).__name__}: {exc}")
    finally:
        bot.close()
print(json.dumps({**counts, "errors": errors[:5]}))
"""


def _names(i: int) -> tuple[str, str]:
    """Article `i`'s made-up town and mayor: words no other article has."""
    town = "velm" + "".join("abcdefghij"[int(d)] for d in str(i)) + "ix"
    mayor = "quor" + "".join("klmnpqrstv"[int(d)] for d in str(i)) + "ix"
    return town, mayor


def _question(i: int) -> str:
    town, mayor = _names(i)
    return QUESTION.format(town=town, mayor=mayor)


def _filler() -> list[str]:
    """Made-up words none of which the fake model puts where it puts a word every question
    has: else the articles holding one would match every question."""
    embedder = FakeEmbedder()
    taken = set(np.flatnonzero(embedder.embed_query(QUESTION.format(town="", mayor=""))))
    words = (f"topic{a}{b}{c}" for a in "abcdefghij" for b in "abcdefghij" for c in "abcdefghij")
    fitting = (w for w in words if not taken & set(np.flatnonzero(embedder.embed_query(w))))
    return list(itertools.islice(fitting, FILLER_WORDS))


FILLER = _filler()


def _news(i: int, edited: bool = False) -> str:
    town, mayor = _names(i)
    rng = random.Random(i)
    own = [town, mayor, *rng.sample(FILLER, ARTICLE_WORDS)]
    paragraphs = [
        " ".join(rng.choice(own if rng.random() < 0.5 else FILLER) for _ in range(60)) + "."
        for _ in range(PARAGRAPHS // 3 if edited else PARAGRAPHS)
    ]
    amount = 5000 + i if edited else 100 + i
    lead = f"The council of {town} led by {mayor} approved {amount} million dollars on Monday."
    return "\n\n".join([lead, *paragraphs])


def _texts(settings: Settings) -> dict[str, set[str]]:
    """Article id → the texts of its chunks, in the generation in service."""
    catalog = live_catalog(settings)
    try:
        out: dict[str, set[str]] = {}
        passages = catalog.passages(catalog.chunk_ids())
        for passage in passages.values():
            out.setdefault(passage.article.id, set()).add(passage.chunk.text)
        return out
    finally:
        catalog.close()


def test_reader_sees_vectors_written_by_another_process(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    reindex(settings, fake_embedder)
    reader = Newsbot(settings, fake_embedder)
    question = "Which volcano erupted near Grindavik in Iceland?"
    assert not reader.ask(question).found
    write_article(
        corpus,
        "volcano.md",
        "A volcano erupted near Grindavik in Iceland on Monday.",
        title="Iceland volcano",
    )

    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(corpus), str(settings.index_dir)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "volcano.md" in done.stdout

    answer = reader.ask(question)
    assert answer.found
    assert answer.citations[0].article_id == "volcano.md"
    # The dense side itself must see the new vector, not only BM25.
    dense_ids = [cid for cid, _ in reader.store.query(fake_embedder.embed_query(question), 3)]
    assert chunk_id("volcano.md", 0) in dense_ids


@pytest.mark.integration  # a reindex lasting seconds in another process (about 8 s in all)
def test_a_reader_keeps_answering_while_another_process_reindexes(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path, tmp_path: Path
) -> None:
    def name(i: int) -> str:
        return f"news/{i}.md"

    for i in range(ARTICLES):
        write_article(corpus, name(i), _news(i), title=f"Council news {i}")
    reindex(settings, fake_embedder)
    old = _texts(settings)
    bot = Newsbot(settings, fake_embedder)
    edited = range(0, ARTICLES, 3)
    removed = range(1, ARTICLES, 3)
    added = range(ARTICLES, ARTICLES + ARTICLES // 3)
    for i in edited:
        write_article(corpus, name(i), _news(i, edited=True), title=f"Council news {i}")
    for i in removed:
        (corpus / name(i)).unlink()
    for i in added:
        write_article(corpus, name(i), _news(i), title=f"Council news {i}")

    # Besides the running reader, readers started during the reindex (a restarted bot,
    # `newsbot ask`): each opens the generation in service and must answer from it.
    stop = tmp_path / "stop"
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            SLOW_WRITER,
            str(corpus),
            str(settings.index_dir),
            str(EMBED_SECONDS_PER_TEXT),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    restarting = subprocess.Popen(
        [
            sys.executable,
            "-c",
            RESTARTING_READERS,
            str(corpus),
            str(settings.index_dir),
            str(stop),
            _question(2),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    answers: list[Answer] = []
    rng = random.Random(0)
    try:
        while writer.poll() is None:
            answers.append(bot.ask(_question(rng.randrange(ARTICLES + len(added)))))
    finally:
        stop.touch()
        written, writer_errors = writer.communicate(timeout=120)
        restarted, restart_errors = restarting.communicate(timeout=120)
    assert writer.returncode == 0, writer_errors
    assert written.split() == [str(len(added)), str(len(edited)), str(len(removed))]
    assert restarting.returncode == 0, restart_errors
    readers = json.loads(restarted)
    assert readers["errors"] == [] and readers["answered"] > 0, readers

    # Every answer given during the reindex quoted the old index or the new one, never a mix.
    new = _texts(settings)
    assert len(answers) > 20
    for answer in answers:
        assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
        assert all(c.passage in old.get(c.article_id, set()) for c in answer.citations) or all(
            c.passage in new.get(c.article_id, set()) for c in answer.citations
        )

    # Once it is done, the running reader answers from the new index.
    for i in (0, 3, 1, 4, ARTICLES, ARTICLES + 1):
        cited = " ".join(c.passage for c in bot.ask(_question(i)).citations)
        assert (_names(i)[0] in cited) == (i not in removed)
        if i in edited:
            assert f"{5000 + i} million" in cited and f" {100 + i} million" not in cited
    assert bot.status().articles == 3 + ARTICLES - len(removed) + len(added)


def test_a_reader_switches_only_to_a_complete_generation(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    reindex(settings, fake_embedder)
    bot = Newsbot(settings, fake_embedder)
    generation = bot.status().generation
    question = "Which volcano erupted near Grindavik in Iceland?"
    write_article(corpus, "volcano.md", "A volcano erupted near Grindavik.", title="Volcano")

    with pytest.raises(Killed):
        reindex(settings, DiesAfter(calls=0))  # leaves a build behind, not switched to
    with writer_lock(IndexLayout(settings.index_dir)):  # and a reindex is running
        assert not bot.refresh()
        assert not bot.ask(question).found
        late = Newsbot(settings, fake_embedder)  # a reader opening now gets the old one
        assert late.status().generation == generation
        assert not late.ask(question).found

    reindex(settings, fake_embedder)
    assert bot.ask(question).citations[0].article_id == "volcano.md"
    assert late.ask(question).citations[0].article_id == "volcano.md"


def test_the_bot_answers_from_the_old_index_all_through_a_rebuild(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    reindex(settings, fake_embedder)
    bot = Newsbot(settings, fake_embedder)
    question = "Who won the Chicago Marathon?"

    with pytest.raises(Killed):
        reindex(settings, DiesAfter(calls=0), rebuild=True)
    assert bot.ask(question).citations[0].article_id == "sport/marathon.md"
    reindex(settings, fake_embedder, rebuild=True)

    assert bot.ask(question).citations[0].article_id == "sport/marathon.md"
    assert bot.status().generation == 2


def test_a_reader_left_behind_by_two_reindexes_catches_up(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    reindex(settings, fake_embedder)
    bot = Newsbot(settings, fake_embedder)
    first = bot.generation
    for n in range(2):
        write_article(corpus, f"extra{n}.md", f"Extra note {n} about Grindavik.", title="Extra")
        reindex(settings, fake_embedder)

    assert not first.root.exists()  # only the generation in service and the one before stay
    answer = bot.ask("Which notes are about Grindavik?")
    assert answer.found and bot.status().generation == 3
