"""The catalog: which articles and chunks the index holds, and what built it (SQLite).

`Catalog` is assembled from one class per job, each in its own module: `schema` (the tables,
the connection) < `meta` (what built it) < `segments` (the older segments attached, sealing)
< `articles` (articles and chunks) < `stories`; and `vectors`. They are mixins of one object
rather than objects of their own because every job reads through the same connection and the
same attached segments (one query joins a segment's articles, chunks and stories with the
generation's dead), and because callers, like the file on disk, see one catalog.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path

from index.errors import IndexDamagedError
from index.store.catalog.meta import stored_meta
from index.store.catalog.schema import connect, is_damage, read_only_connection
from index.store.catalog.segments import SegmentInfo
from index.store.catalog.stories import StoryTables
from index.store.catalog.vectors import VectorTables

__all__ = ["Catalog", "SegmentInfo", "damaged_catalog", "read_only_connection", "stored_meta"]


class Catalog(StoryTables, VectorTables):
    """SQLite tables of articles, chunks (with their vectors) and build metadata.

    The catalog of a generation is the whole truth about it: the vector store and BM25 are
    built from it, so a generation can always be checked and rebuilt from its catalog alone.

    A generation is made of segments (docs/architecture.md, "Segments"): its catalog holds
    its own segment's articles and chunks (what its reindex changed, or what it merged), and
    names the older segments it shares with the generations before it (`meta.segments`,
    folders beside it, never written again), and the articles of theirs it no longer holds
    (`dead`). Opening a catalog attaches those segments read-only: every read answers
    for the whole generation, minus the dead. Writes go to its own segment only. A catalog
    without `meta.segments` (built before segments) is one segment, the whole generation.
    """

    def __init__(
        self,
        path: Path,
        *,
        writable: bool = True,
        skip_damaged: bool = False,
        skip: Mapping[str, str] | None = None,
    ) -> None:
        """Open (or create) the catalog at `path`; `writable=False` opens it read-only, as
        readers open a complete generation.

        `skip_damaged`: leave out the segments whose catalog is missing or damaged (named in
        `unattached`), as a reindex that repairs them does, rather than raise; and those in
        `skip` (name → why), whatever their state.

        Raises:
            IndexDamagedError: (read-only) the catalog itself cannot be read;
            SegmentMissingError, SegmentDamagedError: a segment's catalog is missing or
                damaged (see `skip_damaged`).
        """
        self.path = path
        self._writable = writable
        self._skip_damaged = skip_damaged
        self._skip = dict(skip or {})
        self.unattached = {}
        self._parts = []
        if writable:
            self._db = connect(path, writable=True)
            self._db.row_factory = sqlite3.Row
            self._attach()
            return
        try:
            self._db = connect(path, writable=False)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and not is_damage(exc):
                raise
            raise damaged_catalog(path, exc) from exc
        self._db.row_factory = sqlite3.Row
        try:
            self._attach()
        except (sqlite3.DatabaseError, ValueError) as exc:
            self._db.close()
            if isinstance(exc, sqlite3.OperationalError) and not is_damage(exc):
                raise
            raise damaged_catalog(path, exc) from exc
        except BaseException:
            self._db.close()
            raise

    def copy_to(self, path: Path) -> Catalog:
        """A consistent copy of this catalog at `path` (SQLite's online backup), opened."""
        target = sqlite3.connect(path)
        try:
            self._db.backup(target)
        finally:
            target.close()
        return Catalog(path)


def damaged_catalog(path: Path, exc: BaseException) -> IndexDamagedError:
    """The error for a generation's catalog at `path` that cannot be read: only a rebuild,
    from the corpus, can repair it (it names the generation's segments)."""
    where = f"{path.parent.name}/{path.name}"
    return IndexDamagedError(
        f"the index in {path.parent.parent} is damaged: {where} cannot be read ({exc}): "
        "run `newsbot index --rebuild` to build it anew from the corpus"
    )
