"""What a reindex deletes once the generation in service is settled: the generations no reader
can still need, and the segments none of those kept shares."""

from __future__ import annotations

from index.store.catalog import stored_meta
from index.store.layout import SEGMENT_NAME, IndexLayout, segment_name


def kept_generations(layout: IndexLayout, current: int) -> set[int]:
    """The generation in service and the one before it (a reader may be mid-question in it)."""
    older = [n for n in layout.numbers() if n < current]
    if current and layout.legacy.catalog.exists():
        older.append(0)  # an index from before generations
    return {current, max(older)} if older else {current}


def remove_stale(layout: IndexLayout, keep: set[int]) -> set[int]:
    """Delete the generations not in `keep`, and the segments none of those kept (nor a
    build under way) shares; the numbers of the segments kept."""
    layout.remove_stale(keep)
    catalogs = [layout.complete(n).catalog for n in keep if n]
    shared = {
        name
        for path in [*catalogs, layout.building_catalog]
        for name in stored_meta(path, "segments") or []
        if isinstance(name, str) and SEGMENT_NAME.fullmatch(name)
    }
    if layout.building.exists():  # its own segment, written just before its switch
        shared.add(segment_name(_building_number(layout)))
    layout.remove_segments(shared)
    return {int(name.split("-")[1]) for name in shared}


def clean_up(layout: IndexLayout, current: int, previous: int | None = None) -> set[int]:
    """Remove the generations and segments no reader can still need with generation
    `current` in service; the numbers of those kept (their collections are kept too).

    `previous` is the generation in service before `current`, kept for the readers still in
    it; without it, the newest older one. (It is not always the newest: a run killed between
    its rename and its switch leaves a newer generation nobody used.)
    """
    keep = kept_generations(layout, current) if previous is None else {current, previous}
    return keep | remove_stale(layout, keep)


def _building_number(layout: IndexLayout) -> int:
    build = stored_meta(layout.building_catalog, "build") or {}
    number = build.get("number") if isinstance(build, dict) else None
    return number if isinstance(number, int) else -1
