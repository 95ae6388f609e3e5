"""The index's single-writer lock: one `newsbot index` at a time."""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager

from index.disk import writing
from index.errors import IndexBusyError
from index.store.layout import IndexLayout

AGAIN = "run `newsbot index` again"


@contextmanager
def writer_lock(layout: IndexLayout) -> Iterator[None]:
    """Hold the index's single-writer lock, or raise `IndexBusyError` at once.

    The lock is an flock: it goes with the process holding it, however that process ends.
    Readers take no lock: they only open complete generations, which nobody writes.
    """
    with writing(layout.root, setting="NEWSBOT_INDEX_DIR", then=AGAIN):
        layout.root.mkdir(parents=True, exist_ok=True)
        handle = open(layout.lock, "a+")  # noqa: SIM115 (closed below, whatever happens)
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            holder = handle.read().strip() or "?"
            raise IndexBusyError(
                f"another `newsbot index` (pid {holder}) is writing {layout.root}: "
                "wait for it to finish"
            ) from exc
        try:
            with writing(layout.lock, setting="NEWSBOT_INDEX_DIR", then=AGAIN):
                # Unbuffered: a write that fails (a full disk) leaves nothing to flush later.
                os.ftruncate(handle.fileno(), 0)
                os.pwrite(handle.fileno(), str(os.getpid()).encode(), 0)
            yield
        finally:
            with contextlib.suppress(OSError):  # the pid is a courtesy; the flock is the lock
                os.ftruncate(handle.fileno(), 0)
            fcntl.flock(handle, fcntl.LOCK_UN)
