"""Reading a fetched feed (RSS 0.9x-2.0, RDF, Atom; feedparser): its entries' links, resolved
against the feed's address, their titles and dates, and their full text when the feed
carries it. feedparser only parses here: every feed is fetched by `index.ingest.web.fetcher`, under
its rules."""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any
from xml.sax import SAXParseException

from index.errors import PageError
from index.ingest.corpus.metadata import field_text
from index.ingest.markup import markup_problem
from index.ingest.web.fetcher import FetchRequest, FetchResult
from index.ingest.web.pages import WebArticle, extract_article, site_outlet

# What a feed may be served as. Sites serve feeds as any of these (and often plain XML).
FEED_TYPES = (
    "application/rss+xml",
    "application/atom+xml",
    "application/rdf+xml",
    "application/xml",
    "text/xml",
    "application/x-rss+xml",
)
FEED = "a feed"  # "not a feed (text/html)"
# An entry's own text (content:encoded, Atom <content>) is taken as the article when it has
# at least this many words: a teaser or summary is a paragraph or two, well under it; a
# news story is several hundred words.
FULL_TEXT_WORDS = 150


@dataclass(frozen=True)
class FeedEntry:
    """One item of a feed: where its article is, and what the feed says of it."""

    url: str  # absolute: relative links are resolved against the feed's address
    title: str | None = None
    published: str | None = None  # YYYY-MM-DD, from the entry's published (else updated) date
    content: str | None = None  # the entry's full text as HTML, if the feed carries it


@dataclass(frozen=True)
class ParsedFeed:
    """A feed's title and entries, in the feed's order."""

    url: str
    title: str | None
    entries: list[FeedEntry]


def feed_request(
    url: str, etag: str | None = None, last_modified: str | None = None
) -> FetchRequest:
    """The request for a feed: feed media types, conditional on what the last fetch said."""
    return FetchRequest(url, etag=etag, last_modified=last_modified, accept=FEED_TYPES, kind=FEED)


def parse_feed(page: FetchResult) -> ParsedFeed:
    """The feed in a fetched page.

    Raises:
        PageError: it is no feed (`not a feed (an HTML page)`), one too broken to read
            any entry from (`malformed feed (...)`), or one too hostile to parse
            (`index.ingest.markup`).
    """
    import feedparser

    problem = markup_problem(page.body)
    if problem is not None:
        raise PageError(page.url, problem)
    url = page.final_url or page.url
    headers = {"content-location": url}
    if page.content_type:
        charset = f"; charset={page.charset}" if page.charset else ""
        headers["content-type"] = page.content_type + charset
    # A stream, never a string: feedparser fetches a string that looks like an address.
    parsed: Any = feedparser.parse(io.BytesIO(page.body), response_headers=headers)
    if not parsed.get("version"):
        problem = _problem(parsed)
        if problem:
            raise PageError(page.url, f"malformed feed ({problem})")
        raise PageError(page.url, "not a feed (no RSS or Atom in it)")
    entries = [entry for item in parsed.entries if (entry := _entry(item)) is not None]
    if not entries and parsed.get("bozo"):
        raise PageError(page.url, f"malformed feed ({_problem(parsed) or 'no entries'})")
    return ParsedFeed(url, field_text(parsed.feed.get("title")), entries)


def full_text_article(entry: FeedEntry, feed: ParsedFeed) -> WebArticle | None:
    """The entry's article from the feed's own text, if it is long enough to be the article
    (`FULL_TEXT_WORDS`); None if the page must be fetched instead."""
    if not entry.content:
        return None
    title = entry.title or ""
    html = (
        f"<html><head><title>{_escape(title)}</title></head>"
        f"<body><article>{entry.content}</article></body></html>"
    )
    try:
        article = extract_article(html, entry.url)
    except PageError:
        return None
    if len(article.text.split()) < FULL_TEXT_WORDS:
        return None
    return replace(
        article,
        title=entry.title or article.title,
        source=site_outlet(feed.title, entry.url),
        published=entry.published or article.published,
    )


def _entry(item: Any) -> FeedEntry | None:
    url = item.get("link") or _alternate(item)
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        return None
    contents = [c.get("value", "") for c in item.get("content") or [] if c.get("value")]
    return FeedEntry(
        url=url,
        title=field_text(item.get("title")),
        published=_date(item.get("published_parsed") or item.get("updated_parsed")),
        content=max(contents, key=len) if contents else None,
    )


def _alternate(item: Any) -> str | None:
    for link in item.get("links") or []:
        if link.get("rel", "alternate") == "alternate" and link.get("href"):
            return str(link["href"])
    return None


def _date(value: time.struct_time | None) -> str | None:
    if value is None:
        return None
    try:
        return datetime(*value[:6], tzinfo=UTC).strftime("%Y-%m-%d")
    except (TypeError, ValueError):
        return None


def _problem(parsed: Any) -> str | None:
    exc = parsed.get("bozo_exception")
    if exc is None:
        return None
    if isinstance(exc, SAXParseException):  # "<unknown>:2:0: syntax error"
        return f"{exc.getMessage()} on line {exc.getLineNumber()}"
    return " ".join(str(exc).split())


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
