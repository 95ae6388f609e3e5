"""A fetched web page's article: its text without the page around it (navigation, ads,
comments), and its title, author, publication date and outlet, by trafilatura."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from index.errors import ArticleError, PageError
from index.ingest.corpus.article import clean_text
from index.ingest.corpus.metadata import author_text, field_text, normalise_date, outlet_from_url
from index.ingest.markup import markup_problem
from index.ingest.web.fetcher import FetchResult

# Fewer words than this is a page with no article on it (a "page not found" answered 200,
# a cookie wall, a list of links), not a news story: two short sentences.
MIN_ARTICLE_WORDS = 25
# The date comes from the page's metadata and markup only (meta tags, JSON-LD, <time>):
# htmldate's extensive search takes a copyright line ("© 2023") for the date of the story.
DATE_SEARCH = {"extensive_search": False, "original_date": True}


@dataclass(frozen=True)
class WebArticle:
    """The article a web page holds, with the metadata a citation shows."""

    url: str
    title: str
    text: str  # paragraphs separated by blank lines
    source: str  # the outlet
    published: str | None = None  # YYYY-MM-DD, from the page; None if it does not say
    author: str | None = None


def article_from_page(page: FetchResult) -> WebArticle:
    """The article in a fetched page.

    Raises:
        PageError: the page is not text, or holds no article (too little text, or none).
    """
    url = page.final_url or page.url
    try:
        html = page.text()
    except ArticleError as exc:
        raise PageError(page.url, exc.reason) from exc
    return extract_article(html, url, requested=page.url)


def extract_article(html: str, url: str, *, requested: str | None = None) -> WebArticle:
    """The article in the HTML of the page at `url`.

    Args:
        html: the page.
        url: where it was fetched from (after redirects): relative links and the outlet's
            host are read against it, and it is the article's URL.
        requested: the address as asked for, which failures name (default: `url`).

    Raises:
        PageError: no article on the page, or markup too hostile to parse
            (`index.ingest.markup`).
    """
    import trafilatura

    problem = markup_problem(html)
    if problem is not None:
        raise PageError(requested or url, problem)

    found = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=False,
        date_extraction_params=dict(DATE_SEARCH),
    )
    doc: dict[str, Any] = {}
    if found is not None:
        doc = found if isinstance(found, dict) else found.as_dict()
    title = field_text(doc.get("title"))
    text = _paragraphs(str(doc.get("text") or ""), title)
    words = len(text.split())
    if words < MIN_ARTICLE_WORDS:
        shown = f"only {words} word{'s' if words != 1 else ''} of text" if words else "no text"
        raise PageError(requested or url, f"no article found on the page ({shown})")
    return WebArticle(
        url=url,
        title=title or text.split("\n", 1)[0][:160],
        text=text,
        source=site_outlet(field_text(doc.get("sitename")), url),
        published=normalise_date(doc.get("date")),
        author=author_text(doc.get("author")),
    )


def _paragraphs(text: str, title: str | None) -> str:
    """trafilatura's lines as Markdown paragraphs, cleaned as the corpus reader cleans (promo
    lines dropped), without the headline repeated at the top."""
    lines = [line.strip() for line in clean_text(text).split("\n") if line.strip()]
    if lines and title and lines[0].casefold() == title.casefold():
        lines = lines[1:]
    return "\n\n".join(lines)


def site_outlet(sitename: str | None, url: str) -> str:
    """The site's own name (og:site_name...), else the outlet newsbot knows for the host."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    # Without a name of its own, trafilatura names a site by its host (and port).
    hosts = {host, host.removeprefix("www."), parts.netloc.lower().removeprefix("www.")}
    if sitename and sitename.lower().removeprefix("www.") not in hosts:
        return sitename
    return outlet_from_url(url) or host
