"""What an HTTP response's headers say, read forgivingly: a header that is missing or
makes no sense reads as None, never as an exception."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from http import HTTPStatus

import httpx


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
