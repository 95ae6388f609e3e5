"""Building the next generation beside the one in service: its catalog started from the one
in service, the changed articles embedded, its stories grouped; then it is sealed (`seal`) and
switched to (`switch`)."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from index.build.progress import Progress
from index.build.seal import check_consistent, remove, seal, write_lexical
from index.build.segment_vectors import write_store
from index.build.stories import Syndication, group_stories
from index.build.switch import switch
from index.disk import message, write_failure
from index.errors import DiskWriteError
from index.ingest.chunks import Chunk, Chunker
from index.ingest.corpus.article import Article
from index.models.embeddings import Embedder, check_fits
from index.settings import Settings
from index.store.catalog import Catalog, stored_meta
from index.store.layout import CATALOG_FILE, Generation, IndexLayout
from index.store.segments import to_merge
from index.store.vectors import VectorStore, collection_name

# The setting that moves the index elsewhere, for "put it on another disk".
INDEX_DIR_SETTING = "NEWSBOT_INDEX_DIR"
# Chunks embedded and committed together: a killed run loses at most one group's work.
GROUP_CHUNKS = 1024


@dataclass
class LiveSummary:
    """What the generation in service says about itself (empty without one), and its catalog,
    opened once for the whole reindex (opening one attaches every segment)."""

    catalog: Catalog | None = None
    hashes: dict[str, tuple[str, str]] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None
    index_id: str | None = None
    chunks: int = 0
    copies: tuple[int, int] = (0, 0)  # (syndicated copies, stories with copies)
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
    # Older segments whose BM25 or vectors are damaged: merged into the new one, which
    # builds them anew from their catalogs (`index.build.repair`).
    repair: frozenset[str] = frozenset()


@dataclass(frozen=True)
class BuiltGeneration:
    """What building the next generation did."""

    repaired: list[str]
    chunks_embedded: int
    chunks_total: int
    index_id: str
    copies: tuple[int, int]  # (syndicated copies, stories with copies): `Catalog.copy_count`


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
        copy_from = None if plan.rebuild else live
        self._write(self.layout.building_catalog)
        catalog, number = self._open_catalog(copy_from, base, plan)
        building = Generation(self.layout.building, number)
        try:
            index_id = catalog.index_id()
            if catalog.get_meta("sealed"):  # a run killed before its switch: all is built
                return self._resume_switch(catalog, index_id, number, live)
            # A rebuild chunks the kept articles anew from what the generation in service holds.
            pieced: list[Article] = []
            if plan.rebuild and base.catalog is not None:
                pieced = base.catalog.pieced_articles(plan.kept)
            articles = [*plan.articles, *pieced]
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
                self._write(building.chroma)
                stored = write_store(self.settings, catalog, building, name, self.progress)
                self._write(building.bm25)
                lexical = write_lexical(catalog, building.bm25)
            check_consistent(catalog, stored, lexical)
            total = catalog.counts()[1]
            copies = catalog.copy_count()
            # The "build" entry stays: a generation whose switch fails is resumed as it is.
            seal(catalog, self.layout, building, self._write)
        finally:
            catalog.close()
        self._write(self.layout.root)
        switch(self.settings, self.layout, index_id, number, live.number if live else None)
        return BuiltGeneration(repaired, chunks_embedded, total, index_id, copies)

    def _write(self, path: Path) -> None:
        """Note that `path` is being written (a failed write's message names it)."""
        self._writing = path

    def _resume_switch(
        self, catalog: Catalog, index_id: str, number: int, live: Generation | None
    ) -> BuiltGeneration:
        """Switch to a generation a killed run had built and sealed (sealing it again: the
        run may have been killed in it)."""
        total = catalog.counts()[1]
        copies = catalog.copy_count()
        self._write(self.layout.building_catalog)
        catalog.seal()
        catalog.close()
        self._write(self.layout.root)
        switch(self.settings, self.layout, index_id, number, live.number if live else None)
        return BuiltGeneration([], 0, total, index_id, copies)

    def _leave_resumable(self) -> str:
        """After a failed write: free what the next run rebuilds anyway (the vectors' store,
        BM25), keep the catalog, which holds what was embedded; what became of the build."""
        building = self.layout.building
        if _resumable(self.layout.building_catalog):
            with contextlib.suppress(OSError):  # a disk gone read-only: nothing more to free
                for item in list(building.iterdir()):
                    if not item.name.startswith(CATALOG_FILE):
                        remove(item)
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
        spec: dict[str, Any] = {
            "base": copy_from.name if copy_from else None,
            "manifest": plan.manifest,
            "full": plan.full,
        }
        if plan.repair:
            spec["repair"] = sorted(plan.repair)
        resumed = _resumed(path, spec)
        if resumed is not None:
            return resumed
        shutil.rmtree(layout.building, ignore_errors=True)
        layout.building.mkdir(parents=True)
        number = max([*layout.numbers(), layout.generation()]) + 1
        source = base.catalog
        if copy_from is None or source is None:
            catalog = Catalog(path)
            if base.index_id:  # a --rebuild keeps the index's identity (and its collections' names)
                catalog.set_meta("index_id", base.index_id)
        else:
            if source.segmented:  # shared, not copied
                catalog = Catalog(path)
                for key in ("index_id", "stories"):
                    if source.get_meta(key) is not None:
                        catalog.set_meta(key, source.get_meta(key))
                catalog.start_from(source)
            else:  # an index from before segments: copied whole, once
                catalog = source.copy_to(path)
            if copy_from.number == 0:  # an index from before generations
                self._carry_over_vectors(catalog, copy_from)
        if not catalog.segmented:
            catalog.set_segments([])
        older = [s for s in catalog.segments() if s.name != path.parent.name]
        merged = [s.name for s in older] if plan.full else to_merge(older)
        catalog.absorb({*merged, *(s.name for s in older if s.name in plan.repair)})
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


def _resumed(path: Path, spec: dict[str, Any]) -> tuple[Catalog, int] | None:
    """The catalog, and number, of the build a killed run left at `path` for the same `spec`
    (base generation, settings, what it merges), whose segments are all there; else None."""
    if not path.exists():
        return None
    with contextlib.suppress(sqlite3.DatabaseError):  # a damaged build: started anew
        catalog = Catalog(path, skip_damaged=True)
        meta = catalog.get_meta("build") or {}
        if (
            {k: meta.get(k) for k in spec} == spec
            and isinstance(meta.get("number"), int)
            and not catalog.unattached
        ):
            return catalog, int(meta["number"])
        catalog.close()
    return None


def _resumable(path: Path) -> bool:
    """Whether the catalog at `path` is a build's, which the next run may resume."""
    build = stored_meta(path, "build")
    return isinstance(build, dict) and isinstance(build.get("number"), int)


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
