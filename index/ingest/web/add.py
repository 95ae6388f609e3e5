"""`newsbot add`: articles fetched from web addresses into the corpus."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from index.errors import PageError
from index.ingest.corpus_lock import corpus_lock
from index.ingest.web.fetcher import FetchPolicy, FetchResult, fetch_all
from index.ingest.web.folder import Saved, WebFolder
from index.ingest.web.pages import article_from_page
from index.settings import Settings


@dataclass(frozen=True)
class Added:
    """What became of one address: the article added, updated or unchanged, or why not."""

    url: str
    saved: Saved | None  # None: it failed
    path: Path | None = None  # the article's file
    reason: str | None = None  # why it failed, on one line

    @property
    def failed(self) -> bool:
        return self.saved is None


@dataclass
class AddReport:
    """What `add_pages` did, one entry per address, in the order given."""

    results: list[Added] = field(default_factory=list)

    @property
    def failed(self) -> list[Added]:
        return [r for r in self.results if r.failed]

    @property
    def changed(self) -> bool:
        """Whether any article file was added or rewritten."""
        return any(r.saved in (Saved.ADDED, Saved.UPDATED) for r in self.results)


def add_pages(
    settings: Settings,
    urls: Sequence[str],
    *,
    policy: FetchPolicy | None = None,
    on_result: Callable[[Added], None] | None = None,
) -> AddReport:
    """Fetch each address, extract its article and write it into the corpus
    (`web/HOST/DATE-SLUG.md`); an address already added is rewritten only if its text changed.

    A page that cannot be fetched or holds no article fails alone: the others are added, and
    nothing already in the corpus changes for it. Nothing is indexed here.

    Args:
        settings: the corpus folder, and the NEWSBOT_FETCH_* settings (unless `policy`).
        urls: web addresses (http, https); one given twice is fetched once.
        policy: how to fetch (default: from `settings`).
        on_result: called with each address's outcome, in the order given.

    Returns:
        Each address's outcome.

    Raises:
        DiskWriteError: an article file cannot be written (the disk is full...).
        CorpusBusyError: a sync (or another `newsbot add`) is writing the corpus.
    """
    unique = list(dict.fromkeys(urls))
    report = AddReport()
    with corpus_lock(settings.corpus_dir):
        pages = fetch_all(unique, policy or FetchPolicy.from_settings(settings))
        folder = WebFolder(settings.corpus_dir)
        for page in pages:
            result = _save(folder, page)
            report.results.append(result)
            if on_result is not None:
                on_result(result)
    return report


def _save(folder: WebFolder, page: FetchResult) -> Added:
    if not page.ok:
        return Added(page.url, None, reason=page.reason)
    try:
        article = article_from_page(page)
    except PageError as exc:
        return Added(page.url, None, reason=exc.reason)
    saved, path = folder.save(article, page.url)
    return Added(page.url, saved, path)
