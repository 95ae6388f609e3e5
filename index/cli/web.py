"""`newsbot add`, `newsbot feeds` and `newsbot sync`: articles from the web into the corpus."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.text import Text

from index.cli.console import Command, Group, IndexDirOption, err, load_settings, out, user_errors
from index.cli.indexing import CorpusOption, run_index
from index.redaction import without_passwords
from index.settings import Settings
from index.text import inert

NoIndexOption = Annotated[
    bool,
    typer.Option("--no-index", help="Only write the articles into the corpus; index later."),
]

feeds_app = typer.Typer(
    cls=Group,
    help="The feeds `newsbot sync` polls (RSS, Atom), listed in the corpus's feeds.yaml.",
    no_args_is_help=True,
)


def add_command(
    urls: Annotated[
        list[str],
        typer.Argument(
            metavar="URL",
            help="Web addresses (http or https) of news articles.",
            show_default=False,
        ),
    ],
    no_index: NoIndexOption = False,
    corpus: CorpusOption = None,
    index_dir: IndexDirOption = None,
) -> None:
    """Fetch articles from the web into the corpus (web/HOST/DATE-TITLE.md), then index.

    An address added before is rewritten only if its text changed.
    Each page that fails is one line; the others are added, and the exit status is 1."""
    from index.ingest.web.add import Added, add_pages

    settings = load_settings(corpus_dir=corpus, index_dir=index_dir)

    def show(result: Added) -> None:
        url = shown(result.url)
        if result.saved is None:
            err.print(Text(f"failed {url}: {shown(result.reason or '')}"), soft_wrap=True)
            return
        where = result.path.relative_to(settings.corpus_dir) if result.path else ""
        out.print(Text(f"{result.saved.value} {url} → {where}"), soft_wrap=True)

    with user_errors():
        report = add_pages(settings, urls, on_result=show)
    if not no_index and len(report.failed) < len(report.results):
        _index_written(settings)
    if report.failed:
        raise typer.Exit(1)


@feeds_app.command("add", cls=Command)
def feeds_add_command(
    url: Annotated[str, typer.Argument(metavar="URL", help="The feed's address (RSS or Atom).")],
    name: Annotated[
        str | None, typer.Option("--name", help="What to call it in `feeds list`.")
    ] = None,
    corpus: CorpusOption = None,
) -> None:
    """Follow a feed: check that it is one, then add it to feeds.yaml (`newsbot sync` polls it)."""
    from index.ingest.web.feedlist import follow
    from index.ingest.web.fetcher import FetchPolicy

    settings = load_settings(corpus_dir=corpus)
    with user_errors():
        feed, parsed = follow(settings.corpus_dir, url, name, FetchPolicy.from_settings(settings))
    title = f"{parsed.title}: " if parsed.title else ""
    plural = "entry" if len(parsed.entries) == 1 else "entries"
    out.print(
        Text(
            f"following {shown(feed.url)} ({inert(title)}{len(parsed.entries)} {plural}); "
            "`newsbot sync` fetches them"
        ),
        soft_wrap=True,
    )


@feeds_app.command("list", cls=Command)
def feeds_list_command(corpus: CorpusOption = None, index_dir: IndexDirOption = None) -> None:
    """List the feeds followed, with when each was last fetched and what came of it."""
    from index.ingest.web.feed_state import FeedState
    from index.ingest.web.feedlist import FeedList

    settings = load_settings(corpus_dir=corpus, index_dir=index_dir)
    with user_errors():
        feeds = FeedList(settings.corpus_dir).feeds()
    if not feeds:
        out.print("No feeds yet: `newsbot feeds add URL` follows one.")
        return
    state = FeedState(settings.index_dir)
    for feed in feeds:
        status = state.get(feed.url)
        name = f"{feed.name}: " if feed.name else ""
        last = (
            f"last fetched {status.checked.replace('T', ' ').rstrip('Z')} UTC: {status.outcome}"
            if status.checked
            else "not fetched yet"
        )
        out.print(Text(shown(f"{name}{feed.url} ({last})")), soft_wrap=True)


@feeds_app.command("remove", cls=Command)
def feeds_remove_command(
    feed: Annotated[str, typer.Argument(metavar="URL|NAME", help="The feed's address or name.")],
    corpus: CorpusOption = None,
) -> None:
    """Stop following a feed (its articles stay in the corpus)."""
    from index.ingest.web.feedlist import FeedList

    settings = load_settings(corpus_dir=corpus)
    with user_errors():
        removed = FeedList(settings.corpus_dir).remove(feed)
    out.print(Text(f"removed {shown(removed.label)}"), soft_wrap=True)


@feeds_app.command("discover", cls=Command)
def feeds_discover_command(
    site: Annotated[str, typer.Argument(metavar="SITE", help="A site's (or a page's) address.")],
) -> None:
    """Find the feeds a site offers (each checked to be a feed); follow one with `feeds add`."""
    from index.ingest.web.discover import discover_feeds
    from index.ingest.web.fetcher import FetchPolicy

    settings = load_settings()
    with user_errors():
        found = discover_feeds(site, FetchPolicy.from_settings(settings))
    for feed in found:
        title = f"{feed.title}, " if feed.title else ""
        plural = "entry" if feed.entries == 1 else "entries"
        out.print(Text(shown(f"{feed.url} ({title}{feed.entries} {plural})")), soft_wrap=True)


def sync_command(
    no_index: NoIndexOption = False,
    corpus: CorpusOption = None,
    index_dir: IndexDirOption = None,
) -> None:
    """Poll every feed (`newsbot feeds`), write new entries' articles to the corpus, index.

    An unchanged feed costs one conditional request, an entry already in the corpus none.
    With NEWSBOT_MAX_AGE_DAYS, older fetched articles are deleted.
    Each feed or page that fails is one line; the others are synced, and the exit status is 1.
    Past 10 failures, one more line says how many more there were."""
    from index.ingest.web.sync import sync_feeds

    settings = load_settings(corpus_dir=corpus, index_dir=index_dir)
    printer = _SyncPrinter(settings)
    with user_errors():
        report = sync_feeds(settings, on_event=printer)
    printer.tail()
    if report.feeds:
        out.print(_sync_summary(report), soft_wrap=True, highlight=False)
    else:
        out.print("No feeds to sync: `newsbot feeds add URL` follows one.")
    if not no_index:
        # Whatever this sync wrote, and whatever an earlier one wrote while another index was
        # running: a reindex with nothing new costs a listing of the corpus, no model call.
        _index_written(settings)
    if report.failures:
        raise typer.Exit(1)


def _index_written(settings: Settings) -> None:
    """Index what was written into the corpus."""
    run_index(
        settings,
        brief=True,
        if_busy="the articles are in the corpus; "
        "the next `newsbot sync` or `newsbot index` indexes them",
    )


def shown(text: str) -> str:
    """An address (or a reason naming some) as the web commands print it: inert, and any
    password in it masked."""
    return inert(without_passwords(text))


class _SyncPrinter:
    """Prints a sync's events as they come: a line each, but for failures only the first
    `FAILURES_SHOWN` (a feed of 50,000 broken links is not 50,000 lines); `tail` says how
    many more there were."""

    def __init__(self, settings: Settings) -> None:
        from index.ingest.web.sync import FAILURES_SHOWN

        self.settings = settings
        self.shown = FAILURES_SHOWN
        self.failures = 0

    def __call__(self, event: Any) -> None:
        from index.ingest.web.add import Added
        from index.ingest.web.retention import Pruned
        from index.ingest.web.sync import Polled, corpus_path

        if isinstance(event, Polled):
            if event.failed:
                self._failed(f"failed feed {shown(event.feed.url)}: {shown(event.summary)}")
            else:
                out.print(Text(f"feed {shown(event.feed.label)}: {event.summary}"), soft_wrap=True)
        elif isinstance(event, Added):
            if event.saved is None:
                self._failed(f"failed {shown(event.url)}: {shown(event.reason or '')}")
            else:
                where = corpus_path(self.settings, event.path)
                line = f"{event.saved.value} {shown(event.url)} → {where}"
                out.print(Text(line), soft_wrap=True)
        elif isinstance(event, Pruned):
            where = corpus_path(self.settings, event.path)
            line = f"pruned {where}: published {event.dated}, older than NEWSBOT_MAX_AGE_DAYS"
            out.print(Text(inert(line)), soft_wrap=True)
        else:
            out.print(Text(f"skipped {shown(event.url)}: {shown(event.reason)}"), soft_wrap=True)

    def _failed(self, line: str) -> None:
        self.failures += 1
        if self.failures <= self.shown:
            err.print(Text(line), soft_wrap=True)

    def tail(self) -> None:
        """Say how many failures were not shown, if any."""
        from index.ingest.web.sync import more_failed

        if self.failures > self.shown:
            err.print(more_failed(self.failures - self.shown), soft_wrap=True, highlight=False)


def _sync_summary(report: Any) -> str:
    from index.ingest.web.folder import Saved

    feeds = len(report.feeds)
    parts = [
        f"{report.count(Saved.ADDED)} added",
        f"{report.count(Saved.UPDATED)} updated",
        f"{report.known} already in the corpus",
    ]
    if report.skipped:
        parts.append(f"{len(report.skipped)} skipped")
    if report.waiting:
        parts.append(f"{report.waiting} failing lately, tried again later")
    if report.deferred:
        parts.append(f"{report.deferred} left for the next sync (NEWSBOT_SYNC_MAX_PAGES, _MINUTES)")
    if report.pruned:
        parts.append(f"{len(report.pruned)} pruned")
    if report.failures:
        parts.append(f"{report.failures} failed")
    return f"synced {feeds} feed{'s' if feeds != 1 else ''}: {', '.join(parts)}"
