"""`newsbot feeds discover SITE`: the feeds a site offers, from the `<link rel="alternate">`
tags of its page (else links that look like feeds), each checked to parse as a feed.

trafilatura finds the candidates (`trafilatura.feeds.determine_feed`), from HTML newsbot's
fetcher got: trafilatura's own `find_feed_urls` downloads with its own HTTP client, outside
the fetcher's rules (the address check, the size and time limits), so it is not used.
"""

from __future__ import annotations

from dataclasses import dataclass

from index.errors import ArticleError, PageError
from index.ingest.markup import markup_problem
from index.ingest.web.feeds import FEED_TYPES, ParsedFeed, feed_request, parse_feed
from index.ingest.web.fetcher import HTML_TYPES as PAGE_TYPES
from index.ingest.web.fetcher import FetchPolicy, FetchRequest, fetch_all

# Candidates checked at most: a page may link dozens of "feeds" (one per tag, per author).
MAX_CANDIDATES = 10


@dataclass(frozen=True)
class Discovered:
    """A feed found on a site: its address, title and number of entries."""

    url: str
    title: str | None
    entries: int


def discover_feeds(site: str, policy: FetchPolicy) -> list[Discovered]:
    """The feeds `site` (a page's address, or a feed's) offers, checked to be feeds.

    Raises:
        PageError: the page cannot be fetched, or names no feed that parses.
    """
    from trafilatura.feeds import FeedParameters, determine_feed, get_hostinfo

    request = FetchRequest(site, accept=PAGE_TYPES + FEED_TYPES, kind="a web page or a feed")
    [page] = fetch_all([request], policy)
    if not page.ok:
        raise page.error()
    try:
        return [_found(page.final_url or site, parse_feed(page))]
    except PageError:
        pass  # not a feed itself: a page naming its feeds
    url = page.final_url or site
    try:
        html = page.text()
    except ArticleError as exc:
        raise PageError(site, exc.reason) from exc
    problem = markup_problem(html)
    if problem is not None:
        raise PageError(site, problem)
    domain, _ = get_hostinfo(url)
    # Relative links are resolved against the page itself (the page's folder, as a browser
    # does), not the site's root.
    candidates = determine_feed(html, FeedParameters(url, domain or "", url))
    candidates = list(dict.fromkeys(candidates))[:MAX_CANDIDATES]
    if not candidates:
        raise PageError(site, "no feed found on the page")
    found = []
    for result in fetch_all([feed_request(c) for c in candidates], policy):
        if not result.ok:
            continue
        try:
            found.append(_found(result.final_url or result.url, parse_feed(result)))
        except PageError:
            continue
    if not found:
        raise PageError(site, f"no feed found: {len(candidates)} links checked, none a feed")
    return found


def _found(url: str, feed: ParsedFeed) -> Discovered:
    return Discovered(url, feed.title, len(feed.entries))
