"""What syncs learned of each feed, kept in the index folder (`feeds.json`), apart from the
admin's list of feeds: the ETag and Last-Modified to send next time (so an unchanged feed is
answered 304 and costs nothing), and when it was last fetched and what came of it.

Machine state only: losing the file costs one unconditional fetch of each feed, nothing
more (entries already in the corpus are known by their URL)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from index.disk import writing
from index.ingest.folders import FEED_STATE
from index.ingest.web.folder import url_key, write_atomically


@dataclass(frozen=True)
class FeedStatus:
    """One feed's state after its last sync."""

    etag: str | None = None
    last_modified: str | None = None
    checked: str | None = None  # when it was last fetched (UTC, ISO 8601)
    outcome: str | None = None  # "3 entries, 1 new", "not modified", or why it failed


class FeedState:
    """`feeds.json` in the index folder: each feed's `FeedStatus`, by its address.

    Args:
        index_dir: the index folder.
    """

    def __init__(self, index_dir: Path) -> None:
        self.path = index_dir / FEED_STATE
        self._feeds: dict[str, FeedStatus] = self._read()

    def get(self, url: str) -> FeedStatus:
        return self._feeds.get(url_key(url), FeedStatus())

    def set(self, url: str, status: FeedStatus) -> None:
        self._feeds[url_key(url)] = status

    def keep_only(self, urls: list[str]) -> None:
        """Forget the feeds no longer followed."""
        keep = {url_key(url) for url in urls}
        self._feeds = {key: status for key, status in self._feeds.items() if key in keep}

    def save(self) -> None:
        """Write the state down (atomically).

        Raises:
            DiskWriteError: it cannot be written.
        """
        data = {key: asdict(status) for key, status in sorted(self._feeds.items())}
        with writing(self.path, setting="NEWSBOT_INDEX_DIR", then="run `newsbot sync` again"):
            write_atomically(self.path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")

    def _read(self) -> dict[str, FeedStatus]:
        """The saved state; none if the file is missing or unreadable (it is only a cache of
        what the next fetch would tell)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        known = set(FeedStatus.__dataclass_fields__)
        feeds = {}
        for key, value in data.items():
            if isinstance(value, dict):
                fields = {k: v for k, v in value.items() if k in known and isinstance(v, str)}
                feeds[key] = FeedStatus(**fields)
        return feeds
