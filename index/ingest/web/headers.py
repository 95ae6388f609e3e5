"""What an HTTP response's headers say, read forgivingly: a header that is missing or
makes no sense reads as None, never as an exception."""

from __future__ import annotations

import email.utils
import math
import re
from datetime import UTC, datetime
from http import HTTPStatus

import httpx

# The longest ETag or Last-Modified kept to send back: real ones are under 100 characters.
MAX_VALIDATOR = 1024
# What a header value sent may hold: visible ASCII and spaces (httpx refuses anything else).
_SENDABLE = re.compile(r"[ -~]+")
SECONDS_PER_DAY = 86_400


def retry_after(value: str | None) -> float | None:
    """The seconds a Retry-After header asks to wait (a number, or an HTTP date); None if it
    is missing or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def content_type(headers: httpx.Headers) -> tuple[str | None, str | None]:
    """The media type (lower case) and charset of a Content-Type header; None for missing."""
    value = headers.get("content-type")
    if not value:
        return None, None
    media_type, _, params = value.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, param_value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = param_value.strip().strip("\"'") or None
    return media_type.strip().lower() or None, charset


def status_text(code: int) -> str:
    """`HTTP 404 (Not Found)`."""
    try:
        return f"HTTP {code} ({HTTPStatus(code).phrase})"
    except ValueError:
        return f"HTTP {code}"


def validator(value: str | None) -> str | None:
    """An ETag or Last-Modified value as kept to send back in the next request; None if it
    cannot be sent as a header (not ASCII, a control character, absurdly long): the page is
    then fetched whole next time, as it would be without one."""
    if value is None or len(value) > MAX_VALIDATOR or not _SENDABLE.fullmatch(value):
        return None
    return value


def wait_text(seconds: float) -> str:
    """A wait as a failure says it: `120 s`, `3 days`, `forever` (a Retry-After of 400 digits)."""
    if not math.isfinite(seconds):
        return "forever"
    if seconds >= SECONDS_PER_DAY:
        return f"{seconds / SECONDS_PER_DAY:,.0f} days"
    return f"{seconds:.0f} s"
