"""The new generation's vector collection: the last one's copied and patched, or written anew."""

from __future__ import annotations

import logging
import shutil
import sqlite3
from pathlib import Path

from index.catalog import Catalog
from index.disk import write_failure
from index.layout import Generation
from index.progress import Progress
from index.settings import Settings
from index.store import WRITE_BATCH, VectorStore

log = logging.getLogger("newsbot.index")

CHROMA_SQLITE = "chroma.sqlite3"  # the embedded store's own database file


def write_store(
    settings: Settings,
    catalog: Catalog,
    building: Generation,
    name: str,
    reuse: tuple[Generation, set[str]] | None,
    progress: Progress | None,
) -> set[str]:
    """Give the new generation its vector collection `name`; the ids it then holds.

    With `reuse` (the embedded store, and a generation this one was copied from together with
    the articles that differ from it), the old generation's Chroma folder is copied and only
    those articles' vectors are written: a small change to a large index costs seconds, not
    a rebuild of every vector. Otherwise, or if that fails, every vector of the catalog goes
    into a fresh collection.
    """
    index_id = catalog.index_id()
    if reuse is not None:
        source, renewed = reuse
        try:
            _copy_chroma(source.chroma, building.chroma)
            store = VectorStore(settings, owner=index_id, path=building.chroma, name=name)
        except Exception as exc:
            failure = write_failure(exc, building.chroma)
            if failure is not None and failure.kind != "other":
                raise  # no space or no permission: writing them all anew would fail too
            log.warning("could not copy the vectors of %s; writing them all anew", source.name)
        else:
            try:
                wanted = set(catalog.chunk_ids())
                store.delete(sorted(store.ids() - wanted))
                _fill(store, catalog, renewed, progress)
                return store.ids()
            finally:
                store.close()
    store = VectorStore(settings, owner=index_id, path=building.chroma, name=name, fresh=True)
    try:
        _fill(store, catalog, None, progress)
        return store.ids()
    finally:
        store.close()


def _fill(
    store: VectorStore, catalog: Catalog, articles: set[str] | None, progress: Progress | None
) -> None:
    """Write the vectors of `articles` (all when None) from the catalog into `store`."""
    total = catalog.counts()[1] if articles is None else len(catalog.chunk_ids(articles))
    done = 0
    if progress:
        progress("store", 0, total)
    for ids, vectors, metas in catalog.iter_vectors(WRITE_BATCH, articles):
        store.upsert(ids, vectors, metas)
        done += len(ids)
        if progress:
            progress("store", done, total)


def _copy_chroma(source: Path, target: Path) -> None:
    """Copy an embedded Chroma folder of a complete generation.

    Nobody writes a complete generation: readers open a private copy of it (see
    `VectorStore`'s `read_only`). Its SQLite file is still copied with SQLite's online backup,
    which is consistent even while a reader of an older newsbot, which opened it in place,
    writes to it.
    """
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for item in source.iterdir():
        if item.name == CHROMA_SQLITE:
            source_db = sqlite3.connect(f"{item.resolve().as_uri()}?mode=ro", uri=True)
            target_db = sqlite3.connect(target / item.name)
            try:
                source_db.backup(target_db)
            finally:
                target_db.close()
                source_db.close()
        elif item.name.startswith(CHROMA_SQLITE):
            continue  # its journal: the backup has what it holds
        elif item.is_dir():
            shutil.copytree(item, target / item.name)
        else:
            shutil.copy2(item, target / item.name)
