"""What each corpus file looked like when it was last read: its size and modification time.

A reindex reads and hashes a file only when its (size, mtime) or its sidecar's changed since
the generation in service was checked against it; otherwise the file's articles are taken
as the catalog holds them. Content hashes stay the truth: a file whose stat differs is read
and hashed, and costs a model call only if an article in it really changed.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from index.ingest.corpus.frontmatter import sidecar_path
from index.ingest.folders import CORPUS_FILES

# A file modified this close to (or after) the moment it was stat'ed may be written again
# within the same mtime tick, its size unchanged: its stat is not trusted next time, and it
# is read again (git's "racy" rule). 2 s covers filesystems with coarse mtimes (FAT: 2 s).
RACY_NS = 2_000_000_000
FORMAT = 1
FIELDS = ("size", "mtime_ns", "ctime_ns", "sidecar_size", "sidecar_mtime_ns", "sidecar_ctime_ns")

# (size, mtime_ns, ctime_ns) of an article file, then of its sidecar (None: it has none).
# ctime changes with a chmod, which a file made unreadable has: it is read, and told.
FileStat = tuple[int, int, int, int | None, int | None, int | None]


def file_stat(path: str | Path, sidecar: bool = True) -> FileStat | None:
    """The article file's and its sidecar's (size, mtime_ns, ctime_ns); None if it is not a
    regular file that can be stat'ed (then it is read, and its problem told, as ever).
    `sidecar` False: its folder's listing holds none (a sidecar made since shows next time)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    if not sidecar:
        return info.st_size, info.st_mtime_ns, info.st_ctime_ns, None, None, None
    try:
        side = os.stat(sidecar_path(Path(path)))
    except FileNotFoundError:
        return info.st_size, info.st_mtime_ns, info.st_ctime_ns, None, None, None
    except OSError:
        return None  # a sidecar that cannot be stat'ed: read, and let the reader tell why
    return (
        info.st_size,
        info.st_mtime_ns,
        info.st_ctime_ns,
        side.st_size,
        side.st_mtime_ns,
        side.st_ctime_ns,
    )


@dataclass
class KnownFiles:
    """The files the generation in service was last checked against, and their articles."""

    stats: dict[str, FileStat] = field(default_factory=dict)
    # File (path under the corpus) → the ids of the articles the catalog holds from it.
    articles: dict[str, list[str]] = field(default_factory=dict)

    def unchanged(self, rel: str, now: FileStat | None) -> list[str] | None:
        """The article ids the file `rel` gave last time if its stat is as recorded; None if
        it must be read."""
        if now is None or self.stats.get(rel) != now:
            return None
        return self.articles.get(rel) or None


@dataclass(frozen=True)
class FileStatsRecord:
    """`corpus_files.json` in the index folder: the stats of the files the generation in
    service holds, as they were when it was last checked against the corpus.

    It is kept beside the generations rather than in a catalog because a reindex that finds
    nothing changed writes no generation, yet learns the stats of files it had to read.
    It names the generation, index and corpus it is for: any other, and it is ignored.
    """

    path: Path

    @classmethod
    def of(cls, index_dir: Path) -> FileStatsRecord:
        return cls(index_dir / CORPUS_FILES)

    def load(
        self,
        generation: str,
        index_id: str | None,
        corpus: Path,
        hashes: Mapping[str, tuple[str, str]],
    ) -> KnownFiles:
        """What the record says of `generation`; nothing if it is for another one, or
        unreadable. `hashes`: the generation's article id → (content hash, path)."""
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            if data.get("for") != _identity(generation, index_id, corpus):
                return KnownFiles()
            stats = {rel: _stat(value) for rel, value in data["files"].items()}
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return KnownFiles()
        articles: dict[str, list[str]] = {}
        for aid, (_, rel) in hashes.items():
            if rel in stats:
                articles.setdefault(rel, []).append(aid)
        return KnownFiles(stats, articles)

    def save(
        self,
        generation: str,
        index_id: str | None,
        corpus: Path,
        stats: Mapping[str, FileStat],
        scanned_ns: int,
    ) -> None:
        """Record `stats` for `generation`, leaving out files modified within RACY_NS of
        `scanned_ns` (when they were stat'ed). Best effort: if it cannot be written, the
        next reindex reads every file."""
        trusted = {
            rel: list(value)
            for rel, value in stats.items()
            if max(value[1], value[4] or 0) < scanned_ns - RACY_NS
        }
        payload = {"for": _identity(generation, index_id, corpus), "files": trusted}
        tmp = self.path.with_name(self.path.name + ".tmp")
        try:
            tmp.write_text(json.dumps(payload, separators=(",", ":")), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()
            with contextlib.suppress(OSError):
                self.path.unlink()  # never leave a record that may be out of date


def _identity(generation: str, index_id: str | None, corpus: Path) -> list[object]:
    return [FORMAT, generation, index_id, os.path.realpath(corpus)]


def _stat(value: object) -> FileStat:
    if not isinstance(value, list) or len(value) != len(FIELDS):
        raise ValueError("not a file stat")
    size, mtime, ctime, side_size, side_mtime, side_ctime = value
    return (
        int(size),
        int(mtime),
        int(ctime),
        _maybe_int(side_size),
        _maybe_int(side_mtime),
        _maybe_int(side_ctime),
    )


def _maybe_int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]
