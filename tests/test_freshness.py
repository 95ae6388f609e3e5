"""A reader in one process sees what a reindex in another process completed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from index.chunks import chunk_id
from index.indexer import reindex
from index.newsbot import Newsbot
from index.settings import Settings
from tests.conftest import write_article
from tests.fakes import FakeEmbedder

ROOT = Path(__file__).resolve().parent.parent
WRITER = """
import sys
from pathlib import Path
from index.embeddings import register_embedder
from index.indexer import reindex
from index.settings import Settings
from tests.fakes import FakeEmbedder

embedder = FakeEmbedder()
register_embedder("fake", lambda arg, settings: embedder)
settings = Settings(corpus_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]),
                    embed_model=embedder.name)
print(reindex(settings, embedder).added)
"""


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
