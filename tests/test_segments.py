"""Segments: a reindex writes what changed, shares the rest, and merges the smallest.

A reindex that changes a few articles writes a segment holding only them and leaves every
older segment's files as they were; readers leave out what the older segments hold that is
no longer current. When the older segments are many, a reindex merges the smallest into the
one it writes; a reindex killed while it builds the merged segment's keyword index leaves
the index in service as it was, and the next run finishes the merge.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from index.build.reindex import reindex
from index.newsbot import Newsbot
from index.settings import Settings
from index.store.layout import IndexLayout
from tests.conftest import live_catalog, parts, write_article
from tests.fakes import FakeEmbedder
from tests.test_crash_safety import (
    NEWSBOT,
    Cli,
    cited,
    in_corpus,
    indexed,
    question,
    town,
    write,
)


def files_of(folder: Path) -> dict[str, tuple[int, int, int]]:
    """Each file under `folder`: (size, mtime_ns, inode)."""
    out = {}
    for parent, _, names in os.walk(folder):
        for name in names:
            st = os.stat(Path(parent) / name)
            out[str(Path(parent, name).relative_to(folder))] = (
                st.st_size,
                st.st_mtime_ns,
                st.st_ino,
            )
    return out


def segment_names(settings: Settings) -> list[str]:
    catalog = live_catalog(settings)
    try:
        return [s.name for s in catalog.segments()]
    finally:
        catalog.close()


def test_a_small_change_writes_a_segment_of_its_own_and_leaves_the_others_as_they_were(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    first = reindex(settings, fake_embedder)
    marathon = set(live_catalog(settings).chunk_ids(["sport/marathon.md"]))
    (older,) = segment_names(settings)
    folder = settings.index_dir / "segments" / older
    before = files_of(folder)
    write_article(corpus, "tides.md", "The tides at Brightwater rose by a metre.", title="Tides")
    (corpus / "sport" / "marathon.md").unlink()

    report = reindex(settings, fake_embedder)

    assert report.added == ["tides.md"] and report.removed == ["sport/marathon.md"]
    assert files_of(folder) == before  # not written, not copied
    names = segment_names(settings)
    assert names[0] == older and len(names) == 2
    catalog = live_catalog(settings)
    try:
        oldest, newest = catalog.segments()
        assert newest.chunks == len(catalog.chunk_ids(["tides.md"])) == report.chunks_embedded
        assert marathon and oldest.dead_chunks == marathon and not newest.dead_chunks
    finally:
        catalog.close()
    vectors, bm25, ids = parts(settings)
    assert vectors == bm25 == ids
    assert (
        len(ids)
        == report.chunks_total
        == first.chunks_total - len(marathon) + len(newest_ids(settings))
    )
    bot = Newsbot(settings, fake_embedder)
    try:
        answer = bot.ask("Brightwater tides")
        assert answer.citations and answer.citations[0].article_id == "tides.md"
        assert all(c.article_id != "sport/marathon.md" for c in bot.ask("marathon").citations)
    finally:
        bot.close()


def test_an_edited_article_is_answered_from_its_new_segment_only(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    write_article(corpus, "aid.md", "The aid total is $40 billion, officials said.", title="Aid")
    reindex(settings, fake_embedder)
    write_article(corpus, "aid.md", "The aid total is $61 billion, officials said.", title="Aid")

    reindex(settings, fake_embedder)

    vectors, bm25, catalog = parts(settings)
    assert vectors == bm25 == catalog  # the old version's chunk ids are dead, not doubled
    bot = Newsbot(settings, fake_embedder)
    try:
        passages = [c.passage for c in bot.ask("aid total billion").citations]
    finally:
        bot.close()
    assert any("$61 billion" in p for p in passages)
    assert not any("$40 billion" in p for p in passages)


@pytest.mark.integration
def test_a_reindex_killed_during_a_keyword_segment_merge_leaves_the_index_whole(
    settings: Settings, tmp_path: Path
) -> None:
    corpus = settings.corpus_dir
    for i in range(30):
        write(corpus, i, 1)
    cli = Cli(settings, tmp_path)
    cli.env["FAKE_EMBED_SECONDS"] = "0"
    cli.env["NEWSBOT_MAX_SEGMENTS"] = "2"  # the third reindex merges the two older segments
    layout = IndexLayout(settings.index_dir)
    assert cli.run("index").returncode == 0
    write(corpus, 30, 1)
    assert cli.run("index").returncode == 0
    assert len(segment_names(settings)) == 2
    before = indexed(settings)
    write(corpus, 31, 1)

    killed = subprocess.run(
        [sys.executable, str(NEWSBOT), "index"],
        cwd=cli.cwd,
        env={**cli.env, "NEWSBOT_DIE_IN_MERGE": "1"},
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert killed.returncode == -9, killed.stderr
    assert indexed(settings) == before  # the index in service is as it was
    vectors, bm25, catalog = parts(settings)
    assert vectors == bm25 == catalog
    assert town(30) in cited(cli.ask(question(30)), "n0030.md")
    assert cited(cli.ask(question(31)), "n0031.md") == ""

    done = cli.run("index")

    assert done.returncode == 0, done.stderr
    assert len(segment_names(settings)) == 1  # merged
    assert indexed(settings)[1] == in_corpus(corpus)
    vectors, bm25, catalog = parts(settings)
    assert vectors == bm25 == catalog
    assert town(31) in cited(cli.ask(question(31)), "n0031.md")
    assert not layout.building.exists()
    in_use = set(segment_names(settings))
    assert len(list(layout.segments.iterdir())) <= len(in_use) + 2  # and the one before's


def newest_ids(settings: Settings) -> list[str]:
    catalog = live_catalog(settings)
    try:
        return catalog.chunk_ids(["tides.md"])
    finally:
        catalog.close()


def test_a_reader_keeps_its_generation_while_a_segment_of_the_next_is_missing(
    settings: Settings,
    fake_embedder: FakeEmbedder,
    corpus: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    reindex(settings, fake_embedder)
    bot = Newsbot(settings, fake_embedder)
    try:
        write_article(
            corpus, "tides.md", "The tides at Brightwater rose by a metre.", title="Tides"
        )
        reindex(settings, fake_embedder)
        newest = settings.index_dir / "segments" / segment_names(settings)[-1]
        aside = settings.index_dir / "aside"
        os.replace(newest, aside)  # as a copy of the folder being made would lack it

        first = bot.ask("Brightwater tides")

        assert bot.generation.number == 1
        assert all(c.article_id != "tides.md" for c in first.citations)
        assert "still answering from gen-000001" in caplog.text
        os.replace(aside, newest)

        second = bot.ask("Brightwater tides")

        assert bot.generation.number == 2
        assert second.citations[0].article_id == "tides.md"
    finally:
        bot.close()


def test_a_segment_whose_chunks_have_no_word_is_indexed(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    reindex(settings, fake_embedder)
    write_article(corpus, "zero.md", "0", title="0")

    report = reindex(settings, fake_embedder)

    assert report.added == ["zero.md"]
    whole_and_answering(settings, fake_embedder)


def test_a_segment_whose_vectors_were_deleted_is_mended_from_the_catalog(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path
) -> None:
    reindex(settings, fake_embedder)
    write_article(corpus, "tides.md", "The tides at Brightwater rose by a metre.", title="Tides")
    reindex(settings, fake_embedder)
    oldest = settings.index_dir / "segments" / segment_names(settings)[0]
    shutil.rmtree(oldest / "chroma")
    calls = fake_embedder.calls

    report = reindex(settings, fake_embedder)

    # That segment's vectors are built anew from its catalog, the others' left as they are.
    assert report.segments_repaired == [
        f"segments/{oldest.name} (chroma/ is missing): rebuilt from its catalog (no model call)"
    ]
    assert not report.changed and not report.vectors_restored
    assert fake_embedder.calls == calls  # from the catalog: no model call
    whole_and_answering(settings, fake_embedder)


def whole_and_answering(settings: Settings, fake_embedder: FakeEmbedder) -> None:
    """Vectors, BM25 and catalog hold the same chunks, and the seed question is answered."""
    vectors, bm25, catalog = parts(settings)
    assert vectors == bm25 == catalog
    bot = Newsbot(settings, fake_embedder)
    try:
        assert bot.ask("How much military aid has the United States sent to Ukraine?").found
    finally:
        bot.close()
