"""newsbot against a real Chroma server (`chroma run` in a subprocess), not the embedded store.

One server serves the whole module; each test writes its own collection.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from index.build.reindex import reindex
from index.errors import StoreUnavailableError
from index.ingest.chunks import chunk_id
from index.models.embeddings import load_embedder
from index.newsbot import Newsbot
from index.settings import Settings
from tests.chroma_server import ChromaServer, running_server
from tests.conftest import SEED_ID, copy_seed, live_catalog, write_article
from tests.fakes import FakeEmbedder
from tests.readonly import Unwritable, snapshot

pytestmark = pytest.mark.integration

AID_QUESTION = "How much military aid has the United States sent to Ukraine?"


@pytest.fixture(scope="module")
def chroma_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChromaServer]:
    """A Chroma server on a free loopback port, with its data in a temporary folder."""
    with running_server(tmp_path_factory.mktemp("chroma-server")) as server:
        yield server


def server_settings(
    server: ChromaServer, tmp_path: Path, collection: str, **fields: Any
) -> Settings:
    """Settings that keep the catalog and BM25 under `tmp_path` and the vectors on `server`."""
    return Settings(
        index_dir=tmp_path / "index",
        chroma_host=server.host,
        chroma_port=server.port,
        chroma_collection=collection,
        **fields,
    )


def raw_client(server: ChromaServer) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    return chromadb.HttpClient(
        host=server.host, port=server.port, settings=ChromaSettings(anonymized_telemetry=False)
    )


def raw_collection(server: ChromaServer, settings: Settings) -> Any:
    """The collection of the generation in service, read without going through newsbot."""
    catalog = live_catalog(settings)
    try:
        name = catalog.get_meta("collection")
    finally:
        catalog.close()
    return raw_client(server).get_collection(name)


def collections_of(server: ChromaServer, settings: Settings) -> list[str]:
    """The names of the collections the server holds for `settings`' collection name."""
    prefix = settings.chroma_collection + "-"
    return sorted(
        c.name for c in raw_client(server).list_collections() if c.name.startswith(prefix)
    )


def test_index_and_ask_through_the_server(
    chroma_server: ChromaServer, corpus: Path, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    settings = server_settings(
        chroma_server,
        tmp_path,
        "fake-ask",
        corpus_dir=corpus,
        embed_model=fake_embedder.name,
    )

    report = reindex(settings, fake_embedder)
    bot = Newsbot(settings, fake_embedder)
    try:
        answer = bot.ask(AID_QUESTION)
        status = bot.status()
    finally:
        bot.close()

    assert sorted(report.added) == ["aid.md", "science/comet.txt", "sport/marathon.md"]
    assert answer.found, answer
    assert "$56.2 billion" in answer.answer
    assert answer.citations[0].article_id == "aid.md"
    assert status.store == f"chroma server 127.0.0.1:{chroma_server.port}"
    assert status.vectors == status.chunks == report.chunks_total > 0

    stored = raw_collection(chroma_server, settings).get(include=["embeddings", "metadatas"])
    assert len(stored["ids"]) == report.chunks_total
    assert stored["embeddings"].shape == (report.chunks_total, fake_embedder.dimension)
    assert set(stored["ids"]) == {
        chunk_id(meta["article_id"], meta["ord"]) for meta in stored["metadatas"]
    }
    assert not list(settings.index_dir.glob("**/chroma")), "the embedded store was used"


def test_a_reader_through_the_server_writes_nothing_in_the_index_folder(
    chroma_server: ChromaServer,
    corpus: Path,
    fake_embedder: FakeEmbedder,
    tmp_path: Path,
    unwritable: Unwritable,
) -> None:
    settings = server_settings(
        chroma_server, tmp_path, "fake-ro", corpus_dir=corpus, embed_model=fake_embedder.name
    )
    reindex(settings, fake_embedder)
    before = snapshot(settings.index_dir)

    with unwritable(settings.index_dir):
        bot = Newsbot(settings, fake_embedder)
        try:
            answer = bot.ask(AID_QUESTION)
            status = bot.status()
        finally:
            bot.close()
        assert snapshot(settings.index_dir) == before

    assert "$56.2 billion" in answer.answer
    assert status.vectors == status.chunks > 0


def test_reindex_through_the_server_is_incremental(
    chroma_server: ChromaServer, corpus: Path, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    settings = server_settings(
        chroma_server,
        tmp_path,
        "fake-incremental",
        corpus_dir=corpus,
        embed_model=fake_embedder.name,
    )
    first = reindex(settings, fake_embedder)
    calls = fake_embedder.calls

    again = reindex(settings, fake_embedder)

    assert fake_embedder.calls == calls
    assert again.unchanged == 3
    assert again.chunks_embedded == 0
    assert not (again.added or again.updated or again.removed or again.repaired)

    collection = raw_collection(chroma_server, settings)
    marathon = collection.get(where={"article_id": "sport/marathon.md"}, include=[])["ids"]
    assert marathon
    (corpus / "sport" / "marathon.md").unlink()

    after = reindex(settings, fake_embedder)

    assert after.removed == ["sport/marathon.md"]
    assert fake_embedder.calls == calls
    # A removal writes nothing to the server: the chunks are dead in the segment holding
    # them, and readers leave them out.
    assert collections_of(chroma_server, settings) == [collection.name]
    assert collection.count() == first.chunks_total
    bot = Newsbot(settings, fake_embedder)
    try:
        assert bot.status().vectors == after.chunks_total == first.chunks_total - len(marathon)
        probe = collection.get(ids=marathon[:1], include=["embeddings"])["embeddings"][0]
        found = [cid for cid, _ in bot.store.query(probe, first.chunks_total)]
        assert found and not set(found) & set(marathon)
    finally:
        bot.close()
    write_article(corpus, "extra.md", "A note on the tides.", title="Tides")
    added = reindex(settings, fake_embedder)
    # The new article's vectors go into a collection of their own; the first one is shared.
    names = collections_of(chroma_server, settings)
    assert len(names) == 2 and collection.name in names
    newest = raw_client(chroma_server).get_collection(max(names))
    assert (
        newest.count()
        == added.chunks_embedded
        == len(live_catalog(settings).chunk_ids(["extra.md"]))
    )


def test_real_model_answers_from_the_seed_corpus_through_the_server(
    chroma_server: ChromaServer, tmp_path: Path
) -> None:
    settings = server_settings(
        chroma_server, tmp_path, "seed-minilm", corpus_dir=copy_seed(tmp_path / "corpus")
    )
    embedder = load_embedder(settings)

    report = reindex(settings, embedder)
    bot = Newsbot(settings, embedder)
    try:
        answer = bot.ask("What has Biden allowed Ukraine to do?")
    finally:
        bot.close()

    assert report.added == [SEED_ID]
    assert answer.found or answer.hedged, answer  # the quote is what this test is about
    assert "long-range missiles" in answer.answer
    assert answer.citations[0].article_id == SEED_ID
    assert raw_collection(chroma_server, settings).count() == report.chunks_total


def test_two_indexes_on_one_collection_name_keep_apart(
    chroma_server: ChromaServer, corpus: Path, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    first = server_settings(
        chroma_server,
        tmp_path / "a",
        "fake-shared",
        corpus_dir=corpus,
        embed_model=fake_embedder.name,
    )
    second = first.overridden(index_dir=tmp_path / "b" / "index")
    reindex(first, fake_embedder)
    held = raw_collection(chroma_server, first).count()

    for _ in range(3):  # each run builds a generation and deletes its own old ones
        reindex(second, fake_embedder, rebuild=True)

    assert raw_collection(chroma_server, first).count() == held
    assert len(collections_of(chroma_server, first)) == 3  # one of the first, two of the second
    assert Newsbot(first, fake_embedder).ask(AID_QUESTION).found
    assert Newsbot(second, fake_embedder).ask(AID_QUESTION).found


def test_server_down_is_a_clear_error(
    corpus: Path, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    from tests.chroma_server import free_port

    settings = Settings(
        corpus_dir=corpus,
        index_dir=tmp_path / "index",
        embed_model=fake_embedder.name,
        chroma_host="127.0.0.1",
        chroma_port=free_port(),
    )

    with pytest.raises(StoreUnavailableError, match="index unavailable"):
        reindex(settings, fake_embedder)
