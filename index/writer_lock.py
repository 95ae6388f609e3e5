"""The index's single-writer lock: one `newsbot index` at a time."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from index.errors import IndexBusyError
from index.layout import IndexLayout


@contextmanager
def writer_lock(layout: IndexLayout) -> Iterator[None]:
    """Hold the index's single-writer lock, or raise `IndexBusyError` at once.

    The lock is an flock: it goes with the process holding it, however that process ends.
    Readers take no lock: they only open complete generations, which nobody writes.
    """
    layout.root.mkdir(parents=True, exist_ok=True)
    with open(layout.lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise IndexBusyError(
                f"another `newsbot index` (pid {holder}) is writing {layout.root}: "
                "wait for it to finish"
            ) from exc
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)
