"""Syncs that race (issue 30): a sync that meets a running index, two syncs at once, and
two edits of feeds.yaml at once. Whatever a sync wrote is indexed by the next sync or index,
whatever happened in between; syncs are serialised, so no entry is written twice."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

from index.build.schedule import SyncSchedule
from index.errors import IndexBusyError
from index.ingest.corpus_lock import corpus_lock
from index.settings import Settings
from index.store.layout import IndexLayout
from index.store.writer_lock import writer_lock
from tests.conftest import live_catalog
from tests.fakes import FakeEmbedder
from tests.test_add import LONG, page
from tests.test_feeds import cli, feed, ferry_entry, follow, item, rss, web_files
from tests.web_server import Reply, WebServer

NEWSBOT = Path(__file__).resolve().parent / "newsbot_fake.py"
FERRY = "web/127.0.0.1/2024-11-16-ferry-terminal-to-open-in-june.md"


def full_text_feed(web: WebServer) -> str:
    """A feed of one entry that carries its whole article (no page to fetch)."""
    return feed(web, "/rss.xml", rss(ferry_entry()))


def indexed_ids(settings: Settings) -> set[str]:
    with closing(live_catalog(settings)) as catalog:
        return {article.id for article in catalog.articles()}


def test_a_sync_that_meets_a_running_index_is_indexed_by_the_next_sync(
    web: WebServer, fetching: Path, env: Path
) -> None:
    follow(full_text_feed(web))
    settings = Settings(corpus_dir=fetching, index_dir=env)

    with writer_lock(IndexLayout(env)):  # another `newsbot index` at work
        code, _, stderr = cli("sync")

    assert code == 1
    (line,) = stderr.splitlines()
    assert "another `newsbot index`" in line
    assert "the next `newsbot sync` or `newsbot index` indexes them" in line
    assert FERRY in web_files(fetching)

    code, stdout, stderr = cli("sync")

    assert code == 0, stderr
    assert "1 already in the corpus" in stdout  # nothing fetched again...
    assert FERRY in indexed_ids(settings)  # ...and what the first sync wrote is indexed


def test_a_scheduled_sync_indexes_what_an_earlier_one_could_not(
    web: WebServer, fetching: Path, env: Path, fake_embedder: FakeEmbedder
) -> None:
    follow(full_text_feed(web))
    settings = Settings.read().overridden(corpus_dir=fetching, index_dir=env)
    schedule = SyncSchedule(settings, fake_embedder, minutes=30)

    with writer_lock(IndexLayout(env)), pytest.raises(IndexBusyError):
        schedule.run_once()
    assert FERRY in web_files(fetching)

    done = schedule.run_once()

    assert done.sync.known == 1 and done.index.changed
    assert FERRY in indexed_ids(settings)


def test_two_syncs_at_once_write_each_entry_once(
    web: WebServer, fetching: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSBOT_FETCH_TIMEOUT", "20")
    links = [f"/news/story-{n}" for n in range(3)]
    for n, link in enumerate(links):
        html = page(f"Harbour story number {n} of the week", LONG, LONG)
        web.route(link, Reply(body=html, delay=3))  # slow: the first sync is still at it
    follow(feed(web, "/rss.xml", rss(*(item(link, f"Story {n}") for n, link in enumerate(links)))))
    command = [sys.executable, str(NEWSBOT), "sync", "--no-index"]

    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while web.hits(links[0]) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    second = subprocess.run(command, capture_output=True, timeout=60, env=dict(os.environ))
    _, err = first.communicate(timeout=60)

    assert first.returncode == 0, err.decode()
    assert second.returncode == 1
    (line,) = second.stderr.decode().splitlines()
    assert "another `newsbot sync` or `add`" in line and "Traceback" not in line
    files = sorted(web_files(fetching))
    assert len(files) == 3, files  # not one of them twice (`-2.md`)
    assert not any(name.endswith("-2.md") for name in files)


def test_an_edit_of_the_feed_list_waits_for_none_and_loses_none(
    web: WebServer, fetching: Path
) -> None:
    courier = full_text_feed(web)
    before = (fetching / "feeds.yaml").read_bytes() if (fetching / "feeds.yaml").exists() else b""

    with corpus_lock(fetching, of="feeds"):  # another `feeds add` at work
        code, _, stderr = cli("feeds", "add", courier)

    assert code == 1
    (line,) = stderr.splitlines()
    assert "another `newsbot feeds` edit" in line
    after = (fetching / "feeds.yaml").read_bytes() if (fetching / "feeds.yaml").exists() else b""
    assert after == before
    follow(courier)  # once the other is done
