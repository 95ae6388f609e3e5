"""A reindex reads only the corpus files whose size or modification time changed."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import index.ingest.corpus.scan as scan_module
from index.build.reindex import IndexReport, reindex
from index.ingest.corpus.file_stats import RACY_NS
from index.settings import Settings
from tests.conftest import live_catalog, write_article
from tests.fakes import FakeEmbedder

# Older than the racy window: a file last modified this long ago has a stat to trust.
AGED_NS = 10 * RACY_NS


class Reads:
    """Counts the corpus files a scan reads, by their path under the corpus."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def __len__(self) -> int:
        return len(self.paths)

    def clear(self) -> None:
        self.paths.clear()


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    counted = Reads()
    real = scan_module.read_file

    def counting(path: Path, rel: str, *args: object) -> Iterator[object]:
        counted.paths.append(rel)
        return real(path, rel, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(scan_module, "read_file", counting)
    return counted


def age(root: Path, *, ns: int = AGED_NS) -> None:
    """Set the file `root`, or every file under the folder `root`, to have been modified
    `ns` ago."""
    then = time.time_ns() - ns
    if root.is_file():
        os.utime(root, ns=(then, then))
    for folder, _, files in os.walk(root):
        for name in files:
            os.utime(os.path.join(folder, name), ns=(then, then))


def same_size_edit(path: Path, old: str, new: str) -> None:
    """Replace `old` by `new` (as long) in `path`, its mtime moved on by one second."""
    assert len(old) == len(new)
    before = path.stat()
    path.write_text(path.read_text().replace(old, new))
    assert path.stat().st_size == before.st_size
    later = before.st_mtime_ns + 1_000_000_000
    os.utime(path, ns=(later, later))


def changes(report: IndexReport) -> tuple[list[str], list[str], list[str]]:
    return report.added, report.updated, report.removed


@pytest.fixture
def indexed(settings: Settings, fake_embedder: FakeEmbedder, corpus: Path) -> Settings:
    """The tiny corpus indexed once, its files old enough for their stats to be trusted."""
    age(corpus)
    reindex(settings, fake_embedder)
    return settings


def test_a_no_change_reindex_reads_no_file(
    indexed: Settings, fake_embedder: FakeEmbedder, reads: Reads
) -> None:
    calls = fake_embedder.calls

    report = reindex(indexed, fake_embedder)

    assert len(reads) == 0
    assert report.unchanged == 3
    assert changes(report) == ([], [], [])
    assert fake_embedder.calls == calls


def test_an_edit_of_the_same_size_with_a_new_mtime_is_read(
    indexed: Settings, fake_embedder: FakeEmbedder, corpus: Path, reads: Reads
) -> None:
    same_size_edit(corpus / "aid.md", "$56.2 billion", "$65.2 billion")

    report = reindex(indexed, fake_embedder)

    assert reads.paths == ["aid.md"]
    assert changes(report) == ([], ["aid.md"], [])
    assert report.unchanged == 2


def test_a_touched_unchanged_file_costs_a_read_once_and_no_model_call(
    indexed: Settings, fake_embedder: FakeEmbedder, corpus: Path, reads: Reads
) -> None:
    calls = fake_embedder.calls
    age(corpus / "sport", ns=AGED_NS // 2)  # touched: a new mtime, the same content

    report = reindex(indexed, fake_embedder)

    assert reads.paths == ["sport/marathon.md"]
    assert changes(report) == ([], [], [])
    assert fake_embedder.calls == calls
    reads.clear()
    reindex(indexed, fake_embedder)  # the no-change run recorded its new stat
    assert len(reads) == 0


def test_a_sidecar_added_or_edited_is_noticed(
    indexed: Settings, fake_embedder: FakeEmbedder, corpus: Path, reads: Reads
) -> None:
    sidecar = corpus / "science" / "comet.meta.yaml"
    sidecar.write_text("source: Sky Weekly\n")
    age(corpus / "science")

    added = reindex(indexed, fake_embedder)
    same_size_edit(sidecar, "Sky Weekly", "Sky Monthy")
    edited = reindex(indexed, fake_embedder)

    assert changes(added) == changes(edited) == ([], ["science/comet.txt"], [])
    assert reads.paths == ["science/comet.txt", "science/comet.txt"]
    record = next(r for r in live_catalog(indexed).articles() if r.id == "science/comet.txt")
    assert record.source == "Sky Monthy"


def test_a_file_rewritten_within_the_same_mtime_tick_is_read_again(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path, reads: Reads
) -> None:
    # Indexed just after it was written: another write may come within the same mtime tick.
    path = corpus / "aid.md"
    now = time.time_ns()
    os.utime(path, ns=(now, now))
    reindex(settings, fake_embedder)
    before = path.stat()
    path.write_text(path.read_text().replace("$56.2 billion", "$65.2 billion"))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))  # the same tick, same size
    reads.clear()

    report = reindex(settings, fake_embedder)

    assert "aid.md" in reads.paths
    assert changes(report) == ([], ["aid.md"], [])


def test_a_jsonl_file_of_many_records_is_read_only_when_it_changes(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path, reads: Reads
) -> None:
    feed = corpus / "feed.jsonl"
    records = [
        {"id": f"r{i:03d}", "title": f"Story {i:03d}", "text": f"Report number {i:03d} today."}
        for i in range(200)
    ]
    feed.write_text("".join(json.dumps(r) + "\n" for r in records))
    age(corpus)
    reindex(settings, fake_embedder)
    reads.clear()

    unchanged = reindex(settings, fake_embedder)
    same_size_edit(feed, "Report number 117", "Account numb. 117")
    edited = reindex(settings, fake_embedder)
    feed.unlink()
    removed = reindex(settings, fake_embedder)

    assert unchanged.unchanged == 203
    assert changes(edited) == ([], ["r117"], [])
    assert edited.unchanged == 202
    assert reads.paths == ["feed.jsonl"]
    assert sorted(removed.removed) == [r["id"] for r in records]


def test_a_file_with_a_problem_is_read_and_reported_every_run(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path, reads: Reads
) -> None:
    (corpus / "feed.jsonl").write_text('{"id": "w1", "title": "Wind", "text": "A wind farm."}\n{')
    (corpus / "empty.md").write_text("")
    age(corpus)
    reindex(settings, fake_embedder)
    reads.clear()

    report = reindex(settings, fake_embedder)

    assert sorted(reads.paths) == ["empty.md", "feed.jsonl"]
    assert sorted(p.where for p in report.problems) == ["empty.md", "feed.jsonl:2"]
    assert "w1" in live_catalog(settings).hashes()


def test_a_renamed_or_removed_file_is_noticed(
    indexed: Settings, fake_embedder: FakeEmbedder, corpus: Path, reads: Reads
) -> None:
    os.rename(corpus / "aid.md", corpus / "aid-2.md")  # its stat goes with it
    shutil.rmtree(corpus / "sport")

    report = reindex(indexed, fake_embedder)

    assert reads.paths == ["aid-2.md"]
    assert changes(report) == (["aid-2.md"], [], ["aid.md", "sport/marathon.md"])


@pytest.mark.parametrize("name", ["a-copy.jsonl", "z-copy.jsonl"])
def test_a_new_file_repeating_the_id_of_an_unread_one_does_not_take_it(
    settings: Settings, fake_embedder: FakeEmbedder, corpus: Path, reads: Reads, name: str
) -> None:
    line = '{"id": "w1", "title": "Wind", "text": "A wind farm opened."}\n'
    (corpus / "feed.jsonl").write_text(line)
    age(corpus)
    reindex(settings, fake_embedder)
    (corpus / name).write_text(line.replace("wind farm", "solar park"))
    age(corpus / name)
    reads.clear()

    report = reindex(settings, fake_embedder)

    assert reads.paths == [name]  # read before or after the unread file, it loses
    assert changes(report) == ([], [], [])
    assert [p.path for p in report.problems] == [name]
    assert "the index has it from feed.jsonl" in str(report.problems[0])
    assert live_catalog(settings).hashes()["w1"][1] == "feed.jsonl"


def test_rebuild_reads_every_file(
    indexed: Settings, fake_embedder: FakeEmbedder, reads: Reads
) -> None:
    report = reindex(indexed, fake_embedder, rebuild=True)

    assert sorted(reads.paths) == ["aid.md", "science/comet.txt", "sport/marathon.md"]
    assert len(report.added) == 3


def test_a_new_article_builds_a_generation_without_reading_the_others(
    indexed: Settings, fake_embedder: FakeEmbedder, corpus: Path, reads: Reads
) -> None:
    write_article(corpus, "new.md", "A new bridge opened over the river.", title="Bridge")
    age(corpus / "new.md")

    report = reindex(indexed, fake_embedder)
    assert reads.paths == ["new.md"]
    assert changes(report) == (["new.md"], [], [])
    assert report.unchanged == 3
    assert len(live_catalog(indexed).hashes()) == 4
    reads.clear()
    reindex(indexed, fake_embedder)  # the new generation has the stats of every file
    assert len(reads) == 0


def test_a_file_whose_permissions_changed_is_read(
    indexed: Settings, fake_embedder: FakeEmbedder, corpus: Path, reads: Reads
) -> None:
    # A chmod leaves size and mtime as they were, and changes ctime: a file made unreadable
    # must be tried, so that its problem is told (as root, any file still reads).
    (corpus / "aid.md").chmod(0o400)

    report = reindex(indexed, fake_embedder)

    assert reads.paths == ["aid.md"]
    assert changes(report) == ([], [], [])
