"""The vectors of a new segment, written from its catalog into a collection of its own."""

from __future__ import annotations

from index.build.progress import Progress
from index.settings import Settings
from index.store.catalog import Catalog
from index.store.layout import Generation
from index.store.vectors import WRITE_BATCH, VectorStore


def write_store(
    settings: Settings,
    catalog: Catalog,
    building: Generation,
    name: str,
    progress: Progress | None,
) -> set[str]:
    """Give the new generation's own segment its vector collection `name` (in `building`'s
    folder when embedded), holding the vectors of that segment's chunks; the ids it then
    holds. The older segments' collections are shared as they are: a small change writes
    only its own vectors."""
    store = VectorStore(
        settings, owner=catalog.index_id(), path=building.chroma, name=name, fresh=True
    )
    try:
        total = len(catalog.own_chunk_ids())
        done = 0
        if progress:
            progress("store", 0, total)
        for ids, vectors, metas in catalog.iter_vectors(WRITE_BATCH):
            store.upsert(ids, vectors, metas)
            done += len(ids)
            if progress:
                progress("store", done, total)
        return store.ids()
    finally:
        store.close()
