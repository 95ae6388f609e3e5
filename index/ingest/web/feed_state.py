"""What syncs learned of each feed, kept in the index folder (`feeds.json`), apart from the
admin's list of feeds: the ETag and Last-Modified to send next time (so an unchanged feed is
answered 304 and costs nothing), when it was last fetched and what came of it, and which of
its entries keep failing, so that they are tried again less and less often.

Machine state only: losing the file costs one unconditional fetch of each feed, and one more
try of each entry that was failing, nothing more (entries already in the corpus are known by
their URL)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from index.disk import writing
from index.ingest.folders import FEED_STATE
from index.ingest.web.folder import url_key, write_atomically

# An entry whose page failed is tried again at the next sync; one that failed twice in a row
# waits this long before its next try, and twice as long after each failure more...
FIRST_WAIT = timedelta(hours=1)
# ...up to this long: an entry failing for good is tried about once a week, until its feed
# no longer lists it (its record is forgotten then).
LONGEST_WAIT = timedelta(days=7)
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


@dataclass(frozen=True)
class EntryFailure:
    """An entry whose article failed at its last tries: how many in a row, the last reason,
    and when it may be tried again (UTC, ISO 8601)."""

    failures: int
    reason: str
    retry: str

    def due(self, now: datetime) -> bool:
        """Whether the entry may be tried again at `now`."""
        return now.strftime(TIME_FORMAT) >= self.retry

    def again(self, reason: str, now: datetime) -> EntryFailure:
        """This record after one more failure at `now`."""
        return failed_entry(reason, now, self.failures + 1)


def failed_entry(reason: str, now: datetime, failures: int = 1) -> EntryFailure:
    """The record of an entry that failed `failures` times in a row, the last at `now`."""
    doublings = min(failures - 2, 16)  # 2**16 hours: far past the longest wait
    wait = timedelta(0) if failures < 2 else min(FIRST_WAIT * 2**doublings, LONGEST_WAIT)
    return EntryFailure(failures, reason, (now + wait).strftime(TIME_FORMAT))


@dataclass(frozen=True)
class FeedStatus:
    """One feed's state after its last sync."""

    etag: str | None = None
    last_modified: str | None = None
    checked: str | None = None  # when it was last fetched (UTC, ISO 8601)
    outcome: str | None = None  # "3 entries, 1 new", "not modified", or why it failed
    failing: dict[str, EntryFailure] = field(default_factory=dict)  # by the entry's URL key

    def failure(self, url: str) -> EntryFailure | None:
        """The entry's record of failures, if it failed at its last try."""
        return self.failing.get(url_key(url))

    def with_failure(self, url: str, failure: EntryFailure | None) -> FeedStatus:
        """This status with the entry's record set (None: it succeeded, forget it)."""
        failing = dict(self.failing)
        failing.pop(url_key(url), None)
        if failure is not None:
            failing[url_key(url)] = failure
        return replace(self, failing=failing)

    def failing_only(self, urls: list[str]) -> FeedStatus:
        """This status forgetting the entries the feed no longer lists among `urls`."""
        keep = {url_key(url) for url in urls}
        return replace(self, failing={k: f for k, f in self.failing.items() if k in keep})


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
        known = set(FeedStatus.__dataclass_fields__) - {"failing"}
        feeds = {}
        for key, value in data.items():
            if isinstance(value, dict):
                fields = {k: v for k, v in value.items() if k in known and isinstance(v, str)}
                feeds[key] = FeedStatus(**fields, failing=_failing(value.get("failing")))
        return feeds


def _failing(data: Any) -> dict[str, EntryFailure]:
    """The records of failing entries as saved; any that does not read is dropped (the entry
    is tried again)."""
    if not isinstance(data, dict):
        return {}
    failing = {}
    for key, value in data.items():
        if not isinstance(value, dict):
            continue
        failures, reason, retry = (value.get(k) for k in ("failures", "reason", "retry"))
        if type(failures) is int and isinstance(reason, str) and isinstance(retry, str):
            failing[key] = EntryFailure(failures, reason, retry)
    return failing
