"""Article metadata normalised: dates, outlets from URLs, and plain text fields."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from index.text import plain

_URL_DATE = [
    re.compile(r"/((?:19|20)\d{2})[/-](\d{1,2})[/-](\d{1,2})(?:/|-|$)"),
    re.compile(r"/((?:19|20)\d{2})(\d{2})(\d{2})(?:/|-|_|$)"),
]
# Outlets whose host does not spell their name well.
KNOWN_OUTLETS = {
    "apnews.com": "AP News",
    "bbc.co.uk": "BBC",
    "bbc.com": "BBC",
    "cnn.com": "CNN",
    "nytimes.com": "The New York Times",
    "washingtonpost.com": "The Washington Post",
    "wsj.com": "The Wall Street Journal",
    "theguardian.com": "The Guardian",
    "reuters.com": "Reuters",
    "npr.org": "NPR",
    "foxnews.com": "Fox News",
    "nbcnews.com": "NBC News",
    "cbsnews.com": "CBS News",
    "abcnews.go.com": "ABC News",
    "aljazeera.com": "Al Jazeera",
    "businessday.ng": "BusinessDay",
}


def field_text(value: Any) -> str | None:
    """A metadata value as one plain line of text; None if missing or empty."""
    if value is None:
        return None
    text = plain(str(value))
    return text or None


def author_text(value: Any) -> str | None:
    """An author, or a list of them joined by commas, as one plain line; None if none."""
    if isinstance(value, list):
        return field_text(", ".join(str(v) for v in value))
    return field_text(value)


def outlet_from_url(url: str) -> str | None:
    """The outlet's name from a URL's host: a known name, else the bare host."""
    host = (urlsplit(url).hostname or "").lower()
    for prefix in ("www.", "edition.", "amp.", "m.", "mobile."):
        if host.startswith(prefix):
            host = host[len(prefix) :]
    if not host:
        return None
    for known, name in KNOWN_OUTLETS.items():
        if host == known or host.endswith("." + known):
            return name
    return host


def date_from_url(url: str) -> str | None:
    """A publication date guessed from a URL path such as `/2024/01/05/`."""
    path = urlsplit(url).path
    for pattern in _URL_DATE:
        match = pattern.search(path)
        if match:
            try:
                return date(*(int(g) for g in match.groups())).isoformat()
            except ValueError:
                continue
    return None


def normalise_date(value: Any) -> str | None:
    """An ISO date (YYYY-MM-DD) from a date, datetime or date-like string; None if unknown."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    match = re.match(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})", text)
    if match:
        try:
            return date(*(int(g) for g in match.groups())).isoformat()
        except ValueError:
            return None
    try:
        from dateutil import parser

        # dateutil fills missing parts from a default date: parse against two defaults
        # that differ in year, month and day, and refuse what does not name a whole day.
        first = parser.parse(text, default=datetime(2001, 1, 1)).date()
        second = parser.parse(text, default=datetime(2002, 2, 2)).date()
        return first.isoformat() if first == second else None
    except (ValueError, OverflowError, ImportError):
        return None
