"""Building the next generation beside the one in service, checking it, and switching to it."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from index.catalog import Catalog
from index.chunks import Chunk, Chunker
from index.corpus.article import Article
from index.disk import message, write_failure
from index.embeddings import Embedder, check_fits
from index.errors import DiskWriteError, NewsbotError, StoreUnavailableError
from index.layout import Generation, IndexLayout, sync_folder
from index.lexical import LexicalIndex
from index.progress import Progress
from index.settings import Settings
from index.store import VectorStore, collection_name
from index.stories import Syndication, group_stories
from index.vector_copy import write_store

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
    rebuild: bool  # from nothing, rather than from a copy of the generation in service
    vectors_restored: bool  # the store lost the vectors in service: there are none to copy
    syndication: Syndication = field(default_factory=Syndication)  # how copies are grouped
    # Indexed articles whose file was not read (its stat is as recorded): they stay as they are.
    unread: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class BuiltGeneration:
    """What building the next generation did."""

    repaired: list[str]
    chunks_embedded: int
    chunks_total: int


def kept_generations(layout: IndexLayout, current: int) -> set[int]:
    """The generation in service and the one before it (a reader may be mid-question in it)."""
    older = [n for n in layout.numbers() if n < current]
    if current and (layout.root / "catalog.sqlite").exists():
        older.append(0)  # an index from before generations
    return {current, max(older)} if older else {current}


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
            self.layout.remove_stale(kept_generations(self.layout, live.number))
        copy_from = None if plan.rebuild else live
        self._writing = self.layout.building / "catalog.sqlite"
        catalog, number = self._open_catalog(copy_from, base, plan.manifest)
        building = Generation(self.layout.building, number)
        try:
            index_id = catalog.index_id()
            # A rebuild chunks the kept articles anew from what the generation in service holds.
            articles = [*plan.articles, *(_pieced(live, plan.kept) if plan.rebuild else [])]
            changed = _drop_and_find_changed(catalog, articles, {*plan.kept, *plan.unread})
            repaired = sorted(a.id for a in changed if a.id not in plan.planned)
            chunks_embedded = self._embed(catalog, changed) if changed else 0
            group_stories(catalog, changed, plan.syndication)
            catalog.set_meta("manifest", {**plan.manifest, "dimension": catalog.dimension()})
            catalog.set_meta("last_indexed", _now())
            name = collection_name(self.settings, index_id, number)
            catalog.set_meta("collection", name)
            reuse = None
            embedded = not self.settings.chroma_host and not plan.vectors_restored
            if copy_from is not None and copy_from.number and embedded:
                reuse = (copy_from, _renewed(catalog, base) | set(repaired))
            self._writing = building.chroma
            stored = write_store(self.settings, catalog, building, name, reuse, self.progress)
            self._writing = building.bm25
            lexical = _write_lexical(catalog, building.bm25)
            _check_consistent(catalog, stored, lexical)
            # The "build" entry stays: a generation whose switch fails is resumed as it is.
            self._writing = building.catalog
            catalog.seal()
        finally:
            catalog.close()
        self._writing = self.layout.root
        self._switch(index_id, number)
        return BuiltGeneration(repaired, chunks_embedded, chunks_total=len(stored))

    def _leave_resumable(self) -> str:
        """After a failed write: free what the next run rebuilds anyway (the vectors' store,
        BM25), keep the catalog, which holds what was embedded; what became of the build."""
        building = self.layout.building
        if _resumable(building / "catalog.sqlite"):
            with contextlib.suppress(OSError):  # a disk gone read-only: nothing more to free
                for item in list(building.iterdir()):
                    if not item.name.startswith("catalog.sqlite"):
                        _remove(item)
            return f"it resumes: what was embedded is kept in {building}"
        shutil.rmtree(building, ignore_errors=True)
        return "nothing had been embedded yet: the unfinished build was removed"

    def _open_catalog(
        self, copy_from: Generation | None, base: LiveSummary, manifest: dict[str, Any]
    ) -> tuple[Catalog, int]:
        """The catalog of the generation being built, and its number.

        A build a killed run left for the same base generation and settings is resumed: what
        it embedded is kept. Anything else there is discarded.
        """
        layout = self.layout
        path = layout.building / "catalog.sqlite"
        plan = {"base": copy_from.name if copy_from else None, "manifest": manifest}
        if path.exists():
            catalog = Catalog(path)
            meta = catalog.get_meta("build") or {}
            if {k: meta.get(k) for k in plan} == plan and isinstance(meta.get("number"), int):
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
                catalog = source.copy_to(path)
            finally:
                source.close()
            if copy_from.number == 0:
                self._carry_over_vectors(catalog, copy_from)
        catalog.set_meta("build", {**plan, "number": number})
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
        layout.remove_stale(keep)
        with contextlib.suppress(StoreUnavailableError):  # cleaned up by a later run instead
            VectorStore.remove_other_generations(
                self.settings,
                index_id,
                {collection_name(self.settings, index_id, n) for n in keep},
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


def _renewed(catalog: Catalog, base: LiveSummary) -> set[str]:
    """The articles of `catalog` that the generation in service lacks or holds otherwise."""
    return {
        aid
        for aid, (content_hash, _) in catalog.hashes().items()
        if base.hashes.get(aid, ("", ""))[0] != content_hash
    }


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
    chunks = catalog.chunk_ids()
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
