"""The feeds `newsbot sync` polls: `feeds.yaml` at the top of the corpus folder, a short
YAML list an admin may edit by hand. `newsbot feeds add` and `remove` change only the lines
of the entry concerned, so comments and the order of the rest stay as written.

    # Feeds newsbot sync polls.
    - url: https://example.com/rss.xml
      name: Example News
    - url: https://example.org/atom.xml

What a sync learns of each feed (its ETag, when it was last fetched) is not kept here but in
the index folder (`index/ingest/web/feed_state.py`): this file holds only what a person decides.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from index.errors import FeedListError
from index.ingest.corpus.frontmatter import MetadataLoader
from index.ingest.corpus_lock import corpus_lock
from index.ingest.folders import FEED_LIST
from index.ingest.web.folder import url_key, write_atomically

if TYPE_CHECKING:
    from index.ingest.web.feeds import ParsedFeed
    from index.ingest.web.fetcher import FetchPolicy

HEADER = """\
# The feeds `newsbot sync` polls (RSS or Atom), one entry each: its `url`, and a `name`
# if you like. `newsbot feeds add URL --name NAME` and `newsbot feeds remove URL|NAME`
# change this file; you may edit it by hand too. Comments are kept.
"""


@dataclass(frozen=True)
class Feed:
    """One feed: its address, and the name an admin gave it (if any)."""

    url: str
    name: str | None = None

    @property
    def label(self) -> str:
        """How the feed is named to a person: its name, else its address."""
        return self.name or self.url

    def matches(self, url_or_name: str) -> bool:
        """Whether `url_or_name` is this feed's address or (in any case) its name."""
        given = url_or_name.strip()
        if self.name and given.casefold() == self.name.casefold():
            return True
        return url_key(given) == url_key(self.url)


class FeedList:
    """`feeds.yaml` in a corpus folder.

    Args:
        corpus_dir: the corpus folder; the list is `corpus_dir/feeds.yaml`.
    """

    def __init__(self, corpus_dir: Path) -> None:
        self.path = corpus_dir / FEED_LIST

    def feeds(self) -> list[Feed]:
        """The feeds, in the file's order; none if the file does not exist.

        Raises:
            FeedListError: the file is not a YAML list of entries with a `url`.
        """
        return [feed for feed, _ in self._entries(self._text())]

    def add(self, feed: Feed) -> None:
        """Add `feed` at the end of the list (the file is made if need be).

        Raises:
            FeedListError: the file is broken, or lists the feed (or its name) already.
            CorpusBusyError: another `feeds add` or `feeds remove` is editing the file.
        """
        with corpus_lock(self.path.parent, of="feeds"):
            self._add(feed)

    def _add(self, feed: Feed) -> None:
        text = self._text()
        for known, _ in self._entries(text):
            if url_key(known.url) == url_key(feed.url):
                raise FeedListError(f"{feed.url} is followed already ({self.path})")
            if feed.name and known.matches(feed.name):
                raise FeedListError(f"a feed is named {feed.name!r} already: {known.url}")
        block = yaml.safe_dump(
            [{"url": feed.url, **({"name": feed.name} if feed.name else {})}],
            allow_unicode=True,
            sort_keys=False,
            width=10_000,
        )
        if not text.strip() or _is_empty_list(text):
            text = HEADER
        elif not text.endswith("\n"):
            text += "\n"
        write_atomically(self.path, text + block)

    def remove(self, url_or_name: str) -> Feed:
        """Remove the feed with this address or name; the feed removed.

        Raises:
            FeedListError: no feed has that address or name, or the file is broken.
            CorpusBusyError: another `feeds add` or `feeds remove` is editing the file.
        """
        with corpus_lock(self.path.parent, of="feeds"):
            return self._remove(url_or_name)

    def _remove(self, url_or_name: str) -> Feed:
        text = self._text()
        entries = self._entries(text)
        found = [i for i, (feed, _) in enumerate(entries) if feed.matches(url_or_name)]
        if not found:
            raise FeedListError(f"no feed has the address or name {url_or_name!r} ({self.path})")
        index = found[0]
        lines = text.splitlines(keepends=True)
        start = entries[index][1]
        end = _block_end(lines, start)
        if index + 1 < len(entries):
            end = min(end, entries[index + 1][1])
        write_atomically(self.path, "".join(lines[:start] + lines[end:]))
        return entries[index][0]

    def _text(self) -> str:
        try:
            return self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return ""
        except (OSError, UnicodeDecodeError) as exc:
            raise FeedListError(f"cannot read {self.path}: {exc}") from exc

    def _entries(self, text: str) -> list[tuple[Feed, int]]:
        """Each feed with the line its entry starts on."""
        try:
            root = yaml.compose(text, Loader=MetadataLoader)
            data = yaml.load(text, Loader=MetadataLoader)  # a SafeLoader: plain data only
        except RecursionError as exc:
            raise FeedListError(f"{self.path} is not valid YAML (nested too deeply)") from exc
        except yaml.YAMLError as exc:
            problem = " ".join(str(exc).split())
            raise FeedListError(f"{self.path} is not valid YAML ({problem})") from exc
        if data is None:
            return []
        if not isinstance(data, list) or not isinstance(root, yaml.SequenceNode):
            raise FeedListError(f"{self.path} should be a list of feeds (- url: ...)")
        entries = []
        for number, (item, node) in enumerate(zip(data, root.value, strict=True), start=1):
            if isinstance(item, str):
                item = {"url": item}
            url = item.get("url") if isinstance(item, dict) else None
            name = item.get("name") if isinstance(item, dict) else None
            if not isinstance(url, str) or not url.strip():
                raise FeedListError(f"{self.path}: feed {number} has no url")
            if name is not None and not isinstance(name, str | int | float):
                raise FeedListError(f"{self.path}: feed {number}'s name should be text")
            shown = str(name).strip() if name is not None else None
            entries.append((Feed(url.strip(), shown or None), node.start_mark.line))
        if root.flow_style and entries:
            raise FeedListError(f"{self.path}: write the list one entry a line (- url: ...)")
        return entries


def _block_end(lines: list[str], start: int) -> int:
    """The line after the last entry's block: its own lines and their indented
    continuations, not the comments or blank lines after it."""
    end = start + 1
    last = end
    while end < len(lines):
        line = lines[end]
        if line.strip() and not line[0].isspace():
            break
        if line.strip() and not line.lstrip().startswith("#"):
            last = end + 1
        end += 1
    return last


def _is_empty_list(text: str) -> bool:
    return yaml.load(text, Loader=MetadataLoader) == []


def follow(
    corpus_dir: Path, url: str, name: str | None, policy: FetchPolicy
) -> tuple[Feed, ParsedFeed]:
    """Check that `url` is a feed (fetched and parsed), then add it to the corpus's list.

    Args:
        corpus_dir: the corpus folder (its `feeds.yaml`).
        url: the feed's address; one that redirects is followed at the address it is at now.
        name: what to call it (default: none; `feeds list` shows the feed's title).
        policy: how to fetch it.

    Returns:
        The feed as listed, and what it holds now.

    Raises:
        PageError: it cannot be fetched, or is not a feed.
        FeedListError: it is listed already, or the list cannot be read.
    """
    from index.ingest.web.feeds import feed_request, parse_feed
    from index.ingest.web.fetcher import fetch_all

    feeds = FeedList(corpus_dir)
    feeds.feeds()  # a broken list fails before any fetch
    [result] = fetch_all([feed_request(url)], policy)
    if not result.ok:
        raise result.error()
    parsed = parse_feed(result)
    feed = Feed(url.strip(), (name or "").strip() or None)
    feeds.add(feed)
    return feed, parsed
