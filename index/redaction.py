"""Secrets kept out of what newsbot prints, logs and raises: the passwords (and user names,
which may be tokens) written into web addresses."""

from __future__ import annotations

import re

# The user information of an address (`scheme://USER:PASSWORD@host`): up to the last `@`
# before the path, as a URL parser reads it.
_USERINFO = re.compile(r"([a-z][a-z0-9+.\-]*://)([^\s/?#\\]*)@", re.IGNORECASE)


def without_passwords(text: str) -> str:
    """`text` with the user name and password of every address in it masked: the password
    (`https://user:***@example.com/`), or, without one, the user name, which may be a token
    (`https://***@example.com/`)."""
    return _USERINFO.sub(_masked_userinfo, text)


def _masked_userinfo(match: re.Match[str]) -> str:
    user, colon, _ = match.group(2).partition(":")
    return f"{match.group(1)}{user}:***@" if colon else f"{match.group(1)}***@"
