"""Finishing a built generation: its new segment's BM25 written, the segment checked against
its vectors and catalog, then sealed into its own folder under `segments/`."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from pathlib import Path

from index.errors import NewsbotError
from index.store.catalog import Catalog
from index.store.layout import Generation, IndexLayout, segment_name, sync_folder
from index.store.lexical import LexicalIndex


def write_lexical(catalog: Catalog, path: Path) -> list[str]:
    """Write the BM25 index of the catalog's chunks to `path`; the chunk ids it holds."""
    ids: list[str] = []
    texts: list[str] = []
    for chunk_id, title, text in catalog.iter_chunk_texts():
        ids.append(chunk_id)
        texts.append(f"{title}\n{text}")
    LexicalIndex.build(ids, texts).save(path)
    return ids


def check_consistent(catalog: Catalog, stored: set[str], lexical: list[str]) -> None:
    """Refuse to switch to a generation whose vectors, BM25 and catalog disagree."""
    chunks = catalog.own_chunk_ids()
    if set(chunks) != stored or sorted(lexical) != chunks or len(set(chunks)) != len(chunks):
        raise NewsbotError(
            f"the new index came out inconsistent ({len(chunks)} chunks, {len(stored)} vectors, "
            f"{len(lexical)} in BM25); the index in service is unchanged: run `newsbot index` "
            "again"
        )


def seal(
    catalog: Catalog,
    layout: IndexLayout,
    building: Generation,
    writing: Callable[[Path], None],
) -> None:
    """Move the new segment (its catalog tables, BM25 and vectors) into its folder under
    `segments/`, and leave the generation's own catalog small; `writing` is told each file
    written (a failed write's message names it)."""
    writing(building.catalog)
    if catalog.own_is_empty():
        catalog.seal_into(None)
        catalog.seal()
        return
    segment = layout.segment(segment_name(building.number))
    folder = segment.root
    folder.mkdir(parents=True, exist_ok=True)
    for part in (building.bm25, building.chroma):
        target = folder / part.name
        remove(target)
        if part.exists():
            os.replace(part, target)
    sync_folder(folder)
    writing(segment.catalog)
    catalog.seal_into(segment.root.name)
    writing(building.catalog)
    catalog.seal()


def remove(path: Path) -> None:
    """Delete the file or folder `path`, if it can be."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()
