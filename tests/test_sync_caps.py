"""A sync's bounds: the newest entries of a feed only (NEWSBOT_FEED_MAX_ENTRIES), so many
pages a sync (NEWSBOT_SYNC_MAX_PAGES, the rest at the next), entries that keep failing tried
less and less often, and failures summed up rather than printed a line each."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.app import log_sync
from index.build.reindex import IndexReport
from index.build.schedule import Synced
from index.ingest.web.addresses import AddressPolicy
from index.ingest.web.feed_state import FeedState, failed_entry
from index.ingest.web.fetcher import FetchOutcome, FetchPolicy, fetch_all
from index.ingest.web.sync import SyncReport, sync_feeds
from index.settings import Settings
from tests.test_add import LONG, page
from tests.test_feeds import cli, feed, item, rss, web_files
from tests.web_server import Reply, WebServer

NOW = datetime(2024, 11, 18, 7, 0, tzinfo=UTC)
LOOPBACK = FetchPolicy(addresses=AddressPolicy.allowing(["127.0.0.1"]), backoff=0.01, timeout=2)
LOOPBACK_PATIENT = replace(LOOPBACK, timeout=20)


def pages(web: WebServer, count: int, prefix: str = "/news/") -> list[str]:
    """`count` articles on the server; their paths."""
    paths = [f"{prefix}{n}" for n in range(count)]
    for n, path in enumerate(paths):
        web.page(path, page(f"Story number {n}", LONG, LONG))
    return paths


def page_hits(web: WebServer) -> int:
    return sum(1 for seen in web.requests if seen.path.startswith("/news/"))


def test_a_feed_of_thousands_of_broken_links_costs_the_newest_100_and_a_dozen_lines(
    web: WebServer, fetching: Path
) -> None:
    # Dated from the oldest (first) to the newest (last): the newest are read, not the first.
    days = [
        (NOW - timedelta(days=3000 - n)).strftime("%a, %d %b %Y %H:%M:%S GMT") for n in range(3000)
    ]
    links = [item(f"/news/{n}", f"Story {n}", date=day) for n, day in enumerate(days)]
    url = feed(web, "/rss.xml", rss(*links))
    (fetching / "feeds.yaml").write_text(f"- url: {url}\n", encoding="utf-8")

    code, stdout, stderr = cli("sync", "--no-index")

    assert code == 1
    assert page_hits(web) == 100
    assert {int(seen.path.rsplit("/", 1)[1]) for seen in web.requests[1:]} >= {2999, 2950}
    lines = stderr.splitlines()
    assert len(lines) == 11
    assert lines[0].startswith(f"failed {web.url('/news/')}") and "HTTP 404" in lines[0]
    assert lines[-1] == "… and 90 more failed"
    assert stdout.splitlines() == [
        f"feed {url}: 3000 entries, the newest 100 read, 100 new",
        "synced 1 feed: 0 added, 0 updated, 0 already in the corpus, 100 failed",
    ]


def test_fetching_stops_at_its_time_limit_and_says_which_were_not_fetched(
    web: WebServer,
) -> None:
    web.page("/fast", page("Fast", LONG, LONG))
    web.route("/slow", Reply(body=page("Slow", LONG, LONG), delay=5))

    fast, slow = fetch_all([web.url("/fast"), web.url("/slow")], LOOPBACK_PATIENT, seconds=1)

    assert fast.outcome is FetchOutcome.FETCHED
    assert slow.outcome is FetchOutcome.OUT_OF_TIME and not slow.ok
    assert slow.reason == "not fetched: out of time (1 s)"


def test_a_sync_that_runs_out_of_time_leaves_the_rest_for_the_next(
    web: WebServer, fetching: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pages that each trickle in within the time of one request (a hostile site, or a slow
    # one): a sync stops at NEWSBOT_SYNC_MAX_MINUTES, not when the last of them is done.
    monkeypatch.setenv("NEWSBOT_FETCH_TIMEOUT", "20")
    monkeypatch.setenv("NEWSBOT_SYNC_MAX_MINUTES", "0.03")  # 1.8 s
    paths = [f"/news/{n}" for n in range(4)]
    for n, path in enumerate(paths):
        web.route(path, Reply(body=page(f"Story number {n}", LONG, LONG), delay=6))
    url = feed(web, "/rss.xml", rss(*(item(p, p) for p in paths)), etag='"v1"')
    (fetching / "feeds.yaml").write_text(f"- url: {url}\n", encoding="utf-8")

    code, stdout, stderr = cli("sync", "--no-index")

    assert (code, stderr) == (0, "")  # not a failure: nothing was wrong with the pages
    assert stdout.splitlines()[-1] == (
        "synced 1 feed: 0 added, 0 updated, 0 already in the corpus, "
        "4 left for the next sync (NEWSBOT_SYNC_MAX_PAGES, _MINUTES)"
    )
    for path in paths:  # the site is quick again
        web.page(path, page(f"Story {path}", LONG, LONG))
    monkeypatch.setenv("NEWSBOT_SYNC_MAX_MINUTES", "10")

    code, stdout, _ = cli("sync", "--no-index")

    assert code == 0
    assert "if-none-match" not in web.last("/rss.xml").headers  # the feed read whole again
    assert len(web_files(fetching)) == 4


def test_a_sync_fetches_so_many_pages_and_the_next_one_the_rest(
    web: WebServer, fetching: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSBOT_SYNC_MAX_PAGES", "3")
    first, second = pages(web, 2, "/news/a"), pages(web, 2, "/news/b")
    feeds = [
        feed(web, "/a.xml", rss(*(item(p, p) for p in first)), etag='"a"'),
        feed(web, "/b.xml", rss(*(item(p, p) for p in second)), etag='"b"'),
    ]
    (fetching / "feeds.yaml").write_text("".join(f"- url: {u}\n" for u in feeds))

    code, stdout, _ = cli("sync", "--no-index")

    assert code == 0
    assert page_hits(web) == 3 and len(web_files(fetching)) == 3
    assert stdout.splitlines()[-1] == (
        "synced 2 feeds: 3 added, 0 updated, 0 already in the corpus, "
        "1 left for the next sync (NEWSBOT_SYNC_MAX_PAGES, _MINUTES)"
    )

    code, stdout, _ = cli("sync", "--no-index")

    # The feed whose entry was left is read whole again (no ETag sent), the other is not.
    assert code == 0 and page_hits(web) == 4 and len(web_files(fetching)) == 4
    assert web.last("/a.xml").headers.get("if-none-match") == '"a"'
    assert "if-none-match" not in web.last("/b.xml").headers
    assert stdout.splitlines()[-1] == "synced 2 feeds: 1 added, 0 updated, 1 already in the corpus"


def test_an_entry_that_keeps_failing_is_tried_less_and_less_often(
    web: WebServer, settings: Settings
) -> None:
    web.route("/news/broken", Reply(404))
    url = feed(web, "/rss.xml", rss(item("/news/broken", "Broken")))  # no validators
    (settings.corpus_dir / "feeds.yaml").write_text(f"- url: {url}\n")
    policy = LOOPBACK

    def sync(minutes: float) -> SyncReport:
        return sync_feeds(settings, policy=policy, now=NOW + timedelta(minutes=minutes))

    tried = []
    for minutes in (0, 30, 60, 100, 150, 210, 330):  # a sync now and then
        before = web.hits("/news/broken")
        report = sync(minutes)
        tried.append(web.hits("/news/broken") > before)
        assert report.failures == (1 if tried[-1] else 0)
        assert report.waiting == (0 if tried[-1] else 1)

    # Tried at once again after one failure, then 1 hour after the second, 2 after the third.
    assert tried == [True, True, False, True, False, False, True]
    failing = json.loads((settings.index_dir / "feeds.json").read_text())
    [record] = [status["failing"] for status in failing.values()]
    assert list(record.values()) == [
        {"failures": 4, "reason": "HTTP 404 (Not Found)", "retry": "2024-11-18T16:30:00Z"}
    ]

    web.page("/news/broken", page("Mended at last", LONG, LONG))
    report = sync(24 * 60)
    assert report.failures == 0 and len(report.articles) == 1
    assert FeedState(settings.index_dir).get(url).failing == {}


def test_an_entry_no_longer_in_its_feed_is_forgotten(web: WebServer, settings: Settings) -> None:
    web.route("/news/broken", Reply(404))
    url = feed(web, "/rss.xml", rss(item("/news/broken", "Broken")))
    (settings.corpus_dir / "feeds.yaml").write_text(f"- url: {url}\n")
    policy = LOOPBACK
    sync_feeds(settings, policy=policy, now=NOW)
    assert FeedState(settings.index_dir).get(url).failing != {}
    feed(web, "/rss.xml", rss())

    sync_feeds(settings, policy=policy, now=NOW)

    assert FeedState(settings.index_dir).get(url).failing == {}


@pytest.mark.parametrize(
    "failing",
    [
        {"k": {"failures": 10**30, "reason": "x", "retry": "2024-11-18T07:00:00Z"}},
        {"k": {"failures": "3", "reason": "x", "retry": "soon"}},
        {"k": [1, 2]},
        ["not", "a", "mapping"],
    ],
)
def test_a_damaged_record_of_failures_is_read_as_far_as_it_makes_sense(
    tmp_path: Path, failing: object
) -> None:
    state = {"http://example.com/rss.xml": {"etag": '"v1"', "failing": failing}}
    (tmp_path / "feeds.json").write_text(json.dumps(state))

    status = FeedState(tmp_path).get("http://example.com/rss.xml")

    assert status.etag == '"v1"'
    for record in status.failing.values():
        again = record.again("HTTP 404", NOW)  # a huge count waits the longest wait, at once
        assert again.retry == "2024-11-25T07:00:00Z"


def test_the_longest_wait_is_a_week() -> None:
    waits = [failed_entry("x", NOW, n).retry for n in (1, 2, 3, 9, 10, 1000)]

    assert waits == [
        "2024-11-18T07:00:00Z",
        "2024-11-18T08:00:00Z",
        "2024-11-18T09:00:00Z",
        "2024-11-23T15:00:00Z",
        "2024-11-25T07:00:00Z",
        "2024-11-25T07:00:00Z",
    ]


def test_the_bots_log_sums_up_failures_past_the_first_ten(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from index.ingest.web.add import Added

    report = SyncReport(
        articles=[Added(f"https://example.com/{n}", None, reason="HTTP 404") for n in range(25)]
    )

    with caplog.at_level(logging.WARNING):
        log_sync(Synced(report, IndexReport()))

    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings[:10] == [f"failed https://example.com/{n}: HTTP 404" for n in range(10)]
    assert warnings[10:] == ["… and 15 more failed"]
