"""`Article`: one cleaned news article, built from a body and its raw metadata."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from index.errors import ArticleError
from index.ingest.corpus.metadata import (
    NoSuchDateError,
    author_text,
    date_from_url,
    field_text,
    outlet_from_url,
    parse_date,
)
from index.text import showable

MAX_TITLE_CHARS = 160
# Lines that are navigation or promotion, not news. Only short lines are considered.
PROMO_MAX_CHARS = 200
PROMO_PATTERNS = [
    r"(?:read|see)\s+(?:also|more|next)\b.*",
    r"(?:also read|related(?:\s+(?:stories|articles|news|coverage))?|recommended|trending)\s*:.*",
    r"join\b.*\b(?:channel|newsletter|whatsapp|telegram)\b.*",
    r"open in (?:whatsapp|telegram|app)\b.*",
    r"(?:subscribe|sign up)\b.*\b(?:newsletter|updates|channel|alerts)\b.*",
    r"follow (?:us|\w+) on\b.*",
    r"(?:click|tap) here\b.*",
    r"download (?:our|the) app\b.*",
    r"(?:advertisement|sponsored content|story continues below(?: advertisement)?)",
]
_PROMO = re.compile(r"^(?:" + "|".join(PROMO_PATTERNS) + r")$", re.IGNORECASE)
# The metadata an article keeps; the rest of a record or front matter is ignored.
META_FIELDS = ("title", "url", "source", "published", "author")
# Half of a UTF-16 pair alone: JSON and YAML escapes (\udc80) can make one; UTF-8 can't hold it.
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


@dataclass(frozen=True)
class Article:
    """One news article, cleaned, with the metadata a citation shows."""

    id: str
    title: str
    text: str
    path: str
    source: str | None = None
    url: str | None = None
    published: str | None = None
    author: str | None = None
    content_hash: str = field(init=False)

    def __post_init__(self) -> None:
        payload = json.dumps(
            [self.title, self.text, self.source, self.url, self.published, self.author]
        )
        object.__setattr__(
            self, "content_hash", hashlib.sha256(payload.encode("utf-8")).hexdigest()
        )


def make_article(
    article_id: str, meta: dict[str, Any], body: str, *, path: str, markdown: bool = False
) -> Article:
    """Clean `body` and normalise `meta` into an `Article`.

    Raises:
        ArticleError: no text is left, a field is not valid Unicode, or `published` is a
            date or time that is not in the calendar.
    """
    where = path if article_id == path else f"{path} ({article_id})"
    fields = {"id": article_id, "text": body, **{name: meta.get(name) for name in META_FIELDS}}
    for name, value in fields.items():
        surrogate = _lone_surrogate(value)
        if surrogate:
            reason = f"{name!r} is not valid Unicode (a lone surrogate, {surrogate!a})"
            raise ArticleError(where, reason, path=path)
    text = clean_text(body)
    if not text:
        raise ArticleError(where, "no text", path=path)
    url = field_text(meta.get("url"))
    title = field_text(meta.get("title")) or _title_from_text(text, markdown)
    try:
        published = parse_date(meta.get("published"))
    except NoSuchDateError as exc:
        raise ArticleError(where, f"'published' date {exc}", path=path) from exc
    published = published or (date_from_url(url) if url else None)
    return Article(
        id=article_id,
        title=title,
        text=text,
        path=path,
        source=field_text(meta.get("source")) or (outlet_from_url(url) if url else None),
        url=url,
        published=published,
        author=author_text(meta.get("author")),
    )


def _lone_surrogate(value: Any) -> str | None:
    """The first lone surrogate in a string, or a list of them (authors); None if none."""
    for item in value if isinstance(value, list) else [value]:
        found = _LONE_SURROGATE.search(item) if isinstance(item, str) else None
        if found:
            return found.group()
    return None


def _title_from_text(text: str, markdown: bool) -> str:
    first = next(line for line in text.splitlines() if line.strip()).strip()
    if markdown:
        first = re.sub(r"^#{1,6}\s+", "", first).strip()
    if len(first) <= MAX_TITLE_CHARS:
        return first
    cut = first[:MAX_TITLE_CHARS].rsplit(" ", 1)[0]
    return cut + "…"


def clean_text(text: str) -> str:
    """Normalise newlines and whitespace, drop control and invisible characters (a terminal
    escape in a feed must not reach anyone's screen), and promotion and navigation lines."""
    lines = []
    text = showable(text.replace("\r\n", "\n").replace("\r", "\n"))
    for line in text.split("\n"):
        if not is_promo_line(line):
            lines.append(line.rstrip())
    cleaned = "\n".join(lines)
    cleaned = re.sub(r"\n{3,}", "\n\n", cleaned)
    return cleaned.strip()


def is_promo_line(line: str) -> bool:
    """Whether `line` is promotion or navigation rather than news."""
    stripped = line.strip()
    return bool(stripped) and len(stripped) <= PROMO_MAX_CHARS and bool(_PROMO.match(stripped))
