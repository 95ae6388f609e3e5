"""Failed writes: out of space, no permission, a read-only disk or another OS error, told as
one `DiskWriteError` that names the problem and the path, and says what to do."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from index.errors import DiskWriteError, NewsbotError

# Chroma's errors do not say why a write failed ("Error in compaction: Failed to apply logs
# to the metadata segment"), nor do torch's when the ONNX export cannot write. A write that
# fails with less than this free on its disk is taken as the disk filling up: Chroma writes
# up to 1,000 vectors (a few MB with its log) at a time, the export ~100 MB.
LOW_SPACE_BYTES = 64 * 2**20

# Never a failed write, however little space is left.
BUGS = (AssertionError, AttributeError, NameError, TypeError)
NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
NO_PERMISSION = {errno.EACCES, errno.EPERM}
# SQLite's primary result codes (the low byte of its extended ones).
SQLITE_PERM, SQLITE_READONLY, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN = 3, 8, 10, 13, 14


@dataclass(frozen=True)
class WriteFailure:
    """What went wrong writing, and where."""

    kind: str  # "space", "permission", "read-only" or "other"
    path: Path
    reason: str  # the system's words, for "other"

    @property
    def out_of_space(self) -> bool:
        return self.kind == "space"


def write_failure(exc: BaseException, path: Path) -> WriteFailure | None:
    """What `exc`, raised while writing under `path`, says went wrong on disk; None if it is
    no failed write (a bug, an interrupt, an error already told as a `NewsbotError`)."""
    if not isinstance(exc, Exception) or isinstance(exc, (NewsbotError, *BUGS)):
        return None
    for cause in _chain(exc):
        if isinstance(cause, OSError) and cause.errno is not None:
            where = Path(cause.filename) if isinstance(cause.filename, str) else path
            return WriteFailure(_errno_kind(cause.errno), where, cause.strerror or str(cause))
        if isinstance(cause, sqlite3.Error):
            code = getattr(cause, "sqlite_errorcode", None)
            kind = _sqlite_kind(code & 0xFF if isinstance(code, int) else None)
            if kind is not None:
                return WriteFailure(kind, path, str(cause))
        if isinstance(cause, shutil.Error):  # copytree's list of (source, target, reason)
            reasons = " ".join(str(item) for item in cause.args[0]) if cause.args else ""
            if "No space left" in reasons:
                return WriteFailure("space", path, reasons)
    if "No space left on device" in str(exc) or "disk is full" in str(exc) or low_space(path):
        return WriteFailure("space", path, str(exc))
    return None


def low_space(path: Path) -> bool:
    """Whether the disk holding `path` has less than `LOW_SPACE_BYTES` free."""
    for folder in (path, *path.parents):
        try:
            return shutil.disk_usage(folder).free < LOW_SPACE_BYTES
        except OSError:
            continue
    return False


def message(failure: WriteFailure, *, setting: str, then: str) -> str:
    """One line: the problem and the path, how to fix it, then `then` (what to run, and what
    became of the unfinished work). `setting` names the folder's setting, for "put it
    elsewhere"."""
    path = failure.path
    if failure.kind == "space":
        return f"out of disk space writing {path}: free some space, then {then}"
    if failure.kind == "permission":
        return (
            f"no permission to write {path}: let this user write there (or set {setting} to "
            f"another folder), then {then}"
        )
    if failure.kind == "read-only":
        return (
            f"cannot write {path}: read-only file system: set {setting} to a folder on a "
            f"writable disk, then {then}"
        )
    return f"cannot write {path}: {failure.reason}: fix that, then {then}"


@contextmanager
def writing(path: Path, *, setting: str, then: str, exact: bool = False) -> Iterator[None]:
    """Turn a failed write under `path` into a `DiskWriteError` (see `message`) naming the
    file the error names, or `path` itself if `exact` (or the error names none)."""
    try:
        yield
    except Exception as exc:
        failure = write_failure(exc, path)
        if failure is None:
            raise
        if exact:
            failure = replace(failure, path=path)
        raise DiskWriteError(
            message(failure, setting=setting, then=then), path=str(failure.path)
        ) from exc


def _errno_kind(code: int) -> str:
    if code in NO_SPACE:
        return "space"
    if code in NO_PERMISSION:
        return "permission"
    if code == errno.EROFS:
        return "read-only"
    return "other"


def _sqlite_kind(code: int | None) -> str | None:
    if code == SQLITE_FULL:
        return "space"
    if code == SQLITE_PERM:
        return "permission"
    if code == SQLITE_READONLY:
        return "read-only"
    if code in (SQLITE_IOERR, SQLITE_CANTOPEN):
        return "other"
    return None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


@contextmanager
def exclusive(
    path: Path, busy: Callable[[str], NewsbotError], *, setting: str, then: str
) -> Iterator[None]:
    """Hold an flock on `path` (made if missing, with its folder), holding this process's
    pid for others to name; else raise `busy(the holder's pid)` at once."""
    with writing(path.parent, setting=setting, then=then):
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "a+")  # noqa: SIM115 (closed below, whatever happens)
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            handle.seek(0)
            raise busy(handle.read().strip() or "?") from exc
        try:
            with writing(path, setting=setting, then=then):
                # Unbuffered: a write that fails (a full disk) leaves nothing to flush later.
                os.ftruncate(handle.fileno(), 0)
                os.pwrite(handle.fileno(), str(os.getpid()).encode(), 0)
            yield
        finally:
            with contextlib.suppress(OSError):  # the pid is a courtesy; the flock is the lock
                os.ftruncate(handle.fileno(), 0)
            fcntl.flock(handle, fcntl.LOCK_UN)
