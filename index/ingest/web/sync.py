"""`newsbot sync`: every feed polled, its new entries' articles written into the corpus.

Each feed is fetched with the ETag and Last-Modified its last fetch gave (an unchanged feed is
a 304 and nothing more). An entry whose URL is in the corpus already is passed over without
a request; a new one is written from the feed's own text when that is the whole article,
else from its page, fetched as `newsbot add` fetches. A feed or page that fails is one line
and changes nothing in the corpus; the rest go on. Only the newest NEWSBOT_FEED_MAX_ENTRIES
entries of a feed are read, at most NEWSBOT_SYNC_MAX_PAGES pages fetched (the rest wait for
the next sync), and an entry that keeps failing is tried less and less often (its record is
in the feeds' state). With NEWSBOT_MAX_AGE_DAYS, older entries
are passed over and older fetched articles deleted (`index.ingest.web.retention`). Nothing is
indexed here.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

from index.errors import PageError
from index.ingest.corpus_lock import corpus_lock
from index.ingest.web.add import Added
from index.ingest.web.addresses import has_credentials
from index.ingest.web.feed_state import TIME_FORMAT, FeedState, FeedStatus, failed_entry
from index.ingest.web.feedlist import Feed, FeedList
from index.ingest.web.feeds import (
    FeedEntry,
    ParsedFeed,
    feed_request,
    full_text_article,
    parse_feed,
)
from index.ingest.web.fetcher import (
    CREDENTIALS,
    FetchOutcome,
    FetchPolicy,
    FetchResult,
    fetch_all,
)
from index.ingest.web.folder import Saved, WebFolder, url_key
from index.ingest.web.pages import WebArticle, article_from_page
from index.ingest.web.retention import Pruned, Retention
from index.settings import Settings


@dataclass(frozen=True)
class Polled:
    """What fetching one feed gave: its new entries, or "not modified", or why it failed."""

    feed: Feed
    outcome: FetchOutcome
    entries: int = 0  # entries in the feed
    read: int = 0  # of them, the newest NEWSBOT_FEED_MAX_ENTRIES
    new: int = 0  # of those, not in the corpus yet
    reason: str | None = None  # why it failed, on one line

    @property
    def failed(self) -> bool:
        return self.outcome is FetchOutcome.FAILED

    @property
    def summary(self) -> str:
        """What came of it, in a few words: `12 entries, 3 new`, `50000 entries, the newest
        100 read, 3 new`, `not modified`, the reason."""
        if self.outcome is FetchOutcome.FETCHED:
            plural = "entry" if self.entries == 1 else "entries"
            read = f", the newest {self.read} read" if self.read < self.entries else ""
            return f"{self.entries} {plural}{read}, {self.new} new"
        return self.reason or self.outcome.value


@dataclass(frozen=True)
class Skipped:
    """An entry passed over, and why (`published 2023-01-02, older than 30 days`)."""

    url: str
    reason: str


SyncEvent = Polled | Added | Skipped | Pruned
# Failures shown one a line; the others are counted (`… and 49990 more failed`).
FAILURES_SHOWN = 10
SyncCallback = Callable[[SyncEvent], None]


@dataclass
class SyncReport:
    """What `sync_feeds` did: each feed polled, each article written or failed, in order."""

    feeds: list[Polled] = field(default_factory=list)
    articles: list[Added] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    pruned: list[Pruned] = field(default_factory=list)  # too old (NEWSBOT_MAX_AGE_DAYS)
    known: int = 0  # entries passed over because their article is in the corpus already
    waiting: int = 0  # entries passed over because they failed lately (tried again later)
    deferred: int = 0  # entries left for the next sync (NEWSBOT_SYNC_MAX_PAGES, _MINUTES)

    def count(self, saved: Saved) -> int:
        return sum(1 for a in self.articles if a.saved is saved)

    @property
    def failed_articles(self) -> list[Added]:
        return [a for a in self.articles if a.failed]

    @property
    def failures(self) -> int:
        """Feeds and articles that failed."""
        return sum(1 for p in self.feeds if p.failed) + sum(1 for a in self.articles if a.failed)

    @property
    def changed(self) -> bool:
        """Whether any article file was added, rewritten or deleted."""
        written = any(a.saved in (Saved.ADDED, Saved.UPDATED) for a in self.articles)
        return written or bool(self.pruned)

    def failure_lines(self, shown: int = FAILURES_SHOWN) -> list[str]:
        """The failures as lines, `failed feed URL: reason` then `failed URL: reason`: the
        first `shown` of them, then `… and N more failed`."""
        lines = [f"failed feed {p.feed.url}: {p.summary}" for p in self.feeds if p.failed]
        lines += [f"failed {a.url}: {a.reason}" for a in self.failed_articles]
        return lines[:shown] + ([more_failed(len(lines) - shown)] if len(lines) > shown else [])


def more_failed(count: int) -> str:
    """The line that stands for the failures not shown."""
    return f"… and {count} more failed"


class _Sync:
    """One sync's working state: the corpus, the feeds' state, the report."""

    def __init__(
        self,
        settings: Settings,
        policy: FetchPolicy,
        on_event: SyncCallback | None,
        today: date,
        now: datetime,
    ) -> None:
        self.policy = policy
        self.now = now
        self.max_entries = settings.feed_max_entries
        self.max_pages = settings.sync_max_pages
        self.deadline = time.monotonic() + settings.sync_max_minutes * 60
        self.retention = Retention(settings.max_age_days, today)
        self.folder = WebFolder(settings.corpus_dir)
        self.state = FeedState(settings.index_dir)
        self.report = SyncReport()
        self.on_event = on_event
        # Each feed's entries whose pages to fetch, by their URL keys, in the feed's order.
        self.pending: dict[str, dict[str, FeedEntry]] = {}
        self.owner: dict[str, str] = {}  # an entry's URL key → the feed it was taken from

    def tell(self, event: SyncEvent) -> None:
        if isinstance(event, Polled):
            self.report.feeds.append(event)
        elif isinstance(event, Added):
            self.report.articles.append(event)
            self._remember(event)
        elif isinstance(event, Pruned):
            self.report.pruned.append(event)
        else:
            self.report.skipped.append(event)
        if self.on_event is not None:
            self.on_event(event)

    def poll(self, feeds: list[Feed]) -> None:
        """Fetch every feed; write the entries whose feed holds their text, queue the rest."""
        requests = []
        for feed in feeds:
            status = self.state.get(feed.url)
            requests.append(feed_request(feed.url, status.etag, status.last_modified))
        seen: set[str] = set()
        for feed, result in zip(
            feeds, fetch_all(requests, self.policy, seconds=self.time_left()), strict=True
        ):
            self.tell(self._polled(feed, result, seen))

    def _polled(self, feed: Feed, result: FetchResult, seen: set[str]) -> Polled:
        checked = self.now.strftime(TIME_FORMAT)
        before = self.state.get(feed.url)
        if not result.ok:
            polled = Polled(feed, result.outcome, reason=result.reason)
            # A failure keeps what the last good fetch said; a 304 confirms it.
            self.state.set(feed.url, replace(before, checked=checked, outcome=polled.summary))
            return polled
        try:
            parsed = parse_feed(result)
        except PageError as exc:
            polled = Polled(feed, FetchOutcome.FAILED, reason=exc.reason)
            self.state.set(feed.url, replace(before, checked=checked, outcome=polled.summary))
            return polled
        read = newest(parsed.entries, self.max_entries)
        status = FeedStatus(result.etag, result.last_modified, checked, failing=before.failing)
        self.state.set(feed.url, status.failing_only([entry.url for entry in read]))
        self.pending.setdefault(url_key(feed.url), {})
        new = 0
        for entry in read:
            key = url_key(entry.url)
            if key in seen:
                continue  # in another feed too
            seen.add(key)
            if self.folder.find(entry.url) is not None:
                self.report.known += 1
                continue
            new += 1
            failure = status.failure(entry.url)
            if failure is not None and not failure.due(self.now):
                self.report.waiting += 1
                continue
            self.owner[key] = feed.url
            if has_credentials(entry.url):  # its text may be in the feed: never fetched
                self.tell(Added(entry.url, None, reason=CREDENTIALS))
                continue
            if entry.published and self.retention.too_old(entry.published):
                self.tell(Skipped(entry.url, self.retention.why(entry.published)))
                continue
            self._take(feed, entry, parsed)
        entries = len(parsed.entries)
        polled = Polled(feed, FetchOutcome.FETCHED, entries=entries, read=len(read), new=new)
        self.state.set(feed.url, replace(self.state.get(feed.url), outcome=polled.summary))
        return polled

    def _take(self, feed: Feed, entry: FeedEntry, parsed: ParsedFeed) -> None:
        article = full_text_article(entry, parsed)
        if article is None:
            self.pending[url_key(feed.url)][url_key(entry.url)] = entry
            return
        self._save(article, entry.url)

    def _remember(self, added: Added) -> None:
        """Keep, in its feed's state, that an entry failed (again), or forget it succeeded."""
        feed_url = self.owner.get(url_key(added.url))
        if feed_url is None:
            return
        status = self.state.get(feed_url)
        if added.failed:
            before = status.failure(added.url)
            reason = added.reason or "failed"
            failure = before.again(reason, self.now) if before else failed_entry(reason, self.now)
            self.state.set(feed_url, status.with_failure(added.url, failure))
        elif status.failure(added.url) is not None:
            self.state.set(feed_url, status.with_failure(added.url, None))

    def fetch_pages(self) -> None:
        """Fetch the queued entries' pages (the first NEWSBOT_SYNC_MAX_PAGES, in the order of
        the feeds and their entries) and write their articles. A feed some of whose entries
        are left for the next sync forgets its ETag and Last-Modified: the next sync reads it
        whole again."""
        queued = [item for entries in self.pending.values() for item in entries.items()]
        taken, left = queued[: self.max_pages], queued[self.max_pages :]
        self.report.deferred = len(left)
        for key, _ in left:
            self._read_whole_next_time(key)
        entries = [entry for _, entry in taken]
        pages = fetch_all([entry.url for entry in entries], self.policy, seconds=self.time_left())
        for (key, entry), page in zip(taken, pages, strict=True):
            if page.outcome is FetchOutcome.OUT_OF_TIME:  # NEWSBOT_SYNC_MAX_MINUTES
                self.report.deferred += 1
                self._read_whole_next_time(key)
                continue
            if not page.ok:
                self.tell(Added(page.url, None, reason=page.reason))
                continue
            try:
                article = article_from_page(page)
            except PageError as exc:
                self.tell(Added(page.url, None, reason=exc.reason))
                continue
            if article.published is None and entry.published:
                article = replace(article, published=entry.published)
            self._save(article, entry.url)

    def _read_whole_next_time(self, key: str) -> None:
        """Forget the ETag and Last-Modified of the feed of the entry `key` (left for the
        next sync), so that the next sync reads the feed whole again and finds it."""
        feed_url = self.owner[key]
        status = self.state.get(feed_url)
        self.state.set(feed_url, replace(status, etag=None, last_modified=None))

    def time_left(self) -> float:
        """Seconds left of NEWSBOT_SYNC_MAX_MINUTES."""
        return max(0.0, self.deadline - time.monotonic())

    def _save(self, article: WebArticle, url: str) -> None:
        if article.published and self.retention.too_old(article.published):
            self.tell(Skipped(url, self.retention.why(article.published)))
            return
        saved, path = self.folder.save(article, url)
        self.tell(Added(url, saved, path))


def sync_feeds(
    settings: Settings,
    *,
    policy: FetchPolicy | None = None,
    on_event: SyncCallback | None = None,
    today: date | None = None,
    now: datetime | None = None,
) -> SyncReport:
    """Poll every feed of the corpus's `feeds.yaml` and write their new entries' articles
    into the corpus (`web/HOST/DATE-SLUG.md`, as `newsbot add` writes them).

    Args:
        settings: the corpus and index folders, and the NEWSBOT_FETCH_* settings (unless
            `policy`).
        policy: how to fetch (default: from `settings`).
        on_event: called with each feed polled (`Polled`), each article written or failed
            (`Added`), each entry passed over (`Skipped`) and each article deleted for its
            age (`Pruned`), as they come.
        today: the day NEWSBOT_MAX_AGE_DAYS counts to (default: today).
        now: the time a failing entry's wait is counted from and to (default: now, UTC).

    Returns:
        What was done.

    Raises:
        FeedListError: `feeds.yaml` cannot be read.
        DiskWriteError: an article file, or the feeds' state, cannot be written.
        CorpusBusyError: another sync (or `newsbot add`, `feeds add`) is writing the corpus.
    """
    with corpus_lock(settings.corpus_dir):
        feeds = FeedList(settings.corpus_dir).feeds()
        policy = policy or FetchPolicy.from_settings(settings)
        sync = _Sync(settings, policy, on_event, today or date.today(), now or datetime.now(UTC))
        sync.poll(feeds)
        sync.fetch_pages()
        for pruned in sync.retention.prune(sync.folder):
            sync.tell(pruned)
        sync.state.keep_only([feed.url for feed in feeds])
        if feeds or sync.state.path.exists():
            sync.state.save()
    return sync.report


def newest(entries: list[FeedEntry], count: int) -> list[FeedEntry]:
    """The newest `count` entries, in the feed's order: by their dates, the undated counted
    older than the dated, in the feed's order (a feed lists its newest first, as a rule)."""
    if len(entries) <= count:
        return entries
    by_age = sorted(range(len(entries)), key=lambda i: entries[i].published or "", reverse=True)
    keep = set(by_age[:count])
    return [entry for i, entry in enumerate(entries) if i in keep]


def corpus_path(settings: Settings, path: Path | None) -> str:
    """`path` under the corpus folder, as the CLI shows it."""
    if path is None:
        return ""
    try:
        return str(path.relative_to(settings.corpus_dir))
    except ValueError:
        return str(path)
