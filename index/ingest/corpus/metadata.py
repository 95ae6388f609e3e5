"""Article metadata normalised: dates, outlets from URLs, and plain text fields."""

from __future__ import annotations

import re
from datetime import date, datetime, time
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


# A dateutil failure that names a day or time the calendar lacks, not a string it can't read.
_NO_SUCH_DAY = ("day is out of range for month",)
_NO_SUCH_TIME = ("hour must be in", "minute must be in", "second must be in")
# An ISO-style date at the start of a value, and the time of day after it, if any.
_ISO_DATE = re.compile(
    r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:(?:[Tt]|\s+)(\d{1,2}):(\d{2})(?::(\d{2}))?)?"
)
_SCALARS = (str, int, float, date)
# Far longer than any written date ("Tuesday, 5 November 2024, 10:32 a.m. Eastern Standard
# Time" is 60): longer text is no date, unread (dateutil takes 40 s over a million digits).
MAX_DATE_CHARS = 200


class NoSuchDateError(ValueError):
    """A value written as a date or time that is not in the calendar (2024-02-30, 25:61)."""


def scalar_text(value: Any) -> str | None:
    """A string, number or date as text; None for anything else (lists, mappings), or for an
    integer too long to print (Python refuses over 4300 digits)."""
    if not isinstance(value, _SCALARS):
        return None
    try:
        return str(value)
    except ValueError:
        return None


def field_text(value: Any) -> str | None:
    """A metadata value as one plain line of text; None if missing, empty or not a scalar."""
    text = plain(scalar_text(value) or "")
    return text or None


def author_text(value: Any) -> str | None:
    """An author, or a list of them joined by commas, as one plain line; None if none."""
    if isinstance(value, list):
        return field_text(", ".join(filter(None, (scalar_text(v) for v in value))))
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
    """An ISO date (YYYY-MM-DD) from a date, datetime or date-like string; None if unknown
    or not in the calendar."""
    try:
        return parse_date(value)
    except NoSuchDateError:
        return None


def parse_date(value: Any) -> str | None:
    """An ISO date (YYYY-MM-DD) from a date, datetime or date-like string; None if unknown.

    Raises:
        NoSuchDateError: `value` is written as a date, or a date and time, that is not in
            the calendar: 2024-02-30, 2024-02-03T25:61, "30 February 2024".
    """
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = (scalar_text(value) or "").strip()
    if not text or len(text) > MAX_DATE_CHARS:
        return None
    match = _ISO_DATE.match(text)
    if match:
        return _iso_day(match, text)
    try:
        from dateutil import parser

        # dateutil fills missing parts from a default date: parse against two defaults
        # that differ in year, month and day, and refuse what does not name a whole day.
        first = parser.parse(text, default=datetime(2001, 1, 1)).date()
        second = parser.parse(text, default=datetime(2002, 2, 2)).date()
    except ValueError as exc:
        reason = str(exc)
        if reason.startswith(_NO_SUCH_DAY) or (":" in text and reason.startswith(_NO_SUCH_TIME)):
            raise NoSuchDateError(f"{text!r} is not in the calendar") from exc
        return None
    except (OverflowError, ImportError):
        return None
    return first.isoformat() if first == second else None


def _iso_day(match: re.Match[str], text: str) -> str:
    year, month, day, hour, minute, second = match.groups()
    try:
        found = date(int(year), int(month), int(day))
        if hour is not None:
            time(int(hour), int(minute), int(second or 0))
    except ValueError as exc:
        raise NoSuchDateError(f"{text!r} is not in the calendar") from exc
    return found.isoformat()
