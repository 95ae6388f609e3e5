"""Making a folder read-only or its disk full, for the tests of readers that must not write.

For real: a read-only bind mount, a small tmpfs filled to its last byte (these need root and
`mount`; without them the test skips). Without root: every write the Python code makes under
a folder fails as the kernel would fail it. Native code (embedded Chroma) writes past any
monkeypatch, so a test also compares `snapshot`s of the folder from before and after.
"""

from __future__ import annotations

import builtins
import errno
import hashlib
import io
import os
import shutil
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest

TMPFS_SIZE = "8m"
MiB = 1 << 20

# Makes a folder unwritable for a block (the `unwritable` fixture: mounted, or refused).
Unwritable = Callable[[Path], AbstractContextManager[None]]


# -- what a reader may not change ------------------------------------------------------------
def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file and folder under `root`: size, modification time (ns) and content hash."""
    found = {}
    for path in sorted([root, *root.rglob("*")]):
        info = path.lstat()
        digest = "" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
        found[str(path.relative_to(root))] = (info.st_size, info.st_mtime_ns, digest)
    return found


# -- a real read-only folder, a real full disk ----------------------------------------------
def _mount(*args: str) -> None:
    """Run `mount args`; skip the test where mounting is not permitted."""
    if os.geteuid() != 0:
        pytest.skip("mounting needs root")
    if shutil.which("mount") is None:
        pytest.skip("no mount command here")
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"mounting is not permitted here: {done.stderr.strip() or done.returncode}")


def _unmount(folder: Path) -> None:
    """Unmount `folder`; lazily if something (a connection not yet collected) holds it."""
    if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(folder)], check=True)


@contextmanager
def mounted_read_only(folder: Path) -> Iterator[None]:
    """`folder` bind-mounted onto itself, read-only, until the block ends."""
    _mount("--bind", str(folder), str(folder))
    try:
        _mount("-o", "remount,ro,bind", str(folder))
        with pytest.raises(OSError) as refused:
            (folder / "probe").write_text("x")
        assert refused.value.errno == errno.EROFS
        yield
    finally:
        _unmount(folder)


@contextmanager
def small_disk(folder: Path) -> Iterator[None]:
    """A tmpfs of `TMPFS_SIZE` mounted on `folder` until the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", str(folder))
    try:
        yield
    finally:
        _unmount(folder)


def fill(folder: Path) -> None:
    """Write a filler file into `folder` until its disk has not one byte left."""
    with open(folder / "filler", "wb", buffering=0) as handle:
        for block in (MiB, 4096, 1):
            try:
                while True:
                    handle.write(b"\0" * block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
    assert os.statvfs(folder).f_bavail == 0


# -- writes refused in-process (no root needed) ---------------------------------------------
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class Refuser:
    """Stand-ins for the functions that write: they fail under `root` with errno `code`."""

    def __init__(self, root: Path, code: int) -> None:
        self.root = root.resolve()
        self.code = code
        self.real_open, self.real_os_open, self.real_connect = open, os.open, sqlite3.connect

    def under(self, path: Any) -> bool:
        if isinstance(path, int):  # a file descriptor: opened (and checked) already
            return False
        return Path(os.fsdecode(path)).resolve().is_relative_to(self.root)

    def refused(self, path: Any) -> OSError:
        return OSError(self.code, os.strerror(self.code), os.fsdecode(path))

    def open(self, file: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        if set(mode) & set("wax+") and self.under(file):
            raise self.refused(file)
        return self.real_open(file, mode, *args, **kwargs)

    def os_open(self, path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & WRITE_FLAGS and self.under(path):
            raise self.refused(path)
        return self.real_os_open(path, flags, *args, **kwargs)

    def connect(self, database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        """SQLite opens the file read-only, and refuses writes with its own errors."""
        if not kwargs.get("uri") and database != ":memory:" and self.under(database):
            database, kwargs["uri"] = f"{Path(database).resolve().as_uri()}?mode=ro", True
        return self.real_connect(database, *args, **kwargs)

    def refusing(self, real: Callable[..., Any]) -> Callable[..., Any]:
        def call(path: Any, *args: Any, **kwargs: Any) -> Any:
            if self.under(path):
                raise self.refused(path)
            return real(path, *args, **kwargs)

        return call


@contextmanager
def refusing_writes(root: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> Iterator[None]:
    """Every write the Python code makes under `root` fails with `code` (EROFS, ENOSPC…)."""
    refuser = Refuser(root, code)
    with monkeypatch.context() as patch:
        patch.setattr(builtins, "open", refuser.open)
        patch.setattr(io, "open", refuser.open)  # what pathlib calls
        patch.setattr(os, "open", refuser.os_open)
        patch.setattr(sqlite3, "connect", refuser.connect)
        for name in ("mkdir", "unlink", "remove", "rmdir", "rename", "replace", "truncate"):
            patch.setattr(os, name, refuser.refusing(getattr(os, name)))
        with pytest.raises(OSError) as refused:
            (root / "probe").write_text("x")
        assert refused.value.errno == code
        yield
