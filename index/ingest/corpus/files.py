"""Reading a corpus file's bytes safely: regular files only, within size limits, gunzipped."""

from __future__ import annotations

import errno
import gzip
import os
import stat
import zlib
from dataclasses import dataclass
from pathlib import Path

from index.errors import ArticleError

MB = 1_000_000
# One article (a text, Markdown or HTML file, or one JSON record): far above any real story.
MAX_ARTICLE_BYTES = 10 * MB
# One JSON/JSONL file of many articles, after gunzip: it is held in memory while read.
MAX_COLLECTION_BYTES = 256 * MB
GZIP_SUFFIX = ".gz"


@dataclass(frozen=True)
class FileLimits:
    """The most newsbot reads: one article, and one JSON/JSONL file of many (after gunzip)."""

    article_bytes: int = MAX_ARTICLE_BYTES
    collection_bytes: int = MAX_COLLECTION_BYTES


def read_bytes(path: Path, rel: str, limit: int, what: str) -> bytes:
    """The file's bytes (gunzipped for .gz).

    Args:
        path: the file to read.
        rel: the file as problems name it (its path under the corpus folder).
        limit: the most bytes read (after gunzip).
        what: the kind of file, as the too-large message names it ("an article file").

    Returns:
        The file's bytes, gunzipped if its name ends in `.gz`.

    Raises:
        ArticleError: the file cannot be opened or read, is not a regular file, is not valid
            gzip, or is over `limit`.
    """
    try:
        # O_NONBLOCK: opening a named pipe would otherwise wait for a writer, forever.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise ArticleError(rel, _open_failure(path, exc)) from exc
    gunzip = path.name.lower().endswith(GZIP_SUFFIX)
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ArticleError(rel, f"not a regular file ({_file_kind(info.st_mode)})")
        if info.st_size > limit:
            raise ArticleError(rel, too_large("file", info.st_size, limit, what))
        try:
            data = (gzip.GzipFile(fileobj=handle) if gunzip else handle).read(limit + 1)
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise ArticleError(rel, f"not a valid gzip file ({exc})") from exc
        except OSError as exc:
            raise ArticleError(rel, f"cannot read file: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise ArticleError(rel, too_large("file", None, limit, what))
    return data


def too_large(thing: str, size: int | None, limit: int, what: str) -> str:
    """Why `thing` is refused: its `size` (None: known only once gunzipped) is over `limit`."""
    actual = f"{size / MB:.1f} MB" if size is not None else "once gunzipped"
    return f"{thing} too large ({actual}, over newsbot's {limit / MB:g} MB limit for {what})"


def _open_failure(path: Path, exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "symlink loop: following its links never reaches a file"
    if exc.errno == errno.ENOENT and path.is_symlink():
        return f"broken symlink: its target {os.readlink(path)} does not exist"
    return f"cannot read file: {exc.strerror or exc}"


def _file_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a file"
