"""Building the next generation beside the one in service, checking it, and switching to it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from index.build.progress import Progress
from index.build.segment_vectors import write_store
from index.build.stories import Syndication, group_stories
from index.disk import message, write_failure
from index.errors import DiskWriteError, NewsbotError, StoreUnavailableError
from index.ingest.chunks import Chunk, Chunker
from index.ingest.corpus.article import Article
from index.models.embeddings import Embedder, check_fits
from index.settings import Settings
from index.store.catalog import Catalog, read_only_connection
from index.store.layout import (
    CATALOG_FILE,
    SEGMENT_NAME,
    Generation,
    IndexLayout,
    segment_name,
    sync_folder,
)
from index.store.lexical import LexicalIndex
from index.store.segments import to_merge
from index.store.vectors import VectorStore, collection_name

# The setting that moves the index elsewhere, for "put it on another disk".
INDEX_DIR_SETTING = "NEWSBOT_INDEX_DIR"
# Chunks embedded and committed together: a killed run loses at most one group's work.
GROUP_CHUNKS = 1024


@dataclass
class LiveSummary:
    """What the generation in service says about itself (empty without one)."""

    hashes: dict[str, tuple[str, str]] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None
    index_id: str | None = None
    chunks: int = 0
    # Whether its articles are grouped into stories as `Syndication` now groups them (not in
    # an index from before stories, or with signatures made another way).
    stories_current: bool = True


@dataclass(frozen=True)
class BuildPlan:
    """What the next generation is to hold, and how it is built."""

    manifest: dict[str, Any]  # the settings it is built with
    articles: list[Article]  # every article the corpus gave this time
    kept: list[str]  # indexed articles whose file cannot be read now: they stay as they are
    planned: set[str]  # the articles the plan (re)embeds: embedding any other is a repair
    rebuild: bool  # from nothing, rather than from the generation in service
    vectors_restored: bool  # the store lost the vectors in service: there are none to copy
    syndication: Syndication = field(default_factory=Syndication)  # how copies are grouped
    # Indexed articles whose file was not read (its stat is as recorded): they stay as they are.
    unread: set[str] = field(default_factory=set)
    # Merge every segment into the new one (the store lost vectors, or the stories are to be
    # grouped anew): the new generation is then one segment, its vectors all written anew.
    full: bool = False


@dataclass(frozen=True)
class BuiltGeneration:
    """What building the next generation did."""

    repaired: list[str]
    chunks_embedded: int
    chunks_total: int


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
    shared = {name for path in [*catalogs, layout.building_catalog] for name in _shared(path)}
    if layout.building.exists():  # its own segment, written just before its switch
        shared.add(segment_name(_building_number(layout.building_catalog)))
    layout.remove_segments(shared)
    return {int(name.split("-")[1]) for name in shared}


def _read_meta(path: Path, key: str) -> Any:
    if not path.exists():
        return None
    try:
        db = read_only_connection(path)
        try:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return json.loads(row[0]) if row else None


def _shared(path: Path) -> set[str]:
    """The segments the generation whose catalog is at `path` shares."""
    names = _read_meta(path, "segments") or []
    return {name for name in names if isinstance(name, str) and SEGMENT_NAME.fullmatch(name)}


def _building_number(path: Path) -> int:
    build = _read_meta(path, "build") or {}
    number = build.get("number") if isinstance(build, dict) else None
    return number if isinstance(number, int) else -1


class GenerationBuild:
    """Builds the next generation in `building/` (resuming a killed build) and switches to it."""

    def __init__(
        self,
        settings: Settings,
        embedder: Embedder,
        layout: IndexLayout,
        progress: Progress | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.layout = layout
        self.progress = progress
        self._writing = layout.building  # what is being written, for a failed write's message

    def run(self, live: Generation | None, base: LiveSummary, plan: BuildPlan) -> BuiltGeneration:
        """Build `plan` from the generation in service `live` (which `base` sums up), check
        it, and switch to it.

        A write that fails (no space, no permission, any OS error) raises `DiskWriteError`:
        the generation in service is untouched, and `building/` keeps only its catalog, which
        holds what was embedded, for the next run to resume (or goes, if nothing is).
        """
        try:
            return self._build(live, base, plan)
        except Exception as exc:
            failure = write_failure(exc, self._writing)
            if failure is None:
                raise
            then = f"run `newsbot index` again ({self._leave_resumable()}"
            if live is not None:
                then += "; the index in service is unchanged"
            raise DiskWriteError(
                message(failure, setting=INDEX_DIR_SETTING, then=then + ")"),
                path=str(failure.path),
            ) from exc

    def _build(
        self, live: Generation | None, base: LiveSummary, plan: BuildPlan
    ) -> BuiltGeneration:
        if live is not None:  # a generation built but never switched to is of no use
            remove_stale(self.layout, kept_generations(self.layout, live.number))
        copy_from = None if plan.rebuild else live
        self._writing = self.layout.building_catalog
        catalog, number = self._open_catalog(copy_from, base, plan)
        building = Generation(self.layout.building, number)
        try:
            index_id = catalog.index_id()
            if catalog.get_meta("sealed"):  # a run killed before its switch: all is built
                return self._resume_switch(catalog, index_id, number)
            # A rebuild chunks the kept articles anew from what the generation in service holds.
            articles = [*plan.articles, *(_pieced(live, plan.kept) if plan.rebuild else [])]
            changed = _drop_and_find_changed(catalog, articles, {*plan.kept, *plan.unread})
            repaired = sorted(a.id for a in changed if a.id not in plan.planned)
            chunks_embedded = self._embed(catalog, changed) if changed else 0
            catalog.drop_dead_segments()
            group_stories(catalog, changed, plan.syndication)
            catalog.set_meta("manifest", {**plan.manifest, "dimension": catalog.dimension()})
            catalog.set_meta("last_indexed", _now())
            name = collection_name(self.settings, index_id, number)
            catalog.set_meta("collection", name)
            stored: set[str] = set()
            lexical: list[str] = []
            if not catalog.own_is_empty():  # else a segment of nothing: none is written
                self._writing = building.chroma
                stored = write_store(self.settings, catalog, building, name, self.progress)
                self._writing = building.bm25
                lexical = _write_lexical(catalog, building.bm25)
            _check_consistent(catalog, stored, lexical)
            total = catalog.counts()[1]
            # The "build" entry stays: a generation whose switch fails is resumed as it is.
            self._writing = building.catalog
            self._seal(catalog, building)
        finally:
            catalog.close()
        self._writing = self.layout.root
        self._switch(index_id, number)
        return BuiltGeneration(repaired, chunks_embedded, chunks_total=total)

    def _seal(self, catalog: Catalog, building: Generation) -> None:
        """Move the new segment (its catalog tables, BM25 and vectors) into its folder under
        `segments/`, and leave the generation's own catalog small."""
        if catalog.own_is_empty():
            catalog.seal_into(None)
            catalog.seal()
            return
        segment = segment_name(building.number)
        folder = self.layout.segment(segment).root
        folder.mkdir(parents=True, exist_ok=True)
        for part in (building.bm25, building.chroma):
            target = folder / part.name
            _remove(target)
            if part.exists():
                os.replace(part, target)
        sync_folder(folder)
        self._writing = self.layout.segment(segment).catalog
        catalog.seal_into(segment)
        self._writing = building.catalog
        catalog.seal()

    def _resume_switch(self, catalog: Catalog, index_id: str, number: int) -> BuiltGeneration:
        """Switch to a generation a killed run had built and sealed (sealing it again: the
        run may have been killed in it)."""
        total = catalog.counts()[1]
        self._writing = self.layout.building_catalog
        catalog.seal()
        catalog.close()
        self._writing = self.layout.root
        self._switch(index_id, number)
        return BuiltGeneration([], 0, chunks_total=total)

    def _leave_resumable(self) -> str:
        """After a failed write: free what the next run rebuilds anyway (the vectors' store,
        BM25), keep the catalog, which holds what was embedded; what became of the build."""
        building = self.layout.building
        if _resumable(self.layout.building_catalog):
            with contextlib.suppress(OSError):  # a disk gone read-only: nothing more to free
                for item in list(building.iterdir()):
                    if not item.name.startswith(CATALOG_FILE):
                        _remove(item)
            return f"it resumes: what was embedded is kept in {building}"
        shutil.rmtree(building, ignore_errors=True)
        return "nothing had been embedded yet: the unfinished build was removed"

    def _open_catalog(
        self, copy_from: Generation | None, base: LiveSummary, plan: BuildPlan
    ) -> tuple[Catalog, int]:
        """The catalog of the generation being built, and its number.

        It shares the segments of the generation `copy_from` (none for a rebuild) and starts
        its own segment empty, but for what it merges (`index.store.segments.to_merge`; all of them
        for a `full` plan). A build a killed run left for the same base generation and
        settings is resumed: what it embedded is kept. Anything else there is discarded.
        """
        layout = self.layout
        path = layout.building_catalog
        spec = {
            "base": copy_from.name if copy_from else None,
            "manifest": plan.manifest,
            "full": plan.full,
        }
        if path.exists():
            catalog = Catalog(path)
            meta = catalog.get_meta("build") or {}
            if {k: meta.get(k) for k in spec} == spec and isinstance(meta.get("number"), int):
                return catalog, int(meta["number"])
            catalog.close()
        shutil.rmtree(layout.building, ignore_errors=True)
        layout.building.mkdir(parents=True)
        number = max([*layout.numbers(), layout.generation()]) + 1
        if copy_from is None:
            catalog = Catalog(path)
            if base.index_id:  # a --rebuild keeps the index's identity (and its collections' names)
                catalog.set_meta("index_id", base.index_id)
        else:
            source = Catalog(copy_from.catalog, writable=False)
            try:
                if source.segmented:  # shared, not copied
                    catalog = Catalog(path)
                    for key in ("index_id", "stories"):
                        if source.get_meta(key) is not None:
                            catalog.set_meta(key, source.get_meta(key))
                    catalog.start_from(source)
                else:  # an index from before segments: copied whole, once
                    catalog = source.copy_to(path)
            finally:
                source.close()
            if copy_from.number == 0:  # an index from before generations
                self._carry_over_vectors(catalog, copy_from)
        if not catalog.segmented:
            catalog.set_segments([])
        older = [s for s in catalog.segments() if s.name != path.parent.name]
        catalog.absorb([s.name for s in older] if plan.full else to_merge(older))
        catalog.set_meta("build", {**spec, "number": number})
        return catalog, number

    def _carry_over_vectors(self, catalog: Catalog, legacy: Generation) -> None:
        """Copy the vectors of an index from before generations into its catalog."""
        store = VectorStore(
            self.settings,
            owner=catalog.index_id(),
            path=legacy.chroma,
            name=collection_name(self.settings, catalog.index_id(), 0),
            read_only=True,  # the legacy index answers until the switch: leave it as it is
        )
        try:
            catalog.set_vectors(store.vectors(catalog.chunk_ids()))
        finally:
            store.close()

    def _embed(self, catalog: Catalog, changed: list[Article]) -> int:
        """Chunk and embed `changed` into the catalog, a group of articles per transaction;
        how many chunks that made."""
        settings, embedder, progress = self.settings, self.embedder, self.progress
        check_fits(embedder, Chunker.window_needed(settings.chunk_tokens))
        chunker = Chunker(embedder.count_tokens, settings.chunk_tokens, settings.chunk_overlap)
        planned = [(article, chunker.split(article)) for article in changed]
        total = sum(len(chunks) for _, chunks in planned)
        done = 0
        if progress:
            progress("embed", 0, total)
        for group in _groups(planned, GROUP_CHUNKS):
            texts = [chunker.embed_text(a.title, c) for a, chunks in group for c in chunks]
            vectors = _embed_sorted(embedder, texts)
            rows = []
            start = 0
            for article, chunks in group:
                rows.append((article, chunks, vectors[start : start + len(chunks)]))
                start += len(chunks)
            catalog.replace_articles(rows, [], _now())
            done += len(texts)
            if progress:
                progress("embed", done, total)
        return total

    def _switch(self, index_id: str, number: int) -> None:
        """Put the built generation in service, then remove what no reader can still need."""
        layout = self.layout
        target = layout.generation_dir(number)
        shutil.rmtree(target, ignore_errors=True)  # left by a run killed before its switch
        os.replace(layout.building, target)
        try:
            sync_folder(layout.root)
            layout.switch_to(Generation(target, number))
        except OSError:
            os.replace(target, layout.building)  # not in service: the next run resumes it
            raise
        keep = kept_generations(layout, number)
        segments = remove_stale(layout, keep)
        with contextlib.suppress(StoreUnavailableError):  # cleaned up by a later run instead
            VectorStore.remove_other_generations(
                self.settings,
                index_id,
                {collection_name(self.settings, index_id, n) for n in keep | segments},
            )


def _resumable(path: Path) -> bool:
    """Whether the catalog at `path` is a build's, which the next run may resume."""
    if not path.exists():
        return False
    try:
        catalog = Catalog(path, writable=False)
        try:
            return isinstance((catalog.get_meta("build") or {}).get("number"), int)
        finally:
            catalog.close()
    except (sqlite3.Error, ValueError):
        return False


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def _drop_and_find_changed(
    catalog: Catalog, articles: list[Article], kept: set[str]
) -> list[Article]:
    """Drop from the catalog the articles the generation no longer holds; the `articles` it
    lacks or holds otherwise (or without vectors)."""
    current = {a.id: a for a in articles}
    done = catalog.hashes()
    missing = catalog.articles_missing_vectors()
    # An article kept from an unreadable file, or from a file not read because its stat is
    # as recorded, stays as it is, unless it has no vectors
    # (carried over from an index that lost them): then it cannot be served.
    drop = [
        aid
        for aid in done
        if (aid not in current and aid not in kept) or (aid in missing and aid not in current)
    ]
    if drop:
        catalog.replace_articles([], drop, _now())
    return [
        a
        for a in articles
        if a.id not in done or done[a.id][0] != a.content_hash or a.id in missing
    ]


def _pieced(live: Generation | None, article_ids: list[str]) -> list[Article]:
    """The articles `article_ids` of the generation in service, their texts pieced together."""
    if live is None or not article_ids:
        return []
    catalog = Catalog(live.catalog, writable=False)
    try:
        return catalog.pieced_articles(article_ids)
    finally:
        catalog.close()


def _write_lexical(catalog: Catalog, path: Path) -> list[str]:
    """Write the BM25 index of the catalog's chunks to `path`; the chunk ids it holds."""
    ids: list[str] = []
    texts: list[str] = []
    for chunk_id, title, text in catalog.iter_chunk_texts():
        ids.append(chunk_id)
        texts.append(f"{title}\n{text}")
    LexicalIndex.build(ids, texts).save(path)
    return ids


def _check_consistent(catalog: Catalog, stored: set[str], lexical: list[str]) -> None:
    """Refuse to switch to a generation whose vectors, BM25 and catalog disagree."""
    chunks = catalog.own_chunk_ids()
    if set(chunks) != stored or sorted(lexical) != chunks or len(set(chunks)) != len(chunks):
        raise NewsbotError(
            f"the new index came out inconsistent ({len(chunks)} chunks, {len(stored)} vectors, "
            f"{len(lexical)} in BM25); the index in service is unchanged: run `newsbot index` "
            "again"
        )


def _embed_sorted(embedder: Embedder, texts: Sequence[str]) -> np.ndarray:
    """Embed with texts of similar length together (less padding), in the original order."""
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    order = np.argsort([len(t) for t in texts], kind="stable")
    vectors = embedder.embed([texts[i] for i in order])
    out = np.empty_like(vectors)
    out[order] = vectors
    return out


def _groups(
    planned: list[tuple[Article, list[Chunk]]], size: int
) -> Iterator[list[tuple[Article, list[Chunk]]]]:
    group: list[tuple[Article, list[Chunk]]] = []
    count = 0
    for item in planned:
        group.append(item)
        count += len(item[1])
        if count >= size:
            yield group
            group, count = [], 0
    if group:
        yield group


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
