"""Markup (HTML, XML) checked before a parser sees it, for what would make parsing take
hours: an element with tens of thousands of attributes.

libxml2 (lxml, so trafilatura), expat (feedparser) and trafilatura's feed finder check each
attribute of an element against all the ones before it: the time grows with the square of
their number. 40,000 attributes (400 KB, well within the size limit) took trafilatura a
minute, feedparser 12 s; the 800,000 that fit in 5 MB would take hours, with `newsbot add` or
the bot's scheduled sync stuck meanwhile. Real pages have a few dozen at most.

    problem = markup_problem(html)      # None, or why the markup is not parsed
"""

from __future__ import annotations

import re

# The most attributes one element may have: real pages have a few dozen; parsing 1,000 costs
# libxml2 about a millisecond.
MAX_ATTRIBUTES = 1000
# A start tag and its attributes, quoted values read whole (a `>` in one does not end the
# tag); atomic and possessive, so that the scan is linear whatever the text.
_ATTRIBUTE_PATTERN = r"""[\s/]++[^\s/>=]++(?>\s*+=\s*+(?>"[^"]*+"|'[^']*+'|[^\s>]*+))?+"""
_ATTRIBUTE = re.compile(_ATTRIBUTE_PATTERN)
_TAG = re.compile(r"<[A-Za-z][^\s/>]*+(?:" + _ATTRIBUTE_PATTERN + r")*+")
# A tag shorter than this cannot hold MAX_ATTRIBUTES attributes (each takes 2 characters at
# least: a space and a name), so only longer ones are counted.
_SHORTEST = 2 * MAX_ATTRIBUTES


def markup_problem(markup: str | bytes) -> str | None:
    """Why `markup` must not be parsed (`an element with 50,000 attributes (newsbot reads at
    most 1,000)`), or None."""
    if isinstance(markup, bytes):
        markup = markup.decode("latin-1")  # a byte a character: the markup's ASCII as it is
    for tag in _TAG.finditer(markup):
        if tag.end() - tag.start() <= _SHORTEST:
            continue
        count = sum(1 for _ in _ATTRIBUTE.finditer(markup, tag.start() + 1, tag.end()))
        if count > MAX_ATTRIBUTES:
            return (
                f"an element with {count:,} attributes "
                f"(newsbot reads at most {MAX_ATTRIBUTES:,}): not parsed"
            )
    return None
