"""Putting a built generation in service (one atomic rename), then removing what no reader can
still need."""

from __future__ import annotations

import contextlib
import os
import shutil

from index.build.cleanup import clean_up
from index.errors import StoreUnavailableError
from index.settings import Settings
from index.store.layout import Generation, IndexLayout, sync_folder
from index.store.vectors import VectorStore, collection_name


def switch(
    settings: Settings, layout: IndexLayout, index_id: str, number: int, previous: int | None
) -> None:
    """Put the generation built in `building/` in service as `number`, then remove the
    generations, segments and (on a Chroma server) collections no reader can still need
    (`previous`, the generation in service until now, is kept: `clean_up`)."""
    target = layout.generation_dir(number)
    shutil.rmtree(target, ignore_errors=True)  # left by a run killed before its switch
    os.replace(layout.building, target)
    try:
        sync_folder(layout.root)
        layout.switch_to(Generation(target, number))
    except OSError:
        os.replace(target, layout.building)  # not in service: the next run resumes it
        raise
    kept = clean_up(layout, number, previous)
    with contextlib.suppress(StoreUnavailableError):  # cleaned up by a later run instead
        VectorStore.remove_other_generations(
            settings, index_id, {collection_name(settings, index_id, n) for n in kept}
        )
