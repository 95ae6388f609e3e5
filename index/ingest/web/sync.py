"""`newsbot sync`: every feed polled, its new entries' articles written into the corpus.

Each feed is fetched with the ETag and Last-Modified its last fetch gave (an unchanged feed is
a 304 and nothing more). An entry whose URL is in the corpus already is passed over without
a request; a new one is written from the feed's own text when that is the whole article,
else from its page, fetched as `newsbot add` fetches. A feed or page that fails is one line
and changes nothing in the corpus; the rest go on. With NEWSBOT_MAX_AGE_DAYS, older entries
are passed over and older fetched articles deleted (`index.ingest.web.retention`). Nothing is
indexed here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path

from index.errors import PageError
from index.ingest.web.add import Added
from index.ingest.web.feed_state import FeedState, FeedStatus
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
    has_credentials,
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
    new: int = 0  # of them, not in the corpus yet
    reason: str | None = None  # why it failed, on one line

    @property
    def failed(self) -> bool:
        return self.outcome is FetchOutcome.FAILED

    @property
    def summary(self) -> str:
        """What came of it, in a few words: `12 entries, 3 new`, `not modified`, the reason."""
        if self.outcome is FetchOutcome.FETCHED:
            plural = "entry" if self.entries == 1 else "entries"
            return f"{self.entries} {plural}, {self.new} new"
        return self.reason or self.outcome.value


@dataclass(frozen=True)
class Skipped:
    """An entry passed over, and why (`published 2023-01-02, older than 30 days`)."""

    url: str
    reason: str


SyncEvent = Polled | Added | Skipped | Pruned
SyncCallback = Callable[[SyncEvent], None]


@dataclass
class SyncReport:
    """What `sync_feeds` did: each feed polled, each article written or failed, in order."""

    feeds: list[Polled] = field(default_factory=list)
    articles: list[Added] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    pruned: list[Pruned] = field(default_factory=list)  # too old (NEWSBOT_MAX_AGE_DAYS)
    known: int = 0  # entries passed over because their article is in the corpus already

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


class _Sync:
    """One sync's working state: the corpus, the feeds' state, the report."""

    def __init__(
        self,
        settings: Settings,
        policy: FetchPolicy,
        on_event: SyncCallback | None,
        today: date,
    ) -> None:
        self.policy = policy
        self.retention = Retention(settings.max_age_days, today)
        self.folder = WebFolder(settings.corpus_dir)
        self.state = FeedState(settings.index_dir)
        self.report = SyncReport()
        self.on_event = on_event
        self.pending: dict[str, FeedEntry] = {}  # URL key → an entry whose page to fetch

    def tell(self, event: SyncEvent) -> None:
        if isinstance(event, Polled):
            self.report.feeds.append(event)
        elif isinstance(event, Added):
            self.report.articles.append(event)
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
        for feed, result in zip(feeds, fetch_all(requests, self.policy), strict=True):
            self.tell(self._polled(feed, result, seen))

    def _polled(self, feed: Feed, result: FetchResult, seen: set[str]) -> Polled:
        checked = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
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
        new = 0
        for entry in parsed.entries:
            key = url_key(entry.url)
            if key in seen:
                continue  # in another feed too
            seen.add(key)
            if self.folder.find(entry.url) is not None:
                self.report.known += 1
                continue
            new += 1
            if has_credentials(entry.url):  # its text may be in the feed: never fetched
                self.tell(Added(entry.url, None, reason=CREDENTIALS))
                continue
            if entry.published and self.retention.too_old(entry.published):
                self.tell(Skipped(entry.url, self.retention.why(entry.published)))
                continue
            self._take(entry, parsed)
        polled = Polled(feed, FetchOutcome.FETCHED, entries=len(parsed.entries), new=new)
        status = FeedStatus(result.etag, result.last_modified, checked, polled.summary)
        self.state.set(feed.url, status)
        return polled

    def _take(self, entry: FeedEntry, parsed: ParsedFeed) -> None:
        article = full_text_article(entry, parsed)
        if article is None:
            self.pending[url_key(entry.url)] = entry
            return
        self._save(article, entry.url)

    def fetch_pages(self) -> None:
        """Fetch the queued entries' pages and write their articles."""
        entries = list(self.pending.values())
        pages = fetch_all([entry.url for entry in entries], self.policy)
        for entry, page in zip(entries, pages, strict=True):
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

    Returns:
        What was done.

    Raises:
        FeedListError: `feeds.yaml` cannot be read.
        DiskWriteError: an article file, or the feeds' state, cannot be written.
    """
    feeds = FeedList(settings.corpus_dir).feeds()
    policy = policy or FetchPolicy.from_settings(settings)
    sync = _Sync(settings, policy, on_event, today or date.today())
    sync.poll(feeds)
    sync.fetch_pages()
    for pruned in sync.retention.prune(sync.folder):
        sync.tell(pruned)
    sync.state.keep_only([feed.url for feed in feeds])
    if feeds or sync.state.path.exists():
        sync.state.save()
    return sync.report


def corpus_path(settings: Settings, path: Path | None) -> str:
    """`path` under the corpus folder, as the CLI shows it."""
    if path is None:
        return ""
    try:
        return str(path.relative_to(settings.corpus_dir))
    except ValueError:
        return str(path)
