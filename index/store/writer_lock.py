"""The index's single-writer lock: one `newsbot index` at a time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from index.disk import exclusive
from index.errors import IndexBusyError, NewsbotError
from index.store.layout import IndexLayout

AGAIN = "run `newsbot index` again"


@contextmanager
def writer_lock(layout: IndexLayout) -> Iterator[None]:
    """Hold the index's single-writer lock, or raise `IndexBusyError` at once.

    The lock is an flock: it goes with the process holding it, however that process ends.
    Readers take no lock: they only open complete generations, which nobody writes.
    """

    def busy(holder: str) -> NewsbotError:
        return IndexBusyError(
            f"another `newsbot index` (pid {holder}) is writing {layout.root}: "
            "wait for it to finish"
        )

    with exclusive(layout.lock, busy, setting="NEWSBOT_INDEX_DIR", then=AGAIN):
        yield
