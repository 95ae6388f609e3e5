"""The corpus's writer locks: one `newsbot sync` or `add` at a time for a corpus, and one
edit of its feeds.yaml at a time. A lock is an flock on a file of the corpus folder whose name
starts with "." (never read as an article); it goes with the process holding it, however that
process ends."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from index.disk import exclusive
from index.errors import CorpusBusyError, NewsbotError
from index.ingest.folders import LOCKS

Writers = Literal["articles", "feeds"]
DOING: dict[Writers, str] = {"articles": "`newsbot sync` or `add`", "feeds": "`newsbot feeds` edit"}


@contextmanager
def corpus_lock(corpus_dir: Path, *, of: Writers = "articles") -> Iterator[None]:
    """Hold one of the corpus's writer locks, or raise `CorpusBusyError` at once.

    `of="articles"` (`newsbot add`, `newsbot sync`): two syncs at once would each write the
    same new entry (the second as `NAME-2.md`), and one's feed state would be lost to the
    other's. `of="feeds"` (`feeds add`, `feeds remove`): of two edits of feeds.yaml at once
    only one would be kept; a sync only reads the file, so it takes no part.
    """

    def busy(holder: str) -> NewsbotError:
        return CorpusBusyError(
            f"another {DOING[of]} (pid {holder}) is writing into {corpus_dir}: "
            "wait for it to finish"
        )

    path = corpus_dir / LOCKS[of]
    with exclusive(path, busy, setting="NEWSBOT_CORPUS_DIR", then="run the command again"):
        yield
