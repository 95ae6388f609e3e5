"""Reindexing: incremental, idempotent, and vectors, BM25 and catalog always agree."""

from __future__ import annotations

import fcntl
import os
import shutil
import sqlite3
from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.build.reindex import reindex
from index.errors import CorpusError, CorpusProblemsError, IndexBusyError, IndexMismatchError
from index.ingest.chunks import Chunker
from index.ingest.corpus.article import Article
from index.newsbot import Newsbot
from index.settings import Settings
from index.store.catalog import Catalog
from index.store.layout import IndexLayout
from index.store.vectors import VectorStore
from tests.conftest import as_before_segments, live_catalog, parts, write_article
from tests.fakes import DiesAfter, FakeEmbedder, Killed


def test_first_run_indexes_everything_consistently(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    report = reindex(settings, fake_embedder)

    assert sorted(report.added) == ["aid.md", "science/comet.txt", "sport/marathon.md"]
    assert report.chunks_embedded == report.chunks_total > 0
    vectors, bm25, catalog = parts(settings)
    assert vectors == bm25 == catalog
    assert len(catalog) == report.chunks_total


def test_second_run_with_nothing_changed_makes_no_model_call(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    reindex(settings, fake_embedder)
    calls = fake_embedder.calls

    report = reindex(settings, fake_embedder)

    assert fake_embedder.calls == calls
    assert report.unchanged == 3
    assert (report.added, report.updated, report.removed) == ([], [], [])
    assert report.chunks_embedded == 0


def test_editing_one_article_reembeds_only_its_chunks(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    reindex(settings, fake_embedder)
    before = fake_embedder.texts_embedded
    write_article(
        corpus,
        "aid.md",
        "The aid total is now $61 billion, officials said.",
        title="US aid to Ukraine",
        source="Example News",
    )

    report = reindex(settings, fake_embedder)

    assert report.updated == ["aid.md"]
    assert report.unchanged == 2
    assert fake_embedder.texts_embedded - before == report.chunks_embedded == 1
    vectors, bm25, catalog = parts(settings)
    assert vectors == bm25 == catalog


def test_an_article_that_shrinks_leaves_no_stale_chunks(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    long_text = "\n\n".join(
        f"Paragraph {i} says something about harbour works." * 12 for i in range(8)
    )
    write_article(corpus, "long.md", long_text, title="Harbour")
    reindex(settings, fake_embedder)
    many = len(parts(settings)[2])
    write_article(corpus, "long.md", "Now the harbour story is short.", title="Harbour")

    reindex(settings, fake_embedder)

    vectors, bm25, catalog = parts(settings)
    assert vectors == bm25 == catalog
    assert len(catalog) < many


def test_deleting_an_article_removes_it_everywhere(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    reindex(settings, fake_embedder)
    catalog = live_catalog(settings)
    marathon_chunks = set(catalog.chunk_ids(["sport/marathon.md"]))
    catalog.close()
    assert marathon_chunks
    (corpus / "sport" / "marathon.md").unlink()

    report = reindex(settings, fake_embedder)

    assert report.removed == ["sport/marathon.md"]
    vectors, bm25, catalog_ids = parts(settings)
    assert not marathon_chunks & (vectors | bm25 | catalog_ids)
    assert vectors == bm25 == catalog_ids


def test_a_file_that_fails_to_read_keeps_its_indexed_articles(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    reindex(settings, fake_embedder)
    (corpus / "aid.md").write_text("---\ntitle: [unclosed\n---\nbody\n")

    report = reindex(settings, fake_embedder)

    assert report.removed == []
    assert [p.where for p in report.problems] == ["aid.md"]
    assert "aid.md" in live_catalog(settings).hashes()


def test_an_empty_corpus_does_not_wipe_the_index(
    settings: Settings, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    reindex(settings, fake_embedder)
    empty = tmp_path / "empty"
    empty.mkdir()

    with pytest.raises(CorpusError, match="refusing to empty"):
        reindex(settings.overridden(corpus_dir=empty), fake_embedder)

    assert len(parts(settings)[0]) > 0


def test_a_missing_corpus_folder_is_a_clear_error(
    settings: Settings, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    with pytest.raises(CorpusError, match="corpus folder not found"):
        reindex(settings.overridden(corpus_dir=tmp_path / "nope"), fake_embedder)


def test_other_model_or_chunking_is_refused_until_rebuild(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    reindex(settings, fake_embedder)
    other_model = FakeEmbedder(dimension=32, name="fake:32")

    with pytest.raises(IndexMismatchError, match="newsbot index --rebuild") as caught:
        reindex(settings, other_model)
    assert "fake:384" in str(caught.value)
    with pytest.raises(IndexMismatchError, match="chunk_tokens"):
        reindex(settings.overridden(chunk_tokens=120), fake_embedder)

    report = reindex(settings, other_model, rebuild=True)

    assert len(report.added) == 3
    assert live_catalog(settings).get_meta("manifest")["dimension"] == 32


def test_a_second_writer_is_turned_away(settings: Settings, fake_embedder: FakeEmbedder) -> None:
    layout = IndexLayout(settings.index_dir)
    layout.root.mkdir(parents=True)
    with open(layout.lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        held.write("4242")
        held.flush()
        with pytest.raises(IndexBusyError, match="4242"):
            reindex(settings, fake_embedder)


def test_a_reindex_that_dies_leaves_the_index_in_service_and_the_next_one_resumes(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reindex(settings, fake_embedder)
    before = snapshot(settings)
    for i in range(6):
        write_article(
            corpus, f"new/{i}.md", f"Report number {i} on the harbour works.", title=f"N{i}"
        )
    monkeypatch.setattr("index.build.generation.GROUP_CHUNKS", 1)  # one article per transaction

    with pytest.raises(Killed):
        reindex(settings, DiesAfter(calls=2))

    assert snapshot(settings) == before  # the generation in service is untouched
    answer = Newsbot(settings, fake_embedder).ask("Who won the Chicago Marathon?")
    assert answer.citations[0].article_id == "sport/marathon.md"
    embedded = fake_embedder.texts_embedded
    report = reindex(settings, fake_embedder)

    assert sorted(report.added) == [f"new/{i}.md" for i in range(6)]  # against the old index
    assert fake_embedder.texts_embedded - embedded == 4  # the 2 done before the kill are kept
    vectors, bm25, catalog_ids = parts(settings)
    assert vectors == bm25 == catalog_ids
    assert len(indexed(settings)) == 9
    assert IndexLayout(settings.index_dir).generation() == before[2] + 1


def test_a_run_killed_just_before_the_switch_is_finished_by_the_next(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reindex(settings, fake_embedder)
    before = snapshot(settings)
    write_article(corpus, "extra.md", "A short note on the tides.", title="Tides")

    def killed(self: IndexLayout, generation: object) -> None:
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(IndexLayout, "switch_to", killed)
        with pytest.raises(Killed):  # the new generation is complete, but not in service
            reindex(settings, fake_embedder)
    assert snapshot(settings) == before
    report = reindex(settings, fake_embedder)

    assert report.added == ["extra.md"]
    vectors, bm25, catalog_ids = parts(settings)
    assert vectors == bm25 == catalog_ids
    layout = IndexLayout(settings.index_dir)
    assert layout.numbers() == [before[2], layout.generation()]  # the orphan is gone


def store_matches_catalog(settings: Settings) -> None:
    """Store, BM25 and catalog hold the same chunks, and every vector in each segment's store
    is the one its catalog holds for that chunk."""
    vectors, bm25, catalog_ids = parts(settings)
    assert vectors == bm25 == catalog_ids
    live = live_catalog(settings)
    try:
        segments, owner = live.segments(), live.get_meta("index_id")
    finally:
        live.close()
    for segment in segments:
        catalog = Catalog(segment.folder / "catalog.sqlite", writable=False)
        store = VectorStore(
            settings, owner=owner, path=segment.folder / "chroma", name=str(segment.collection)
        )
        try:
            kept = {
                cid: v
                for ids, vs, _ in catalog.iter_vectors(100)
                for cid, v in zip(ids, vs, strict=True)
            }
            stored = store.vectors(sorted(kept))
        finally:
            store.close()
            catalog.close()
        assert stored.keys() == kept.keys()
        for cid, vector in kept.items():
            np.testing.assert_allclose(stored[cid], vector, atol=1e-6)


def test_a_small_change_copies_the_vectors_and_writes_only_the_changed_ones(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reindex(settings, fake_embedder)
    write_article(corpus, "aid.md", "Aid to Ukraine reached $61 billion.", title="US aid")
    (corpus / "science" / "comet.txt").unlink()
    written: list[str] = []
    upsert = VectorStore.upsert

    def spy(self: VectorStore, ids: Sequence[str], *args: object) -> None:
        written.extend(ids)
        upsert(self, ids, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(VectorStore, "upsert", spy)
    reindex(settings, fake_embedder)

    assert written == live_catalog(settings).chunk_ids(["aid.md"])
    store_matches_catalog(settings)


def test_a_killed_build_is_dropped_when_the_corpus_went_back(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reindex(settings, fake_embedder)
    before = snapshot(settings)
    extra = write_article(corpus, "extra.md", "A short note on the tides.", title="Tides")
    with pytest.raises(Killed):
        reindex(settings, DiesAfter(calls=0))
    extra.unlink()

    report = reindex(settings, fake_embedder)

    assert not report.changed
    assert snapshot(settings) == before
    assert not IndexLayout(settings.index_dir).building.exists()


def test_an_index_from_before_generations_is_carried_over_without_embedding(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    reindex(settings, fake_embedder)
    articles = indexed(settings)
    # Lay the index out as newsbot 0.x did: everything in the index folder, no vectors in the
    # catalog, no CURRENT.
    layout = IndexLayout(settings.index_dir)
    generation = as_before_segments(settings.index_dir)
    for name in ("catalog.sqlite", "bm25", "chroma"):
        os.replace(generation.root / name, layout.root / name)
    layout.current_file.unlink()
    shutil.rmtree(generation.root)
    db = sqlite3.connect(layout.root / "catalog.sqlite")
    db.execute("UPDATE chunks SET vector = NULL")
    db.commit()
    db.close()
    assert Newsbot(settings, fake_embedder).ask("Which comet was visible?").found
    embedded = fake_embedder.texts_embedded

    report = reindex(settings, fake_embedder)

    assert fake_embedder.texts_embedded == embedded
    assert not report.changed and not report.repaired
    assert indexed(settings) == articles
    vectors, bm25, catalog_ids = parts(settings)
    assert vectors == bm25 == catalog_ids
    assert layout.generation() == 1
    reindex(settings, fake_embedder, rebuild=True)  # the next build drops the old layout
    assert not (layout.root / "catalog.sqlite").exists()
    assert not (layout.root / "chroma").exists()


def test_progress_is_reported_while_embedding(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    seen: list[tuple[str, int, int]] = []

    report = reindex(settings, fake_embedder, progress=lambda *a: seen.append(a))

    embed = [p for p in seen if p[0] == "embed"]
    assert embed[0] == ("embed", 0, report.chunks_embedded)
    assert embed[-1] == ("embed", report.chunks_embedded, report.chunks_embedded)
    assert seen[-1] == ("store", report.chunks_total, report.chunks_total)


def test_chunks_fit_the_model_window_and_quote_exactly(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    sentences = " ".join(f"Sentence number {i} is about the port of Rotterdam." for i in range(300))
    write_article(corpus, "big.md", sentences, title="Rotterdam")

    reindex(settings, fake_embedder)

    catalog = live_catalog(settings)
    passages = catalog.passages(catalog.chunk_ids(["big.md"]))
    assert len(passages) > 5
    for p in passages.values():
        assert fake_embedder.count_tokens(p.chunk.text) <= settings.chunk_tokens
        assert sentences.strip()[p.chunk.start : p.chunk.end] == p.chunk.text
        assert p.chunk.text.endswith(".")  # cut at a sentence end


def write_feed(corpus: Path) -> Path:
    """A JSONL feed of two articles, w1 and w2."""
    feed = corpus / "feed.jsonl"
    feed.write_text(
        '{"id": "w1", "title": "Wind farm", "text": "A wind farm opened off the coast."}\n'
        '{"id": "w2", "title": "Solar park", "text": "A solar park opened in the desert."}\n'
    )
    return feed


def test_a_broken_jsonl_line_does_not_drop_the_article_it_held(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    feed = write_feed(corpus)
    reindex(settings, fake_embedder)
    feed.write_text(
        '{"id": "w1", "title": "Wind farm", "text": "A wind farm opened off the coast."}\n'
        '{"id": "w2", "title": "Solar park", "text": "A solar park opened in the des\n'
    )

    report = reindex(settings, fake_embedder)

    assert report.removed == []
    assert [p.where for p in report.problems] == ["feed.jsonl:2"]
    assert "w2" in live_catalog(settings).hashes()


# --- bad files -----------------------------------------------------------------------------

needs_non_root = pytest.mark.skipif(
    os.geteuid() == 0, reason="root reads files and folders whatever their permissions"
)


def indexed(settings: Settings) -> dict[str, tuple[str, str]]:
    """Article id → (content hash, path) in the catalog."""
    catalog = live_catalog(settings)
    try:
        return catalog.hashes()
    finally:
        catalog.close()


# Articles, chunk ids in each part, generation number, (last indexed, manifest).
Snapshot = tuple[
    dict[str, tuple[str, str]], tuple[set[str], set[str], set[str]], int, tuple[Any, Any]
]


def snapshot(settings: Settings) -> Snapshot:
    """Everything a reindex may change: articles, chunks in each part, generation, meta."""
    layout = IndexLayout(settings.index_dir)
    catalog = live_catalog(settings)
    try:
        meta = (catalog.get_meta("last_indexed"), catalog.get_meta("manifest"))
    finally:
        catalog.close()
    return indexed(settings), parts(settings), layout.generation(), meta


def test_a_file_that_became_unreadable_keeps_its_last_version_and_says_so(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    reindex(settings, fake_embedder)
    before = indexed(settings)["aid.md"]
    (corpus / "aid.md").unlink()
    os.mkfifo(corpus / "aid.md")  # unreadable for root too

    report = reindex(settings, fake_embedder)

    assert (report.removed, report.kept) == ([], ["aid.md"])
    assert [str(p) for p in report.problems] == [
        "aid.md: not a regular file (a named pipe); kept the article indexed from aid.md before"
    ]
    assert indexed(settings)["aid.md"] == before
    vectors, bm25, catalog = parts(settings)
    assert vectors == bm25 == catalog


@needs_non_root
def test_a_file_without_read_permission_keeps_its_indexed_article(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    reindex(settings, fake_embedder)
    (corpus / "aid.md").chmod(0)

    report = reindex(settings, fake_embedder)

    assert (report.removed, report.kept) == ([], ["aid.md"])
    assert "Permission denied; kept the article" in str(report.problems[0])


@needs_non_root
def test_a_folder_that_cannot_be_listed_keeps_its_indexed_articles(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    reindex(settings, fake_embedder)
    (corpus / "sport").chmod(0)
    try:
        report = reindex(settings, fake_embedder)
    finally:
        (corpus / "sport").chmod(0o755)

    assert (report.removed, report.kept) == ([], ["sport/marathon.md"])
    assert [str(p) for p in report.problems] == [
        "sport: cannot list folder: Permission denied; kept the article indexed from sport before"
    ]
    assert "sport/marathon.md" in indexed(settings)


def test_an_emptied_jsonl_file_keeps_its_articles(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    feed = write_feed(corpus)
    reindex(settings, fake_embedder)
    feed.write_bytes(b"")  # a copy that failed half-way, say

    report = reindex(settings, fake_embedder)

    assert (report.removed, report.kept) == ([], ["w1", "w2"])
    assert [str(p) for p in report.problems] == [
        "feed.jsonl: empty file; kept the 2 articles indexed from feed.jsonl before"
    ]
    assert {"w1", "w2"} <= set(indexed(settings))


def test_when_no_file_can_be_read_the_index_is_kept_not_refused(
    settings: Settings, fake_embedder: FakeEmbedder, tmp_path: Path
) -> None:
    corpus = tmp_path / "one-feed"
    feed = corpus / "feed.jsonl"
    corpus.mkdir()
    feed.write_text('{"id": "w1", "text": "A wind farm opened off the coast."}\n')
    one_feed = settings.overridden(corpus_dir=corpus)
    reindex(one_feed, fake_embedder)
    feed.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")

    report = reindex(one_feed, fake_embedder)

    assert (report.removed, report.kept, report.skipped_files) == ([], ["w1"], 1)
    assert "w1" in indexed(one_feed)


def test_a_new_file_repeating_an_indexed_id_does_not_take_it_over(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    (corpus / "wind.jsonl").write_text(
        '{"id": "w1", "title": "Wind farm", "text": "A wind farm opened off the coast."}\n'
    )
    reindex(settings, fake_embedder)
    before = indexed(settings)["w1"]
    # Sorts before wind.jsonl, so it is read first.
    (corpus / "a-import.jsonl").write_text(
        '{"id": "w1", "title": "Other", "text": "Something else entirely."}\n'
    )

    report = reindex(settings, fake_embedder)

    assert (report.added, report.updated, report.removed) == ([], [], [])
    assert indexed(settings)["w1"] == before
    assert [str(p) for p in report.problems] == [
        "a-import.jsonl:1: duplicate article id 'w1' (the index has it from wind.jsonl:1)"
    ]
    assert (report.skipped_files, report.skipped_records) == (0, 1)


def test_strict_changes_nothing_when_any_file_is_bad(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    reindex(settings, fake_embedder)
    before = snapshot(settings)
    calls = fake_embedder.calls
    write_article(corpus, "aid.md", "The aid total is now $61 billion.", title="US aid")
    (corpus / "science" / "comet.txt").unlink()
    (corpus / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (corpus / "feed.jsonl").write_text('{"id": "w1", "text": "A wind farm."}\n{"id": \n')

    with pytest.raises(CorpusProblemsError) as caught:
        reindex(settings, fake_embedder, strict=True)

    assert [p.where for p in caught.value.problems] == ["feed.jsonl:2", "photo.txt"]
    assert str(caught.value) == (
        "--strict: 2 problems in 2 corpus files; the index was not changed"
    )
    assert snapshot(settings) == before
    assert fake_embedder.calls == calls


def test_strict_on_a_new_index_creates_nothing(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    (corpus / "empty.md").write_bytes(b"")

    with pytest.raises(CorpusProblemsError):
        reindex(settings, fake_embedder, strict=True)

    assert not IndexLayout(settings.index_dir).exists()


def test_strict_with_a_clean_corpus_indexes_as_usual(
    settings: Settings, fake_embedder: FakeEmbedder
) -> None:
    report = reindex(settings, fake_embedder, strict=True)

    assert len(report.added) == 3
    assert report.problems == []


def test_skipped_files_and_records_are_counted_apart(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "photo.md").write_bytes(b"\xff\xd8\xff\xe0 JFIF")
    (corpus / "feed.jsonl").write_text(
        '{"id": "w1", "text": "A wind farm opened."}\nnot json\n{"id": "w3"}\n'
    )

    report = reindex(settings, fake_embedder)

    assert (report.skipped_files, report.skipped_records) == (2, 2)
    assert sorted(report.added) == ["aid.md", "science/comet.txt", "sport/marathon.md", "w1"]


def test_an_article_pieced_together_from_its_chunks_is_the_article(tmp_path: Path) -> None:
    text = "\n\n".join(" ".join(f"Fact {n} {m} is short." for m in range(6)) for n in range(4))
    article = Article(
        id="a", title="Title", text=text, path="a.md", source="Src", published="2024-01-02"
    )
    chunks = Chunker(FakeEmbedder().count_tokens, 16, 6).split(article)
    pairs = list(pairwise(chunks))
    assert any(b.start > a.end for a, b in pairs)  # a paragraph break between two chunks
    assert any(b.start < a.end for a, b in pairs)  # and chunks that overlap
    catalog = Catalog(tmp_path / "catalog.sqlite")
    try:
        catalog.replace_articles([(article, chunks, np.zeros((len(chunks), 4)))], [], "now")
        (pieced,) = catalog.pieced_articles(["a", "gone"])
    finally:
        catalog.close()
    assert pieced == article  # text, metadata and so content hash alike


@pytest.mark.parametrize("change", ["nothing", "an article added", "rebuild"])
def test_a_reindex_opens_each_generation_once_and_cleans_up_once(
    settings: Settings,
    fake_embedder: FakeEmbedder,
    corpus: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: str,
) -> None:
    """Opening a catalog attaches every segment: the generation in service is opened once
    and handed along, the new one once (as it is built), and what is stale is removed once."""
    reindex(settings, fake_embedder)
    write_article(corpus, "extra.md", "A short note on the tides.", title="Tides")
    reindex(settings, fake_embedder)  # a generation of two segments
    layout = IndexLayout(settings.index_dir)
    live = layout.current()
    assert live is not None
    opened: list[Path] = []
    cleanups: list[set[int]] = []
    real_open = Catalog.__init__
    real_clean = IndexLayout.remove_stale

    def counted_open(self: Catalog, path: Path, **options: Any) -> None:
        opened.append(path)
        real_open(self, path, **options)

    def counted_clean(self: IndexLayout, keep: set[int]) -> None:
        cleanups.append(keep)
        real_clean(self, keep)

    monkeypatch.setattr(Catalog, "__init__", counted_open)
    monkeypatch.setattr(IndexLayout, "remove_stale", counted_clean)
    if change == "an article added":
        write_article(corpus, "more.md", "A second note, on the moon.", title="Moon")

    reindex(settings, fake_embedder, rebuild=change == "rebuild")

    now = layout.current()
    assert now is not None
    built = [] if now == live else [layout.building / live.catalog.name]
    assert opened == [live.catalog, *built]
    assert cleanups == [
        {now.number, live.number} if now != live else {live.number, live.number - 1}
    ]
