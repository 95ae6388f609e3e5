"""Syncing on a schedule (FEEDS_SYNC_MINUTES): `newsbot sync`'s work, then an incremental
index, every so many minutes on a thread of its own, so that whatever runs it (the bot's
event loop) is never held up. A reader of the index, such as the bot's `Newsbot`, answers
from the new generation once it is switched to (`Newsbot.refresh`)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from index.build.reindex import IndexReport, reindex
from index.ingest.web.sync import SyncReport, sync_feeds
from index.models.embeddings import Embedder
from index.settings import Settings

SECONDS_PER_MINUTE = 60.0


@dataclass(frozen=True)
class Synced:
    """What one scheduled run did: the sync, and the reindex after it."""

    sync: SyncReport
    index: IndexReport


class SyncSchedule:
    """Syncs the feeds and reindexes at once, then every `minutes`, until stopped.

    Args:
        settings: the corpus, index and fetch settings.
        embedder: the model to index with (the one the index was built with).
        minutes: how long between the end of one run and the start of the next.
        on_done: told what each run did.
        on_error: told of a run that failed (the index busy, a full disk...); the next run
            is tried all the same.
    """

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        *,
        minutes: float,
        on_done: Callable[[Synced], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.interval = minutes * SECONDS_PER_MINUTE
        self.on_done = on_done
        self.on_error = on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="newsbot-sync", daemon=True)

    def start(self) -> None:
        """Start syncing in the background."""
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the run in progress, if any (waiting at most `timeout` seconds)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run_once(self) -> Synced:
        """Sync the feeds, then index: what this sync wrote, and whatever an earlier one
        wrote while another index was running (a reindex with nothing new lists the corpus,
        no model call).

        Raises:
            NewsbotError: the sync or the index failed as a whole (see `sync_feeds`,
                `reindex`).
        """
        report = sync_feeds(self.settings)
        return Synced(report, reindex(self.settings, self.embedder))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                done = self.run_once()
            except Exception as exc:  # one failed run never ends the schedule
                if self.on_error is not None:
                    self.on_error(exc)
            else:
                if self.on_done is not None:
                    self.on_done(done)
            if self._stop.wait(self.interval):
                break
